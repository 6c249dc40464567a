"""The Pythonic layer in a real Envoy: views, awaited callouts against real local upstreams.

The subject is tests/pythonic/filter.py (also run natively and in the wasm
harness by tests/test_pythonic.py). Clusters ``auth``, ``a``, ``b`` and
``stats`` point at one small HTTP server here that answers by path; the
upstream is the echo server, so a test sees what the filter forwarded.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from proxywasm_compiler.build import build_filter
from proxywasm_compiler.echo import EchoServer
from proxywasm_compiler.envoy import Envoy, FilterSpec, Reply, envoy_config

pytestmark = pytest.mark.slow

FILTER = Path(__file__).resolve().parent / "pythonic" / "filter.py"
TIMEOUT = 10.0
SLOW_S = 1.5  # past the filter's 1,000 ms callout timeout


class Callee:
    """The services the filter calls: ``/check`` (auth), ``/1`` ``/2`` ``/a`` ``/b`` ``/tick``."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                headers: dict[str, str] = {}
                token = self.headers.get("authorization", "")
                if self.path == "/check":
                    if token == "Bearer slow":
                        time.sleep(SLOW_S)
                    status, text = (
                        (200, b"")
                        if token in ("Bearer good", "Bearer slow")
                        else (
                            401,
                            b"bad token",
                        )
                    )
                    if status == 200:
                        headers["x-user"] = "ann"
                else:
                    status, text = {
                        "/1": (200, b"one"),
                        "/2": (200, b"two:" + body),
                        "/a": (200, b"A"),
                        "/b": (503, b"B"),
                        "/tick": (200, b"fine"),
                    }.get(self.path, (404, b"?"))
                try:
                    self.send_response(status)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.send_header("content-length", str(len(text)))
                    self.end_headers()
                    self.wfile.write(text)
                except OSError:
                    pass  # Envoy gave up (the slow case)

            do_POST = do_GET

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=TIMEOUT)


@pytest.fixture(scope="module")
def envoy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Envoy]:
    work = tmp_path_factory.mktemp("pythonic")
    wasm = work / "pythonic.wasm"
    build_filter(FILTER, wasm)
    callee = Callee()
    upstream = EchoServer()
    proxy: Envoy | None = None
    try:
        address = ("127.0.0.1", callee.port)
        config = envoy_config(
            [FilterSpec(wasm, configuration=json.dumps({"tag": "blue"}), vm_id="pythonic")],
            ("127.0.0.1", upstream.port),
            clusters={name: address for name in ("auth", "a", "b", "stats")},
        )
        proxy = Envoy(config, workdir=work)
        proxy.start(timeout=120)
        yield proxy
    finally:
        if proxy is not None:
            proxy.stop()
        upstream.close()
        callee.close()


def send(envoy: Envoy, case: str, body: bytes | list[bytes] | None = None, **headers: str) -> Reply:
    all_headers = {"x-case": case, **{k.replace("_", "-"): v for k, v in headers.items()}}
    return envoy.request("/some/path", headers=all_headers, body=body, timeout=TIMEOUT)


def forwarded(reply: Reply) -> dict[str, Any]:
    assert reply.status == 200, (reply.status, reply.body)
    echoed: dict[str, Any] = reply.echoed()
    return echoed


def test_header_views(envoy: Envoy) -> None:
    got = forwarded(send(envoy, "views", x_secret="s3", x_drop="1", x_tag="0"))["headers"]
    assert got["x-path-len"] == "10"
    assert got["x-tags"] == "0,a,b"
    assert (got["x-seen-rust"], got["x-seen-upper"], got["x-root"]) == ("1", "1", "blue")
    assert (got["x-has-secret"], got["x-popped"]) == ("True", "s3")
    assert "x-secret" not in got and "x-drop" not in got


def test_response_view_sees_the_status(envoy: Envoy) -> None:
    reply = send(envoy, "none")
    assert reply.status == 200 and reply.headers.get("x-status-seen") == "200"


def test_body_view_buffers_the_whole_body_then_rewrites_it(envoy: Envoy) -> None:
    got = forwarded(send(envoy, "body", body=[b"hello ", b"world"]))
    assert got["body"] == "<HELLO WORLD!"


def test_awaited_auth_allows_with_the_answers_header(envoy: Envoy) -> None:
    got = forwarded(send(envoy, "auth", authorization="Bearer good"))
    assert got["headers"]["x-user"] == "ann"


def test_awaited_auth_denies_with_the_answers_body(envoy: Envoy) -> None:
    reply = send(envoy, "auth", authorization="Bearer nope")
    assert (reply.status, reply.body) == (403, b"denied: bad token")
    assert reply.headers.get("x-upstream") is None


def test_a_callout_timeout_arrives_as_envoys_504(envoy: Envoy) -> None:
    started = time.monotonic()
    reply = send(envoy, "auth", authorization="Bearer slow")
    assert reply.status == 403 and reply.body.startswith(b"denied: ")
    assert reply.headers.get("x-upstream") is None
    assert time.monotonic() - started < SLOW_S + 1.0


def test_awaits_in_sequence(envoy: Envoy) -> None:
    assert forwarded(send(envoy, "sequence"))["headers"]["x-answers"] == "onetwo:one"


def test_gather(envoy: Envoy) -> None:
    assert forwarded(send(envoy, "gather"))["headers"]["x-answers"] == "200:A,503:B"


def test_an_exception_after_an_await_fails_closed(envoy: Envoy) -> None:
    reply = send(envoy, "raise-after-await")
    assert reply.status == 500
    assert reply.headers.get("x-upstream") is None


def test_a_refused_dispatch_raises_host_call_error(envoy: Envoy) -> None:
    reply = send(envoy, "refused")
    assert (reply.status, reply.body) == (502, b"refused: proxy_http_call")


def test_on_tick_awaits_a_callout(envoy: Envoy) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not envoy.log_entries("tick answered 200 fine"):
        assert time.monotonic() < deadline, "on_tick's awaited callout never answered"
        time.sleep(0.1)
