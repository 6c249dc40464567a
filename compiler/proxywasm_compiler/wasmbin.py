"""A small reader/writer for the wasm binary format (core modules).

Our own LEB128 and section walker: enough to list imports and exports, read
globals, memory limits and data segments, and re-emit a module with some
sections replaced.  Used by the snapshotter (which rewrites only the global,
export, memory, data, datacount and start sections, never code) and by the
link checks (imports, section sizes) without compiling the module.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence


class WasmFormatError(ValueError):
    """The bytes are not a module this reader understands."""


WASM_MAGIC = b"\0asm\x01\0\0\0"
PAGE = 65536

SEC_CUSTOM, SEC_TYPE, SEC_IMPORT, SEC_FUNCTION, SEC_TABLE, SEC_MEMORY = 0, 1, 2, 3, 4, 5
SEC_GLOBAL, SEC_EXPORT, SEC_START, SEC_ELEMENT, SEC_CODE, SEC_DATA, SEC_DATACOUNT = (
    6,
    7,
    8,
    9,
    10,
    11,
    12,
)

KIND_FUNC, KIND_TABLE, KIND_MEMORY, KIND_GLOBAL = 0, 1, 2, 3
VT_I32, VT_I64, VT_F32, VT_F64 = 0x7F, 0x7E, 0x7D, 0x7C

# --- LEB128 -----------------------------------------------------------------------


def read_uleb(buf: bytes | memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return result, pos


def read_sleb(buf: bytes | memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            if b & 0x40:
                result -= 1 << shift
            return result, pos


def uleb(n: int) -> bytes:
    if n < 0:
        raise ValueError(n)
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def sleb(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if (n == 0 and not b & 0x40) or (n == -1 and b & 0x40):
            out.append(b)
            return bytes(out)
        out.append(b | 0x80)


def _name(buf: bytes, pos: int) -> tuple[str, int]:
    n, pos = read_uleb(buf, pos)
    return buf[pos : pos + n].decode("utf-8"), pos + n


def encode_name(s: str) -> bytes:
    b = s.encode("utf-8")
    return uleb(len(b)) + b


# --- module structure ------------------------------------------------------------


@dataclasses.dataclass
class Section:
    id: int
    header: int  # offset of the section id byte
    start: int  # offset of the payload in the module
    end: int

    def payload(self, wasm: bytes) -> bytes:
        return wasm[self.start : self.end]


def sections(wasm: bytes) -> Iterator[Section]:
    if wasm[:8] != WASM_MAGIC:
        raise WasmFormatError("not a wasm core module (bad magic/version)")
    pos = 8
    while pos < len(wasm):
        sid = wasm[pos]
        size, start = read_uleb(wasm, pos + 1)
        end = start + size
        if end > len(wasm):
            raise WasmFormatError(f"truncated section {sid} at offset {pos}")
        yield Section(sid, pos, start, end)
        pos = end


def encode_section(sid: int, payload: bytes) -> bytes:
    return bytes([sid]) + uleb(len(payload)) + payload


def skip_limits(buf: bytes, pos: int) -> int:
    """Skip a limits record (flags, minimum, optional maximum)."""
    flags = buf[pos]
    _, pos = read_uleb(buf, pos + 1)
    if flags & 1:
        _, pos = read_uleb(buf, pos)
    return pos


def skip_reftype(buf: bytes, pos: int) -> int:
    # reftypes are one byte in MVP/reference-types; typed refs (0x63/0x64 ht) take more
    b = buf[pos]
    if b in (0x63, 0x64):
        _, pos = read_sleb(buf, pos + 1)
        return pos
    return pos + 1


def skip_const_expr(buf: bytes, pos: int) -> int:
    """Skip an init expression (constant instructions up to and including `end`)."""
    while True:
        op = buf[pos]
        pos += 1
        if op == 0x0B:
            return pos
        if op in (0x41, 0x42):  # i32.const, i64.const
            _, pos = read_sleb(buf, pos)
        elif op == 0x43:
            pos += 4
        elif op == 0x44:
            pos += 8
        elif op in (0x23, 0xD2):  # global.get, ref.func
            _, pos = read_uleb(buf, pos)
        elif op == 0xD0:  # ref.null heaptype
            _, pos = read_sleb(buf, pos)
        elif op == 0xFD and buf[pos] == 0x0C:  # v128.const
            pos += 17
        elif op in (0x6A, 0x6B, 0x6C, 0x7C, 0x7D, 0x7E):  # extended-const arithmetic
            pass
        else:
            raise WasmFormatError(
                f"unsupported opcode 0x{op:02x} in a constant expression at {pos - 1}"
            )


@dataclasses.dataclass
class GlobalDef:
    index: int  # in the global index space (imports first)
    valtype: int  # first byte of the value type
    type_bytes: bytes  # the value type as encoded
    mutable: bool
    init: bytes  # the init expression, with its `end`


@dataclasses.dataclass
class Export:
    name: str
    kind: int
    index: int


@dataclasses.dataclass
class Import:
    module: str
    name: str
    kind: int


@dataclasses.dataclass
class ModuleInfo:
    wasm: bytes
    sections: list[Section]
    imports: list[Import]
    imported_globals: int
    imported_memories: int
    imported_tables: int
    globals: list[GlobalDef]
    exports: list[Export]
    memory_limits: tuple[int, int, int | None] | None  # (flags, min, max) of a defined memory 0
    defined_tables: int
    data_segments: list[tuple[int, int, int]]  # (mode, offset or -1, size)

    def section(self, sid: int) -> Section | None:
        for s in self.sections:
            if s.id == sid:
                return s
        return None


def parse_module(wasm: bytes) -> ModuleInfo:
    secs = list(sections(wasm))
    imp_g = imp_m = imp_t = 0
    imports: list[Import] = []
    globals_: list[GlobalDef] = []
    exports: list[Export] = []
    mem: tuple[int, int, int | None] | None = None
    n_tables = 0
    data: list[tuple[int, int, int]] = []
    for s in secs:
        p = s.start
        if s.id == SEC_IMPORT:
            n, p = read_uleb(wasm, p)
            for _ in range(n):
                imod, p = _name(wasm, p)
                iname, p = _name(wasm, p)
                kind = wasm[p]
                p += 1
                imports.append(Import(imod, iname, kind))
                if kind == KIND_FUNC:
                    _, p = read_uleb(wasm, p)
                elif kind == KIND_TABLE:
                    p = skip_limits(wasm, skip_reftype(wasm, p))
                    imp_t += 1
                elif kind == KIND_MEMORY:
                    p = skip_limits(wasm, p)
                    imp_m += 1
                elif kind == KIND_GLOBAL:
                    p = skip_reftype(wasm, p) + 1
                    imp_g += 1
                else:
                    raise WasmFormatError(f"unsupported import kind {kind}")
        elif s.id == SEC_TABLE:
            n_tables, _ = read_uleb(wasm, p)
        elif s.id == SEC_MEMORY:
            n, p = read_uleb(wasm, p)
            if n > 1:
                raise WasmFormatError("multiple memories are not supported")
            if n == 1:
                flags = wasm[p]
                if flags & ~0x1:
                    raise WasmFormatError(
                        f"unsupported memory flags 0x{flags:x} (shared or 64-bit memory)"
                    )
                mn, p = read_uleb(wasm, p + 1)
                mx = None
                if flags & 1:
                    mx, p = read_uleb(wasm, p)
                mem = (flags, mn, mx)
        elif s.id == SEC_GLOBAL:
            n, p = read_uleb(wasm, p)
            for i in range(n):
                vt_start = p
                p = skip_reftype(wasm, p)
                valtype = wasm[vt_start]
                mut = wasm[p] == 1
                p += 1
                e = skip_const_expr(wasm, p)
                globals_.append(
                    GlobalDef(imp_g + i, valtype, wasm[vt_start : p - 1], mut, wasm[p:e])
                )
                p = e
        elif s.id == SEC_EXPORT:
            n, p = read_uleb(wasm, p)
            for _ in range(n):
                name, p = _name(wasm, p)
                kind = wasm[p]
                idx, p = read_uleb(wasm, p + 1)
                exports.append(Export(name, kind, idx))
        elif s.id == SEC_DATA:
            n, p = read_uleb(wasm, p)
            for _ in range(n):
                mode, p = read_uleb(wasm, p)
                offset = -1
                if mode in (0, 2):
                    if mode == 2:
                        memidx, p = read_uleb(wasm, p)
                        if memidx != 0:
                            raise WasmFormatError("data segments for memory != 0 are not supported")
                    if wasm[p] == 0x41 and wasm[p + 1] != 0x0B:
                        offset, _ = read_sleb(wasm, p + 1)
                    p = skip_const_expr(wasm, p)
                elif mode != 1:
                    raise WasmFormatError(f"unsupported data segment mode {mode}")
                size, p = read_uleb(wasm, p)
                data.append((mode, offset, size))
                p += size
    return ModuleInfo(
        wasm, secs, imports, imp_g, imp_m, imp_t, globals_, exports, mem, n_tables, data
    )


def encode_exports(exports: Sequence[Export]) -> bytes:
    out = bytearray(uleb(len(exports)))
    for e in exports:
        out += encode_name(e.name) + bytes([e.kind]) + uleb(e.index)
    return bytes(out)


def rewrite(info: ModuleInfo, replace: dict[int, bytes | None]) -> bytes:
    """Copy the module, replacing (bytes) or dropping (None) sections by id.

    Other sections, custom ones included, are copied byte for byte.  A
    replaced section that did not exist is inserted at its canonical place.
    """
    order = [
        SEC_TYPE,
        SEC_IMPORT,
        SEC_FUNCTION,
        SEC_TABLE,
        SEC_MEMORY,
        SEC_GLOBAL,
        SEC_EXPORT,
        SEC_START,
        SEC_ELEMENT,
        SEC_DATACOUNT,
        SEC_CODE,
        SEC_DATA,
    ]
    wasm = info.wasm
    out = bytearray(WASM_MAGIC)
    pending = {k: v for k, v in replace.items() if v is not None and info.section(k) is None}
    for s in info.sections:
        if s.id != SEC_CUSTOM:
            for sid in list(pending):
                if order.index(sid) < order.index(s.id):
                    out += encode_section(sid, pending.pop(sid))
        if s.id in replace:
            payload = replace[s.id]
            if payload is not None:
                out += encode_section(s.id, payload)
        else:
            out += wasm[s.header : s.end]
    for sid in sorted(pending, key=order.index):
        out += encode_section(sid, pending[sid])
    return bytes(out)


def section_sizes(wasm: bytes) -> dict[str, int]:
    """Bytes per section kind (payloads), plus 'total'; for reports and checks."""
    names = {
        SEC_CUSTOM: "custom",
        SEC_TYPE: "type",
        SEC_IMPORT: "import",
        SEC_FUNCTION: "function",
        SEC_TABLE: "table",
        SEC_MEMORY: "memory",
        SEC_GLOBAL: "global",
        SEC_EXPORT: "export",
        SEC_START: "start",
        SEC_ELEMENT: "element",
        SEC_CODE: "code",
        SEC_DATA: "data",
        SEC_DATACOUNT: "datacount",
    }
    out: dict[str, int] = {}
    for s in sections(wasm):
        key = names.get(s.id, f"section{s.id}")
        out[key] = out.get(key, 0) + s.end - s.start
    out["total"] = len(wasm)
    return out
