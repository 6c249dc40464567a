"""Fusing hand-made components into one core module, run under wasmtime and the harness."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import wasmtime
from proxywasm.testing import HostEmulator
from proxywasm.types import LogLevel
from proxywasm_compiler.backends.componentize.fuse import FuseError, resolve_imports
from proxywasm_compiler.wasmbin import parse_module

from .conftest import I32, component, fuse_proxy, instantiate

#: on_vm_start logs "hello" (from a data segment of the app module) and returns 1;
#: its post-return stores 7 at address 100.
HELLO = """
  (import "proxy-log" (func $log (param "log-level" u32) (param "message" (list u8)) (result u32)))
  (core func $log_lowered (canon lower (func $log) (memory $mem)))
  (core instance $root (export "proxy-log" (func $log_lowered)))
  (core module $app
    (import "env" "memory" (memory 1))
    (import "$root" "proxy-log" (func $log (param i32 i32 i32) (result i32)))
    (data (i32.const 32) "hello")
    (func (export "proxy-on-vm-start") (param i32 i32) (result i32)
      i32.const 2
      i32.const 32
      i32.const 5
      call $log
      drop
      i32.const 1)
    (func (export "cabi_post_proxy-on-vm-start") (param i32)
      i32.const 100
      i32.const 7
      i32.store))
  (core instance $app (instantiate $app
    (with "env" (instance $libc))
    (with "$root" (instance $root))))
  (func (export "proxy-on-vm-start") (param "root" u32) (param "size" u32) (result u32)
    (canon lift (core func $app "proxy-on-vm-start")
      (post-return (core func $app "cabi_post_proxy-on-vm-start"))))
"""


def test_hello_runs_in_the_harness(write_fused: Callable[[bytes], Path]) -> None:
    path = write_fused(component(HELLO))
    host = HostEmulator.from_wasm(str(path))
    assert host.start_vm()
    assert host.get_logs(LogLevel.INFO) == ["hello"]


def test_fused_module_shape() -> None:
    result = fuse_proxy(component(HELLO))
    assert result.modules == 2
    info = parse_module(result.wasm)
    assert [(i.module, i.name) for i in info.imports] == [("env", "proxy_log")]
    assert result.synthesised == {"synthesised": 1}  # proxy_log, wrapped to free its list
    names = {e.name for e in info.exports}
    assert names == {
        "memory",
        "proxy_on_vm_start",
        "proxy_abi_version_0_2_1",
        "proxy_on_memory_allocate",
    }
    # Both modules' data (libc's none, the app's "hello") lands in the one memory.
    assert [size for _, _, size in info.data_segments] == [5]


def test_export_wrapper_calls_post_return() -> None:
    wasm = fuse_proxy(component(HELLO)).wasm
    logged: list[bytes] = []

    def log(caller: Any, level: int, ptr: int, size: int) -> int:
        mem = caller.get("memory")
        logged.append(bytes(mem.read(caller, ptr, ptr + size)))
        return 0

    ty = wasmtime.FuncType([I32, I32, I32], [I32])
    store, inst = instantiate(wasm, {("env", "proxy_log"): (ty, log)})
    start = inst.exports(store)["proxy_on_vm_start"]
    memory = inst.exports(store)["memory"]
    assert isinstance(start, wasmtime.Func) and isinstance(memory, wasmtime.Memory)
    assert memory.read(store, 100, 104) == b"\0\0\0\0"
    assert start(store, 1, 0) == 1
    assert logged == [b"hello"]
    assert memory.read(store, 100, 104) == b"\x07\0\0\0"
    # The list argument is freed after the host call (componentize-py leaks it).
    assert memory.read(store, 4096, 4104) == (32).to_bytes(4, "little") + b"\x01\0\0\0"


def test_memory_allocate_uses_the_lowering_realloc() -> None:
    wasm = fuse_proxy(component(HELLO)).wasm
    ty = wasmtime.FuncType([I32, I32, I32], [I32])
    store, inst = instantiate(wasm, {("env", "proxy_log"): (ty, lambda *_: 0)})
    alloc = inst.exports(store)["proxy_on_memory_allocate"]
    assert isinstance(alloc, wasmtime.Func)
    first = alloc(store, 10)
    second = alloc(store, 10)
    assert first == 16384  # the libc bump allocator's heap start
    assert second == first + 16  # 10 rounded up to 8


#: Dynamic-linking shape: libc owns the table, a `memory_base`-like immutable
#: global and a GOT-like mutable one; the app imports all three, places its
#: function in the table at `base`, and calls it through the table.
GOT = """
  (core module $dl
    (table (export "__indirect_function_table") 8 funcref)
    (global (export "app:table_base") i32 (i32.const 5))
    (global (export "GOT.counter") (mut i32) (i32.const 40)))
  (core instance $dl (instantiate $dl))
  (core module $app
    (import "env" "memory" (memory 1))
    (import "env" "__indirect_function_table" (table 1 funcref))
    (import "env" "__table_base" (global $base i32))
    (import "GOT.mem" "counter" (global $got (mut i32)))
    (type $t (func (result i32)))
    (elem (global.get $base) func $two)
    (func $two (result i32) i32.const 2)
    (func (export "proxy-on-done") (param i32) (result i32)
      global.get $got
      i32.const 1
      i32.add
      global.set $got
      global.get $got
      global.get $base
      call_indirect (type $t)
      i32.add))
  (core instance $env
    (export "memory" (memory $mem))
    (export "__indirect_function_table" (table $dl "__indirect_function_table"))
    (export "__table_base" (global $dl "app:table_base")))
  (core instance $gotmem (export "counter" (global $dl "GOT.counter")))
  (core instance $app (instantiate $app
    (with "env" (instance $env))
    (with "GOT.mem" (instance $gotmem))))
  (func (export "proxy-on-done") (param "id" u32) (result u32)
    (canon lift (core func $app "proxy-on-done")))
"""


def test_tables_globals_and_element_offsets_are_linked() -> None:
    result = fuse_proxy(component(GOT))
    assert result.modules == 3
    store, inst = instantiate(result.wasm, {})
    done = inst.exports(store)["proxy_on_done"]
    assert isinstance(done, wasmtime.Func)
    assert done(store, 1) == 43  # GOT 40 + 1, plus 2 from table slot 5
    assert done(store, 1) == 44  # the mutable global is shared state


def test_resolution_lists_every_import() -> None:
    rows = resolve_imports(component(GOT))
    kinds = {(name, t.kind) for _mod, _imod, name, t, _ty in rows}
    assert kinds == {
        ("memory", "def"),
        ("__indirect_function_table", "def"),
        ("__table_base", "def"),
        ("counter", "def"),
    }


#: proxy-get-current-time-nanoseconds returns a record: the lowering passes a
#: return pointer and the fused shim points the host's `return_time` into it.
#: The app then writes the time's low byte as text to stdout (WASI 0.2 stream).
TIME_AND_STDOUT = """
  (type $time' (record (field "status" u32) (field "time" u64)))
  (import "time-result" (type $time (eq $time')))
  (import "proxy-get-current-time-nanoseconds" (func $now (result $time)))
  (import "wasi:cli/stdout@0.2.0" (instance $stdout
    (export "get-stdout" (func (result u32)))))
  (import "wasi:io/streams@0.2.0" (instance $streams
    (export "[method]output-stream.blocking-write-and-flush"
      (func (param "self" u32) (param "contents" (list u8)) (result (result (error u64)))))))
  (core func $now_lowered (canon lower (func $now) (memory $mem)))
  (alias export $stdout "get-stdout" (func $get_stdout))
  (core func $get_stdout_lowered (canon lower (func $get_stdout)))
  (alias export $streams "[method]output-stream.blocking-write-and-flush" (func $write))
  (core func $write_lowered (canon lower (func $write) (memory $mem)))
  (core instance $root (export "proxy-get-current-time-nanoseconds" (func $now_lowered)))
  (core instance $wasi_stdout (export "get-stdout" (func $get_stdout_lowered)))
  (core instance $wasi_streams
    (export "[method]output-stream.blocking-write-and-flush" (func $write_lowered)))
  (core module $app
    (import "env" "memory" (memory 1))
    (import "$root" "proxy-get-current-time-nanoseconds" (func $now (param i32)))
    (import "wasi:cli/stdout@0.2.0" "get-stdout" (func $stdout (result i32)))
    (import "wasi:io/streams@0.2.0" "[method]output-stream.blocking-write-and-flush"
      (func $write (param i32 i32 i32 i32)))
    (data (i32.const 48) "status=? time=???\\n")
    (func (export "proxy-on-vm-start") (param i32 i32) (result i32)
      ;; garbage where the record goes: the shim must zero it
      i32.const 200
      i64.const -1
      i64.store
      i32.const 208
      i64.const -1
      i64.store
      i32.const 200
      call $now
      ;; status digit
      i32.const 55
      i32.const 200
      i32.load
      i32.const 48
      i32.add
      i32.store8
      ;; time's last three decimal digits
      i32.const 62
      i32.const 208
      i64.load
      i64.const 100
      i64.div_u
      i64.const 10
      i64.rem_u
      i32.wrap_i64
      i32.const 48
      i32.add
      i32.store8
      i32.const 63
      i32.const 208
      i64.load
      i64.const 10
      i64.div_u
      i64.const 10
      i64.rem_u
      i32.wrap_i64
      i32.const 48
      i32.add
      i32.store8
      i32.const 64
      i32.const 208
      i64.load
      i64.const 10
      i64.rem_u
      i32.wrap_i64
      i32.const 48
      i32.add
      i32.store8
      call $stdout
      i32.const 48
      i32.const 18
      i32.const 300
      call $write
      ;; the result discriminant (0 = ok) is the return value
      i32.const 300
      i32.load8_u
      i32.eqz))
  (core instance $app (instantiate $app
    (with "env" (instance $libc))
    (with "$root" (instance $root))
    (with "wasi:cli/stdout@0.2.0" (instance $wasi_stdout))
    (with "wasi:io/streams@0.2.0" (instance $wasi_streams))))
  (func (export "proxy-on-vm-start") (param "root" u32) (param "size" u32) (result u32)
    (canon lift (core func $app "proxy-on-vm-start")))
"""


def test_record_shim_and_stdout_through_the_harness(write_fused: Callable[[bytes], Path]) -> None:
    path = write_fused(component(TIME_AND_STDOUT))
    host = HostEmulator.from_wasm(str(path))
    host.now_ns = 1_000_000_427
    assert host.start_vm()
    # Envoy (and the harness) turns stdout lines into INFO entries.
    assert host.get_logs(LogLevel.INFO) == ["status=0 time=427"]


def test_record_shim_imports() -> None:
    result = fuse_proxy(component(TIME_AND_STDOUT))
    assert result.imports == [
        ("env", "proxy_get_current_time_nanoseconds"),
        ("wasi_snapshot_preview1", "fd_write"),
    ]
    assert result.trapping == []


def test_unsupported_wasi_function_traps() -> None:
    body = """
      (import "wasi:sockets/tcp@0.2.0" (instance $tcp
        (export "connect" (func (param "fd" u32) (result u32)))))
      (alias export $tcp "connect" (func $connect))
      (core func $connect_lowered (canon lower (func $connect)))
      (core instance $t (export "connect" (func $connect_lowered)))
      (core module $app
        (import "tcp" "connect" (func $c (param i32) (result i32)))
        (func (export "proxy-on-tick") (param i32) local.get 0 call $c drop))
      (core instance $app (instantiate $app (with "tcp" (instance $t))))
      (func (export "proxy-on-tick") (param "id" u32)
        (canon lift (core func $app "proxy-on-tick")))
    """
    result = fuse_proxy(component(body))
    assert result.trapping == ["wasi:sockets/tcp@0.2.0#connect"]
    store, inst = instantiate(result.wasm, {})
    tick = inst.exports(store)["proxy_on_tick"]
    assert isinstance(tick, wasmtime.Func)
    with pytest.raises(wasmtime.Trap):
        tick(store, 1)


def test_resource_drop_is_a_no_op() -> None:
    body = """
      (type $r (resource (rep i32)))
      (core func $drop (canon resource.drop $r))
      (core instance $d (export "[resource-drop]r" (func $drop)))
      (core module $app
        (import "x" "[resource-drop]r" (func $drop (param i32)))
        (func (export "proxy-on-tick") (param i32) local.get 0 call $drop))
      (core instance $app (instantiate $app (with "x" (instance $d))))
      (func (export "proxy-on-tick") (param "id" u32)
        (canon lift (core func $app "proxy-on-tick")))
    """
    result = fuse_proxy(component(body))
    store, inst = instantiate(result.wasm, {})
    tick = inst.exports(store)["proxy_on_tick"]
    assert isinstance(tick, wasmtime.Func)
    tick(store, 3)


def test_a_start_function_is_refused() -> None:
    body = """
      (core module $app (func $s) (start $s))
      (core instance $app (instantiate $app))
    """
    with pytest.raises(FuseError, match="start function"):
        fuse_proxy(component(body))


def test_a_module_instantiated_twice_is_refused() -> None:
    body = """
      (core module $app (func (export "f")))
      (core instance $a (instantiate $app))
      (core instance $b (instantiate $app))
    """
    with pytest.raises(FuseError, match="instantiated twice"):
        fuse_proxy(component(body))


def test_an_import_outside_the_abi_is_refused() -> None:
    body = """
      (import "proxy-teleport" (func $t (param "x" u32) (result u32)))
      (core func $tl (canon lower (func $t)))
      (core instance $r (export "proxy-teleport" (func $tl)))
      (core module $app (import "$root" "proxy-teleport" (func (param i32) (result i32))))
      (core instance $app (instantiate $app (with "$root" (instance $r))))
    """
    with pytest.raises(FuseError, match="proxy-teleport"):
        fuse_proxy(component(body))
