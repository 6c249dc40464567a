"""Pre-initialisation snapshots (what Wizer does), in pure Python over wasmtime.

``snapshot(wasm, init=("pw_init",))``:

1. parse the module with our own LEB128 section walker;
2. make an instrumented copy whose export section also exports every defined
   mutable global (``__stack_pointer`` and friends), every defined table and,
   if needed, the memory;
3. instantiate it with Envoy's WASI subset (``envoy_wasi``), call
   ``_initialize`` (crt1-reactor: C constructors) then the init functions;
4. write a new module from the *original* bytes in which only these sections
   change: global (mutable globals get their current values as initialisers),
   export (``_initialize`` and the init exports are dropped), memory (minimum =
   current size), data (the memory contents, non-zero runs merged so there are
   a few thousand segments, far below V8's 100 k limit), datacount (new
   count); the start section is dropped.  Code is never touched.

Tables are copied unchanged: if init grew one, the snapshot fails.
"""

from __future__ import annotations

import dataclasses
import re
import struct
import time
from collections.abc import Sequence

import wasmtime

from .envoy_wasi import EnvoyWasi, ProcExit, instantiate
from .wasmbin import (
    KIND_GLOBAL,
    KIND_MEMORY,
    KIND_TABLE,
    PAGE,
    SEC_DATA,
    SEC_DATACOUNT,
    SEC_EXPORT,
    SEC_GLOBAL,
    SEC_MEMORY,
    SEC_START,
    SEC_TABLE,
    VT_F32,
    VT_F64,
    VT_I32,
    VT_I64,
    Export,
    ModuleInfo,
    WasmFormatError,
    encode_exports,
    parse_module,
    read_sleb,
    read_uleb,
    rewrite,
    skip_reftype,
    sleb,
    uleb,
)

_SNAP_PREFIX = "__pw_snapshot_"

#: V8 refuses modules with more than 100,000 data segments; stay well below
#: (measured: 4,000 -> 30,000 segments saves ~0.4 MB on a 6 MB module).
DEFAULT_MAX_SEGMENTS = 30000
#: Initial zero-gap threshold when merging non-zero runs: a segment costs ~6-8
#: bytes of header, so shorter zero gaps are cheaper to store than to split.
DEFAULT_MIN_GAP = 10


class SnapshotError(RuntimeError):
    """Pre-initialisation failed; the message says where."""


# --- writing --------------------------------------------------------------------------


def _const_expr(valtype: int, value: object) -> bytes:
    if valtype == VT_I32:
        v = int(value)  # type: ignore[call-overload]
        v = v - (1 << 32) if v >= 1 << 31 else v
        return b"\x41" + sleb(v) + b"\x0b"
    if valtype == VT_I64:
        v = int(value)  # type: ignore[call-overload]
        v = v - (1 << 64) if v >= 1 << 63 else v
        return b"\x42" + sleb(v) + b"\x0b"
    if valtype == VT_F32:
        return b"\x43" + struct.pack("<f", float(value)) + b"\x0b"  # type: ignore[arg-type]
    if valtype == VT_F64:
        return b"\x44" + struct.pack("<d", float(value)) + b"\x0b"  # type: ignore[arg-type]
    raise SnapshotError(f"cannot snapshot a mutable global of value type 0x{valtype:02x}")


def _encode_globals(info: ModuleInfo, values: dict[int, object]) -> bytes:
    out = bytearray(uleb(len(info.globals)))
    for g in info.globals:
        out += g.type_bytes
        out.append(1 if g.mutable else 0)
        if g.mutable and g.index in values:
            out += _const_expr(g.valtype, values[g.index])
        else:
            out += g.init
    return bytes(out)


def data_segments(
    mem: bytes, *, min_gap: int = DEFAULT_MIN_GAP, max_segments: int = DEFAULT_MAX_SEGMENTS
) -> list[tuple[int, int]]:
    """(start, end) ranges covering every non-zero byte of mem.

    Runs of non-zero bytes separated by fewer than `gap` zero bytes are merged;
    the gap doubles until there are at most max_segments ranges.
    """
    gap = max(1, min_gap)
    while True:
        ranges: list[tuple[int, int]] = []
        first = re.search(rb"[^\x00]", mem)
        if first is None:
            return []
        pos = first.start()
        for m in re.finditer(rb"\x00{%d,}" % gap, mem):
            if m.start() <= pos:
                pos = max(pos, m.end())
                continue
            ranges.append((pos, m.start()))
            pos = m.end()
        last = len(mem.rstrip(b"\x00"))
        if pos < last:
            ranges.append((pos, last))
        if len(ranges) <= max_segments:
            return ranges
        gap *= 2


def _encode_data(mem: bytes, ranges: Sequence[tuple[int, int]]) -> bytes:
    out = bytearray(uleb(len(ranges)))
    for start, end in ranges:
        out += b"\x00\x41" + sleb(start - (1 << 32) if start >= 1 << 31 else start) + b"\x0b"
        out += uleb(end - start) + mem[start:end]
    return bytes(out)


@dataclasses.dataclass
class SnapshotResult:
    wasm: bytes
    memory_bytes: int  # linear memory size after init
    data_bytes: int  # bytes stored in data segments
    segments: int
    init_seconds: float
    output: str  # what the module wrote to fds 1-2 during init


def instrument(info: ModuleInfo) -> bytes:
    """A copy of the module that also exports its mutable globals, tables and memory."""
    exports = list(info.exports)
    for g in info.globals:
        if g.mutable:
            exports.append(Export(f"{_SNAP_PREFIX}global_{g.index}", KIND_GLOBAL, g.index))
    for t in range(info.defined_tables):
        exports.append(Export(f"{_SNAP_PREFIX}table_{t}", KIND_TABLE, info.imported_tables + t))
    if info.memory_limits is not None:
        exports.append(Export(f"{_SNAP_PREFIX}memory", KIND_MEMORY, 0))
    return rewrite(info, {SEC_EXPORT: encode_exports(exports)})


def snapshot_engine() -> wasmtime.Engine:
    """An engine for running init once: compiling fast matters more than running fast
    (Cranelift without optimisation compiles CPython ~1.5x faster)."""
    cfg = wasmtime.Config()
    cfg.cranelift_opt_level = "none"
    return wasmtime.Engine(cfg)


def snapshot(
    wasm: bytes,
    init: Sequence[str] = ("pw_init",),
    *,
    engine: wasmtime.Engine | None = None,
    host: EnvoyWasi | None = None,
    keep_exports: Sequence[str] = (),
    min_gap: int = DEFAULT_MIN_GAP,
    max_segments: int = DEFAULT_MAX_SEGMENTS,
    zero_dead_stack: bool = True,
) -> SnapshotResult:
    """Run `_initialize` and the init functions, return the pre-initialised module.

    Each init function must take no arguments and return nothing or an i32
    (non-zero means failure).  `zero_dead_stack` treats the dead part of a
    --stack-first stack (below the stack pointer, which is back at its initial
    value) as zeros, so leftovers of init's calls are not stored.
    """
    wasm = bytes(wasm)
    try:
        info = parse_module(wasm)
    except (WasmFormatError, IndexError, UnicodeDecodeError) as e:
        raise SnapshotError(f"cannot parse the module: {e}") from e
    if info.memory_limits is None:
        raise SnapshotError("the module defines no memory (imported memory is not supported)")
    names = {e.name for e in info.exports}
    for name in init:
        if name not in names:
            raise SnapshotError(f"the module exports no init function {name!r}")
    if any(mode == 1 for mode, _, _ in info.data_segments):
        raise SnapshotError(
            "the module has passive data segments (shared memory/TLS?); "
            "code refers to them by index, so they cannot be replaced"
        )
    if info.section(SEC_START) is not None:
        raise SnapshotError("the module has a start section; link it as a reactor (crt1-reactor.o)")

    engine = engine or snapshot_engine()
    module = wasmtime.Module(engine, instrument(info))
    store, inst, host = instantiate(engine, module, host)
    exports = inst.exports(store)
    t0 = time.perf_counter()
    calls = (["_initialize"] if "_initialize" in names else []) + list(init)
    for name in calls:
        fn = exports[name]
        if not isinstance(fn, wasmtime.Func):
            raise SnapshotError(f"export {name!r} is not a function")
        try:
            rc = fn(store)
        except ProcExit as e:
            raise SnapshotError(
                f"{name}() called proc_exit({e.code}); output:\n{host.stderr}{host.stdout}"
            ) from e
        except wasmtime.Trap as e:
            raise SnapshotError(
                f"{name}() trapped: {e}\noutput:\n{host.stderr}{host.stdout}"
            ) from e
        except wasmtime.WasmtimeError as e:
            raise SnapshotError(f"{name}() failed: {e}\noutput:\n{host.stderr}{host.stdout}") from e
        if isinstance(rc, int) and rc != 0:
            raise SnapshotError(f"{name}() returned {rc}; output:\n{host.stderr}{host.stdout}")
    init_seconds = time.perf_counter() - t0

    mem_obj = exports[f"{_SNAP_PREFIX}memory"]
    assert isinstance(mem_obj, wasmtime.Memory)
    mem_len = mem_obj.data_len(store)
    mem = bytearray(mem_obj.read(store, 0, mem_len))

    values: dict[int, object] = {}
    for g in info.globals:
        if g.mutable:
            gobj = exports[f"{_SNAP_PREFIX}global_{g.index}"]
            assert isinstance(gobj, wasmtime.Global)
            values[g.index] = gobj.value(store)

    tables_sec = info.section(SEC_TABLE)
    if tables_sec is not None:
        p = tables_sec.start
        n, p = read_uleb(wasm, p)
        for t in range(n):
            p = skip_reftype(wasm, p)
            flags = wasm[p]
            tmin, p = read_uleb(wasm, p + 1)
            if flags & 1:
                _, p = read_uleb(wasm, p)
            tobj = exports[f"{_SNAP_PREFIX}table_{t}"]
            assert isinstance(tobj, wasmtime.Table)
            if tobj.size(store) != tmin:
                raise SnapshotError(
                    f"init grew table {t} from {tmin} to {tobj.size(store)} entries; "
                    "tables are copied unchanged, so this cannot be snapshotted"
                )

    if zero_dead_stack:
        sp = _dead_stack_top(info, values)
        if sp:
            mem[:sp] = bytes(sp)

    ranges = data_segments(bytes(mem), min_gap=min_gap, max_segments=max_segments)
    drop = {"_initialize", *init} - set(keep_exports)
    new_exports = [e for e in info.exports if e.name not in drop]
    flags, _, mx = info.memory_limits
    pages = mem_len // PAGE
    if mx is not None and pages > mx:
        raise SnapshotError(f"memory grew to {pages} pages, above its maximum {mx}")
    mem_payload = uleb(1) + bytes([flags]) + uleb(pages) + (uleb(mx) if mx is not None else b"")
    replace: dict[int, bytes | None] = {
        SEC_GLOBAL: _encode_globals(info, values) if info.globals else None,
        SEC_EXPORT: encode_exports(new_exports),
        SEC_MEMORY: mem_payload,
        SEC_DATA: _encode_data(bytes(mem), ranges),
        SEC_START: None,
    }
    if not info.globals:
        del replace[SEC_GLOBAL]
    if info.section(SEC_DATACOUNT) is not None:
        replace[SEC_DATACOUNT] = uleb(len(ranges))
    out = rewrite(info, replace)
    return SnapshotResult(
        out,
        mem_len,
        sum(e - s for s, e in ranges),
        len(ranges),
        init_seconds,
        host.stderr + host.stdout,
    )


def _dead_stack_top(info: ModuleInfo, values: dict[int, object]) -> int:
    """The stack pointer if memory below it is provably dead stack, else 0.

    wasm-ld makes __stack_pointer the first defined global.  With --stack-first
    the stack occupies [0, initial SP) and every data segment lies above it;
    after init returned, SP is back at its initial value and nothing below it
    is live.
    """
    if info.imported_globals or not info.globals:
        return 0
    g = info.globals[0]
    if not (g.mutable and g.valtype == VT_I32 and g.init[:1] == b"\x41"):
        return 0
    initial, _ = read_sleb(g.init, 1)
    if values.get(g.index) != initial or initial <= 0:
        return 0
    active = [off for mode, off, _ in info.data_segments if mode in (0, 2)]
    if any(off < 0 or off < initial for off in active):
        return 0
    return initial
