"""Python filters compiled with ``build_filter`` serving real HTTP in a real Envoy.

One filter, ``envoy_filters/probe.py``, is built once per module and served by
two Envoys started side by side (each also runs it once per worker VM):

- ``closed``: plugin configuration ``CONFIG``, root ``Root`` (default policy: fail closed);
- ``open``: no configuration, ``root_id: "open"`` -> ``FailOpenRoot`` (``fail_open = True``).

Upstream: the echo server of ``proxywasm_compiler.echo``, which answers JSON
with the method, path, headers and body it received. ``/rewrite/chunked...``
is routed to a second echo server, so what a chunked request leaves on its
upstream connection cannot reach the other tests.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from proxywasm_compiler.build import build_filter
from proxywasm_compiler.echo import EchoServer
from proxywasm_compiler.envoy import Envoy, FilterSpec, Reply, envoy_config, start_all

pytestmark = pytest.mark.slow

FILTERS = Path(__file__).resolve().parent / "envoy_filters"
TIMEOUT = 10.0
CONFIG = {"greeting": "hello from config", "local_reply_path": "/teapot"}
BODY_PIECES = [b"first piece, ", b"second piece, ", b"last piece"]
BODY = b"".join(BODY_PIECES)
REWRITTEN = b"rewritten(" + BODY.upper() + b")"  # what probe.rewrite() makes of BODY


# -- fixtures -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def probe_wasm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("probe") / "probe.wasm"
    build_filter(FILTERS / "probe.py", out)
    return out


def _config(spec: FilterSpec, upstream: EchoServer, chunked_upstream: EchoServer) -> dict[str, Any]:
    config = envoy_config(
        [spec],
        ("127.0.0.1", upstream.port),
        clusters={"chunked_echo": ("127.0.0.1", chunked_upstream.port)},
    )
    chain = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"]
    hcm = next(f for f in chain if f["name"] == "envoy.filters.network.http_connection_manager")
    routes = hcm["typed_config"]["route_config"]["virtual_hosts"][0]["routes"]
    chunked_route = {"match": {"prefix": "/rewrite/chunked"}, "route": {"cluster": "chunked_echo"}}
    routes.insert(0, chunked_route)  # before the catch-all "/"
    return config


@pytest.fixture(scope="module")
def envoys(
    probe_wasm: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Envoy]]:
    upstream = EchoServer()
    chunked_upstream = EchoServer()
    specs = {
        "closed": FilterSpec(probe_wasm, configuration=json.dumps(CONFIG)),
        "open": FilterSpec(probe_wasm, root_id="open"),
    }
    proxies = {
        name: Envoy(
            _config(spec, upstream, chunked_upstream),
            workdir=tmp_path_factory.mktemp(f"envoy-{name}"),
        )
        for name, spec in specs.items()
    }
    try:
        start_all(proxies.values(), timeout=120)
        yield proxies
    finally:
        for proxy in proxies.values():
            proxy.stop()
        upstream.close()
        chunked_upstream.close()


@pytest.fixture(scope="module")
def closed(envoys: dict[str, Envoy]) -> Envoy:
    return envoys["closed"]


@pytest.fixture(scope="module")
def open_(envoys: dict[str, Envoy]) -> Envoy:
    return envoys["open"]


# -- helpers ------------------------------------------------------------------------


def get(envoy: Envoy, path: str, headers: dict[str, str] | None = None) -> Reply:
    return envoy.request(path, headers=headers, timeout=TIMEOUT)


def post_in_pieces(envoy: Envoy, path: str, pieces: list[bytes]) -> Reply:
    """POST with a content-length, sending the body in separate writes so the
    filter sees several body callbacks (and must PAUSE to buffer them)."""
    return envoy.request(
        path,
        method="POST",
        headers={"content-type": "text/plain"},
        body=pieces,
        timeout=TIMEOUT,
        pause=0.1,
    )


def log_entries(envoy: Envoy, needle: str, timeout: float = 5.0) -> list[str]:
    """Envoy log entries containing ``needle`` (waits, bounded, for at least one)."""
    return envoy.log_entries(needle, timeout=timeout)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


# -- headers --------------------------------------------------------------------------


def test_request_headers_add_replace_remove(closed: Envoy) -> None:
    reply = get(
        closed, "/headers", {"x-probe-replace": "old", "x-probe-remove": "secret", "x-keep": "kept"}
    )
    assert reply.status == 200
    seen = reply.echoed()["headers"]
    assert seen["x-probe-added"] == "yes"
    assert seen["x-probe-replace"] == "new"
    assert "x-probe-remove" not in seen
    assert seen["x-keep"] == "kept"


def test_response_headers_add_replace_remove(closed: Envoy) -> None:
    reply = get(closed, "/headers")
    assert reply.status == 200
    assert reply.headers["x-probe-added"] == "yes"
    # add keeps the upstream's own value
    assert reply.headers.get_all("x-upstream") == ["echo", "probe"]
    assert reply.headers.get_all("content-type") == ["application/probe+json"]
    assert reply.echoed()["path"] == "/headers"

    dropped = get(closed, "/headers", {"x-probe-drop-response": "x-upstream"})
    assert dropped.status == 200
    assert dropped.headers.get_all("x-upstream") is None  # every value removed
    assert json.loads(dropped.body)["path"] == "/headers"


# -- local reply, configuration -------------------------------------------------------------


def test_local_reply(closed: Envoy) -> None:
    reply = get(closed, "/teapot")
    assert reply.status == 418
    assert reply.body == b"I'm a teapot\n"
    assert reply.headers["x-probe-local"] == "teapot"
    assert reply.headers.get_all("x-upstream") == ["probe"]  # never reached the upstream
    # The local reply passes through the filter's own response callback.
    assert reply.headers["x-probe-added"] == "yes"


def test_plugin_configuration_changes_behaviour(closed: Envoy, open_: Envoy) -> None:
    assert get(closed, "/config").headers["x-probe-greeting"] == "hello from config"
    assert get(open_, "/config").headers["x-probe-greeting"] == "default"
    # local_reply_path comes from the configuration: without it, /teapot goes upstream.
    assert get(closed, "/teapot").status == 418
    unconfigured = get(open_, "/teapot")
    assert unconfigured.status == 200
    assert unconfigured.echoed()["path"] == "/teapot"


# -- request body rewrite -------------------------------------------------------------------


def test_request_body_rewrite_with_content_length_fixed_in_headers(closed: Envoy) -> None:
    reply = post_in_pieces(closed, "/rewrite/sized", BODY_PIECES)
    assert reply.status == 200, reply
    seen = reply.echoed()
    assert seen["method"] == "POST"
    assert seen["body"] == REWRITTEN.decode()
    assert seen["headers"]["content-length"] == str(len(REWRITTEN))
    assert "transfer-encoding" not in seen["headers"]
    # The body came in several callbacks: the filter buffered them with PAUSE.
    assert int(reply.headers["x-probe-body-chunks"]) >= 2


@pytest.fixture(scope="module")
def chunked_rewrite(closed: Envoy) -> Reply:
    return post_in_pieces(closed, "/rewrite/chunked", BODY_PIECES)


def test_request_body_rewrite_without_content_length_goes_chunked(chunked_rewrite: Reply) -> None:
    assert chunked_rewrite.status == 200, chunked_rewrite
    seen = chunked_rewrite.echoed()["headers"]
    assert "content-length" not in seen
    assert seen["transfer-encoding"] == "chunked"


def test_request_body_rewrite_without_content_length_reaches_upstream(
    chunked_rewrite: Reply,
) -> None:
    assert chunked_rewrite.echoed()["body"] == REWRITTEN.decode()
    assert int(chunked_rewrite.headers["x-probe-body-chunks"]) >= 2


# -- exceptions ---------------------------------------------------------------------------


def _assert_one_traceback_entry(envoy: Envoy, path: str) -> None:
    message = f"RuntimeError: probe boom at {path}"
    entries = log_entries(envoy, f"probe boom at {path}")
    assert len(entries) == 1, entries  # one entry, not one per traceback line
    entry = entries[0]
    assert "[error][wasm]" in entry.splitlines()[0]
    assert "python exception in on_http_request_headers" in entry
    assert "Traceback (most recent call last):" in entry
    assert re.search(r'File ".*probe\.py", line \d+, in on_http_request_headers', entry), entry
    assert message in entry


def test_exception_fails_closed_and_vm_lives_on(closed: Envoy) -> None:
    path = "/" + unique("boom")
    reply = get(closed, path)
    assert reply.status == 500
    assert reply.headers.get_all("x-upstream") == ["probe"]  # never reached the upstream
    _assert_one_traceback_entry(closed, path)

    after = get(closed, "/after-boom")
    assert after.status == 200
    assert after.echoed()["headers"]["x-probe-added"] == "yes"  # the filter still runs


def test_exception_fails_open_reaches_upstream(open_: Envoy) -> None:
    path = "/" + unique("boom")
    reply = get(open_, path)
    assert reply.status == 200
    seen = reply.echoed()
    assert seen["path"] == path
    assert "x-probe-added" not in seen["headers"]  # the callback stopped where it raised
    _assert_one_traceback_entry(open_, path)

    after = get(open_, "/after-boom")
    assert after.status == 200
    assert after.echoed()["headers"]["x-probe-added"] == "yes"


# -- metrics, print --------------------------------------------------------------------------


def test_counter_visible_in_envoy_stats(closed: Envoy) -> None:
    name = "wasmcustom.probe_requests"
    before = closed.stats().get(name, 0)
    for i in range(3):
        assert get(closed, f"/count/{i}").status == 200
    assert closed.stats()[name] == before + 3


def test_print_reaches_envoy_log(closed: Envoy) -> None:
    marker = unique("printed")
    assert get(closed, "/print", {"x-probe-print": marker}).status == 200
    entries = log_entries(closed, f"probe print: {marker}")
    assert len(entries) == 1, entries
    assert "[info][wasm]" in entries[0]
    assert f"wasm log proxywasm: probe print: {marker}" in entries[0]
