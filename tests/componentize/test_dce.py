"""Dropping unreachable functions from a fused module."""

from __future__ import annotations

import wasmtime
from proxywasm_compiler.backends.componentize.dce import prune_functions
from proxywasm_compiler.wasmbin import parse_module

MODULE = """(module
  (import "env" "h" (func $h (result i32)))
  (table 2 funcref)
  (elem (i32.const 0) $via_table)
  (type $t (func (result i32)))
  (func $dead (result i32) i32.const 99)
  (func $dead_too (result i32) call $dead)
  (func $helper (result i32) call $h i32.const 1 i32.add)
  (func $via_table (result i32) i32.const 40)
  (func (export "run") (result i32)
    call $helper
    i32.const 0
    call_indirect (type $t)
    i32.add))"""


def test_unreachable_functions_go_and_the_rest_still_runs() -> None:
    wasm = bytes(wasmtime.wat2wasm(MODULE))
    result = prune_functions(wasm)
    assert result.removed == 2
    assert result.code_bytes_saved > 0
    info = parse_module(result.wasm)
    assert [e.name for e in info.exports] == ["run"]
    engine = wasmtime.Engine()
    store = wasmtime.Store(engine)
    linker = wasmtime.Linker(engine)
    linker.define_func("env", "h", wasmtime.FuncType([], [wasmtime.ValType.i32()]), lambda: 1)
    run = linker.instantiate(store, wasmtime.Module(engine, result.wasm)).exports(store)["run"]
    assert isinstance(run, wasmtime.Func)
    assert run(store) == 42  # helper (1 + 1) + the table's function (40)


def test_nothing_to_drop_leaves_the_bytes_alone() -> None:
    wasm = bytes(wasmtime.wat2wasm('(module (func (export "f")))'))
    assert prune_functions(wasm).wasm == wasm
