"""The core-module decoder and the code rewriter of the fuser."""

from __future__ import annotations

import pytest
import wasmtime
from proxywasm_compiler.backends.componentize.core import (
    FuncType,
    IndexMaps,
    parse_core,
    rewrite_body,
    rewrite_const_expr,
)
from proxywasm_compiler.wasmbin import WasmFormatError

IDENTITY = range(1000)


def _maps(**kw: object) -> IndexMaps:
    base: dict[str, object] = {
        "func": IDENTITY,
        "glob": IDENTITY,
        "table": IDENTITY,
        "type": IDENTITY,
        "elem_base": 0,
        "data_base": 0,
    }
    base.update(kw)
    return IndexMaps(**base)  # type: ignore[arg-type]


def test_call_and_global_indices_are_renumbered() -> None:
    # no locals; call 1; global.get 0; drop; drop; end
    body = bytes([0, 0x10, 1, 0x23, 0, 0x1A, 0x1A, 0x0B])
    out = rewrite_body(body, _maps(func=[0, 300], glob=[7]))
    assert out == bytes([0, 0x10, 0xAC, 0x02, 0x23, 7, 0x1A, 0x1A, 0x0B])


def test_padded_leb_indices_are_re_encoded_short() -> None:
    # wasm-ld leaves 5-byte padded indices in relocatable code: call 1 padded
    body = bytes([0, 0x10, 0x81, 0x80, 0x80, 0x80, 0x00, 0x0B])
    assert rewrite_body(body, _maps()) == bytes([0, 0x10, 1, 0x0B])


def test_locals_and_other_immediates_are_copied() -> None:
    # 1 local group (2 x i64); i64.const -1; local.set 0; i32.const 5; br_table [0 0] 0;
    # f64.const; drop; end
    body = (
        bytes([1, 2, 0x7E, 0x42, 0x7F, 0x21, 0, 0x41, 5, 0x0E, 2, 0, 0, 0])
        + b"\x44"
        + bytes(8)
        + bytes([0x1A, 0x0B])
    )
    assert rewrite_body(body, _maps(func=[9], glob=[9])) == body


def test_call_indirect_block_types_and_segments() -> None:
    # block (type 1) ... end; call_indirect type 1 table 0; memory.init 2 0; data.drop 2;
    # table.init 3 0; elem.drop 3; memory.copy 0 0
    body = bytes(
        [0, 0x02, 0x01, 0x0B, 0x11, 1, 0]
        + [0xFC, 8, 2, 0, 0xFC, 9, 2, 0xFC, 12, 3, 0, 0xFC, 13, 3, 0xFC, 10, 0, 0, 0x0B]
    )
    maps = _maps(type=[0, 70], table=[4], elem_base=10, data_base=20)
    out = rewrite_body(body, maps)
    # type 70 as a block type is an s33: 0xC6 0x00 (bit 6 set needs a second byte)
    assert out == bytes(
        [0, 0x02, 0xC6, 0x00, 0x0B, 0x11, 70, 4]
        + [0xFC, 8, 22, 0, 0xFC, 9, 22, 0xFC, 12, 13, 4, 0xFC, 13, 13, 0xFC, 10, 0, 0, 0x0B]
    )


def test_simd_immediates_are_skipped() -> None:
    # v128.const (16 bytes) ; i8x16.extract_lane_s 3 ; drop ; end
    body = bytes([0, 0xFD, 12]) + bytes(range(16)) + bytes([0xFD, 21, 3, 0x1A, 0x0B])
    assert rewrite_body(body, _maps()) == body


def test_an_unknown_opcode_is_an_error() -> None:
    with pytest.raises(WasmFormatError, match="0xfb"):
        rewrite_body(bytes([0, 0xFB, 0, 0x0B]), _maps())


def test_const_expressions() -> None:
    expr = b"\x23\x02\x41\x04\x6a\x0b"  # global.get 2; i32.const 4; i32.add
    out = rewrite_const_expr(expr, IDENTITY, lambda old: b"\x41" + bytes([old * 10]))
    assert out == b"\x41\x14\x41\x04\x6a\x0b"
    assert rewrite_const_expr(b"\xd2\x01\x0b", [5, 6], lambda old: b"") == b"\xd2\x06\x0b"


def test_parse_core_reads_every_section() -> None:
    wasm = wasmtime.wat2wasm(
        """(module
          (import "env" "f" (func $f (param i32) (result i64)))
          (import "env" "t" (table 2 funcref))
          (import "env" "g" (global (mut i32)))
          (memory (export "memory") 2 10)
          (global $h i64 (i64.const 9))
          (func $a (export "a") (param i32) (result i64) local.get 0 call $f)
          (elem (i32.const 1) func $a)
          (data (i32.const 8) "abc")
          (data "passive"))"""
    )
    m = parse_core(bytes(wasm))
    assert [(i.module, i.name, i.kind) for i in m.imports] == [
        ("env", "f", 0),
        ("env", "t", 1),
        ("env", "g", 3),
    ]
    assert m.func_type(0) == m.func_type(1) == FuncType((0x7F,), (0x7E,))
    assert len(m.memories) == 1 and len(m.globals) == 1
    assert m.export("a") == (0, 1)
    assert m.elems[0].mode == "active" and m.elems[0].funcs == [1]
    assert [(d.offset is None, d.data) for d in m.datas] == [(False, b"abc"), (True, b"passive")]
    assert len(m.codes) == 1
