"""After a trap the wasm harness does what Envoy's failure policy does.

The subject is a small module written in WAT (compiled by wasmtime, no
toolchain needed) whose ``proxy_on_request_headers`` counts the requests its
VM served and writes the count into ``x-served``, and which dies on purpose:
three request headers trap (``unreachable``), six call WASI ``proc_exit(3)``,
seven ``proc_exit(255)``,
four and five grow memory by 6.25 MiB and by 1 GiB. Four bytes of downstream
data trap a TCP connection.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import wasmtime
from proxywasm import Action, LogLevel, RootContext
from proxywasm.testing import HostEmulator
from proxywasm.testing.wasm import DEFAULT_MEMORY_LIMIT, WasmTrapError

MODULE = r"""
(module
  (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))
  (import "env" "proxy_add_header_map_value"
    (func $add (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (global $served (mut i32) (i32.const 0))
  (data (i32.const 16) "x-served")
  (data (i32.const 32) "0123456789")
  (data (i32.const 48) "vm start")
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_memory_allocate") (param i32) (result i32) (i32.const 1024))
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32)
    (drop (call $log (i32.const 2) (i32.const 48) (i32.const 8)))
    (i32.const 1))
  (func (export "proxy_on_configure") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_request_headers") (param $ctx i32) (param $n i32) (param $eos i32)
    (result i32)
    (global.set $served (i32.add (global.get $served) (i32.const 1)))
    (if (i32.eq (local.get $n) (i32.const 3)) (then unreachable))
    (if (i32.eq (local.get $n) (i32.const 6)) (then (call $exit (i32.const 3))))
    (if (i32.eq (local.get $n) (i32.const 7)) (then (call $exit (i32.const 255))))
    (if (i32.eq (local.get $n) (i32.const 4))
      (then (return (i32.lt_s (memory.grow (i32.const 100)) (i32.const 0)))))
    (if (i32.eq (local.get $n) (i32.const 5))
      (then (return (i32.lt_s (memory.grow (i32.const 16384)) (i32.const 0)))))
    (drop (call $add (i32.const 0) (i32.const 16) (i32.const 8)
                     (i32.add (i32.const 32) (global.get $served)) (i32.const 1)))
    (i32.const 0))
  (func (export "proxy_on_new_connection") (param i32) (result i32) (i32.const 0))
  (func (export "proxy_on_downstream_data") (param i32 i32 i32) (result i32)
    (if (i32.eq (local.get 1) (i32.const 4)) (then unreachable))
    (i32.const 0))
)
"""

OK = [(":path", "/")]
TRAP = [(":path", "/"), ("a", "1"), ("b", "2")]
EXIT = [*TRAP, ("c", "3"), ("d", "4"), ("e", "5")]
GROW_6_MIB = [*TRAP, ("c", "3")]
GROW_1_GIB = [*GROW_6_MIB, ("d", "4")]


@pytest.fixture(scope="module")
def module(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("traps") / "traps.wasm"
    path.write_bytes(wasmtime.wat2wasm(MODULE))
    return path


def started(module: Path, **kwargs: object) -> HostEmulator:
    host = HostEmulator.from_wasm(str(module), **kwargs)  # type: ignore[arg-type]
    assert host.start_vm()
    assert host.start_plugin()
    return host


def served(host: HostEmulator) -> str | None:
    """Send one clean request: the module's ``x-served`` count, ``None`` if it did not run."""
    ctx = host.initialize_http_context()
    host.call_on_request_headers(ctx, OK, end_of_stream=True)
    value = dict(host.get_current_request_headers(ctx)).get("x-served")
    reply = host.get_sent_local_response(ctx)
    host.complete_http_context(ctx)
    if value is None and reply is not None:
        return f"local {reply.status_code}"
    return value


def trap(host: HostEmulator, headers: list[tuple[str, str]] = TRAP) -> int:
    ctx = host.initialize_http_context()
    with pytest.raises(WasmTrapError) as info:
        host.call_on_request_headers(ctx, headers, end_of_stream=True)
    assert host.vm_failure is info.value
    return ctx


def test_the_trapping_stream_gets_503_and_envoys_log_entry(module: Path) -> None:
    host = started(module)
    assert served(host) == "1"
    ctx = trap(host)
    reply = host.get_sent_local_response(ctx)
    assert reply is not None
    assert (reply.status_code, reply.details, reply.body) == (503, "wasm_fail_stream", b"")
    assert host.get_current_http_stream_action(ctx) == Action.PAUSE
    critical = host.get_logs(LogLevel.CRITICAL)
    assert len(critical) == 1
    assert critical[0].startswith("Function: proxy_on_request_headers failed: traps.wasm trapped")


def test_closed_answers_503_until_reload(module: Path) -> None:
    host = started(module)
    assert served(host) == "1"
    trap(host)
    assert [served(host) for _ in range(3)] == ["local 503"] * 3
    assert host.get_logs(LogLevel.CRITICAL)[1:] == []  # one entry for the trap, not per request
    host.reload_vm()
    assert host.vm_failure is None
    assert served(host) == "1"  # a fresh VM: its count starts again
    assert host.get_logs(LogLevel.INFO) == ["vm start", "vm start"]


def test_open_lets_requests_pass_without_the_filter(module: Path) -> None:
    host = started(module, failure_policy="open")
    ctx = trap(host)
    assert host.get_sent_local_response(ctx) is None
    assert [served(host) for _ in range(2)] == [None, None]  # passed, the module not called


def test_reload_starts_a_fresh_vm_for_the_next_stream(module: Path) -> None:
    host = started(module, failure_policy="reload")
    assert served(host) == "1"
    begun = host.initialize_http_context()  # begun on the VM that will die
    trap(host)
    assert served(host) == "1"
    assert served(host) == "2"
    assert host.get_logs(LogLevel.INFO) == ["vm start", "vm start"]
    host.call_on_request_headers(begun, OK, end_of_stream=True)
    reply = host.get_sent_local_response(begun)
    assert reply is not None and reply.status_code == 503
    host.complete_http_context(begun)


def test_proc_exit_is_the_same_error(module: Path) -> None:
    host = started(module)
    ctx = host.initialize_http_context()
    with pytest.raises(WasmTrapError, match=r"proc_exit\(3\)"):
        host.call_on_request_headers(ctx, EXIT, end_of_stream=True)
    assert served(host) == "local 503"


def test_an_exit_status_wasi_refuses_is_the_same_error(module: Path) -> None:
    """AssemblyScript's abort() calls proc_exit(255): wasmtime refuses the status itself."""
    host = started(module)
    ctx = host.initialize_http_context()
    with pytest.raises(WasmTrapError, match=r"invalid exit status"):
        host.call_on_request_headers(ctx, [*EXIT, ("f", "6")], end_of_stream=True)
    assert served(host) == "local 503"


def test_a_trapped_connection_is_closed_and_closed_fails_the_next(module: Path) -> None:
    host = started(module)
    ctx, action = host.initialize_connection()
    assert action == Action.CONTINUE
    with pytest.raises(WasmTrapError):
        host.call_on_downstream_data(ctx, b"trap")
    conn = host.get_connection(ctx)
    assert conn.downstream_closed and conn.upstream_closed
    nxt, action = host.initialize_connection()
    assert action == Action.PAUSE
    assert host.get_connection(nxt).downstream_closed
    assert host.call_on_downstream_data(nxt, b"hello") == Action.PAUSE
    assert host.get_connection(nxt).forwarded_downstream == b""


def test_open_connections_pass_after_a_trap(module: Path) -> None:
    host = started(module, failure_policy="open")
    ctx, _ = host.initialize_connection()
    with pytest.raises(WasmTrapError):
        host.call_on_downstream_data(ctx, b"trap")
    nxt, action = host.initialize_connection()
    assert action == Action.CONTINUE
    assert host.call_on_downstream_data(nxt, b"hello") == Action.CONTINUE
    assert host.get_connection(nxt).forwarded_downstream == b"hello"


def grows(host: HostEmulator, headers: list[tuple[str, str]]) -> bool:
    ctx = host.initialize_http_context()
    action = host.call_on_request_headers(ctx, headers, end_of_stream=True)
    host.complete_http_context(ctx)
    return action == Action.CONTINUE


def test_memory_limit_defaults_to_envoys_1_gib() -> None:
    assert DEFAULT_MEMORY_LIMIT == 1024 * 1024 * 1024


def test_memory_grows_to_the_limit_and_no_further(module: Path) -> None:
    host = started(module)
    assert grows(host, GROW_6_MIB)
    assert not grows(host, GROW_1_GIB)  # 1 page + 100 + 16,384 pages is past 1 GiB
    small = started(module, memory_limit=4 * 1024 * 1024)
    assert not grows(small, GROW_6_MIB)
    assert served(small) == "2"  # a refused grow is not a trap: the VM serves on


def test_bad_settings_are_refused(module: Path) -> None:
    with pytest.raises(ValueError, match="memory_limit must be a positive number of bytes, not 0"):
        HostEmulator.from_wasm(str(module), memory_limit=0)
    with pytest.raises(
        ValueError, match=r"failure_policy must be one of closed, open, reload, not 'later'"
    ):
        HostEmulator.from_wasm(str(module), failure_policy="later")


def test_reload_vm_natively_makes_fresh_contexts() -> None:
    made: list[RootContext] = []

    class Root(RootContext):
        def on_vm_start(self, vm_configuration_size: int) -> bool:
            made.append(self)
            return True

    host = HostEmulator(Root)
    assert host.start_vm() and host.start_plugin()
    host.reload_vm()
    assert len(made) == 2 and made[0] is not made[1]
    assert host.vm_failure is None
