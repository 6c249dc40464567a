"""Drop the functions of a fused module that nothing can reach.

Roots: exported functions and every function in an element segment (a
``call_indirect`` may reach any of them; the table is not analysed). A
module with ``ref.func`` in a global initialiser is left as it is. Everything reachable
from the roots through ``call`` / ``return_call`` / ``ref.func`` is kept; the
rest is removed and the kept functions renumbered (imports keep their
indices). Only the function, export, element and code sections change.
"""

from __future__ import annotations

import dataclasses

from ...wasmbin import (
    KIND_FUNC,
    SEC_CODE,
    SEC_ELEMENT,
    SEC_EXPORT,
    SEC_FUNCTION,
    Export,
    encode_exports,
    parse_module,
    rewrite,
    uleb,
)
from .core import IndexMaps, parse_core, rewrite_body, rewrite_const_expr

__all__ = ["PruneResult", "prune_functions"]


@dataclasses.dataclass
class PruneResult:
    """The pruned module and what went."""

    wasm: bytes
    removed: int
    code_bytes_saved: int


class _Record:
    """An index map that records what it is asked and changes nothing."""

    def __init__(self) -> None:
        self.seen: set[int] = set()

    def __getitem__(self, index: int) -> int:
        self.seen.add(index)
        return index

    def __len__(self) -> int:  # pragma: no cover - Sequence protocol only
        return 1 << 32


class _Identity:
    def __getitem__(self, index: int) -> int:
        return index

    def __len__(self) -> int:  # pragma: no cover
        return 1 << 32


def prune_functions(wasm: bytes) -> PruneResult:
    """Remove unreachable defined functions from `wasm` (see the module docstring)."""
    from .fuse import _encode_elem

    m = parse_core(wasm)
    n_imp = len(m.imported(KIND_FUNC))
    ident = _Identity()
    callees: list[set[int]] = []
    for body in m.codes:
        rec = _Record()
        rewrite_body(body, IndexMaps(rec, ident, ident, ident, 0, 0))  # type: ignore[arg-type]
        callees.append(rec.seen)
    roots = {idx for _name, kind, idx in m.exports if kind == KIND_FUNC}
    for seg in m.elems:
        if seg.funcs is not None:
            roots.update(seg.funcs)
        for expr in seg.exprs or ():
            rec = _Record()
            rewrite_const_expr(expr, rec, lambda g: b"\x23" + uleb(g))  # type: ignore[arg-type]
            roots.update(rec.seen)
    for _gt, init in m.globals:
        rec = _Record()
        rewrite_const_expr(init, rec, lambda g: b"\x23" + uleb(g))  # type: ignore[arg-type]
        if rec.seen:  # a funcref global: renumbering it is not implemented, keep everything
            return PruneResult(wasm, 0, 0)
    if m.start is not None:
        roots.add(m.start)
    live: set[int] = set()
    stack = list(roots)
    while stack:
        f = stack.pop()
        if f in live:
            continue
        live.add(f)
        if f >= n_imp:
            stack.extend(callees[f - n_imp])
    new_index: dict[int, int] = {i: i for i in range(n_imp)}
    kept = [i for i in range(n_imp, n_imp + len(m.funcs)) if i in live]
    for j, old in enumerate(kept):
        new_index[old] = n_imp + j
    removed = len(m.funcs) - len(kept)
    if not removed:
        return PruneResult(wasm, 0, 0)

    class _Map:
        def __getitem__(self, index: int) -> int:
            return new_index[index]

        def __len__(self) -> int:  # pragma: no cover
            return 1 << 32

    fmap = _Map()
    maps = IndexMaps(fmap, ident, ident, ident, 0, 0)  # type: ignore[arg-type]
    functions = uleb(len(kept)) + b"".join(uleb(m.funcs[f - n_imp]) for f in kept)
    code = bytearray(uleb(len(kept)))
    saved = 0
    for f in range(n_imp, n_imp + len(m.funcs)):
        body = m.codes[f - n_imp]
        if f not in live:
            saved += len(body)
            continue
        new_body = rewrite_body(body, maps)
        code += uleb(len(new_body)) + new_body
    exports = [
        Export(name, kind, new_index[idx] if kind == KIND_FUNC else idx)
        for name, kind, idx in m.exports
    ]
    replace: dict[int, bytes | None] = {
        SEC_FUNCTION: functions,
        SEC_CODE: bytes(code),
        SEC_EXPORT: encode_exports(exports),
    }
    if m.elems:

        def const(expr: bytes) -> bytes:
            return rewrite_const_expr(expr, fmap, lambda g: b"\x23" + uleb(g))  # type: ignore[arg-type]

        elems = bytearray(uleb(len(m.elems)))
        for seg in m.elems:
            elems += _encode_elem(seg, maps, const)
        replace[SEC_ELEMENT] = bytes(elems)
    return PruneResult(rewrite(parse_module(wasm), replace), removed, saved)
