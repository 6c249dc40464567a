"""The fault suite: tests/envoy_faults/faults.py compiled and served by a real Envoy.

A fail-closed filter must never forward a request, whatever it does wrong.
Each fault is asked for by request headers (``x-fault``, ``x-fault-in``; see
the filter's docstring). Three Envoys, one per failure policy that matters:

- ``raising`` (``failure_policy: closed``): faults that raise keep the VM.
  In a request callback or in response headers the client gets the 500 local
  reply; once the response has started (body, trailers) the stream is reset;
  where there is no stream to stop (``on_log``, a tick, a queue item) one
  error entry is logged; the VM serves the next request. The same Envoy has a
  TCP listener whose connection is closed when the filter raises, and runs
  the soak (:func:`test_soak`).
- ``closed``: a trap kills the VM; from then on every request gets 503.
- ``reload``: a trap kills the VM; Envoy starts a fresh one and serves again.

Every socket and wait is bounded; every server and Envoy started here is
stopped at the end of the module. Figures (soak requests, RSS) are printed
and recorded in docs/reliability.md.
"""

from __future__ import annotations

import http.client
import json
import socket
import socketserver
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from envoy_support import wait_for
from proxywasm_compiler.build import build_filter
from proxywasm_compiler.envoy import Envoy, FilterSpec, envoy_config

pytestmark = pytest.mark.slow

FAULTS = Path(__file__).resolve().parent / "envoy_faults" / "faults.py"
TIMEOUT = 10.0
UPSTREAM_BODY = b"upstream body, sent in chunks\n"

#: fault -> what its error entry names.
RAISING = {
    "value": "ValueError: deny",
    "keyboard": "KeyboardInterrupt",
    "base": "FilterAbort",
    "exit": "SystemExit",
    "generator_exit": "GeneratorExit",
    "recursion": "RecursionError",
}
REQUEST_SIDE = ["request_headers", "request_body", "request_trailers", "response_headers"]
RESPONSE_STARTED = ["response_body", "response_trailers"]
TRAPS = ["os_exit", "abort", "stack"]


# -- servers --------------------------------------------------------------------------


class _Upstream(BaseHTTPRequestHandler):
    """Reads the request (content-length or chunked with trailers); answers chunked with a trailer."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self._answer_unless_gone()

    def do_POST(self) -> None:
        self._answer_unless_gone()

    def _answer_unless_gone(self) -> None:
        try:
            self._answer()
        except OSError:
            pass  # Envoy reset the upstream request (the filter failed the stream)

    def _answer(self) -> None:
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            while True:
                line = self.rfile.readline()
                if not line.strip():
                    return  # Envoy gave up on the request (the filter failed it)
                size = int(line.split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    break
                self.rfile.read(size + 2)
        else:
            self.rfile.read(int(self.headers.get("content-length") or 0))
        self.send_response(200)
        self.send_header("transfer-encoding", "chunked")
        self.send_header("trailer", "x-upstream-trailer")
        self.end_headers()
        half = len(UPSTREAM_BODY) // 2
        for piece in (UPSTREAM_BODY[:half], UPSTREAM_BODY[half:]):
            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.flush()
        self.wfile.write(b"0\r\nx-upstream-trailer: 1\r\n\r\n")
        self.wfile.flush()

    def log_message(self, format: str, *args: object) -> None:
        pass


class _TcpEcho(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        self.request.settimeout(TIMEOUT)
        try:
            while data := self.request.recv(65536):
                self.request.sendall(data)
        except OSError:
            pass


class Servers:
    """The HTTP upstream and the TCP echo server, each on its own thread."""

    def __init__(self) -> None:
        self.http = ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
        self.http.daemon_threads = True
        self.tcp = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _TcpEcho)
        self.tcp.daemon_threads = True
        self.threads = [
            threading.Thread(target=server.serve_forever, daemon=True, name=f"faults-{i}")
            for i, server in enumerate((self.http, self.tcp))
        ]
        for thread in self.threads:
            thread.start()

    def close(self) -> None:
        for server in (self.http, self.tcp):
            server.shutdown()
            server.server_close()
        for thread in self.threads:
            thread.join(timeout=TIMEOUT)


def fault_config(wasm: Path, servers: Servers, policy: str) -> dict[str, Any]:
    """HTTP listener (trailers enabled both ways) and TCP listener, one VM for both roots."""
    http_port = int(servers.http.server_address[1])
    tcp_port = int(servers.tcp.server_address[1])
    spec = FilterSpec(wasm, name="faults", vm_id="faults", failure_policy=policy)
    config = envoy_config([spec], ("127.0.0.1", http_port))
    resources = config["static_resources"]
    hcm = resources["listeners"][0]["filter_chains"][0]["filters"][-1]["typed_config"]
    hcm["http_protocol_options"] = {"enable_trailers": True}
    resources["clusters"][0]["typed_extension_protocol_options"] = {
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
            "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
            "explicit_http_config": {"http_protocol_options": {"enable_trailers": True}},
        }
    }
    tcp_cluster = json.loads(json.dumps(resources["clusters"][0]))
    tcp_cluster.pop("typed_extension_protocol_options")
    tcp_cluster["name"] = tcp_cluster["load_assignment"]["cluster_name"] = "tcp_upstream"
    endpoint = tcp_cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
    endpoint["address"]["socket_address"]["port_value"] = tcp_port
    resources["clusters"].append(tcp_cluster)
    network = FilterSpec(
        wasm, name="faults_tcp", root_id="tcp", vm_id="faults", network=True, failure_policy=policy
    )
    wasm_filter = envoy_config([network], ("127.0.0.1", tcp_port))["static_resources"]["listeners"][
        0
    ]
    tcp_proxy = {
        "name": "envoy.filters.network.tcp_proxy",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
            "stat_prefix": "faults_tcp",
            "cluster": "tcp_upstream",
        },
    }
    # First: Envoy.port is the last listener's, the HTTP one.
    resources["listeners"].insert(
        0,
        {
            "name": "tcp",
            "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
            "filter_chains": [
                {"filters": [wasm_filter["filter_chains"][0]["filters"][0], tcp_proxy]}
            ],
        },
    )
    return config


def listener_port(envoy: Envoy, name: str) -> int:
    listeners = json.loads(envoy.admin("/listeners?format=json"))
    for listener in listeners["listener_statuses"]:
        if listener["name"] == name:
            return int(listener["local_address"]["socket_address"]["port_value"])
    raise AssertionError(f"no listener {name!r}: {listeners}")


@pytest.fixture(scope="module")
def wasm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("faults") / "faults.wasm"
    return build_filter(FAULTS, out).output


@pytest.fixture(scope="module")
def servers() -> Iterator[Servers]:
    s = Servers()
    try:
        yield s
    finally:
        s.close()


def _envoy(wasm: Path, servers: Servers, policy: str, workdir: Path) -> Iterator[Envoy]:
    envoy = Envoy(fault_config(wasm, servers, policy), workdir=workdir)
    try:
        envoy.start(timeout=120)
        yield envoy
    finally:
        envoy.stop()


@pytest.fixture(scope="module")
def raising(
    wasm: Path, servers: Servers, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Envoy]:
    yield from _envoy(wasm, servers, "closed", tmp_path_factory.mktemp("raising"))


@pytest.fixture(scope="module")
def closed(
    wasm: Path, servers: Servers, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Envoy]:
    yield from _envoy(wasm, servers, "closed", tmp_path_factory.mktemp("closed"))


@pytest.fixture(scope="module")
def reload(
    wasm: Path, servers: Servers, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Envoy]:
    yield from _envoy(wasm, servers, "reload", tmp_path_factory.mktemp("reload"))


# -- client ---------------------------------------------------------------------------


class Outcome:
    """What the client saw: a status and a complete body, or a reset stream."""

    def __init__(
        self, status: int | None, body: bytes, headers: dict[str, str], reset: bool
    ) -> None:
        self.status = status
        self.body = body
        self.headers = headers
        self.reset = reset

    def __repr__(self) -> str:
        return f"Outcome(status={self.status}, reset={self.reset}, body={self.body[:80]!r})"

    @property
    def forwarded(self) -> bool:
        """The upstream's answer reached the client whole: the filter let the request through."""
        return self.status == 200 and self.body == UPSTREAM_BODY and not self.reset


def send(envoy: Envoy, fault: str = "", where: str = "request_headers") -> Outcome:
    """A chunked POST with a trailer (so every stream callback runs); never raises on a reset."""
    head = [
        "POST /ok HTTP/1.1",
        "host: faults",
        "transfer-encoding: chunked",
        "te: trailers",
    ]
    if fault:
        head += [f"x-fault: {fault}", f"x-fault-in: {where}"]
    raw = (
        "\r\n".join(head) + "\r\n\r\n"
    ).encode() + b"4\r\nbody\r\n0\r\nx-request-trailer: 1\r\n\r\n"
    sock = socket.create_connection(("127.0.0.1", envoy.port), timeout=TIMEOUT)
    try:
        sock.sendall(raw)
        response = http.client.HTTPResponse(sock)
        try:
            response.begin()
        except (http.client.HTTPException, OSError):
            return Outcome(None, b"", {}, True)
        headers = {k.lower(): v for k, v in response.getheaders()}
        try:
            body = response.read()
        except (http.client.HTTPException, OSError):
            return Outcome(response.status, b"", headers, True)
        return Outcome(response.status, body, headers, False)
    finally:
        sock.close()


def errors(envoy: Envoy, *needles: str) -> list[str]:
    return [e for e in envoy.log_entries("[error]") if all(n in e for n in needles)]


def assert_serves(envoy: Envoy) -> None:
    outcome = send(envoy)
    assert outcome.forwarded and outcome.headers.get("x-faults") == "ok", outcome


# -- raising faults keep the VM ------------------------------------------------------------


def test_a_clean_request_passes_every_callback(raising: Envoy) -> None:
    assert_serves(raising)


@pytest.mark.parametrize("where", REQUEST_SIDE)
@pytest.mark.parametrize("fault", sorted(RAISING))
def test_a_raising_callback_answers_500(raising: Envoy, fault: str, where: str) -> None:
    needles = (f"on_http_{where}", RAISING[fault])
    before = len(errors(raising, *needles))
    outcome = send(raising, fault, where)
    assert outcome.status == 500 and not outcome.forwarded, outcome
    wait_for(
        lambda: len(errors(raising, *needles)) == before + 1, f"one error entry naming {needles}"
    )
    assert_serves(raising)


@pytest.mark.parametrize("where", RESPONSE_STARTED)
@pytest.mark.parametrize("fault", ["value", "keyboard", "base"])
def test_a_failure_after_the_response_started_resets_the_stream(
    raising: Envoy, fault: str, where: str
) -> None:
    needles = (f"on_http_{where}", RAISING[fault])
    before = len(errors(raising, *needles))
    outcome = send(raising, fault, where)
    assert outcome.reset and not outcome.forwarded, outcome
    wait_for(
        lambda: len(errors(raising, *needles)) == before + 1, f"one error entry naming {needles}"
    )
    assert_serves(raising)


def test_a_failing_callout_answer_answers_500(raising: Envoy) -> None:
    before = len(errors(raising, "on_http_call_response", "ValueError: deny"))
    outcome = send(raising, "value", "callout")
    assert outcome.status == 500, outcome
    wait_for(
        lambda: len(errors(raising, "on_http_call_response", "ValueError: deny")) == before + 1,
        "the entry",
    )
    assert_serves(raising)


@pytest.mark.parametrize(
    ("where", "callback"), [("log", "on_log"), ("tick", "on_tick"), ("queue", "on_queue_ready")]
)
def test_callbacks_without_a_stream_log_once_and_live_on(
    raising: Envoy, where: str, callback: str
) -> None:
    before = len(errors(raising, callback, "ValueError: deny"))
    outcome = send(raising, "value", where)
    assert outcome.forwarded, outcome  # the fault comes after (or beside) the stream
    wait_for(
        lambda: len(errors(raising, callback, "ValueError: deny")) == before + 1,
        f"the {callback} entry",
    )
    assert_serves(raising)


def test_a_full_heap_still_answers_500(raising: Envoy) -> None:
    outcome = send(raising, "memory")
    assert outcome.status == 500, outcome
    assert_serves(raising)


@pytest.mark.parametrize("where", REQUEST_SIDE)
def test_an_exception_escaping_the_dispatcher_answers_500_from_c(
    raising: Envoy, where: str
) -> None:
    needle = (
        f"python callback proxy_on_{where} failed outside the exception barrier (KeyboardInterrupt)"
    )
    before = len(errors(raising, needle))
    outcome = send(raising, "escape", where)
    assert outcome.status == 500, outcome
    wait_for(lambda: len(errors(raising, needle)) == before + 1, "the last-resort entry")
    assert_serves(raising)


def test_a_raising_tcp_callback_closes_the_connection(raising: Envoy) -> None:
    port = listener_port(raising, "tcp")
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        sock.sendall(b"hello")
        assert sock.recv(5) == b"hello"  # a clean piece is echoed
    before = len(errors(raising, "on_downstream_data", "ValueError: tcp fault"))
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        sock.sendall(b"tcp-fault")
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except ConnectionResetError:
            pass
    assert received == b"", received  # closed, nothing forwarded and echoed back
    wait_for(lambda: len(errors(raising, "on_downstream_data")) == before + 1, "the TCP entry")


def _rss_kib(envoy: Envoy) -> int:
    assert envoy.process is not None
    for line in Path(f"/proc/{envoy.process.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_soak(raising: Envoy) -> None:
    """A minute of clean and failing requests: every answer right, RSS flat."""
    for _ in range(200):  # warm up: pools, V8 tiers, the interpreter's caches
        send(raising)
        send(raising, "value")
    rss_start = _rss_kib(raising)
    errors_before = len(errors(raising))
    counts = {"ok": 0, "500": 0}
    wrong: list[str] = []
    deadline = time.monotonic() + 60.0
    while time.monotonic() < deadline:
        ok = send(raising)
        failed = send(raising, "value", "request_body")
        counts["ok"] += ok.forwarded
        counts["500"] += failed.status == 500
        if not ok.forwarded or failed.status != 500:
            wrong.append(f"{ok!r} / {failed!r}")
    rss_end = _rss_kib(raising)
    total = counts["ok"] + counts["500"]
    print(
        f"\nsoak: {total} requests in 60 s ({counts['ok']} clean, {counts['500']} failing), "
        f"RSS {rss_start / 1024:.1f} -> {rss_end / 1024:.1f} MiB, {len(wrong)} wrong answers"
    )
    assert not wrong, wrong[:5]
    new_errors = errors(raising)[errors_before:]
    assert all("ValueError: deny" in e for e in new_errors), [
        e for e in new_errors if "deny" not in e
    ][:3]
    assert rss_end - rss_start < 16 * 1024, (rss_start, rss_end)


# -- traps kill the VM ------------------------------------------------------------------


def test_after_a_trap_fail_closed_answers_503(closed: Envoy) -> None:
    assert_serves(closed)
    outcome = send(closed, "abort")
    assert not outcome.forwarded and outcome.status in (500, 503, None), outcome
    for _ in range(3):
        later = send(closed)
        assert later.status == 503 and not later.forwarded, later


@pytest.mark.parametrize("fault", TRAPS)
def test_after_a_trap_reload_serves_from_a_fresh_vm(reload: Envoy, fault: str) -> None:
    assert_serves(reload)
    outcome = send(reload, fault)
    assert not outcome.forwarded, outcome
    # Envoy reloads after a backoff (1 s by default); meanwhile it answers 503.
    seen: list[Outcome] = []

    def served() -> bool:
        seen.append(send(reload))
        return seen[-1].forwarded

    wait_for(served, f"a fresh VM after {fault}", timeout=15.0)
    assert all(o.forwarded or o.status == 503 for o in seen), seen
