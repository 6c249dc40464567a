"""Empty the functions nothing can call any more, after the snapshot.

Once the snapshot has dropped the ``_initialize`` and ``pw_init`` exports,
everything only they reached (interpreter start-up, configuration parsing,
the import system's bootstrap...) is dead code that V8 would still compile at
every Envoy start. This pass finds what is reachable from the exports, the
function table (every function whose address C code takes) and the start
function, following ``call`` and ``ref.func`` through the code, and replaces
every other body with a single ``unreachable``. Function indices do not
change, so nothing else in the module has to be rewritten.

It decodes every instruction to find the calls; if it meets an instruction it
does not know (SIMD, atomics), it leaves the module unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

from .wasmbin import (
    KIND_FUNC,
    SEC_CODE,
    SEC_ELEMENT,
    SEC_START,
    parse_module,
    read_sleb,
    read_uleb,
    rewrite,
    skip_const_expr,
    uleb,
)

__all__ = ["DceResult", "strip_unreachable"]

_VALTYPES = frozenset({0x7F, 0x7E, 0x7D, 0x7C, 0x7B, 0x70, 0x6F})
#: An empty body: no locals, `unreachable`, `end`.
_DEAD_BODY = b"\x00\x00\x0b"


class _Unsupported(Exception):
    pass


@dataclass(frozen=True)
class DceResult:
    """The module and what the pass did (``skipped`` says why it did nothing)."""

    wasm: bytes
    functions: int
    emptied: int
    code_before: int
    code_after: int
    skipped: str = ""


def _u(buf: bytes, p: int) -> int:
    return read_uleb(buf, p)[1]


def _body_refs(buf: bytes, pos: int, end: int) -> list[int]:
    """Function indices a body calls or takes the address of."""
    refs: list[int] = []
    n, p = read_uleb(buf, pos)
    for _ in range(n):  # local declarations: count, valtype
        p = _u(buf, p) + 1
    depth = 0
    while p < end:
        op = buf[p]
        p += 1
        if op in (0x02, 0x03, 0x04):  # block, loop, if + blocktype
            depth += 1
            b = buf[p]
            p = p + 1 if b == 0x40 or b in _VALTYPES else read_sleb(buf, p)[1]
        elif op == 0x0B:
            if depth == 0:
                if p != end:
                    raise _Unsupported("code after a function's final end")
                return refs
            depth -= 1
        elif op in (0x00, 0x01, 0x05, 0x0F, 0x1A, 0x1B, 0xD1) or 0x45 <= op <= 0xC4:
            pass
        elif op in (0x10, 0x12, 0xD2):  # call, return_call, ref.func
            idx, p = read_uleb(buf, p)
            refs.append(idx)
        elif op in (0x0C, 0x0D, 0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x3F, 0x40):
            p = _u(buf, p)
        elif op in (0x11, 0x13):  # call_indirect: type, table
            p = _u(buf, _u(buf, p))
        elif op == 0x0E:  # br_table
            count, p = read_uleb(buf, p)
            for _ in range(count + 1):
                p = _u(buf, p)
        elif op == 0x1C:  # select with types
            count, p = read_uleb(buf, p)
            p += count
        elif 0x28 <= op <= 0x3E:  # memarg
            align, p = read_uleb(buf, p)
            if align & 0x40:  # multi-memory index
                p = _u(buf, p)
            p = _u(buf, p)
        elif op in (0x41, 0x42):
            p = read_sleb(buf, p)[1]
        elif op == 0x43:
            p += 4
        elif op == 0x44:
            p += 8
        elif op == 0xD0:
            p += 1
        elif op == 0xFC:
            sub, p = read_uleb(buf, p)
            if sub <= 7:
                pass
            elif sub in (8, 10, 12, 14):
                p = _u(buf, _u(buf, p))
            elif sub in (9, 11, 13, 15, 16, 17):
                p = _u(buf, p)
            else:
                raise _Unsupported(f"0xfc {sub}")
        else:
            raise _Unsupported(f"opcode 0x{op:02x}")
    raise _Unsupported("a function body without its final end")


def _element_refs(buf: bytes, start: int) -> list[int]:
    """Every function an element segment puts in a table (or declares)."""
    refs: list[int] = []
    n, p = read_uleb(buf, start)
    for _ in range(n):
        flags, p = read_uleb(buf, p)
        if flags & 1 == 0 and flags & 2:  # active with an explicit table index
            p = _u(buf, p)
        if flags & 1 == 0:
            p = skip_const_expr(buf, p)  # offset
        if flags & 3:  # elemkind or reftype byte
            p += 1
        count, p = read_uleb(buf, p)
        for _ in range(count):
            if flags & 4:  # expressions: ref.func x / ref.null t
                if buf[p] == 0xD2:
                    idx, _ = read_uleb(buf, p + 1)
                    refs.append(idx)
                p = skip_const_expr(buf, p)
            else:
                idx, p = read_uleb(buf, p)
                refs.append(idx)
    return refs


def strip_unreachable(wasm: bytes) -> DceResult:
    """Replace the body of every unreachable function with ``unreachable``."""
    info = parse_module(wasm)
    code = info.section(SEC_CODE)
    if code is None:
        return DceResult(wasm, 0, 0, 0, 0, "no code section")
    n_imported = sum(1 for i in info.imports if i.kind == KIND_FUNC)
    count, p = read_uleb(wasm, code.start)
    bodies: list[tuple[int, int]] = []
    for _ in range(count):
        size, p = read_uleb(wasm, p)
        bodies.append((p, p + size))
        p += size

    roots = [e.index for e in info.exports if e.kind == KIND_FUNC]
    element = info.section(SEC_ELEMENT)
    start = info.section(SEC_START)
    try:
        if element is not None:
            roots += _element_refs(wasm, element.start)
        if start is not None:
            roots.append(read_uleb(wasm, start.start)[0])
        live: set[int] = set()
        todo = [r for r in roots if r >= n_imported]
        while todo:
            idx = todo.pop()
            if idx in live:
                continue
            live.add(idx)
            b, e = bodies[idx - n_imported]
            todo.extend(r for r in _body_refs(wasm, b, e) if r >= n_imported and r not in live)
    except (_Unsupported, IndexError) as exc:
        size = code.end - code.start
        return DceResult(wasm, count, 0, size, size, f"left unchanged: {exc}")

    out = bytearray(uleb(count))
    emptied = 0
    for i, (b, e) in enumerate(bodies):
        if i + n_imported in live:
            out += uleb(e - b) + wasm[b:e]
        else:
            out += uleb(len(_DEAD_BODY)) + _DEAD_BODY
            emptied += 1
    new = rewrite(info, {SEC_CODE: bytes(out)})
    return DceResult(new, count, emptied, code.end - code.start, len(out))
