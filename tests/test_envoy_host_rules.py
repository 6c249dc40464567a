"""Host rules of the null runtime, each measured in a real Envoy and compared.

``host_rules/filter.py`` answers every scenario with a record of what the host
did (callback arguments, raw statuses). Each test sends the same request to
Envoy 1.40 and to ``HostEmulator`` (natively, and the same compiled module
under wasmtime) and asserts the records are equal, so a rule the emulator
models is a rule Envoy has:

- a callout whose upstream breaks the response is a *reset*: no headers, no
  body buffer, ``proxy_get_status`` = ``(11, "reset")``; an answer afterwards
  keeps the code 11 and clears the message;
- a callout timeout is not a reset: Envoy answers ``504`` headers and a body;
- a second ``send_http_response`` in one callback returns OK and is dropped;
  sent from the response headers of the first reply it replaces it; a filter
  raising there gets its stream reset;
- the plugin configuration is not readable outside ``on_configure``;
- an HTTP/1.1 body, request or response, content-length or chunked, in one
  packet or in pieces, ends with an empty ``end_of_stream`` chunk.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from proxywasm import LogLevel
from proxywasm.testing import HostEmulator, load_filter
from proxywasm_compiler.build import build_filter
from proxywasm_compiler.echo import EchoServer
from proxywasm_compiler.envoy import Envoy, FilterSpec, envoy_config

pytestmark = pytest.mark.slow

FILTER = Path(__file__).resolve().parent / "host_rules" / "filter.py"
CONFIG = '{"a": 1}'
TIMEOUT = 10.0
PIECES = [b"aaa", b"bbb", b"cc"]


class RawUpstream:
    """A TCP upstream that misbehaves: ``reset`` sends response headers promising
    100 bytes, 3 of them, and closes; ``silent`` never answers. 127.0.0.1 only."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        self.sock.settimeout(0.2)
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            try:
                conn.settimeout(TIMEOUT)
                conn.recv(65536)
                if self.kind == "reset":
                    conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nabc")
                else:
                    self.stopping.wait(TIMEOUT)
            except OSError:
                pass

    def close(self) -> None:
        self.stopping.set()
        self.sock.close()
        self.thread.join(timeout=5)


@pytest.fixture(scope="module")
def wasm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("host_rules") / "host_rules.wasm"
    build_filter(FILTER, out)
    return out


@pytest.fixture(scope="module")
def envoy(wasm: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Envoy]:
    echo = EchoServer()
    raw = {kind: RawUpstream(kind) for kind in ("reset", "silent")}
    clusters = {kind: ("127.0.0.1", server.port) for kind, server in raw.items()}
    clusters["echo"] = ("127.0.0.1", echo.port)
    config = envoy_config(
        [FilterSpec(wasm, configuration=CONFIG)], ("127.0.0.1", echo.port), clusters=clusters
    )
    proxy = Envoy(config, workdir=tmp_path_factory.mktemp("envoy-host-rules"))
    try:
        proxy.start(timeout=120)
        yield proxy
    finally:
        proxy.stop()
        echo.close()
        for server in raw.values():
            server.close()


Observe = Callable[[str, Callable[[], Any]], Any]


@pytest.fixture(scope="module")
def observe(envoy: Envoy) -> Observe:
    """``observe(key, fn)``: ``fn()``'s result, run once per module (each test
    compares one Envoy observation with two hosts)."""
    cache: dict[str, Any] = {}

    def once(key: str, fn: Callable[[], Any]) -> Any:
        if key not in cache:
            cache[key] = fn()
        return cache[key]

    return once


@pytest.fixture(params=["native", "wasm"])
def make_host(request: pytest.FixtureRequest, wasm: Path) -> Callable[[], HostEmulator]:
    """A fresh started host running the probe natively or as the compiled module."""

    def make() -> HostEmulator:
        if request.param == "native":
            host = HostEmulator(load_filter(FILTER), plugin_configuration=CONFIG)
        else:
            host = HostEmulator.from_wasm(wasm, plugin_configuration=CONFIG)
        assert host.start_vm() and host.start_plugin()
        return host

    return make


def get(host: HostEmulator, path: str, **kwargs: Any) -> Any:
    headers = [(":method", "GET"), (":path", path), (":authority", "host")]
    return host.http(headers, **kwargs)


def envoy_log(envoy: Envoy, needle: str) -> list[str]:
    """The filter's log lines containing ``needle``, the message only."""
    return [
        line.split("wasm log proxywasm: ", 1)[1].strip()
        for line in envoy.log_entries(needle, timeout=5.0)
    ]


# -- callouts -------------------------------------------------------------------------------------


def test_a_reset_callout_has_no_headers_no_body_and_status_11(
    envoy: Envoy, observe: Observe, make_host: Callable[[], HostEmulator]
) -> None:
    seen = observe(
        "reset", lambda: json.loads(envoy.request("/callout/reset", timeout=TIMEOUT).body)
    )
    assert seen == {
        "args": [0, 0, 0],
        "status": [11, "reset"],
        "headers": ["ok", []],
        "body": ["missing"],
    }
    host = make_host()
    host.answer_http_calls("reset", lambda call: None)  # None: the call was reset
    assert json.loads(get(host, "/callout/reset").response_body) == seen


def test_an_answer_after_a_reset_keeps_code_11_and_clears_the_message(
    envoy: Envoy, observe: Observe, make_host: Callable[[], HostEmulator]
) -> None:
    def statuses(send: Callable[[str], bytes]) -> list[Any]:
        return [json.loads(send(c))["status"] for c in ("reset", "echo", "echo")]

    in_envoy = observe(
        "statuses", lambda: statuses(lambda c: envoy.request(f"/callout/{c}", timeout=TIMEOUT).body)
    )
    assert in_envoy == [[11, "reset"], [11, ""], [11, ""]]
    host = make_host()
    host.answer_http_calls("reset", lambda call: None)
    host.answer_http_calls("echo", lambda call: ([(":status", "200")], b"{}"))
    assert statuses(lambda c: get(host, f"/callout/{c}").response_body) == in_envoy


def test_a_callout_timeout_is_answered_504_not_reset(envoy: Envoy) -> None:
    # What the test client's docs tell users to return for a timeout.
    seen = json.loads(envoy.request("/callout/silent", timeout=TIMEOUT).body)
    assert seen["headers"] == ["ok", [[":status", "504"]]]
    assert seen["args"][0] > 0 and seen["body"][0] == "ok" and seen["body"][1] > 0
    assert seen["status"][1] == ""


# -- local replies --------------------------------------------------------------------------------


def test_a_second_reply_in_the_same_callback_is_ok_and_dropped(
    envoy: Envoy, observe: Observe, make_host: Callable[[], HostEmulator]
) -> None:
    reply, logged = observe(
        "twice",
        lambda: (envoy.request("/twice", timeout=TIMEOUT), envoy_log(envoy, "host_rules twice:")),
    )
    assert (reply.status, reply.body) == (403, b"first")
    assert logged == ['host_rules twice: [["ok"], ["ok"]]']
    ex = get(make_host(), "/twice")
    assert (ex.status, ex.response_body) == (reply.status, reply.body)
    assert ex.messages(LogLevel.INFO) == logged


def test_a_reply_from_the_first_replys_response_headers_replaces_it(
    envoy: Envoy, observe: Observe, make_host: Callable[[], HostEmulator]
) -> None:
    reply, logged = observe(
        "twice-later",
        lambda: (
            envoy.request("/twice-later", timeout=TIMEOUT),
            envoy_log(envoy, "host_rules twice-later:"),
        ),
    )
    assert (reply.status, reply.body) == (418, b"later")
    assert logged == ['host_rules twice-later: ["ok"]']  # logged once: not run again
    ex = get(make_host(), "/twice-later")
    assert (ex.status, ex.response_body) == (reply.status, reply.body)
    assert ex.messages(LogLevel.INFO) == logged


def test_raising_in_the_response_headers_of_a_reply_resets_the_stream(
    envoy: Envoy, observe: Observe, make_host: Callable[[], HostEmulator]
) -> None:
    def send() -> str:
        try:
            reply = envoy.request("/reply-then-raise", timeout=TIMEOUT)
        except (http.client.RemoteDisconnected, ConnectionResetError) as exc:
            return type(exc).__name__
        return f"answered {reply.status}"

    assert observe("reply-then-raise", send) in ("RemoteDisconnected", "ConnectionResetError")
    ex = get(make_host(), "/reply-then-raise")
    assert ex.reset and ex.upstream_headers is None


# -- configuration --------------------------------------------------------------------------------


def test_the_plugin_configuration_is_missing_outside_on_configure(
    envoy: Envoy, observe: Observe, make_host: Callable[[], HostEmulator]
) -> None:
    seen = observe("config", lambda: json.loads(envoy.request("/config", timeout=TIMEOUT).body))
    assert seen == {"status": ["missing"], "bytes": ""}
    assert json.loads(get(make_host(), "/config").response_body) == seen


# -- bodies ---------------------------------------------------------------------------------------


def raw_request(envoy: Envoy, writes: list[bytes]) -> bytes:
    """Send ``writes`` as they are (0.1 s apart); the response head Envoy sent back."""
    with socket.create_connection(("127.0.0.1", envoy.port), timeout=TIMEOUT) as conn:
        for i, data in enumerate(writes):
            if i:
                time.sleep(0.1)
            conn.sendall(data)
        head = b""
        deadline = time.monotonic() + TIMEOUT
        while b"\r\n\r\n" not in head and time.monotonic() < deadline:
            chunk = conn.recv(65536)
            if not chunk:
                break
            head += chunk
    return head


def body_calls(head: bytes) -> Any:
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"x-body-calls":
            return json.loads(value)
    raise AssertionError(f"no x-body-calls in {head!r}")


CHUNKED = b"POST /body/x HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\n\r\n"


@pytest.mark.parametrize(
    ("writes", "chunks"),
    [
        ([b"POST /body/x HTTP/1.1\r\nhost: a\r\ncontent-length: 8\r\n\r\naaabbbcc"], [b"aaabbbcc"]),
        ([CHUNKED, b"3\r\naaa\r\n", b"3\r\nbbb\r\n", b"2\r\ncc\r\n", b"0\r\n\r\n"], PIECES),
        ([CHUNKED + b"3\r\naaa\r\n0\r\n\r\n"], [b"aaa"]),
    ],
    ids=["content-length-one-packet", "chunked-in-pieces", "chunked-one-packet"],
)
def test_a_request_body_ends_with_an_empty_end_of_stream_chunk(
    envoy: Envoy,
    observe: Observe,
    make_host: Callable[[], HostEmulator],
    writes: list[bytes],
    chunks: list[bytes],
) -> None:
    seen = observe(repr(writes), lambda: body_calls(raw_request(envoy, writes)))
    assert seen == [[len(c), False] for c in chunks] + [[0, True]]
    ex = get(make_host(), "/body/x", request_body=chunks)
    assert json.loads(ex.header("x-body-calls") or "null") == seen


def test_a_body_in_pieces_and_the_response_body_end_the_same_way(
    envoy: Envoy, observe: Observe, make_host: Callable[[], HostEmulator]
) -> None:
    reply, [logged] = observe(
        "pieces",
        lambda: (
            envoy.request("/body/pieces", body=PIECES, timeout=TIMEOUT, pause=0.1),
            envoy_log(envoy, "response body /body/pieces:"),
        ),
    )
    seen = json.loads(reply.headers["x-body-calls"])
    assert seen == [[3, False], [3, False], [2, False], [0, True]]
    # The echo upstream answers with one content-length body.
    response = json.loads(logged.split(": ", 1)[1])
    assert response == [[len(reply.body), False], [0, True]]

    ex = get(make_host(), "/body/pieces", request_body=PIECES, response_body=reply.body)
    assert json.loads(ex.header("x-body-calls") or "null") == seen
    assert logged in ex.messages(LogLevel.INFO)
