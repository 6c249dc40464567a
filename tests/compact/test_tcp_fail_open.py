"""A raising async TCP callback under ``fail_open``: native and compact both resume the data."""

from __future__ import annotations

from pathlib import Path

import pytest
from proxywasm import LogLevel
from proxywasm.testing import HostEmulator, load_filter
from proxywasm_compiler.backends.compact import build_compact

pytestmark = pytest.mark.slow

FILTER = Path(__file__).resolve().parent / "tcp_fail_open_filter.py"


@pytest.fixture(scope="module")
def wasm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("compact") / "tcp_fail_open.wasm"
    build_compact(FILTER, out)
    return out


@pytest.mark.parametrize("status", ["200", "403"])
def test_the_held_data_goes_on_whatever_the_answer(wasm: Path, status: str) -> None:
    seen = []
    for host in (HostEmulator(load_filter(FILTER)), HostEmulator.from_wasm(wasm)):
        assert host.start_vm() and host.start_plugin()
        ctx, _ = host.initialize_connection()
        host.call_on_downstream_data(ctx, b"hello")
        (call,) = host.get_http_call_attributes()
        host.call_on_http_call_response(call.token, [(":status", status)], b"")
        conn = host.get_connection(ctx)
        errors = [e.splitlines()[-1] for e in host.get_logs(LogLevel.ERROR)]
        seen.append((bytes(conn.forwarded_downstream), conn.downstream_closed, errors))
    native, compact = seen
    assert compact == native
    assert native[:2] == (b"hello", False)
    assert native[2] == ([] if status == "200" else ["RuntimeError: tcp refused with 403"])
