"""Fuse a component into one core module: the componentize-py backend's linker.

The component's core instances are evaluated symbolically: every import of
every instantiated core module is resolved, through bags of exports and
aliases, to either a definition in another core module, a ``canon lower`` of
a component import (a host function), or a canonical builtin
(``resource.drop``). Then all core modules are merged, in instantiation
order, into one module:

* functions, tables, globals, element and data segments are concatenated and
  every index in code and constant expressions is renumbered
  (:func:`.core.rewrite_body`); types are deduplicated;
* an import resolved to a definition becomes a direct reference to it (the
  dynamic-linking GOT globals, ``__memory_base``, ``__table_base`` and the
  shared ``env.memory`` / ``__indirect_function_table`` included; their
  values are the ones component-init's snapshot left in the defining module);
* host functions become imports of the fused module (``env.proxy_*``,
  ``wasi_snapshot_preview1.*``) or small synthesised core functions
  (:mod:`.host`): the record-returning ABI shims, WASI 0.2 served by the
  WASI preview 1 functions Envoy provides, no-op resource drops, traps;
* the component's function exports become the module's exports, each a small
  wrapper that calls the lifted core function then its ``post-return``.

Active segments are applied in module order, as instantiation would; a core
start function is refused (component-init removed them: the snapshot is
already taken).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

from ...wasmbin import (
    KIND_FUNC,
    KIND_GLOBAL,
    KIND_MEMORY,
    KIND_TABLE,
    SEC_CODE,
    SEC_DATA,
    SEC_DATACOUNT,
    SEC_ELEMENT,
    SEC_EXPORT,
    SEC_FUNCTION,
    SEC_GLOBAL,
    SEC_IMPORT,
    SEC_MEMORY,
    SEC_TABLE,
    SEC_TYPE,
    WASM_MAGIC,
    encode_name,
    encode_section,
    read_sleb,
    sleb,
    uleb,
)
from .component import (
    CORE_FUNC,
    Alias,
    Builtin,
    Component,
    Import,
    Lift,
    Lower,
    parse_component,
)
from .core import (
    CoreModule,
    ElemSegment,
    FuncType,
    IndexMaps,
    parse_core,
    rewrite_body,
    rewrite_const_expr,
)

__all__ = ["FuseError", "FuseResult", "Host", "HostFunc", "Target", "fuse", "resolve_imports"]


class FuseError(RuntimeError):
    """The component cannot be fused; the message says what and where."""


@dataclasses.dataclass(frozen=True)
class Target:
    """Where a core import leads: a definition, a host function or a builtin."""

    kind: str  # "def" | "host" | "builtin"
    instance: int = -1  # core instance of the definition
    sort: int = -1  # KIND_* of the definition
    index: int = -1  # index in that module's space (a defined item)
    interface: str = ""  # host: the component instance import name ("" for world functions)
    name: str = ""  # host: function name; builtin: "resource.drop" ...
    realloc: Target | None = None  # host: the lowering's realloc, resolved


@dataclasses.dataclass
class HostFunc:
    """How the fused module provides one host function of a given core type.

    ``import_`` makes it an import of the fused module; otherwise ``body`` builds
    the code of a synthesised function, given a :class:`Linker` to look up indices.
    """

    type: FuncType
    import_: tuple[str, str] | None = None
    body: Callable[[Linker], bytes] | None = None
    locals: tuple[tuple[int, int], ...] = ()  # (count, valtype) of extra locals
    needs: tuple[tuple[str, str, FuncType], ...] = ()  # fused imports the body calls
    traps: bool = False  # the body is a trap: the function is not supported


class Host:
    """Decides how host functions are provided; :mod:`.host` implements the real one."""

    def provide(self, target: Target, ty: FuncType) -> HostFunc:
        """A :class:`HostFunc` for `target`, imported with core type `ty`."""
        raise FuseError(f"no provider for host function {target.interface}#{target.name}")


@dataclasses.dataclass
class FuseResult:
    """The fused module and what went into it."""

    wasm: bytes
    modules: int  # core modules merged
    functions: int  # defined functions in the result
    imports: list[tuple[str, str]]
    synthesised: dict[str, int]  # host function kind -> count
    trapping: list[str]  # host functions provided as traps
    pruned: int = 0  # unreachable functions dropped afterwards (:mod:`.dce`)


class Linker:
    """Index lookups for synthesised bodies (valid once indices are assigned)."""

    def __init__(self) -> None:
        self.import_index: dict[tuple[str, str], int] = {}
        self.resolve_func: Callable[[Target], int] = lambda t: -1
        self.globals_by_export: dict[str, int] = {}
        self.funcs_by_export: dict[str, int] = {}

    def imported(self, module: str, name: str) -> int:
        """The index of fused import `module.name`."""
        return self.import_index[(module, name)]

    def func(self, target: Target) -> int:
        """The fused index of a resolved function."""
        return self.resolve_func(target)

    def exported_func(self, name: str) -> int:
        """The fused index of the function some module exports as `name` (first wins)."""
        try:
            return self.funcs_by_export[name]
        except KeyError:
            raise FuseError(f"no core module exports a function {name!r}") from None

    def exported_global(self, name: str) -> int:
        """The fused index of the global some module exports as `name` (first wins)."""
        try:
            return self.globals_by_export[name]
        except KeyError:
            raise FuseError(f"no core module exports a global {name!r}") from None


class _Resolver:
    def __init__(self, comp: Component) -> None:
        self.comp = comp
        self.mods: dict[int, CoreModule] = {}
        self.module_of: dict[int, int] = {}
        seen: set[int] = set()
        for i, ci in enumerate(comp.core_instances):
            if ci.module is None:
                continue
            if ci.module in seen:
                raise FuseError(f"core module {ci.module} is instantiated twice")
            seen.add(ci.module)
            self.module_of[i] = ci.module
            self.mods[i] = parse_core(comp.modules[ci.module])
        self._memo: dict[tuple[int, str, int], Target] = {}

    def export(self, inst: int, name: str, sort: int) -> Target:
        key = (inst, name, sort)
        hit = self._memo.get(key)
        if hit is None:
            hit = self._export(inst, name, sort)
            self._memo[key] = hit
        return hit

    def _export(self, inst: int, name: str, sort: int) -> Target:
        ci = self.comp.core_instances[inst]
        if ci.module is not None:
            m = self.mods[inst]
            found = m.export(name)
            if found is None or found[0] != sort:
                raise FuseError(f"core instance {inst} exports no {_KINDS[sort]} {name!r}")
            return self.local(inst, sort, found[1])
        if name not in ci.items:
            raise FuseError(f"core instance {inst} (a bag) has no item {name!r}")
        item_sort, idx = ci.items[name]
        if item_sort != sort:
            raise FuseError(f"item {name!r} of core instance {inst} is not a {_KINDS[sort]}")
        return self.item(sort, idx)

    def item(self, sort: int, idx: int) -> Target:
        item = self.comp.core[sort][idx]
        if isinstance(item, Alias):
            return self.export(item.instance, item.name, sort)
        if isinstance(item, Builtin):
            return Target("builtin", name=item.name)
        assert isinstance(item, Lower)
        func = self.comp.funcs[item.func]
        realloc = self.item(CORE_FUNC, item.realloc) if item.realloc is not None else None
        if isinstance(func, Import):
            return Target("host", interface="", name=func.name, realloc=realloc)
        if isinstance(func, Alias):
            iname = self.comp.instance_name(func.instance)
            if iname is None:
                raise FuseError(f"lowered function {func.name!r} is not from an imported instance")
            return Target("host", interface=iname, name=func.name, realloc=realloc)
        raise FuseError("a lowered function is a lifted one (component-internal adapter)")

    def local(self, inst: int, sort: int, idx: int) -> Target:
        m = self.mods[inst]
        imported = m.imported(sort)
        if idx < len(imported):
            imp = imported[idx]
            ci = self.comp.core_instances[inst]
            if imp.module not in ci.args:
                raise FuseError(
                    f"core module {self.module_of[inst]} imports {imp.module}.{imp.name}, "
                    "and its instantiation provides no such instance"
                )
            return self.export(ci.args[imp.module], imp.name, sort)
        return Target("def", instance=inst, sort=sort, index=idx)


_KINDS = {KIND_FUNC: "function", KIND_TABLE: "table", KIND_MEMORY: "memory", KIND_GLOBAL: "global"}


def resolve_imports(component: bytes) -> list[tuple[int, str, str, Target, FuncType | None]]:
    """Every import of every instantiated core module and where it leads (for inspection)."""
    comp = parse_component(component)
    r = _Resolver(comp)
    out: list[tuple[int, str, str, Target, FuncType | None]] = []
    for inst, m in r.mods.items():
        counts = dict.fromkeys(_KINDS, 0)
        for imp in m.imports:
            t = r.local(inst, imp.kind, counts[imp.kind])
            counts[imp.kind] += 1
            ty = m.types[imp.type_index] if imp.kind == KIND_FUNC else None
            out.append((r.module_of[inst], imp.module, imp.name, t, ty))
    return out


def fuse(
    component: bytes,
    host: Host,
    *,
    exports: Callable[[str], str | None] = lambda name: name,
    extra_exports: Callable[[Linker], list[tuple[str, FuncType, bytes]]] | None = None,
) -> FuseResult:
    """Merge the component's core modules into one module.

    `exports` maps a component function export name to the fused export name
    (None drops it). `extra_exports` adds synthesised exported functions
    (name, type, body) once indices are known. The memory is exported as
    ``memory``.
    """
    comp = parse_component(component)
    r = _Resolver(comp)
    order = sorted(r.mods)
    link = Linker()

    # Pass 1: resolve every import; collect host functions.
    host_funcs: dict[tuple[str, str, FuncType], HostFunc] = {}
    resolved: dict[int, dict[int, list[Target]]] = {}
    for inst in order:
        m = r.mods[inst]
        per_kind: dict[int, list[Target]] = {}
        for kind in _KINDS:
            per_kind[kind] = [r.local(inst, kind, i) for i in range(len(m.imported(kind)))]
        for t, imp in zip(per_kind[KIND_FUNC], m.imported(KIND_FUNC)):
            if t.kind == "def":
                continue
            ty = m.types[imp.type_index]
            key = (t.interface, t.name, ty)
            if key not in host_funcs:
                host_funcs[key] = host.provide(t, ty)
        for kind in (KIND_TABLE, KIND_MEMORY, KIND_GLOBAL):
            for t, imp in zip(per_kind[kind], m.imported(kind)):
                if t.kind != "def":
                    raise FuseError(
                        f"{_KINDS[kind]} import {imp.module}.{imp.name} has no definition"
                    )
        if m.start is not None:
            raise FuseError(
                f"core module {r.module_of[inst]} has a start function; fusing expects a "
                "component pre-initialised by component-init (no start functions left)"
            )
        resolved[inst] = per_kind

    # Fused imports: those host functions that are imports, and those synthesised bodies need.
    imports: list[tuple[str, str, FuncType]] = []
    for hf in host_funcs.values():
        wanted = list(hf.needs)
        if hf.import_ is not None:
            wanted.insert(0, (hf.import_[0], hf.import_[1], hf.type))
        for mod, name, ty in wanted:
            if (mod, name) in link.import_index:
                continue
            link.import_index[(mod, name)] = len(imports)
            imports.append((mod, name, ty))

    # Index bases.
    func_base: dict[int, int] = {}
    glob_base: dict[int, int] = {}
    table_base: dict[int, int] = {}
    elem_base: dict[int, int] = {}
    data_base: dict[int, int] = {}
    nf = len(imports)
    ng = nt = ne = nd = 0
    memories: list[bytes] = []
    for inst in order:
        m = r.mods[inst]
        func_base[inst], glob_base[inst], table_base[inst] = nf, ng, nt
        elem_base[inst], data_base[inst] = ne, nd
        nf += len(m.funcs)
        ng += len(m.globals)
        nt += len(m.tables)
        ne += len(m.elems)
        nd += len(m.datas)
        if m.memories:
            if memories or len(m.memories) > 1:
                raise FuseError("more than one memory is defined; fusing needs exactly one")
            memories = list(m.memories)
    if not memories:
        raise FuseError("no core module defines a memory")

    synth_index: dict[tuple[str, str, FuncType], int] = {}
    synth: list[tuple[FuncType, HostFunc]] = []
    for key, hf in host_funcs.items():
        if hf.import_ is None:
            synth_index[key] = nf + len(synth)
            synth.append((hf.type, hf))

    def func_index(t: Target, ty: FuncType | None = None) -> int:
        if t.kind == "def":
            m = r.mods[t.instance]
            return func_base[t.instance] + t.index - len(m.imported(KIND_FUNC))
        assert ty is not None
        key = (t.interface, t.name, ty)
        hf = host_funcs[key]
        if hf.import_ is not None:
            return link.import_index[hf.import_]
        return synth_index[key]

    def def_index(t: Target, base: dict[int, int]) -> int:
        m = r.mods[t.instance]
        return base[t.instance] + t.index - len(m.imported(t.sort))

    link.resolve_func = func_index
    for inst in order:
        m = r.mods[inst]
        for name, kind, idx in m.exports:
            t = r.local(inst, kind, idx)
            if t.kind != "def":
                continue
            if kind == KIND_FUNC:
                link.funcs_by_export.setdefault(name, func_index(t))
            elif kind == KIND_GLOBAL:
                link.globals_by_export.setdefault(name, def_index(t, glob_base))

    # Types, deduplicated.
    types: list[FuncType] = []
    type_ids: dict[FuncType, int] = {}

    def type_id(ft: FuncType) -> int:
        i = type_ids.get(ft)
        if i is None:
            i = type_ids[ft] = len(types)
            types.append(ft)
        return i

    # Constant values of defined immutable globals, for folding const expressions.
    global_inits: dict[int, bytes] = {}
    global_mut: dict[int, bool] = {}

    maps: dict[int, IndexMaps] = {}
    for inst in order:
        m = r.mods[inst]
        per = resolved[inst]
        fmap = [
            func_index(t, m.types[imp.type_index])
            for t, imp in zip(per[KIND_FUNC], m.imported(KIND_FUNC))
        ]
        fmap += range(func_base[inst], func_base[inst] + len(m.funcs))
        gmap = [def_index(t, glob_base) for t in per[KIND_GLOBAL]]
        gmap += range(glob_base[inst], glob_base[inst] + len(m.globals))
        tmap = [def_index(t, table_base) for t in per[KIND_TABLE]]
        tmap += range(table_base[inst], table_base[inst] + len(m.tables))
        tymap = [type_id(ft) for ft in m.types]
        maps[inst] = IndexMaps(fmap, gmap, tmap, tymap, elem_base[inst], data_base[inst])

    def const(inst: int, expr: bytes) -> bytes:
        mp = maps[inst]

        def glob(old: int) -> bytes:
            new = mp.glob[old]
            init = global_inits.get(new)
            if init is not None and not global_mut[new]:
                return init[:-1]  # the folded value, without its `end`
            return b"\x23" + uleb(new)

        return _fold(rewrite_const_expr(expr, mp.func, glob))

    # Globals in order (their inits may refer to earlier modules' globals).
    global_payload = bytearray()
    n_globals = 0
    for inst in order:
        m = r.mods[inst]
        for i, (gt, init) in enumerate(m.globals):
            new = glob_base[inst] + i
            folded = const(inst, init)
            global_inits[new] = folded
            global_mut[new] = gt[-1] == 1
            global_payload += gt + folded
            n_globals += 1

    # Function bodies.
    func_types: list[int] = []
    bodies: list[bytes] = []
    for inst in order:
        m = r.mods[inst]
        mp = maps[inst]
        for ti, code in zip(m.funcs, m.codes):
            func_types.append(mp.type[ti])
            bodies.append(rewrite_body(code, mp))
    for ft, hf in synth:
        func_types.append(type_id(ft))
        assert hf.body is not None
        bodies.append(_encode_body(hf.locals, hf.body(link)))

    # Exports: the memory, the component's function exports (wrapped), extras.
    export_entries: list[tuple[str, int, int]] = [("memory", KIND_MEMORY, 0)]
    for name, sort, idx in comp.exports:
        if sort != 1:  # functions only
            continue
        new_name = exports(name)
        if new_name is None:
            continue
        lift = comp.funcs[idx]
        if not isinstance(lift, Lift):
            continue
        core_t = r.item(CORE_FUNC, lift.core_func)
        if core_t.kind != "def":
            raise FuseError(f"export {name!r} lifts a host function")
        ft = r.mods[core_t.instance].func_type(core_t.index)
        callee = func_index(core_t)
        post = None
        if lift.post_return is not None:
            post = func_index(r.item(CORE_FUNC, lift.post_return))
        func_types.append(type_id(ft))
        bodies.append(_encode_body(*_wrapper(ft, callee, post)))
        export_entries.append((new_name, KIND_FUNC, len(imports) + len(bodies) - 1))
    if extra_exports is not None:
        for name, ft, body in extra_exports(link):
            func_types.append(type_id(ft))
            bodies.append(_encode_body((), body))
            export_entries.append((name, KIND_FUNC, len(imports) + len(bodies) - 1))

    # Tables, elements, data.
    tables = [t for inst in order for t in r.mods[inst].tables]
    elem_payload = bytearray()
    n_elems = 0
    data_payload = bytearray()
    n_datas = 0
    for inst in order:
        m = r.mods[inst]
        mp = maps[inst]
        for seg in m.elems:
            elem_payload += _encode_elem(seg, mp, functools.partial(const, inst))
            n_elems += 1
        for d in m.datas:
            if d.memory != 0:
                raise FuseError("data segment for a memory other than 0")
            if d.offset is None:
                data_payload += b"\x01"
            else:
                data_payload += b"\x00" + const(inst, d.offset)
            data_payload += uleb(len(d.data)) + d.data
            n_datas += 1

    imp_payload = bytearray(uleb(len(imports)))
    for mod, name, ty in imports:
        imp_payload += encode_name(mod) + encode_name(name) + b"\x00" + uleb(type_id(ty))
    out = bytearray(WASM_MAGIC)
    out += encode_section(SEC_TYPE, uleb(len(types)) + b"".join(t.encode() for t in types))
    out += encode_section(SEC_IMPORT, bytes(imp_payload))
    out += encode_section(
        SEC_FUNCTION, uleb(len(func_types)) + b"".join(uleb(t) for t in func_types)
    )
    if tables:
        out += encode_section(SEC_TABLE, uleb(len(tables)) + b"".join(tables))
    out += encode_section(SEC_MEMORY, uleb(1) + memories[0])
    if n_globals:
        out += encode_section(SEC_GLOBAL, uleb(n_globals) + bytes(global_payload))
    exp_payload = bytearray(uleb(len(export_entries)))
    for name, kind, idx in export_entries:
        exp_payload += encode_name(name) + bytes([kind]) + uleb(idx)
    out += encode_section(SEC_EXPORT, bytes(exp_payload))
    if n_elems:
        out += encode_section(SEC_ELEMENT, uleb(n_elems) + bytes(elem_payload))
    if n_datas:
        out += encode_section(SEC_DATACOUNT, uleb(n_datas))
    code_payload = bytearray(uleb(len(bodies)))
    for body in bodies:
        code_payload += uleb(len(body)) + body
    out += encode_section(SEC_CODE, bytes(code_payload))
    if n_datas:
        out += encode_section(SEC_DATA, uleb(n_datas) + bytes(data_payload))

    kinds: dict[str, int] = {}
    trapping: list[str] = []
    for (iface, name, _ty), hf in host_funcs.items():
        label = "import" if hf.import_ is not None else "synthesised"
        kinds[label] = kinds.get(label, 0) + 1
        if hf.traps:
            trapping.append(f"{iface}#{name}" if iface else name)
    return FuseResult(
        bytes(out),
        len(order),
        len(bodies),
        [(mod, name) for mod, name, _ in imports],
        kinds,
        sorted(trapping),
    )


def _fold(expr: bytes) -> bytes:
    """Fold ``i32.const a; i32.const b; i32.add`` chains (extended-const) into one constant."""
    stack: list[int] = []
    pos = 0
    while True:
        op = expr[pos]
        if op == 0x0B and pos == len(expr) - 1:
            break
        if op == 0x41:
            v, pos = read_sleb(expr, pos + 1)
            stack.append(v)
        elif op in (0x6A, 0x6B, 0x6C) and len(stack) >= 2:
            b, a = stack.pop(), stack.pop()
            v = a + b if op == 0x6A else a - b if op == 0x6B else a * b
            v &= 0xFFFFFFFF
            stack.append(v - (1 << 32) if v & 0x80000000 else v)
            pos += 1
        else:
            return expr
    if len(stack) != 1:
        return expr
    return b"\x41" + sleb(stack[0]) + b"\x0b"


def _encode_elem(seg: ElemSegment, mp: IndexMaps, const: Callable[[bytes], bytes]) -> bytes:
    out = bytearray()
    table = mp.table[seg.table] if seg.mode == "active" else 0
    if seg.funcs is not None:
        items = uleb(len(seg.funcs)) + b"".join(uleb(mp.func[f]) for f in seg.funcs)
        if seg.mode == "active":
            assert seg.offset is not None
            if table == 0:
                out += b"\x00" + const(seg.offset)
            else:
                out += b"\x02" + uleb(table) + const(seg.offset) + b"\x00"
        elif seg.mode == "passive":
            out += b"\x01\x00"
        else:
            out += b"\x03\x00"
        return bytes(out + items)
    assert seg.exprs is not None
    items = uleb(len(seg.exprs)) + b"".join(const(e) for e in seg.exprs)
    if seg.mode == "active":
        assert seg.offset is not None
        out += b"\x06" + uleb(table) + const(seg.offset) + bytes([seg.reftype])
    elif seg.mode == "passive":
        out += b"\x05" + bytes([seg.reftype])
    else:
        out += b"\x07" + bytes([seg.reftype])
    return bytes(out + items)


def _encode_body(locals_: tuple[tuple[int, int], ...], expr: bytes) -> bytes:
    out = bytearray(uleb(len(locals_)))
    for count, vt in locals_:
        out += uleb(count) + bytes([vt])
    return bytes(out + expr)


def _wrapper(
    ft: FuncType, callee: int, post: int | None
) -> tuple[tuple[tuple[int, int], ...], bytes]:
    """Call `callee` with our parameters, then `post` (post-return) with its results.

    Returns the extra locals and the expression.
    """
    if len(ft.results) > 1:
        raise FuseError("an export with more than one flat result is not supported")
    out = bytearray()
    for i in range(len(ft.params)):
        out += b"\x20" + uleb(i)
    out += b"\x10" + uleb(callee)
    if post is None:
        return (), bytes(out + b"\x0b")
    if not ft.results:
        return (), bytes(out + b"\x10" + uleb(post) + b"\x0b")
    tmp = uleb(len(ft.params))
    out += b"\x21" + tmp + b"\x20" + tmp + b"\x10" + uleb(post) + b"\x20" + tmp + b"\x0b"
    return ((1, ft.results[0]),), bytes(out)
