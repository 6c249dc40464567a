"""The WIT world of the componentize-py backend, generated from ``abi-stubs/abi.toml``.

Host functions (``env.proxy_*``) become world imports, callbacks
(``proxy_on_*``) world exports. Types are chosen so that the canonical ABI's
lowering of every import is the proxy-wasm ABI itself, once the component's
memory is the module's memory:

* an input byte range ``X_data, X_size`` is a ``list<u8>`` parameter: a list
  parameter flattens to ``(ptr: i32, len: i32)`` in the caller's memory,
  exactly what the host reads;
* every other input is ``u32``, ``u64`` or ``s64`` after its C type;
* a function without outputs returns its status as ``u32``: one flat result,
  so the core signature is the ABI's;
* a function with outputs returns a record ``{status, outputs...}``. Its
  lowering passes a return pointer; the fuser supplies a small core function
  that zeroes the record, calls the host with pointers *into* the record for
  each ``return_*`` parameter (a ``list<u8>`` field is ``(ptr, len)``, which is
  what ``return_X_data`` / ``return_X_size`` write) and stores the status.
  :func:`record_layout` gives those offsets.

Callbacks take and return ``u32`` only, so their lifting is the identity.
Exports the fuser synthesises (``proxy_abi_version_0_2_1``,
``proxy_on_memory_allocate``, ``_initialize``) and the WASI imports (served by
the host directly, not through WIT) are not part of the world.
"""

from __future__ import annotations

import dataclasses
from typing import Any

__all__ = [
    "PACKAGE",
    "WORLD",
    "Field",
    "kebab",
    "record_layout",
    "render_wit",
    "wit_scalar",
]

PACKAGE = "proxywasm:abi@0.2.1"
WORLD = "proxy-wasm"


def _abi() -> Any:
    import proxywasm_abi  # type: ignore[import-not-found]  # installed beside the compiler

    return proxywasm_abi.load()


def kebab(name: str) -> str:
    """``proxy_on_vm_start`` -> ``proxy-on-vm-start`` (WIT identifiers are kebab-case)."""
    return name.replace("_", "-")


def wit_scalar(c_type: str, wasm_type: str) -> str:
    """The WIT integer type of one C-level scalar (or of the value a pointer points to)."""
    base = c_type.rstrip(" *")
    if base == "int64_t":
        return "s64"
    if base == "uint64_t" or wasm_type == "i64":
        return "u64"
    return "u32"


@dataclasses.dataclass(frozen=True)
class Field:
    """One field of an output record: WIT name and type, byte offset in the record."""

    name: str
    wit_type: str  # "u32" | "u64" | "s64" | "list<u8>"
    offset: int


_SIZE_ALIGN = {"u32": (4, 4), "u64": (8, 8), "s64": (8, 8), "list<u8>": (8, 4)}


def _align(n: int, a: int) -> int:
    return (n + a - 1) // a * a


def record_layout(fn: Any) -> tuple[list[Field], int, int]:
    """Fields of the result record of host import `fn`, its size and alignment.

    The layout is the canonical ABI's: each field at the next multiple of its
    alignment; ``list<u8>`` is ``(ptr: u32, len: u32)``.
    """
    fields: list[Field] = []
    pos = 0
    max_align = 4
    entries = [("status", "u32")]
    for out in fn.py_outputs():
        if out.kind == "bytes":
            entries.append((out.name, "list<u8>"))
        else:
            c = out.c_params[0]
            entries.append((out.name, wit_scalar(c.c_type, c.wasm_type)))
    for name, ty in entries:
        size, align = _SIZE_ALIGN[ty]
        pos = _align(pos, align)
        fields.append(Field(name, ty, pos))
        pos += size
        max_align = max(max_align, align)
    return fields, _align(pos, max_align), max_align


def _unique(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for n in names:
        k = seen.get(n, 0)
        seen[n] = k + 1
        out.append(n if k == 0 else f"{n}{k + 1}")
    return out


def _import_line(fn: Any) -> tuple[str, str | None]:
    params = []
    for p in fn.py_inputs():
        if p.kind == "bytes":
            params.append((kebab(p.name), "list<u8>"))
        else:
            c = p.c_params[0]
            params.append((kebab(p.name), wit_scalar(c.c_type, c.wasm_type)))
    args = ", ".join(f"{n}: {t}" for n, t in params)
    record = None
    if fn.py_outputs():
        rname = f"{kebab(fn.name)}-result"
        fields, _, _ = record_layout(fn)
        body = ", ".join(f"{kebab(f.name)}: {f.wit_type}" for f in fields)
        record = f"  record {rname} {{ {body} }}"
        ret = rname
    else:
        ret = "u32"
    return f"  import {kebab(fn.name)}: func({args}) -> {ret};", record


def _export_line(fn: Any) -> str:
    names = _unique([kebab(p.name) for p in fn.params])
    args = ", ".join(f"{n}: u32" for n in names)
    ret = " -> u32" if fn.results else ""
    return f"  export {kebab(fn.name)}: func({args}){ret};"


def render_wit(abi: Any = None) -> str:
    """The text of the world (one ``.wit`` file, package :data:`PACKAGE`)."""
    abi = abi or _abi()
    records: list[str] = []
    imports: list[str] = []
    for fn in abi.proxy_imports:
        line, record = _import_line(fn)
        imports.append(line)
        if record is not None:
            records.append(record)
    exports = [_export_line(fn) for fn in abi.callbacks]
    head = [
        f"// Generated from abi-stubs/abi.toml (proxy-wasm ABI v{abi.version}). Do not edit.",
        f"package {PACKAGE};",
        "",
        f"world {WORLD} {{",
    ]
    return "\n".join([*head, *records, *imports, *exports, "}"]) + "\n"
