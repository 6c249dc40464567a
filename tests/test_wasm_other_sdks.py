"""``HostEmulator.from_wasm`` runs what Envoy runs: a module built with the AssemblyScript SDK.

The module is built here from tests/anchors/as_add_header.ts with npm
(``proxywasm_compiler.anchors``, cached in the user cache dir) and driven
through the same scenario as our own add_header example. The C filter of
tests/data/c_filter.c is exercised in tests/test_wasm_host.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from proxywasm import Action, LogLevel
from proxywasm.testing import HostEmulator
from proxywasm.testing.wasm import WasmTrapError
from proxywasm_compiler.anchors import build_assemblyscript

pytestmark = pytest.mark.slow

SOURCE = Path(__file__).resolve().parent / "anchors" / "as_add_header.ts"


@pytest.fixture(scope="module")
def as_module(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("anchors") / "as_add_header.wasm"
    build_assemblyscript(SOURCE, out)
    return out


def started(path: Path, **kwargs: object) -> HostEmulator:
    host = HostEmulator.from_wasm(str(path), **kwargs)  # type: ignore[arg-type]
    assert host.start_vm()
    assert host.start_plugin()
    return host


def roundtrip(host: HostEmulator, path: str) -> list[tuple[str, str]]:
    ctx = host.initialize_http_context()
    request = [(":method", "GET"), (":path", path), (":authority", "example.com")]
    assert host.call_on_request_headers(ctx, request, end_of_stream=True) == Action.CONTINUE
    status = host.call_on_response_headers(ctx, [(":status", "200")], end_of_stream=True)
    assert status == Action.CONTINUE
    headers = host.get_current_response_headers(ctx)
    host.complete_http_context(ctx)
    return headers


def test_the_assemblyscript_module_adds_its_header(as_module: Path) -> None:
    host = started(as_module)
    assert ("x-hello", "world") in roundtrip(host, "/hello")
    assert "as: /hello" in host.get_logs(LogLevel.INFO)


def test_out_of_memory_traps_and_the_stream_fails_closed(as_module: Path) -> None:
    host = started(as_module, memory_limit=2 * 65536)  # two pages: no room to grow
    ctx = host.initialize_http_context()
    with pytest.raises(WasmTrapError, match="unreachable"):
        host.call_on_request_headers(ctx, [(":path", "x" * 300_000)], end_of_stream=True)
    reply = host.get_sent_local_response(ctx)
    assert reply is not None and (reply.status_code, reply.details) == (503, "wasm_fail_stream")


def test_many_requests_through_one_vm(as_module: Path) -> None:
    host = started(as_module)
    for i in range(200):
        assert ("x-hello", "world") in roundtrip(host, f"/{i}")
    assert len(host.get_logs(LogLevel.INFO)) == 200
