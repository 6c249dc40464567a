"""HostEmulator.from_wasm runs proxy-wasm modules it did not build.

The fixture module is a filter written in C directly against ABI v0.2.1
(tests/data/c_filter.c), compiled here with zig (PyPI `ziglang`).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from proxywasm import Action, LogLevel
from proxywasm.testing import HostEmulator
from proxywasm.testing.wasm import WasmTrapError
from proxywasm_compiler.zig import compile_c_filter

pytestmark = pytest.mark.slow

DATA = Path(__file__).parent / "data"


def _zig_cc(source: Path, out: Path) -> Path:
    return compile_c_filter(source, out)


@pytest.fixture(scope="module")
def c_filter(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _zig_cc(DATA / "c_filter.c", tmp_path_factory.mktemp("cfilter") / "c_filter.wasm")


def _started(path: Path, **kwargs: object) -> HostEmulator:
    host = HostEmulator.from_wasm(str(path), **kwargs)  # type: ignore[arg-type]
    assert host.start_vm()
    assert host.start_plugin()
    return host


def test_plugin_configuration_reaches_the_module(c_filter: Path) -> None:
    host = _started(c_filter, plugin_configuration='{"a": 1}')
    assert host.get_logs(LogLevel.INFO) == ['{"a": 1}']


def test_no_configuration(c_filter: Path) -> None:
    host = _started(c_filter)
    assert host.get_logs(LogLevel.INFO) == ["no configuration"]


def test_headers_read_and_written_through_wasm_memory(c_filter: Path) -> None:
    host = _started(c_filter)
    ctx = host.initialize_http_context()
    action = host.call_on_request_headers(
        ctx, [(":path", "/some/where"), (":method", "GET")], end_of_stream=True
    )
    assert action == Action.CONTINUE
    assert ("x-c-path", "/some/where") in host.get_current_request_headers(ctx)
    host.call_on_response_headers(ctx, [(":status", "200"), ("x-hello", "old")], end_of_stream=True)
    assert host.get_current_response_headers(ctx) == [(":status", "200"), ("x-hello", "c")]
    host.complete_http_context(ctx)


def test_local_reply_and_metric(c_filter: Path) -> None:
    host = _started(c_filter)
    streams = {}
    for path in ("/a", "/deny", "/b"):
        ctx = host.initialize_http_context()
        streams[path] = ctx
        action = host.call_on_request_headers(ctx, [(":path", path)], end_of_stream=True)
        assert action == (Action.PAUSE if path == "/deny" else Action.CONTINUE)
    assert host.get_sent_local_response(streams["/a"]) is None
    assert host.get_sent_local_response(streams["/b"]) is None
    local = host.get_sent_local_response(streams["/deny"])
    assert local is not None and local.status_code == 403 and local.body == b"denied\n"
    # the local reply passed through the module's own response callback
    assert ("x-hello", "c") in local.headers
    assert host.get_metric("c_filter.requests") == 3


def test_two_instances_do_not_share_state(c_filter: Path) -> None:
    a, b = _started(c_filter), _started(c_filter)
    ctx = a.initialize_http_context()
    a.call_on_request_headers(ctx, [(":path", "/")], end_of_stream=True)
    assert a.get_metric("c_filter.requests") == 1
    assert b.get_metric("c_filter.requests") == 0


def test_not_a_wasm_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.wasm"
    bad.write_bytes(b"not wasm")
    with pytest.raises(ValueError, match="not a valid WebAssembly module"):
        HostEmulator.from_wasm(str(bad))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no wasm module"):
        HostEmulator.from_wasm(str(tmp_path / "missing.wasm"))


def test_module_without_abi_version_is_refused(tmp_path: Path) -> None:
    src = tmp_path / "plain.c"
    src.write_text('__attribute__((export_name("f"))) int f(void) { return 1; }\n')
    wasm = _zig_cc(src, tmp_path / "plain.wasm")
    with pytest.raises(ValueError, match="proxy_abi_version"):
        HostEmulator.from_wasm(str(wasm))


def test_trap_in_a_callback_is_reported(tmp_path: Path) -> None:
    src = tmp_path / "trap.c"
    src.write_text(
        "#include <stdlib.h>\n"
        '__attribute__((export_name("proxy_abi_version_0_2_1"))) void v(void) {}\n'
        '__attribute__((export_name("proxy_on_memory_allocate"))) void *a(unsigned long n) { return malloc(n); }\n'
        '__attribute__((export_name("proxy_on_vm_start"))) int s(int a, int b) { return 1; }\n'
        '__attribute__((export_name("proxy_on_configure"))) int c(int a, int b) { return 1; }\n'
        '__attribute__((export_name("proxy_on_request_headers"))) int h(int a, int b, int c) '
        "{ __builtin_trap(); return 0; }\n"
    )
    host = _started(_zig_cc(src, tmp_path / "trap.wasm"))
    ctx = host.initialize_http_context()
    with pytest.raises(WasmTrapError, match="trapped"):
        host.call_on_request_headers(ctx, [(":path", "/")])
