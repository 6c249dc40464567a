"""Read a WebAssembly component's top-level sections (the binary format, not the types).

Enough of the component model's binary format to fuse a component into one
core module: the embedded core modules, the core instances (which module is
instantiated with which arguments, or which items are bundled into an
"instance from exports"), the core items each index space holds (aliases of
core exports, ``canon lower`` of component functions, ``canon resource.*``
builtins), the component functions (imports, aliases of imported instances'
exports, ``canon lift``) and the component's exports.

Types are only counted, never decoded: the fuser does not need them (every
function of our WIT world has a core-compatible signature, and the core
signature is read from the core module that imports or exports it).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

from ...wasmbin import WasmFormatError, read_sleb, read_uleb

__all__ = [
    "COMPONENT_MAGIC",
    "Alias",
    "Builtin",
    "Component",
    "CoreInstance",
    "Lift",
    "Lower",
    "parse_component",
]

#: ``\0asm``, version 0x0d, layer 1 (a component).
COMPONENT_MAGIC = b"\0asm\x0d\x00\x01\x00"

# Component section ids.
_CUSTOM, _CORE_MODULE, _CORE_INSTANCE, _CORE_TYPE, _COMPONENT, _INSTANCE = 0, 1, 2, 3, 4, 5
_ALIAS, _TYPE, _CANON, _START, _IMPORT, _EXPORT = 6, 7, 8, 9, 10, 11

# Core sorts (as they appear after a 0x00 sort byte).
CORE_FUNC, CORE_TABLE, CORE_MEMORY, CORE_GLOBAL = 0x00, 0x01, 0x02, 0x03
CORE_TYPE, CORE_MODULE, CORE_INSTANCE = 0x10, 0x11, 0x12
# Component sorts.
SORT_CORE, SORT_FUNC, SORT_VALUE, SORT_TYPE, SORT_COMPONENT, SORT_INSTANCE = 0, 1, 2, 3, 4, 5


@dataclasses.dataclass(frozen=True)
class Alias:
    """``(alias core export instance "name")`` or ``(alias export instance "name")``."""

    instance: int
    name: str


@dataclasses.dataclass(frozen=True)
class Lower:
    """``(canon lower func opts)``: a component function seen as a core function."""

    func: int  # component function index
    memory: int | None
    realloc: int | None  # core function index


@dataclasses.dataclass(frozen=True)
class Builtin:
    """A core function the canonical ABI provides (``resource.drop`` and friends)."""

    name: str  # "resource.drop", "resource.new", "resource.rep"
    type_index: int


@dataclasses.dataclass(frozen=True)
class Lift:
    """``(canon lift core-func opts type)``: a core function exported as a component one."""

    core_func: int
    memory: int | None
    realloc: int | None
    post_return: int | None
    type_index: int


@dataclasses.dataclass(frozen=True)
class Import:
    """A component-level import (``name`` as written, e.g. ``wasi:io/streams@0.2.0``)."""

    name: str


@dataclasses.dataclass
class CoreInstance:
    """A core instance: ``module`` with ``args`` (name -> core instance), or a bag of items."""

    module: int | None
    args: dict[str, int]
    items: dict[str, tuple[int, int]]  # for a bag: export name -> (core sort, index)


CoreItem = Alias | Lower | Builtin
ComponentFunc = Alias | Lift | Import


@dataclasses.dataclass
class Component:
    """The index spaces the fuser needs, in definition order."""

    modules: list[bytes]
    core_instances: list[CoreInstance]
    core: dict[int, list[CoreItem]]  # core sort -> items (func, table, memory, global)
    funcs: list[ComponentFunc]
    instances: list[Import | None]  # component instances: imports (by name) or others
    exports: list[tuple[str, int, int]]  # (name, sort, index)

    def instance_name(self, index: int) -> str | None:
        """The import name of component instance `index`, if it is an imported one."""
        inst = self.instances[index]
        return inst.name if isinstance(inst, Import) else None


def _name(buf: bytes, pos: int) -> tuple[str, int]:
    n, pos = read_uleb(buf, pos)
    return buf[pos : pos + n].decode("utf-8"), pos + n


def _extern_name(buf: bytes, pos: int) -> tuple[str, int]:
    # importname' / exportname': 0x00 (plain) or 0x01 (legacy interface form), then a string.
    if buf[pos] not in (0x00, 0x01):
        raise WasmFormatError(f"unsupported extern name form 0x{buf[pos]:02x} at {pos}")
    return _name(buf, pos + 1)


def _sections(data: bytes) -> Iterator[tuple[int, int, int]]:
    if data[:8] != COMPONENT_MAGIC:
        raise WasmFormatError("not a WebAssembly component (bad magic/version/layer)")
    pos = 8
    while pos < len(data):
        sid = data[pos]
        size, start = read_uleb(data, pos + 1)
        end = start + size
        if end > len(data):
            raise WasmFormatError(f"truncated component section {sid} at offset {pos}")
        yield sid, start, end
        pos = end


def _externdesc(buf: bytes, pos: int) -> tuple[int, int]:
    """Skip an externdesc; return (sort it introduces, new position)."""
    kind = buf[pos]
    pos += 1
    if kind == 0x00:  # core module: 0x11 typeidx
        _, pos = read_uleb(buf, pos + 1)
        return -CORE_MODULE - 1, pos
    if kind in (0x01, 0x04, 0x05):
        _, pos = read_uleb(buf, pos)
        return {0x01: SORT_FUNC, 0x04: SORT_COMPONENT, 0x05: SORT_INSTANCE}[kind], pos
    if kind == 0x02:  # value bound
        b = buf[pos]
        if b == 0x00:
            _, pos = read_uleb(buf, pos + 1)
        else:
            _, pos = read_sleb(buf, pos + 1)
        return SORT_VALUE, pos
    if kind == 0x03:  # type bound
        b = buf[pos]
        pos += 1
        if b == 0x00:
            _, pos = read_uleb(buf, pos)
        return SORT_TYPE, pos
    raise WasmFormatError(f"unsupported externdesc 0x{kind:02x} at {pos - 1}")


def _canon_opts(buf: bytes, pos: int) -> tuple[int | None, int | None, int | None, int]:
    memory = realloc = post = None
    n, pos = read_uleb(buf, pos)
    for _ in range(n):
        op = buf[pos]
        pos += 1
        if op in (0x00, 0x01, 0x02, 0x06):  # string encodings, async
            continue
        idx, pos = read_uleb(buf, pos)
        if op == 0x03:
            memory = idx
        elif op == 0x04:
            realloc = idx
        elif op == 0x05:
            post = idx
        elif op != 0x07:  # 0x07 callback: async only, ignored
            raise WasmFormatError(f"unsupported canonical option 0x{op:02x}")
    return memory, realloc, post, pos


def parse_component(data: bytes) -> Component:
    """Walk the top-level sections of a component (nested components are only counted)."""
    data = bytes(data)
    comp = Component(
        [], [], {CORE_FUNC: [], CORE_TABLE: [], CORE_MEMORY: [], CORE_GLOBAL: []}, [], [], []
    )
    for sid, start, end in _sections(data):
        p = start
        if sid == _CORE_MODULE:
            comp.modules.append(data[start:end])
        elif sid == _CORE_INSTANCE:
            n, p = read_uleb(data, p)
            for _ in range(n):
                kind = data[p]
                p += 1
                if kind == 0x00:
                    mod, p = read_uleb(data, p)
                    k, p = read_uleb(data, p)
                    args: dict[str, int] = {}
                    for _ in range(k):
                        name, p = _name(data, p)
                        if data[p] != CORE_INSTANCE:
                            raise WasmFormatError("core instantiate argument is not an instance")
                        args[name], p = read_uleb(data, p + 1)
                    comp.core_instances.append(CoreInstance(mod, args, {}))
                elif kind == 0x01:
                    k, p = read_uleb(data, p)
                    items: dict[str, tuple[int, int]] = {}
                    for _ in range(k):
                        name, p = _name(data, p)
                        sort = data[p]
                        idx, p = read_uleb(data, p + 1)
                        items[name] = (sort, idx)
                    comp.core_instances.append(CoreInstance(None, {}, items))
                else:
                    raise WasmFormatError(f"unsupported core instance form 0x{kind:02x}")
        elif sid == _ALIAS:
            n, p = read_uleb(data, p)
            for _ in range(n):
                sort = data[p]
                p += 1
                core_sort = None
                if sort == SORT_CORE:
                    core_sort = data[p]
                    p += 1
                target = data[p]
                p += 1
                if target in (0x00, 0x01):
                    inst, p = read_uleb(data, p)
                    name, p = _name(data, p)
                    alias = Alias(inst, name)
                elif target == 0x02:
                    _, p = read_uleb(data, p)
                    _, p = read_uleb(data, p)
                    alias = Alias(-1, "")  # outer alias: only types use it here
                else:
                    raise WasmFormatError(f"unsupported alias target 0x{target:02x}")
                if core_sort is not None:
                    if core_sort in comp.core:
                        comp.core[core_sort].append(alias)
                    elif core_sort == CORE_INSTANCE:
                        comp.core_instances.append(CoreInstance(None, {}, {}))
                elif sort == SORT_FUNC:
                    comp.funcs.append(alias)
                elif sort == SORT_INSTANCE:
                    comp.instances.append(None)
        elif sid == _CANON:
            n, p = read_uleb(data, p)
            for _ in range(n):
                op = data[p]
                p += 1
                if op == 0x00:  # lift: 0x00 core-func opts type
                    f, p = read_uleb(data, p + 1)
                    mem, realloc, post, p = _canon_opts(data, p)
                    ty, p = read_uleb(data, p)
                    comp.funcs.append(Lift(f, mem, realloc, post, ty))
                elif op == 0x01:  # lower: 0x00 func opts
                    f, p = read_uleb(data, p + 1)
                    mem, realloc, _post, p = _canon_opts(data, p)
                    comp.core[CORE_FUNC].append(Lower(f, mem, realloc))
                elif op in (0x02, 0x03, 0x04, 0x07):
                    ty, p = read_uleb(data, p)
                    name = {
                        0x02: "resource.new",
                        0x03: "resource.drop",
                        0x04: "resource.rep",
                        0x07: "resource.drop",
                    }[op]
                    comp.core[CORE_FUNC].append(Builtin(name, ty))
                else:
                    raise WasmFormatError(f"unsupported canon opcode 0x{op:02x} (async builtins?)")
        elif sid == _IMPORT:
            n, p = read_uleb(data, p)
            for _ in range(n):
                name, p = _extern_name(data, p)
                sort, p = _externdesc(data, p)
                if sort == SORT_FUNC:
                    comp.funcs.append(Import(name))
                elif sort == SORT_INSTANCE:
                    comp.instances.append(Import(name))
        elif sid == _EXPORT:
            n, p = read_uleb(data, p)
            for _ in range(n):
                name, p = _extern_name(data, p)
                sort = data[p]
                p += 1
                if sort == SORT_CORE:
                    p += 1
                idx, p = read_uleb(data, p)
                if data[p] == 0x01:
                    _, p = _externdesc(data, p + 1)
                else:
                    p += 1
                comp.exports.append((name, sort, idx))
                # An export introduces a new index in its sort's space.
                if sort == SORT_FUNC:
                    comp.funcs.append(comp.funcs[idx])
                elif sort == SORT_INSTANCE:
                    comp.instances.append(None)
        elif sid == _INSTANCE:
            n, _ = read_uleb(data, p)
            comp.instances.extend([None] * n)
        elif sid == _START:
            raise WasmFormatError("component start functions are not supported")
        elif sid not in (_CUSTOM, _CORE_TYPE, _COMPONENT, _TYPE):
            raise WasmFormatError(f"unsupported component section {sid}")
    return comp
