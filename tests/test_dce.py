"""The post-snapshot pass that empties unreachable functions."""

from __future__ import annotations

import wasmtime
from proxywasm_compiler.dce import strip_unreachable

WAT = """
(module
  (type $t (func (result i32)))
  (table 2 funcref)
  (elem (i32.const 0) $in_table)
  (func $helper (result i32) i32.const 40)
  (func $in_table (result i32) i32.const 2)
  (func $dead (result i32) call $dead_callee)
  (func $dead_callee (result i32) i32.const 7)
  (func (export "f") (result i32)
    (block (result i32)
      call $helper
      i32.const 0
      call_indirect (type $t)
      i32.add)
    (if (result i32) (i32.const 1) (then (i32.const 0)) (else (i32.const 1)))
    i32.add)
)
"""


def _call(wasm: bytes, name: str) -> int:
    engine = wasmtime.Engine()
    store = wasmtime.Store(engine)
    instance = wasmtime.Instance(store, wasmtime.Module(engine, wasm), [])
    func = instance.exports(store)[name]
    assert isinstance(func, wasmtime.Func)
    result = func(store)
    assert isinstance(result, int)
    return result


def test_unreachable_functions_are_emptied_and_the_rest_still_runs() -> None:
    wasm = wasmtime.wat2wasm(WAT)
    result = strip_unreachable(bytes(wasm))
    assert result.skipped == ""
    assert result.functions == 5
    assert result.emptied == 2  # $dead and $dead_callee; $in_table is reachable through the table
    assert result.code_after < result.code_before
    assert _call(result.wasm, "f") == 42


def test_unknown_instructions_leave_the_module_unchanged() -> None:
    wat = '(module (func (export "f") (result i32) v128.const i32x4 1 2 3 4 i32x4.extract_lane 0) (func $d))'
    wasm = bytes(wasmtime.wat2wasm(wat))
    result = strip_unreachable(wasm)
    assert result.wasm == wasm and result.emptied == 0
    assert "left unchanged" in result.skipped
