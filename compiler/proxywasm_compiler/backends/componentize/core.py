"""A full decoder/encoder for the core modules inside a component, and a code rewriter.

:mod:`proxywasm_compiler.wasmbin` reads the sections the snapshotter needs;
fusing modules needs every index-bearing construct: types, imports with their
descriptors, functions, tables, memories, globals, exports, start, element
and data segments, and every instruction that names a function, global,
table, type, element or data segment (:func:`rewrite_body`). Instructions are
walked, never interpreted; bytes between remapped immediates are copied as
they are, so a body keeps its encoding except for the indices.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

from ...wasmbin import (
    KIND_FUNC,
    KIND_GLOBAL,
    KIND_MEMORY,
    KIND_TABLE,
    SEC_CODE,
    SEC_CUSTOM,
    SEC_DATA,
    SEC_DATACOUNT,
    SEC_ELEMENT,
    SEC_EXPORT,
    SEC_FUNCTION,
    SEC_GLOBAL,
    SEC_IMPORT,
    SEC_MEMORY,
    SEC_START,
    SEC_TABLE,
    SEC_TYPE,
    WasmFormatError,
    read_sleb,
    read_uleb,
    sections,
    skip_const_expr,
    skip_limits,
    skip_reftype,
    sleb,
    uleb,
)

__all__ = [
    "CoreImport",
    "CoreModule",
    "DataSegment",
    "ElemSegment",
    "FuncType",
    "IndexMaps",
    "parse_core",
    "rewrite_body",
    "rewrite_const_expr",
]

SEC_TAG = 13


@dataclasses.dataclass(frozen=True)
class FuncType:
    """A function type with plain value types (each one byte: i32, i64, f32, f64, v128...)."""

    params: tuple[int, ...]
    results: tuple[int, ...]

    def encode(self) -> bytes:
        """The type as it appears in a type section (``0x60 vec(params) vec(results)``)."""
        return (
            b"\x60"
            + uleb(len(self.params))
            + bytes(self.params)
            + uleb(len(self.results))
            + bytes(self.results)
        )


@dataclasses.dataclass(frozen=True)
class CoreImport:
    """One import; ``desc`` is the type index (functions) or the raw descriptor bytes."""

    module: str
    name: str
    kind: int
    type_index: int  # functions only, else -1
    desc: bytes  # tables, memories, globals: the descriptor as encoded


@dataclasses.dataclass
class ElemSegment:
    """An element segment, decoded to a mode, a table, an offset and its items."""

    mode: str  # "active" | "passive" | "declarative"
    table: int
    offset: bytes | None  # constant expression with its `end`
    reftype: int  # 0x70 funcref (elemkind 0x00 is read as funcref)
    funcs: list[int] | None  # items as function indices (flags 0-3)
    exprs: list[bytes] | None  # items as constant expressions (flags 4-7)


@dataclasses.dataclass
class DataSegment:
    """A data segment; ``offset`` is None for a passive one."""

    memory: int
    offset: bytes | None
    data: bytes


@dataclasses.dataclass
class CoreModule:
    """Every section of a core module that fusing touches, decoded."""

    types: list[FuncType]
    imports: list[CoreImport]
    funcs: list[int]  # type index of each defined function
    tables: list[bytes]
    memories: list[bytes]
    globals: list[tuple[bytes, bytes]]  # (globaltype bytes: valtype + mut, init expr)
    exports: list[tuple[str, int, int]]
    start: int | None
    elems: list[ElemSegment]
    codes: list[bytes]
    datas: list[DataSegment]

    def imported(self, kind: int) -> list[CoreImport]:
        """Imports of one kind, in index order."""
        return [i for i in self.imports if i.kind == kind]

    def export(self, name: str) -> tuple[int, int] | None:
        """(kind, index) of the export called `name`."""
        for n, k, i in self.exports:
            if n == name:
                return k, i
        return None

    def func_type(self, index: int) -> FuncType:
        """The type of function `index` (imports first, as in the index space)."""
        imported = self.imported(KIND_FUNC)
        if index < len(imported):
            return self.types[imported[index].type_index]
        return self.types[self.funcs[index - len(imported)]]


def _name(buf: bytes, pos: int) -> tuple[str, int]:
    n, pos = read_uleb(buf, pos)
    return buf[pos : pos + n].decode("utf-8"), pos + n


def parse_core(wasm: bytes) -> CoreModule:
    """Decode a core module (MVP + bulk memory + reference types, no GC or tags)."""
    m = CoreModule([], [], [], [], [], [], [], None, [], [], [])
    for s in sections(wasm):
        p = s.start
        sid = s.id
        if sid == SEC_CUSTOM:
            continue
        n, p = read_uleb(wasm, p)
        if sid == SEC_TYPE:
            for _ in range(n):
                if wasm[p] != 0x60:
                    raise WasmFormatError(f"unsupported type form 0x{wasm[p]:02x} (GC types?)")
                k, p = read_uleb(wasm, p + 1)
                params = tuple(wasm[p : p + k])
                p += k
                k, p = read_uleb(wasm, p)
                results = tuple(wasm[p : p + k])
                p += k
                if any(v in (0x63, 0x64) for v in params + results):
                    raise WasmFormatError("typed references in function types are not supported")
                m.types.append(FuncType(params, results))
        elif sid == SEC_IMPORT:
            for _ in range(n):
                mod, p = _name(wasm, p)
                name, p = _name(wasm, p)
                kind = wasm[p]
                p += 1
                start = p
                ti = -1
                if kind == KIND_FUNC:
                    ti, p = read_uleb(wasm, p)
                elif kind == KIND_TABLE:
                    p = skip_limits(wasm, skip_reftype(wasm, p))
                elif kind == KIND_MEMORY:
                    p = skip_limits(wasm, p)
                elif kind == KIND_GLOBAL:
                    p = skip_reftype(wasm, p) + 1
                else:
                    raise WasmFormatError(f"unsupported import kind {kind} ({mod}.{name})")
                m.imports.append(CoreImport(mod, name, kind, ti, wasm[start:p]))
        elif sid == SEC_FUNCTION:
            for _ in range(n):
                ti, p = read_uleb(wasm, p)
                m.funcs.append(ti)
        elif sid == SEC_TABLE:
            for _ in range(n):
                start = p
                if wasm[p] == 0x40:
                    raise WasmFormatError("tables with initialiser expressions are not supported")
                p = skip_limits(wasm, skip_reftype(wasm, p))
                m.tables.append(wasm[start:p])
        elif sid == SEC_MEMORY:
            for _ in range(n):
                start = p
                p = skip_limits(wasm, p)
                m.memories.append(wasm[start:p])
        elif sid == SEC_GLOBAL:
            for _ in range(n):
                start = p
                p = skip_reftype(wasm, p) + 1
                gt = wasm[start:p]
                e = skip_const_expr(wasm, p)
                m.globals.append((gt, wasm[p:e]))
                p = e
        elif sid == SEC_EXPORT:
            for _ in range(n):
                name, p = _name(wasm, p)
                kind = wasm[p]
                idx, p = read_uleb(wasm, p + 1)
                m.exports.append((name, kind, idx))
        elif sid == SEC_START:
            m.start = n
        elif sid == SEC_ELEMENT:
            for _ in range(n):
                seg, p = _parse_elem(wasm, p)
                m.elems.append(seg)
        elif sid == SEC_DATACOUNT:
            pass
        elif sid == SEC_CODE:
            for _ in range(n):
                size, p = read_uleb(wasm, p)
                m.codes.append(wasm[p : p + size])
                p += size
        elif sid == SEC_DATA:
            for _ in range(n):
                mode, p = read_uleb(wasm, p)
                mem = 0
                offset: bytes | None = None
                if mode == 2:
                    mem, p = read_uleb(wasm, p)
                if mode in (0, 2):
                    e = skip_const_expr(wasm, p)
                    offset = wasm[p:e]
                    p = e
                elif mode != 1:
                    raise WasmFormatError(f"unsupported data segment mode {mode}")
                size, p = read_uleb(wasm, p)
                m.datas.append(DataSegment(mem, offset, wasm[p : p + size]))
                p += size
        elif sid == SEC_TAG:
            raise WasmFormatError("modules with exception tags are not supported yet")
        else:
            raise WasmFormatError(f"unsupported section {sid}")
    return m


def _parse_elem(wasm: bytes, p: int) -> tuple[ElemSegment, int]:
    flags, p = read_uleb(wasm, p)
    table = 0
    offset = None
    mode = "active"
    if flags & 1:
        mode = "declarative" if flags & 2 else "passive"
    elif flags & 2:
        table, p = read_uleb(wasm, p)
    if not flags & 1:
        e = skip_const_expr(wasm, p)
        offset = wasm[p:e]
        p = e
    reftype = 0x70
    if flags & 4:
        if flags & 3:
            reftype = wasm[p]
            p = skip_reftype(wasm, p)
        k, p = read_uleb(wasm, p)
        exprs = []
        for _ in range(k):
            e = skip_const_expr(wasm, p)
            exprs.append(wasm[p:e])
            p = e
        return ElemSegment(mode, table, offset, reftype, None, exprs), p
    if flags & 3:
        if wasm[p] != 0x00:
            raise WasmFormatError(f"unsupported elemkind 0x{wasm[p]:02x}")
        p += 1
    k, p = read_uleb(wasm, p)
    funcs = []
    for _ in range(k):
        f, p = read_uleb(wasm, p)
        funcs.append(f)
    return ElemSegment(mode, table, offset, reftype, funcs, None), p


# --- rewriting -----------------------------------------------------------------------


@dataclasses.dataclass
class IndexMaps:
    """Old -> new index of each kind, for one module."""

    func: Sequence[int]
    glob: Sequence[int]
    table: Sequence[int]
    type: Sequence[int]
    elem_base: int
    data_base: int


# Immediate kinds of the one-byte opcodes.
_NONE, _U, _F, _G, _T, _BT, _CI, _TY, _MA, _BRT, _S, _F4, _F8, _SEL, _HT, _TRYT = range(16)
_OPS: dict[int, int] = {}
for _op in (0x00, 0x01, 0x05, 0x0B, 0x0F, 0x19, 0x0A, 0x1A, 0x1B, 0xD1, 0xD3, 0xD4):
    _OPS[_op] = _NONE
for _op in range(0x45, 0xC5):
    _OPS[_op] = _NONE
for _op in (0x02, 0x03, 0x04, 0x06):
    _OPS[_op] = _BT
for _op in (0x0C, 0x0D, 0x09, 0x18, 0x20, 0x21, 0x22, 0x3F, 0x40, 0xD5, 0xD6, 0x07, 0x08):
    _OPS[_op] = _U
for _op in range(0x28, 0x3F):
    _OPS[_op] = _MA
_OPS.update(
    {
        0x0E: _BRT,
        0x10: _F,
        0x12: _F,
        0xD2: _F,
        0x11: _CI,
        0x13: _CI,
        0x14: _TY,
        0x15: _TY,
        0x1C: _SEL,
        0x23: _G,
        0x24: _G,
        0x25: _T,
        0x26: _T,
        0x41: _S,
        0x42: _S,
        0x43: _F4,
        0x44: _F8,
        0xD0: _HT,
        0x1F: _TRYT,
    }
)
_ONE_BYTE_BLOCKTYPES = frozenset(
    [0x40, 0x7F, 0x7E, 0x7D, 0x7C, 0x7B, 0x70, 0x6F, *range(0x69, 0x74)]
)


def rewrite_body(body: bytes, maps: IndexMaps) -> bytes:
    """Re-encode one function body (locals + expression) with new indices."""
    out = bytearray()
    pos = 0
    n, pos = read_uleb(body, pos)
    for _ in range(n):
        _, pos = read_uleb(body, pos)
        pos = skip_reftype(body, pos)
    last = 0
    end = len(body)
    fmap, gmap, tmap, tymap = maps.func, maps.glob, maps.table, maps.type
    ops = _OPS

    def emit(a: int, b: int, encoded: bytes) -> None:
        nonlocal last
        out.extend(body[last:a])
        out.extend(encoded)
        last = b

    while pos < end:
        op = body[pos]
        pos += 1
        kind = ops.get(op, -1)
        if kind == _NONE:
            continue
        if kind == _U:
            while body[pos] & 0x80:
                pos += 1
            pos += 1
        elif kind == _MA:
            align, pos = read_uleb(body, pos)
            if align & 0x40:
                _, pos = read_uleb(body, pos)
            while body[pos] & 0x80:
                pos += 1
            pos += 1
        elif kind == _S:
            while body[pos] & 0x80:
                pos += 1
            pos += 1
        elif kind == _F:
            a = pos
            v, pos = read_uleb(body, pos)
            emit(a, pos, uleb(fmap[v]))
        elif kind == _G:
            a = pos
            v, pos = read_uleb(body, pos)
            emit(a, pos, uleb(gmap[v]))
        elif kind == _BT:
            pos = _blocktype(body, pos, emit, tymap)
        elif kind == _CI:
            a = pos
            v, pos = read_uleb(body, pos)
            emit(a, pos, uleb(tymap[v]))
            a = pos
            v, pos = read_uleb(body, pos)
            emit(a, pos, uleb(tmap[v]))
        elif kind == _T:
            a = pos
            v, pos = read_uleb(body, pos)
            emit(a, pos, uleb(tmap[v]))
        elif kind == _TY:
            a = pos
            v, pos = read_uleb(body, pos)
            emit(a, pos, uleb(tymap[v]))
        elif kind == _BRT:
            k, pos = read_uleb(body, pos)
            for _ in range(k + 1):
                _, pos = read_uleb(body, pos)
        elif kind == _F4:
            pos += 4
        elif kind == _F8:
            pos += 8
        elif kind == _SEL:
            k, pos = read_uleb(body, pos)
            for _ in range(k):
                pos = skip_reftype(body, pos)
        elif kind == _HT:
            _, pos = read_sleb(body, pos)
        elif kind == _TRYT:
            pos = _blocktype(body, pos, emit, tymap)
            k, pos = read_uleb(body, pos)
            for _ in range(k):
                ck = body[pos]
                pos += 1
                if ck in (0, 1):
                    raise WasmFormatError("try_table with tags is not supported yet")
                _, pos = read_uleb(body, pos)
        elif op == 0xFC:
            pos = _prefix_fc(body, pos, emit, maps)
        elif op == 0xFD:
            pos = _prefix_fd(body, pos)
        elif op == 0xFE:
            sub, pos = read_uleb(body, pos)
            if sub == 0x03:
                pos += 1
            else:
                align, pos = read_uleb(body, pos)
                if align & 0x40:
                    _, pos = read_uleb(body, pos)
                _, pos = read_uleb(body, pos)
        else:
            raise WasmFormatError(f"unsupported opcode 0x{op:02x} at {pos - 1}")
    out.extend(body[last:])
    return bytes(out)


def _blocktype(
    body: bytes, pos: int, emit: Callable[[int, int, bytes], None], tymap: Sequence[int]
) -> int:
    b = body[pos]
    if b in _ONE_BYTE_BLOCKTYPES:
        return pos + 1
    if b in (0x63, 0x64):
        _, pos = read_sleb(body, pos + 1)
        return pos
    a = pos
    v, pos = read_sleb(body, pos)
    emit(a, pos, sleb(tymap[v]))  # a type index, encoded as s33
    return pos


def _prefix_fc(
    body: bytes, pos: int, emit: Callable[[int, int, bytes], None], maps: IndexMaps
) -> int:
    sub, pos = read_uleb(body, pos)
    if sub <= 7:
        return pos
    if sub == 8:  # memory.init data mem
        a = pos
        v, pos = read_uleb(body, pos)
        emit(a, pos, uleb(v + maps.data_base))
        _, pos = read_uleb(body, pos)
    elif sub == 9:  # data.drop
        a = pos
        v, pos = read_uleb(body, pos)
        emit(a, pos, uleb(v + maps.data_base))
    elif sub == 10:  # memory.copy
        _, pos = read_uleb(body, pos)
        _, pos = read_uleb(body, pos)
    elif sub == 11:  # memory.fill
        _, pos = read_uleb(body, pos)
    elif sub == 12:  # table.init elem table
        a = pos
        v, pos = read_uleb(body, pos)
        emit(a, pos, uleb(v + maps.elem_base))
        a = pos
        v, pos = read_uleb(body, pos)
        emit(a, pos, uleb(maps.table[v]))
    elif sub == 13:  # elem.drop
        a = pos
        v, pos = read_uleb(body, pos)
        emit(a, pos, uleb(v + maps.elem_base))
    elif sub == 14:  # table.copy dst src
        for _ in range(2):
            a = pos
            v, pos = read_uleb(body, pos)
            emit(a, pos, uleb(maps.table[v]))
    elif sub in (15, 16, 17):
        a = pos
        v, pos = read_uleb(body, pos)
        emit(a, pos, uleb(maps.table[v]))
    else:
        raise WasmFormatError(f"unsupported 0xFC opcode {sub}")
    return pos


def _prefix_fd(body: bytes, pos: int) -> int:
    sub, pos = read_uleb(body, pos)
    if sub <= 11 or sub in (92, 93):  # loads/stores
        align, pos = read_uleb(body, pos)
        if align & 0x40:
            _, pos = read_uleb(body, pos)
        _, pos = read_uleb(body, pos)
    elif sub in (12, 13):  # v128.const, i8x16.shuffle
        pos += 16
    elif 21 <= sub <= 34:  # extract/replace lane
        pos += 1
    elif 84 <= sub <= 91:  # load/store lane
        align, pos = read_uleb(body, pos)
        if align & 0x40:
            _, pos = read_uleb(body, pos)
        _, pos = read_uleb(body, pos)
        pos += 1
    return pos


def rewrite_const_expr(expr: bytes, func: Sequence[int], glob: Callable[[int], bytes]) -> bytes:
    """Re-encode a constant expression: ``ref.func`` remapped, ``global.get`` replaced by
    what `glob` returns for the old index (a constant, or ``global.get`` of the new one)."""
    out = bytearray()
    pos = 0
    while True:
        op = expr[pos]
        start = pos
        pos += 1
        if op == 0x0B:
            out.append(op)
            return bytes(out)
        if op in (0x41, 0x42):
            _, pos = read_sleb(expr, pos)
            out += expr[start:pos]
        elif op == 0x43:
            pos += 4
            out += expr[start:pos]
        elif op == 0x44:
            pos += 8
            out += expr[start:pos]
        elif op == 0x23:
            v, pos = read_uleb(expr, pos)
            out += glob(v)
        elif op == 0xD2:
            v, pos = read_uleb(expr, pos)
            out += b"\xd2" + uleb(func[v])
        elif op == 0xD0:
            _, pos = read_sleb(expr, pos)
            out += expr[start:pos]
        elif op == 0xFD:
            pos += 17
            out += expr[start:pos]
        else:
            out.append(op)
