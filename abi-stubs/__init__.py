"""The proxy-wasm ABI v0.2.1, declared once (``abi.toml``) and read as data.

Everything that must agree with the ABI is generated from, or checked against,
this table:

* the typing stub of the low-level host module ``_proxywasm`` (``_proxywasm.pyi``,
  :func:`render_stub`),
* the C glue that implements ``_proxywasm`` inside a compiled module,
* the wasmtime host that runs a compiled module against the emulator,
* the emulator conformance test (every host function is implemented, with the
  Python-level signature derived here).

The Python-level signature of a host import follows three rules, applied to the
C-level parameters of the spec:

1. an input pointer ``X_data`` followed by ``X_size`` becomes one ``bytes``
   parameter ``X``;
2. an output pair ``return_X_data`` (``**``) + ``return_X_size`` becomes one
   ``bytes`` output ``X``; any other ``return_X`` pointer becomes an ``int``
   output ``X``;
3. every other parameter is an ``int``.

A function without outputs returns its ``proxy_status_t`` as an ``int``; a
function with outputs returns a tuple ``(status, *outputs)``.  Outputs are zero
(or ``b""``) when the status is not ``OK``.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

__all__ = [
    "STUB_PATH",
    "Abi",
    "Function",
    "Param",
    "PyParam",
    "load",
    "render_stub",
]

HERE = Path(__file__).resolve().parent
TABLE_PATH = HERE / "abi.toml"
STUB_PATH = HERE / "_proxywasm.pyi"


@dataclass(frozen=True)
class Param:
    """One C-level parameter or result: its name, wasm value type and C type."""

    name: str
    wasm_type: str  # "i32" | "i64"
    c_type: str

    @property
    def is_pointer(self) -> bool:
        return self.c_type.endswith("*")

    @property
    def is_double_pointer(self) -> bool:
        return self.c_type.endswith("**")


@dataclass(frozen=True)
class PyParam:
    """A Python-level parameter or output: ``kind`` is ``"bytes"`` or ``"int"``.

    ``c_params`` names the C-level parameters it stands for (one or two).
    """

    name: str
    kind: str
    c_params: tuple[Param, ...]


@dataclass(frozen=True)
class Function:
    """A host import (``direction == "import"``) or a module export."""

    name: str
    module: str  # "env", "wasi_snapshot_preview1", or "" for exports
    group: str
    direction: str
    params: tuple[Param, ...]
    results: tuple[Param, ...]

    @property
    def is_proxy_import(self) -> bool:
        """True for the ``env.proxy_*`` host functions that ``_proxywasm`` wraps."""
        return self.direction == "import" and self.module == "env"

    @property
    def is_callback(self) -> bool:
        """True for the ``proxy_on_*`` callbacks the dispatcher answers."""
        return (
            self.direction == "export"
            and self.name.startswith("proxy_on_")
            and self.name != "proxy_on_memory_allocate"
        )

    def py_inputs(self) -> list[PyParam]:
        """Python-level input parameters (see the module docstring for the rules)."""
        out: list[PyParam] = []
        params = list(self.params)
        i = 0
        while i < len(params):
            p = params[i]
            if p.name.startswith("return_"):
                i += 1
                continue
            nxt = params[i + 1] if i + 1 < len(params) else None
            if (
                p.name.endswith("_data")
                and p.is_pointer
                and nxt is not None
                and nxt.name == p.name[: -len("_data")] + "_size"
            ):
                out.append(PyParam(p.name[: -len("_data")], "bytes", (p, nxt)))
                i += 2
                continue
            out.append(PyParam(p.name, "int", (p,)))
            i += 1
        return out

    def py_outputs(self) -> list[PyParam]:
        """Python-level outputs, in order, after the leading status."""
        out: list[PyParam] = []
        params = [p for p in self.params if p.name.startswith("return_")]
        i = 0
        while i < len(params):
            p = params[i]
            base = p.name[len("return_") :]
            nxt = params[i + 1] if i + 1 < len(params) else None
            if (
                p.is_double_pointer
                and base.endswith("_data")
                and nxt is not None
                and nxt.name == p.name[: -len("_data")] + "_size"
            ):
                out.append(PyParam(base[: -len("_data")], "bytes", (p, nxt)))
                i += 2
                continue
            out.append(PyParam(base, "int", (p,)))
            i += 1
        return out


@dataclass(frozen=True)
class Abi:
    """The whole table: version, enums (name -> member -> value), functions."""

    version: str
    enums: dict[str, dict[str, int]]
    imports: tuple[Function, ...]
    exports: tuple[Function, ...]

    @property
    def proxy_imports(self) -> list[Function]:
        return [f for f in self.imports if f.is_proxy_import]

    @property
    def wasi_imports(self) -> list[Function]:
        return [f for f in self.imports if f.module == "wasi_snapshot_preview1"]

    @property
    def callbacks(self) -> list[Function]:
        return [f for f in self.exports if f.is_callback]

    def function(self, name: str) -> Function:
        for f in (*self.imports, *self.exports):
            if f.name == name:
                return f
        raise KeyError(name)


def _params(rows: list[list[str]]) -> tuple[Param, ...]:
    return tuple(Param(name, wasm, ctype) for name, wasm, ctype in rows)


@cache
def load() -> Abi:
    """Read ``abi.toml`` once."""
    with TABLE_PATH.open("rb") as fh:
        raw = tomllib.load(fh)

    def fn(row: dict[str, object], direction: str) -> Function:
        return Function(
            name=str(row["name"]),
            module=str(row.get("module", "")),
            group=str(row["group"]),
            direction=direction,
            params=_params(row["params"]),  # type: ignore[arg-type]
            results=_params(row["results"]),  # type: ignore[arg-type]
        )

    return Abi(
        version=str(raw["abi_version"]),
        enums={k: dict(v) for k, v in raw["enums"].items()},
        imports=tuple(fn(r, "import") for r in raw["imports"]),
        exports=tuple(fn(r, "export") for r in raw["exports"]),
    )


def _py_type(kind: str) -> str:
    return "bytes" if kind == "bytes" else "int"


def render_stub(abi: Abi | None = None) -> str:
    """The text of ``_proxywasm.pyi``: module functions plus a ``Protocol``.

    The ``Protocol`` (``HostABI``) is what the emulator and the wasmtime host
    satisfy; the module-level functions are what the SDK imports.
    """
    abi = abi or load()
    head = [
        "# Generated from abi.toml by `python -m proxywasm_abi`. Do not edit.",
        f'"""Low-level host module of proxy-wasm ABI v{abi.version}, as seen from Python.',
        "",
        "Inside a compiled module it is the generated C glue; natively it is the",
        "null runtime (`proxywasm.testing.HostEmulator`). Functions without outputs",
        "return the proxy_status_t; the others return (status, *outputs).",
        '"""',
        "",
        "from typing_extensions import Protocol",
        "",
    ]
    mod: list[str] = []
    proto: list[str] = [
        "",
        "class HostABI(Protocol):",
        '    """Every host function of the ABI."""',
        "",
    ]
    for f in abi.proxy_imports:
        ins = ", ".join(f"{p.name}: {_py_type(p.kind)}" for p in f.py_inputs())
        outs = f.py_outputs()
        ret = (
            "int"
            if not outs
            else "tuple[int, {}]".format(", ".join(_py_type(o.kind) for o in outs))
        )
        mod.append(f"def {f.name}({ins}) -> {ret}: ...")
        sep = ", " if ins else ""
        proto.append(f"    def {f.name}(self{sep}{ins}) -> {ret}: ...")
    return "\n".join(head + mod + proto) + "\n"
