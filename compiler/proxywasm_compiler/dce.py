"""Keep the module's code to what can still run: the trim after the snapshot, and
the method pruning before it.

After the snapshot (:func:`strip_unreachable`, the build's "trim" stage):
once ``_initialize`` and ``pw_init`` are gone, everything only they reached
(interpreter start-up, configuration, the import system's bootstrap...) is
dead code that V8 would still compile at every Envoy start. Reachable: the
exports, the start function, the function table (every function whose
address C code takes) and what they call (``call``, ``ref.func``); every
other body becomes a single ``unreachable``. Function indices do not change.
Then:

* stubs (:data:`STUBS`): libpython functions a module never runs after the
  snapshot (finalisation, sub-interpreters...) call :data:`TRAP_FUNCTION`
  instead (a message, then a trap), so what only they reach goes too;
* identical code folding: functions with the same code once their calls are
  followed to the function kept become one (:func:`_fold_identical`).

Before the snapshot (:func:`prune_methods`, called by ``link.build_module``
with the linker's relocations): built-in methods no Python code of the module
looks up get a replacement that raises NotImplementedError, and leave the table.

Each rule has a switch (:data:`TRIM_ENV`). The pass decodes every
instruction; if it meets one it does not know (SIMD, atomics), it leaves the
module unchanged.
"""

from __future__ import annotations

import ast
import bisect
import dataclasses
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar

from .wasmbin import (
    KIND_FUNC,
    KIND_TABLE,
    SEC_CODE,
    SEC_CUSTOM,
    SEC_DATA,
    SEC_ELEMENT,
    SEC_EXPORT,
    SEC_START,
    ModuleInfo,
    encode_exports,
    parse_module,
    read_sleb,
    read_uleb,
    rewrite,
    skip_const_expr,
    uleb,
)

__all__ = [
    "STUBS",
    "TRAP_FUNCTION",
    "TRIM_ENV",
    "DceResult",
    "TrimOptions",
    "function_names",
    "strip_unreachable",
    "trim_options",
]

#: ``PROXYWASM_TRIM``: comma-separated switches for what the build drops.
#: ``safe`` turns off every rule that drops code a filter could in principle
#: reach (the stubs and the method pruning; what stays is what nothing can
#: call); ``nostubs``, ``noprune``, ``nofold``, ``nocompact`` turn off one
#: rule each (to measure it; ``nocompact`` empties dead functions in place,
#: keeping every function index, as ``benchmarks/code_profile.py`` needs); ``slots`` also keeps a table entry only when its address is
#: stored in memory or used by reachable code (off by default: after the
#: snapshot nearly every slot is stored somewhere, it buys ~0).
TRIM_ENV = "PROXYWASM_TRIM"

#: Functions libpython links in that a proxy-wasm module never runs after the
#: snapshot, and why; the trim pass replaces each body with a call to
#: :data:`TRAP_FUNCTION` (a message on stderr, then a trap), so what only they
#: reach goes too. Measured on examples/add_header: 69.6 KB of code.
STUBS: dict[str, str] = {
    # Reached only through Py_Exit (a SystemExit escaping to PyErr_Print: the
    # dispatcher's barrier catches SystemExit) and Py_Finalize: a VM is never
    # finalised, Envoy drops the instance. Owns finalize_interp_clear and
    # _Py_Deepfreeze_Fini (41 KB alone).
    "Py_FinalizeEx": "interpreter finalisation",
    # Reached only when an interpreter ID object dies; no sub-interpreter can
    # be created (no _xxsubinterpreters in the module).
    "Py_EndInterpreter": "ending a sub-interpreter",
    # importlib's ExtensionFileLoader: a C extension loaded from a file. A
    # module has no file system and no dynamic loader (3.7 KB).
    "_imp_create_dynamic": "loading a C extension from a file",
    "_imp_exec_dynamic": "loading a C extension from a file",
    # The init / exec functions of the C modules every start-up imports
    # (importlib's bootstrap, zipimport, io): done by the snapshot, they run
    # again only for a module deleted from sys.modules and imported anew
    # (10 KB, posixmodule_exec 6.2 KB of it).
    "posixmodule_exec": "re-initialising posix",
    "time_exec": "re-initialising time",
    "thread_module_exec": "re-initialising _thread",
    "weakref_exec": "re-initialising _weakref",
    "marshal_module_exec": "re-initialising marshal",
    "PyInit__io": "re-initialising _io",
    "_PyWarnings_Init": "re-initialising _warnings",
}
#: The function a stub calls (runtime.c): writes one line to stderr and traps.
TRAP_FUNCTION = "pw_trimmed"
#: A stub's body: no locals, ``call TRAP_FUNCTION``, ``unreachable``, ``end``.
_STUB_BODY = b"\x00\x10{}\x00\x0b"

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
    #: How the table was treated (see :func:`strip_unreachable`).
    table_rule: str = ""
    #: Indices (imports first, as in the module given to the pass) of the functions kept.
    live: frozenset[int] = frozenset()
    #: The functions of :data:`STUBS` replaced by a call to the trap function.
    stubbed: tuple[str, ...] = ()
    #: Functions found identical to another one (same type, same code once
    #: their calls are followed to the function kept): a forwarding call or gone.
    merged: int = 0
    #: Dead functions taken out of the module (0: left in place, emptied);
    #: then every function index after them changed.
    removed: int = 0


def _u(buf: bytes, p: int) -> int:
    return read_uleb(buf, p)[1]


class _Body:
    """What one function body refers to: callees and integer constants."""

    __slots__ = ("call_sites", "calls", "consts", "index_sites", "table_writes")

    def __init__(self) -> None:
        self.calls: list[int] = []
        #: (start, end, callee) of the immediate of each call / return_call.
        self.call_sites: list[tuple[int, int, int]] = []
        #: The same for every function index in the code (calls and ref.func).
        self.index_sites: list[tuple[int, int, int]] = []
        #: i32.const values, and both 32-bit halves of i64.const values: a
        #: function pointer is a table slot, materialised as an i32.const.
        self.consts: list[int] = []
        #: Instructions that change a table (table.set/init/copy/grow/fill).
        self.table_writes = False


#: Parsed bodies of the module being trimmed, by (start, end) in its bytes.
_Cache = dict[tuple[int, int], "_Body"]


def _parsed(buf: bytes, pos: int, end: int, cache: _Cache) -> _Body:
    """:func:`_body_refs`, once per body of ``buf`` (the passes all need it)."""
    body = cache.get((pos, end))
    if body is None:
        body = cache[pos, end] = _body_refs(buf, pos, end)
    return body


def _body_refs(buf: bytes, pos: int, end: int) -> _Body:
    """Function indices a body calls or takes the address of, and its constants."""
    out = _Body()
    refs = out.calls
    consts = out.consts
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
                return out
            depth -= 1
        elif op in (0x00, 0x01, 0x05, 0x0F, 0x1A, 0x1B, 0xD1) or 0x45 <= op <= 0xC4:
            pass
        elif op in (0x10, 0x12, 0xD2):  # call, return_call, ref.func
            start = p
            idx, p = read_uleb(buf, p)
            refs.append(idx)
            out.index_sites.append((start, p, idx))
            if op != 0xD2:
                out.call_sites.append((start, p, idx))
        elif op in (0x0C, 0x0D, 0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x3F, 0x40):
            p = _u(buf, p)
        elif op == 0x26:  # table.set
            out.table_writes = True
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
        elif op == 0x41:
            v, p = read_sleb(buf, p)
            consts.append(v & 0xFFFFFFFF)
        elif op == 0x42:
            v, p = read_sleb(buf, p)
            consts.append(v & 0xFFFFFFFF)
            consts.append((v >> 32) & 0xFFFFFFFF)
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
                out.table_writes |= sub in (12, 14)
            elif sub in (9, 11, 13, 15, 16, 17):
                p = _u(buf, p)
                out.table_writes |= sub in (15, 17)
            else:
                raise _Unsupported(f"0xfc {sub}")
        else:
            raise _Unsupported(f"opcode 0x{op:02x}")
    raise _Unsupported("a function body without its final end")


@dataclass
class _Elements:
    """The element section: which function each table slot holds, and the rest."""

    #: slot -> function, for active segments of table 0 at a constant offset.
    slots: dict[int, int]
    #: Functions of every other segment (passive, declarative, other tables,
    #: computed offsets): always kept, they can be reached in ways not followed here.
    other: list[int]


def _element_refs(buf: bytes, start: int) -> _Elements:
    """Every function an element segment puts in a table (or declares)."""
    elems = _Elements({}, [])
    n, p = read_uleb(buf, start)
    for _ in range(n):
        flags, p = read_uleb(buf, p)
        table = 0
        offset: int | None = None
        if flags & 1 == 0 and flags & 2:  # active with an explicit table index
            table, p = read_uleb(buf, p)
        if flags & 1 == 0:  # active: the offset
            if buf[p] == 0x41 and buf[read_sleb(buf, p + 1)[1]] == 0x0B:
                offset = read_sleb(buf, p + 1)[0]
            p = skip_const_expr(buf, p)
        if flags & 3:  # elemkind or reftype byte
            p += 1
        count, p = read_uleb(buf, p)
        funcs: list[int | None] = []
        for _ in range(count):
            if flags & 4:  # expressions: ref.func x / ref.null t
                if buf[p] == 0xD2:
                    funcs.append(read_uleb(buf, p + 1)[0])
                else:
                    funcs.append(None)
                p = skip_const_expr(buf, p)
            else:
                idx, p = read_uleb(buf, p)
                funcs.append(idx)
        if offset is not None and table == 0:
            for i, f in enumerate(funcs):
                if f is None:
                    elems.slots.pop(offset + i, None)
                else:
                    elems.slots[offset + i] = f
        else:
            elems.other += [f for f in funcs if f is not None]
    return elems


def _memory_words(buf: bytes, info: ModuleInfo) -> set[int]:
    """Every 32-bit value stored at a 4-aligned address of the initial memory.

    After the snapshot this is the whole live heap: a function pointer that
    C code (or CPython's own tables) keeps anywhere in memory is one of these.
    Passive segments are scanned at every alignment (where they land is not known).
    """
    words: set[int] = set()
    sec = info.section(SEC_DATA)
    if sec is None:
        return words
    n, p = read_uleb(buf, sec.start)
    for _ in range(n):
        mode, p = read_uleb(buf, p)
        offset: int | None = None
        if mode in (0, 2):
            if mode == 2:
                p = _u(buf, p)
            if buf[p] == 0x41:
                offset = read_sleb(buf, p + 1)[0] & 0xFFFFFFFF
            p = skip_const_expr(buf, p)
        size, p = read_uleb(buf, p)
        seg = buf[p : p + size]
        p += size
        shifts = [(-offset) % 4] if offset is not None else [0, 1, 2, 3]
        for a in shifts:
            part = seg[a : a + (len(seg) - a) // 4 * 4]
            words.update(memoryview(part).cast("I"))
    return words


def _global_words(info: ModuleInfo) -> set[int]:
    """The constant initial values of the globals (the snapshot stores state there too)."""
    words: set[int] = set()
    for g in info.globals:
        if g.init[:1] in (b"\x41", b"\x42"):
            v = read_sleb(g.init, 1)[0]
            words |= {v & 0xFFFFFFFF, (v >> 32) & 0xFFFFFFFF}
    return words


@dataclass(frozen=True)
class TrimOptions:
    """Which rules of the trim are on (see :data:`TRIM_ENV`)."""

    keep_table: bool = True
    stubs: bool = True
    prune: bool = True
    fold: bool = True
    compact: bool = True


def trim_options() -> TrimOptions:
    """The rules ``PROXYWASM_TRIM`` asks for (see :data:`TRIM_ENV`)."""
    words = {w.strip().lower() for w in os.environ.get(TRIM_ENV, "").split(",")}
    safe = "safe" in words
    return TrimOptions(
        keep_table="slots" not in words,
        stubs=not (safe or "nostubs" in words),
        prune=not (safe or "noprune" in words),
        fold="nofold" not in words,
        compact="nocompact" not in words,
    )


def function_names(buf: bytes, info: ModuleInfo) -> dict[int, str]:
    """Function index -> name, from the ``name`` custom section (empty without one)."""
    names: dict[int, str] = {}
    for sec in info.sections:
        if sec.id != SEC_CUSTOM:
            continue
        n, p = read_uleb(buf, sec.start)
        if buf[p : p + n] != b"name":
            continue
        p += n
        while p < sec.end:
            sub = buf[p]
            size, p = read_uleb(buf, p + 1)
            if sub == 1:  # function names
                count, q = read_uleb(buf, p)
                for _ in range(count):
                    idx, q = read_uleb(buf, q)
                    length, q = read_uleb(buf, q)
                    names[idx] = buf[q : q + length].decode("utf-8", "replace")
                    q += length
            p += size
    return names


#: Custom sections the linker writes unless told --strip-all; a build ships none.
_LINKER_CUSTOM = frozenset({b"name", b"producers", b"target_features"})


def _custom_sections(
    buf: bytes, info: ModuleInfo, names: frozenset[bytes]
) -> list[tuple[int, int]]:
    """(start, end) of the custom sections called one of ``names``, headers included."""
    out = []
    for sec in info.sections:
        if sec.id == SEC_CUSTOM:
            n, p = read_uleb(buf, sec.start)
            if buf[p : p + n] in names:
                out.append((sec.header, sec.end))
    return out


def _drop_names(wasm: bytes) -> bytes:
    """The module without the linker's name, producers and target_features sections."""
    return _drop_custom(wasm, _LINKER_CUSTOM)


def _drop_custom(wasm: bytes, names: frozenset[bytes]) -> bytes:
    """The module without the custom sections called one of ``names``."""
    info = parse_module(wasm)
    spans = _custom_sections(wasm, info, names)
    if not spans:
        return wasm
    out = bytearray()
    pos = 0
    for start, end in spans:
        out += wasm[pos:start]
        pos = end
    return bytes(out + wasm[pos:])


def strip_unreachable(
    wasm: bytes,
    *,
    keep_table: bool | None = None,
    stubs: bool | None = None,
    strip_names: bool = True,
    fold: bool | None = None,
    compact: bool | None = None,
) -> DceResult:
    """Replace the body of every unreachable function with ``unreachable``.

    Reachable: the exports, the start function, every function in the table
    (a C function pointer may be called), and what they call. ``stubs``: the
    functions of :data:`STUBS` (found by name) get a body that calls
    :data:`TRAP_FUNCTION`, so what only they reach goes. ``keep_table=False``:
    a table entry counts only if its slot number is stored in memory or a
    global, or is a constant of reachable code; it falls back to the whole
    table when the module shares its table or reachable code writes one.
    Left at None, these and ``fold`` follow ``PROXYWASM_TRIM`` (:func:`trim_options`).
    ``fold``: identical functions are folded (:func:`_fold_identical`).
    ``compact``: dead functions are taken out and the rest renumbered
    (:func:`_compact`) instead of emptied in place; the name section then no
    longer matches, so it is dropped whatever ``strip_names`` says.
    ``strip_names`` drops the name section (it is read first), and the
    linker's producers and target_features sections, unless the pass
    did nothing (``skipped``: the module is returned unchanged).
    """
    env = trim_options()
    keep_table = env.keep_table if keep_table is None else keep_table
    stubs = env.stubs if stubs is None else stubs
    fold = env.fold if fold is None else fold
    compact = env.compact if compact is None else compact
    result = _strip(wasm, keep_table, stubs, fold, compact)
    if (strip_names or result.removed) and not result.skipped:
        result = dataclasses.replace(result, wasm=_drop_names(result.wasm))
    return result


def _strip(wasm: bytes, keep_table: bool, stubs: bool, fold: bool, compact: bool) -> DceResult:
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

    cache: _Cache = {}
    exports = [e.index for e in info.exports if e.kind == KIND_FUNC]
    stubbed: dict[int, str] = {}
    trap = -1
    if stubs:
        by_name = {v: k for k, v in function_names(wasm, info).items()}
        trap = by_name.get(TRAP_FUNCTION, -1)
        if trap >= n_imported:
            stubbed = {by_name[n]: n for n in STUBS if by_name.get(n, -1) >= n_imported}
            if stubbed:
                exports.append(trap)
    element = info.section(SEC_ELEMENT)
    start = info.section(SEC_START)
    table_rule = "every table entry kept"
    try:
        elems = _element_refs(wasm, element.start) if element is not None else _Elements({}, [])
        roots = exports + elems.other
        if start is not None:
            roots.append(read_uleb(wasm, start.start)[0])
        shared_table = info.imported_tables > 0 or any(e.kind == KIND_TABLE for e in info.exports)
        if keep_table or shared_table:
            live, _ = _reach(
                wasm,
                bodies,
                n_imported,
                roots + list(elems.slots.values()),
                {},
                set(),
                stubbed,
                cache,
            )
            if shared_table and not keep_table:
                table_rule = "every table entry kept (the table is imported or exported)"
        else:
            words = _memory_words(wasm, info) | _global_words(info)
            live, writes = _reach(
                wasm, bodies, n_imported, roots, elems.slots, words, stubbed, cache
            )
            table_rule = "table entries kept when their address is stored or used"
            if writes:
                table_rule = "every table entry kept (reachable code writes a table)"
                live, _ = _reach(
                    wasm,
                    bodies,
                    n_imported,
                    roots + list(elems.slots.values()),
                    {},
                    set(),
                    stubbed,
                    cache,
                )
    except (_Unsupported, IndexError) as exc:
        size = code.end - code.start
        return DceResult(wasm, count, 0, size, size, f"left unchanged: {exc}")

    merged: dict[int, int] = {}
    new_bodies: dict[int, bytes] = {}
    new_element: bytes | None = None
    if fold:
        try:
            merged, new_bodies = _fold_identical(
                wasm, info, bodies, n_imported, live, stubbed, cache
            )
        except (_Unsupported, IndexError):
            merged, new_bodies = {}, {}
        if merged:
            # Table entries of a merged function point at its twin: the slot
            # number (the C function pointer) stays its own, so pointers
            # still compare as before. A merged function nothing names any
            # more (no export, no other segment) is dead: every call and
            # every table entry now goes to its twin.
            table_merged = {s: merged[f] for s, f in elems.slots.items() if f in merged}
            named = set(exports) | set(elems.other)
            if start is not None:
                named.add(read_uleb(wasm, start.start)[0])
            try:
                if table_merged and element is not None:
                    new_element = _repoint_elements(wasm, element.start, table_merged)
            except _Unsupported:
                named |= set(elems.slots.values())  # forwarders keep the entries working
            live = frozenset(i for i in live if i not in merged or i in named)

    stub_body = _STUB_BODY.replace(b"{}", uleb(trap)) if stubbed else b""
    final: list[bytes | None] = []  # None: dead
    unchanged: list[tuple[int, int] | None] = []  # where a body copied as it was came from
    for i, (b, e) in enumerate(bodies):
        idx = i + n_imported
        copied = idx in live and idx not in stubbed and idx not in new_bodies
        unchanged.append((b, e) if copied else None)
        if idx in stubbed and idx in live:
            final.append(stub_body)
        elif idx in live:
            final.append(new_bodies.get(idx, wasm[b:e]))
        else:
            final.append(None)
    emptied = sum(1 for body in final if body is None)
    sections: dict[int, bytes | None] = {}
    compacted = False
    if compact and emptied:
        try:
            sections = _compact(wasm, info, n_imported, final, new_element, unchanged, cache)
            compacted = True
        except (_Unsupported, IndexError, KeyError):  # KeyError: a dead function in the table
            sections = {}
    if not compacted:
        out = bytearray(uleb(count))
        for body in final:
            body = _DEAD_BODY if body is None else body
            out += uleb(len(body)) + body
        sections = {SEC_CODE: bytes(out)}
        if new_element is not None:
            sections[SEC_ELEMENT] = new_element
    new = rewrite(info, sections)
    code_after = parse_module(new).section(SEC_CODE)
    assert code_after is not None
    return DceResult(
        new,
        count,
        emptied,
        code.end - code.start,
        code_after.end - code_after.start,
        table_rule=table_rule,
        live=live,
        stubbed=tuple(sorted(n for i, n in stubbed.items() if i in live)),
        merged=len(merged),
        removed=emptied if compacted else 0,
    )


def _compact(
    wasm: bytes,
    info: ModuleInfo,
    n_imported: int,
    final: list[bytes | None],
    new_element: bytes | None,
    unchanged: list[tuple[int, int] | None],
    cache: _Cache,
) -> dict[int, bytes | None]:
    """The sections of the module without its dead functions (``None`` in ``final``).

    V8 pays for every function it compiles, an empty one too (measured in
    Envoy: ~0.55 ms of start-up CPU and ~5.5 KiB of memory each), so dead
    functions leave the index space: the function and code sections lose
    them, and every index (calls, ``ref.func``, exports, the element
    section, the start function) is renumbered.
    """
    remap: dict[int, int] = {i: i for i in range(n_imported)}
    for i, body in enumerate(final):
        if body is not None:
            remap[i + n_imported] = len(remap)
    for g in info.globals:
        if b"\xd2" in g.init:
            raise _Unsupported("a global holds a function reference")

    def renumber(body: bytes, span: tuple[int, int] | None) -> bytes:
        if span is None:
            sites = _body_refs(body, 0, len(body)).index_sites
        else:  # parsed already: its sites are offsets in the module
            b = span[0]
            sites = [(s - b, t - b, f) for s, t, f in _parsed(wasm, *span, cache).index_sites]
        out = bytearray()
        pos = 0
        for s, t, callee in sites:
            out += body[pos:s] + uleb(remap[callee])
            pos = t
        return bytes(out + body[pos:])

    code = bytearray(uleb(len(remap) - n_imported))
    for body, span in zip(final, unchanged):
        if body is not None:
            body = renumber(body, span)
            code += uleb(len(body)) + body
    fsec = info.section(3)
    if fsec is None:
        raise _Unsupported("no function section")
    n, p = read_uleb(wasm, fsec.start)
    types = []
    for _ in range(n):
        type_start = p
        _, p = read_uleb(wasm, p)
        types.append(wasm[type_start:p])
    functions = uleb(len(remap) - n_imported) + b"".join(
        t for t, body in zip(types, final) if body is not None
    )
    exports = [
        dataclasses.replace(e, index=remap[e.index]) if e.kind == KIND_FUNC else e
        for e in info.exports
    ]
    out: dict[int, bytes | None] = {SEC_CODE: bytes(code), 3: functions}
    out[SEC_EXPORT] = encode_exports(exports)
    element = info.section(SEC_ELEMENT)
    if element is not None:
        source = new_element if new_element is not None else wasm[element.start : element.end]
        out[SEC_ELEMENT] = _renumber_elements(source, remap)
    start = info.section(SEC_START)
    if start is not None:
        out[SEC_START] = uleb(remap[read_uleb(wasm, start.start)[0]])
    return out


def _renumber_elements(payload: bytes, remap: dict[int, int]) -> bytes:
    """An element section payload (flags-0 segments) with every function renumbered."""
    n, p = read_uleb(payload, 0)
    out = bytearray(uleb(n))
    for _ in range(n):
        seg_start = p
        flags, p = read_uleb(payload, p)
        if flags != 0:
            raise _Unsupported(f"element segment flags {flags}")
        q = skip_const_expr(payload, p)
        out += payload[seg_start:q]
        count, p = read_uleb(payload, q)
        out += uleb(count)
        for _ in range(count):
            idx, p = read_uleb(payload, p)
            out += uleb(remap[idx])
    return bytes(out)


def _param_counts(buf: bytes, info: ModuleInfo) -> list[int]:
    """The parameter count of each defined function's type."""
    tsec, fsec = info.section(1), info.section(3)
    if tsec is None or fsec is None:
        return []
    params: list[int] = []
    n, p = read_uleb(buf, tsec.start)
    for _ in range(n):
        if buf[p] != 0x60:
            raise _Unsupported("a non-function type")
        np_, p = read_uleb(buf, p + 1)
        params.append(np_)
        p += np_  # MVP value types: one byte each
        nr, p = read_uleb(buf, p)
        p += nr
    out: list[int] = []
    n, p = read_uleb(buf, fsec.start)
    for _ in range(n):
        t, p = read_uleb(buf, p)
        out.append(t)
    return [params[t] for t in out]


def _type_indices(buf: bytes, info: ModuleInfo) -> list[int]:
    """The type index of each defined function."""
    fsec = info.section(3)
    out: list[int] = []
    if fsec is None:
        return out
    n, p = read_uleb(buf, fsec.start)
    for _ in range(n):
        t, p = read_uleb(buf, p)
        out.append(t)
    return out


def _fold_identical(
    wasm: bytes,
    info: ModuleInfo,
    bodies: list[tuple[int, int]],
    n_imported: int,
    live: frozenset[int],
    stubbed: dict[int, str],
    cache: _Cache,
) -> tuple[dict[int, int], dict[int, bytes]]:
    """Identical code folding over the live functions.

    Two functions of the same type whose bodies are the same bytes once each
    call is read as a call of the function kept for its callee are one
    function (repeated until nothing changes). Returns ``{merged: kept}`` and
    the new bodies: every call is rewritten to the function kept, and a
    merged function's body becomes a forwarding call (``local.get`` of each
    parameter, ``call kept``): its address, if C code took it, stays its own.
    """
    types = _type_indices(wasm, info)
    params = _param_counts(wasm, info)
    funcs = [i for i in sorted(live) if i >= n_imported and i not in stubbed]
    sites: dict[int, list[tuple[int, int, int]]] = {}
    for i in funcs:
        b, e = bodies[i - n_imported]
        sites[i] = _parsed(wasm, b, e, cache).call_sites
    canon = {i: i for i in funcs}

    def render(i: int) -> bytes:
        b, e = bodies[i - n_imported]
        out = bytearray()
        pos = b
        for s, t, callee in sites[i]:
            out += wasm[pos:s] + uleb(canon.get(callee, callee))
            pos = t
        return bytes(out + wasm[pos:e])

    callers: dict[int, set[int]] = {}
    for i in funcs:
        for _, _, callee in sites[i]:
            callers.setdefault(callee, set()).add(i)
    rendered = {i: render(i) for i in funcs}
    for _ in range(64):  # a handful of rounds in practice; the cap only guards
        groups: dict[tuple[int, bytes], int] = {}
        changed: set[int] = set()
        for i in funcs:
            first = groups.setdefault((types[i - n_imported], rendered[i]), i)
            if canon[i] != first:
                canon[i] = first
                changed.add(i)
        if not changed:
            break
        # only a caller of a function whose twin changed reads differently now
        for i in {c for f in changed for c in callers.get(f, ())}:
            rendered[i] = render(i)
    merged = {i: c for i, c in canon.items() if c != i}
    new_bodies: dict[int, bytes] = {}
    for i in funcs:
        if i in merged:
            n = params[i - n_imported]
            fwd = b"".join(b"\x20" + uleb(k) for k in range(n))
            new_bodies[i] = b"\x00" + fwd + b"\x10" + uleb(merged[i]) + b"\x0b"
        elif any(canon.get(c, c) != c for _, _, c in sites[i]):
            new_bodies[i] = rendered[i]
    return merged, new_bodies


def _reach(
    wasm: bytes,
    bodies: list[tuple[int, int]],
    n_imported: int,
    roots: list[int],
    slots: dict[int, int],
    words: set[int],
    stubbed: dict[int, str],
    cache: _Cache,
) -> tuple[frozenset[int], bool]:
    """Functions reachable from roots; a slot in ``slots`` counts once its number is
    in ``words`` or a constant of reachable code. Also: does reachable code write a table?"""
    live: set[int] = set()
    todo = [slots[w] for w in words if w in slots] + roots
    writes = False
    while todo:
        idx = todo.pop()
        if idx in live or idx < n_imported:
            continue
        live.add(idx)
        if idx in stubbed:  # its body is replaced: what it calls does not count
            continue
        b, e = bodies[idx - n_imported]
        body = _parsed(wasm, b, e, cache)
        writes |= body.table_writes
        todo.extend(r for r in body.calls if r not in live)
        if slots:
            todo.extend(slots[c] for c in body.consts if c in slots and slots[c] not in live)
    return frozenset(live), writes


# --- built-in methods no Python code names ------------------------------------------
#
# Before the snapshot, with the linker's relocations (``--emit-relocs``): every
# ``PyMethodDef`` whose name no frozen module, no module libpython froze itself
# and no C string of the interpreter names gets a replacement that raises
# NotImplementedError (runtime.c, ``pw_left_out_N``); when no other pointer to
# its C function exists, the function's table entry is pointed at that
# replacement too, so the trim pass after the snapshot drops the function.

#: Relocation types (tool-conventions, Linking.md) this pass reads.
_R_TABLE_INDEX_SLEB, _R_TABLE_INDEX_I32, _R_TABLE_INDEX_REL_SLEB = 1, 2, 12
_R_MEMORY_ADDR_LEB, _R_MEMORY_ADDR_SLEB, _R_MEMORY_ADDR_I32 = 3, 4, 5
_R_MEMORY_ADDR_REL_SLEB = 11
#: Relocation types followed by an addend.
_R_ADDEND = frozenset({3, 4, 5, 8, 9, 11, 14, 15, 16, 17, 21, 22, 23, 25})
#: The linker's sections only this pass needs (dropped once it ran).
RELOC_SECTIONS = frozenset({b"linking", b"reloc.CODE", b"reloc.DATA"})

#: ``ml_flags`` calling conventions (METH_CLASS/STATIC/COEXIST aside) -> the
#: number of i32 parameters of the C function, which picks the replacement.
_CONVENTIONS = {0x1: 2, 0x4: 2, 0x8: 2, 0x3: 3, 0x80: 3, 0x82: 4, 0x282: 5}
#: The replacements in runtime.c, by parameter count.
LEFT_OUT_FUNCTIONS = {n: f"pw_left_out_{n}" for n in (2, 3, 4, 5)}
_IDENT = re.compile(rb"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class MethodPruneResult:
    """What :func:`prune_methods` did."""

    wasm: bytes
    #: Method table entries found, and replaced (their names, sorted).
    methods: int
    replaced: tuple[str, ...]
    #: Table entries re-pointed at a replacement (their C function can go).
    slots_freed: int
    skipped: str = ""


def identifiers(blobs: Iterable[bytes]) -> set[str]:
    """Every identifier-like run of bytes in ``blobs``."""
    out: set[str] = set()
    for blob in blobs:
        out.update(m.decode() for m in _IDENT.findall(blob))
    return out


_DOTTED = re.compile(rb"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")


def named(strings: Iterable[bytes]) -> set[str]:
    """The names a program's str objects can look up: each one that is an
    identifier or a dotted path (``"split"``, ``"os.path.join"``), split at
    the dots. Other text (messages, format strings) names nothing."""
    out: set[str] = set()
    for s in strings:
        if _DOTTED.fullmatch(s):
            out.update(s.decode().split("."))
    return out


#: CPython 3.11 opcodes whose argument indexes ``co_names`` to look a name up
#: (LOAD_NAME, LOAD_ATTR, IMPORT_NAME, IMPORT_FROM, LOAD_GLOBAL, LOAD_METHOD);
#: the stores and deletes only define names. LOAD_GLOBAL's index is arg >> 1.
_LOAD_OPS = {101: 0, 106: 0, 108: 0, 109: 0, 116: 1, 160: 0}
_EXTENDED_ARG = 144


class _Marshal:
    """Read a CPython 3.11 marshal stream: the names its code looks up.

    ``names``: for every code object, the ``co_names`` entries its bytecode
    loads (attribute, global and import lookups); ``strings``: every str
    constant (in ``co_consts``, also inside constant tuples and frozensets).
    Local variable names, function names and file names are not kept.
    """

    _FIXED: ClassVar[dict[int, int]] = {ord("i"): 4, ord("g"): 8, ord("y"): 16}
    _NOTHING = frozenset(b"0NFTS.")
    _STR4 = frozenset(b"tuaA")  # 4-byte length, str
    _STR1 = frozenset(b"zZ")  # 1-byte length, str
    _SEQ4 = frozenset(b"([<>")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0
        self.strings: list[bytes] = []
        self.names: list[bytes] = []
        self.refs: list[object] = []

    def _i32(self) -> int:
        v = int.from_bytes(self.data[self.pos : self.pos + 4], "little", signed=True)
        self.pos += 4
        return v

    def read(self) -> object:
        """One object: a str is ``str``, bytes ``bytes``, a sequence a tuple, else None."""
        byte = self.data[self.pos]
        code, flag = byte & 0x7F, byte & 0x80
        self.pos += 1
        if code == ord("r"):
            return self.refs[self._i32()]
        slot = len(self.refs)
        if flag:
            self.refs.append(None)  # reserved before the children, as marshal does
        value = self._value(code)
        if flag:
            self.refs[slot] = value
        return value

    def _value(self, code: int) -> object:
        if code in self._NOTHING:
            return None
        if code in self._FIXED:
            self.pos += self._FIXED[code]
        elif code == ord("l"):
            digits = abs(self._i32())  # 15-bit digits, two bytes each
            self.pos += 2 * digits
        elif code in (ord("f"), ord("x")):
            for _ in range(1 if code == ord("f") else 2):
                self.pos += 1 + self.data[self.pos]
        elif code in self._STR4 or code == ord("s"):
            n = self._i32()
            raw = self.data[self.pos : self.pos + n]
            self.pos += n
            return raw if code == ord("s") else raw.decode("utf-8", "surrogatepass")
        elif code in self._STR1:
            n = self.data[self.pos]
            raw = self.data[self.pos + 1 : self.pos + 1 + n]
            self.pos += 1 + n
            return raw.decode("ascii")
        elif code == ord(")"):
            n = self.data[self.pos]
            self.pos += 1
            return tuple(self.read() for _ in range(n))
        elif code in self._SEQ4:
            return tuple(self.read() for _ in range(self._i32()))
        elif code == ord("{"):
            while self.data[self.pos] != ord("0"):
                self.read()
                self.read()
            self.pos += 1
        elif code == ord("c"):
            self._code()
        else:
            raise ValueError(f"marshal type {chr(code)!r} at {self.pos - 1}")
        return None

    def _code(self) -> None:
        self.pos += 20  # argcount, posonlyargcount, kwonlyargcount, stacksize, flags
        bytecode = self.read()
        consts = self.read()
        names = self.read()
        for _ in range(5):  # localsplusnames, localspluskinds, filename, name, qualname
            self.read()
        self.pos += 4  # firstlineno
        self.read()  # linetable
        self.read()  # exceptiontable
        if not isinstance(bytecode, bytes) or not isinstance(names, tuple):
            raise TypeError("a code object without bytecode or names")
        self._constants(consts)
        arg = 0
        for i in range(0, len(bytecode) - 1, 2):
            op, arg = bytecode[i], arg << 8 | bytecode[i + 1]
            if op == _EXTENDED_ARG:
                continue
            if op in _LOAD_OPS:
                name = names[arg >> _LOAD_OPS[op]]
                if isinstance(name, str):
                    self.names.append(name.encode())
            arg = 0

    def _constants(self, value: object) -> None:
        if isinstance(value, str):
            self.strings.append(value.encode("utf-8", "surrogatepass"))
        elif isinstance(value, tuple):
            for item in value:
                self._constants(item)


def code_names(marshalled: bytes) -> set[str]:
    """The names marshalled code can look up.

    The ``co_names`` its bytecode loads (attributes, methods, globals,
    builtins, imports: not the names it only stores), and the string
    constants that are a name or a dotted path (``getattr(x, "name")``,
    ``attrgetter("a.b")``; see :func:`named`): a name computed at run time
    is not seen. Falls back to every identifier-like run of bytes,
    cut at every letter that could be a marshal type code, if the stream
    does not parse.
    """
    reader = _Marshal(marshalled)
    try:
        reader.read()
        if reader.pos != len(marshalled):
            raise ValueError("not one marshalled object")
    except (ValueError, TypeError, IndexError, UnicodeDecodeError):
        return {
            t[i:j]
            for t in identifiers([marshalled])
            for i in range(len(t))
            for j in range(i + 1, len(t) + 1)
        }
    return {n.decode() for n in reader.names} | named(reader.strings)


def source_names(source: bytes) -> set[str]:
    """The names a module's code can spell: identifiers and string constants, not docstrings.

    For sources the build does not marshal itself (the modules libpython
    froze): what the code names, without what comments and docstrings say.
    """
    tree = ast.parse(source)
    docstrings: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                docstrings.add(id(body[0].value))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            out.add(node.id)
        elif isinstance(node, ast.Attribute):
            out.add(node.attr)
        elif isinstance(node, ast.alias):
            out.update(node.name.split("."))
            if node.asname:
                out.add(node.asname)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.add(node.name)
        elif isinstance(node, (ast.arg, ast.keyword)) and node.arg is not None:
            out.add(node.arg)
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docstrings
        ):
            out |= named([node.value.encode("utf-8", "replace")])
    return out


def _relocations(buf: bytes, info: ModuleInfo) -> dict[int, list[tuple[int, int]]]:
    """Target section id -> (type, offset in the section's payload) of each relocation."""
    secs = info.sections
    out: dict[int, list[tuple[int, int]]] = {}
    for sec in secs:
        if sec.id != SEC_CUSTOM:
            continue
        n, p = read_uleb(buf, sec.start)
        if not buf[p : p + n].startswith(b"reloc."):
            continue
        p += n
        target, p = read_uleb(buf, p)
        count, p = read_uleb(buf, p)
        entries = out.setdefault(secs[target].id, [])
        for _ in range(count):
            rtype = buf[p]
            offset, p = read_uleb(buf, p + 1)
            p = _u(buf, p)  # symbol index
            if rtype in _R_ADDEND:
                p = read_sleb(buf, p)[1]
            entries.append((rtype, offset))
    return out


def _data_layout(buf: bytes, info: ModuleInfo) -> tuple[list[tuple[int, int, int]], bytearray]:
    """``(payload offset in the section, address, size)`` of each active segment, and memory."""
    sec = info.section(SEC_DATA)
    segs: list[tuple[int, int, int]] = []
    if sec is None:
        return segs, bytearray()
    n, p = read_uleb(buf, sec.start)
    for _ in range(n):
        mode, p = read_uleb(buf, p)
        if mode == 2:
            p = _u(buf, p)
        addr = -1
        if mode in (0, 2):
            if buf[p] == 0x41:
                addr = read_sleb(buf, p + 1)[0]
            p = skip_const_expr(buf, p)
        size, p = read_uleb(buf, p)
        if addr >= 0:
            segs.append((p - sec.start, addr, size))
        p += size
    top = max((a + s for _, a, s in segs), default=0)
    mem = bytearray(top)
    for off, addr, size in segs:
        mem[addr : addr + size] = buf[sec.start + off : sec.start + off + size]
    return segs, mem


def _func_types(buf: bytes, info: ModuleInfo, n_imported: int) -> list[tuple[int, int] | None]:
    """(params, results) of each defined function when every value is an i32, else None."""
    tsec, fsec = info.section(1), info.section(3)
    if tsec is None or fsec is None:
        return []
    types: list[tuple[int, int] | None] = []
    n, p = read_uleb(buf, tsec.start)
    for _ in range(n):
        if buf[p] != 0x60:
            raise _Unsupported("a non-function type")
        np_, p = read_uleb(buf, p + 1)
        params = buf[p : p + np_]
        p += np_
        nr, p = read_uleb(buf, p)
        results = buf[p : p + nr]
        p += nr
        ok = all(b == 0x7F for b in params + results)
        types.append((np_, nr) if ok else None)
    out: list[tuple[int, int] | None] = []
    n, p = read_uleb(buf, fsec.start)
    for _ in range(n):
        t, p = read_uleb(buf, p)
        out.append(types[t])
    return out


def _cstring(mem: bytes | bytearray, addr: int) -> str | None:
    """The identifier NUL-terminated at ``addr``, if that is what is there."""
    if not 0 < addr < len(mem):
        return None
    end = mem.find(b"\0", addr, addr + 128)
    if end <= addr:
        return None
    text = bytes(mem[addr:end])
    return text.decode() if _IDENT.fullmatch(text) else None


def _u32(mem: bytes | bytearray, addr: int) -> int:
    return int.from_bytes(mem[addr : addr + 4], "little") if 0 <= addr <= len(mem) - 4 else -1


def prune_methods(wasm: bytes, names: Iterable[str]) -> MethodPruneResult:
    """Replace the built-in methods no name in ``names`` can reach (see above).

    ``wasm`` is the module as linked with ``--emit-relocs`` and its name
    section. Kept whatever ``names`` says: dunder names (C code calls them by
    slot), the ``proxy_*`` host calls of the glue, and every identifier a C
    string of the module spells outside a method table (names C code looks
    up: ``_Py_ID``, ``PyObject_CallMethod(x, "flush")``, keyword lists...).
    Returns the module without the relocation sections.
    """
    info = parse_module(wasm)
    code = info.section(SEC_CODE)
    data = info.section(SEC_DATA)
    element = info.section(SEC_ELEMENT)
    relocs = _relocations(wasm, info)
    if code is None or data is None or element is None or SEC_DATA not in relocs:
        return MethodPruneResult(_drop_custom(wasm, RELOC_SECTIONS), 0, (), 0, "no relocations")
    n_imported = sum(1 for i in info.imports if i.kind == KIND_FUNC)
    try:
        return _prune(wasm, info, relocs, set(names), n_imported)
    except (_Unsupported, IndexError, KeyError) as exc:
        return MethodPruneResult(
            _drop_custom(wasm, RELOC_SECTIONS), 0, (), 0, f"left unchanged: {exc}"
        )


def _prune(
    wasm: bytes,
    info: ModuleInfo,
    relocs: dict[int, list[tuple[int, int]]],
    keep: set[str],
    n_imported: int,
) -> MethodPruneResult:
    code = info.section(SEC_CODE)
    data = info.section(SEC_DATA)
    element = info.section(SEC_ELEMENT)
    assert code is not None and data is not None and element is not None
    segs, mem = _data_layout(wasm, info)
    seg_offsets = [s[0] for s in segs]

    def address(offset: int) -> int:
        k = bisect.bisect_right(seg_offsets, offset) - 1
        off, addr, size = segs[k]
        if not 0 <= offset - off < size:
            raise _Unsupported("a data relocation outside every segment")
        return addr + offset - off

    table_sites: dict[int, list[int]] = {}  # slot -> addresses holding it
    addr_sites: set[int] = set()  # addresses holding a data address
    for rtype, offset in relocs[SEC_DATA]:
        a = address(offset)
        if rtype == _R_TABLE_INDEX_I32:
            table_sites.setdefault(_u32(mem, a), []).append(a)
        elif rtype == _R_MEMORY_ADDR_I32:
            addr_sites.add(a)
    code_slots: set[int] = set()  # table slots code materialises
    # data address -> the functions whose code materialises it
    code_addrs: dict[int, set[int]] = {}
    n, p = read_uleb(wasm, code.start)
    starts: list[int] = []
    for _ in range(n):
        size, p = read_uleb(wasm, p)
        starts.append(p)
        p += size
    for rtype, offset in relocs.get(SEC_CODE, []):
        p = code.start + offset
        if rtype in (_R_TABLE_INDEX_SLEB, _R_TABLE_INDEX_REL_SLEB):
            code_slots.add(read_sleb(wasm, p)[0])
        elif rtype in (_R_MEMORY_ADDR_SLEB, _R_MEMORY_ADDR_REL_SLEB, _R_MEMORY_ADDR_LEB):
            value = read_sleb(wasm, p)[0] if rtype != _R_MEMORY_ADDR_LEB else read_uleb(wasm, p)[0]
            func = n_imported + bisect.bisect_right(starts, p) - 1
            code_addrs.setdefault(value, set()).add(func)

    # PyMethodDef {ml_name, ml_meth, ml_flags, ml_doc}: ml_meth a table index,
    # ml_name an identifier, ml_flags a calling convention and no relocation,
    # ml_doc NULL or an address; arrays end with a zero record.
    defs: dict[int, tuple[str, int, int]] = {}  # address of the def -> (name, slot, params)
    for slot, sites in table_sites.items():
        for a in sites:
            d = a - 4
            flags = _u32(mem, a + 4)
            params = _CONVENTIONS.get(flags & ~0x70)
            name = _cstring(mem, _u32(mem, d)) if d in addr_sites else None
            doc = _u32(mem, a + 8)
            if (
                params is None
                or name is None
                or a + 4 in addr_sites
                or (doc != 0 and a + 8 not in addr_sites)
            ):
                continue
            defs[d] = (name, slot, params)
    arrays: set[int] = set()
    for d in defs:
        if d - 16 in defs:
            continue
        run = [d]
        while run[-1] + 16 in defs:
            run.append(run[-1] + 16)
        end = run[-1] + 16
        if mem[end : end + 16] == bytes(16):
            arrays.update(run)
    defs = {d: v for d, v in defs.items() if d in arrays}

    # Names C code can look up: every identifier string an address of the
    # module points at, except from a method's own ml_name.
    # Names C code can look up: an identifier string the code of some function
    # materialises, or that some data other than a method's ml_name points
    # at. A method's own C function naming it does not count (Argument
    # Clinic's wrappers spell their name for error messages, directly or as
    # the fname of their static _PyArg_Parser, 8 bytes into it).
    c_funcs: dict[str, set[int]] = {}  # name -> functions spelling it
    for a, funcs in code_addrs.items():
        name = _cstring(mem, a)
        if name is not None:
            c_funcs.setdefault(name, set()).update(funcs)
    for a in addr_sites - defs.keys():
        name = _cstring(mem, _u32(mem, a))
        if name is not None:
            # a parser struct's fname: counts as spelt by the functions using the struct
            c_funcs.setdefault(name, set()).update(code_addrs.get(a - 8, {-1}))

    fnames = function_names(wasm, info)
    fnames = function_names(wasm, info)
    by_name = {v: k for k, v in fnames.items()}
    elems = _element_refs(wasm, element.start)
    slot_of = {f: s for s, f in elems.slots.items()}
    repl = {n: slot_of.get(by_name.get(f, -1), -1) for n, f in LEFT_OUT_FUNCTIONS.items()}
    if min(repl.values()) < 0:
        raise _Unsupported("the replacement functions of runtime.c are not in the table")
    types = _func_types(wasm, info, n_imported)

    payload = bytearray(wasm[data.start : data.end])
    replaced: list[str] = []
    pruned_at: dict[int, list[int]] = {}
    for d, (name, slot, params) in sorted(defs.items()):
        target = elems.slots.get(slot, -1)
        if (
            name in keep
            or name.startswith("proxy_")
            or (name.startswith("__") and name.endswith("__"))
            or c_funcs.get(name, set()) - {target}
        ):
            continue
        if target < n_imported or types[target - n_imported] != (params, 1):
            continue
        _put_u32(payload, segs, d + 4, repl[params])
        replaced.append(name)
        pruned_at.setdefault(slot, []).append(d + 4)
    # A slot no other pointer names any more is re-pointed too: its function
    # leaves the table, and the trim pass after the snapshot drops it.
    freed = {
        slot: by_name[LEFT_OUT_FUNCTIONS[defs[sites[0] - 4][2]]]
        for slot, sites in pruned_at.items()
        if slot not in code_slots and sorted(sites) == sorted(table_sites[slot])
    }
    new = rewrite(
        info,
        {
            SEC_DATA: bytes(payload),
            SEC_ELEMENT: _repoint_elements(wasm, element.start, freed),
        },
    )
    return MethodPruneResult(
        _drop_custom(new, RELOC_SECTIONS), len(defs), tuple(sorted(replaced)), len(freed)
    )


def _put_u32(payload: bytearray, segs: list[tuple[int, int, int]], addr: int, value: int) -> None:
    """Store ``value`` at memory address ``addr`` in a data section payload."""
    for off, base, size in segs:
        if base <= addr and addr + 4 <= base + size:
            p = off + addr - base
            payload[p : p + 4] = value.to_bytes(4, "little")
            return
    raise _Unsupported(f"address {addr} is in no data segment")


def _repoint_elements(buf: bytes, start: int, slots: dict[int, int]) -> bytes:
    """The element section payload with ``slots`` (slot -> function) replaced.

    Only active segments of table 0 with a constant offset and a vector of
    function indices (flags 0) are rewritten; the others are copied.
    """
    n, p = read_uleb(buf, start)
    out = bytearray(uleb(n))
    for _ in range(n):
        seg_start = p
        flags, p = read_uleb(buf, p)
        if flags != 0 or buf[p] != 0x41:
            raise _Unsupported(f"element segment flags {flags}")
        offset = read_sleb(buf, p + 1)[0]
        q = skip_const_expr(buf, p)
        out += buf[seg_start:q]
        count, p = read_uleb(buf, q)
        out += uleb(count)
        for i in range(count):
            idx, p = read_uleb(buf, p)
            out += uleb(slots.get(offset + i, idx))
    return bytes(out)
