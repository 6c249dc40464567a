"""Freeze Python modules: marshalled CPython 3.11 code objects as C data.

Marshalled code is bound to the CPython version that made it, and the user's
own Python may be 3.12 or 3.13, so the code objects are produced by the
sdist's ``bin/python3.11.wasm`` run under wasmtime (WASI; a job dir with the
sources preopened), never by the host's ``marshal``.  All modules of a build
are compiled in one run of the interpreter.

``frozen_c_source`` turns the result into a C file defining
``_pw_frozen_modules`` (a ``struct _frozen`` table for
``PyImport_FrozenModules``) and ``_pw_init_imports`` (the modules ``pw_init``
imports), which ``runtime.c`` uses.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import tempfile
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

import wasmtime

from .toolchain import Toolchain

#: Modules CPython 3.11 imports during start-up that libpython does not
#: already carry frozen (its deep-frozen set has importlib's bootstrap, zipimport,
#: abc, codecs, io, os, stat, posixpath, site, ...): the codec machinery for the
#: UTF-8 filesystem and stdio encodings.
STARTUP_MODULES: tuple[str, ...] = ("encodings", "encodings.aliases", "encodings.utf_8")


class FreezeError(RuntimeError):
    """A module could not be frozen; the message names it."""


@dataclasses.dataclass(frozen=True)
class ModuleSource:
    name: str  # dotted module name
    source: bytes  # Python source
    is_package: bool = False
    filename: str | None = None  # co_filename; default "<frozen NAME>" as CPython's own
    strip_docstrings: bool = False  # smaller snapshot; __doc__ becomes None

    @property
    def co_filename(self) -> str:
        return self.filename or f"<frozen {self.name}>"


@dataclasses.dataclass(frozen=True)
class FrozenModule:
    name: str
    code: bytes  # marshal.dumps(code object), CPython 3.11
    is_package: bool


def stdlib_source(tc: Toolchain, name: str) -> ModuleSource:
    """The source of a pure-Python stdlib module of the 3.11 toolchain."""
    base = tc.stdlib_dir.joinpath(*name.split("."))
    pkg_init = base / "__init__.py"
    if pkg_init.is_file():
        return ModuleSource(name, pkg_init.read_bytes(), is_package=True)
    mod = base.with_suffix(".py")
    if mod.is_file():
        return ModuleSource(name, mod.read_bytes())
    raise FreezeError(
        f"cannot freeze {name!r}: no {base.relative_to(tc.stdlib_dir)}.py "
        f"or package in the CPython 3.11 stdlib ({tc.stdlib_dir})"
    )


# --- the 3.11 interpreter under wasmtime ---------------------------------------

_engine_lock = threading.Lock()
_engine: wasmtime.Engine | None = None
_modules: dict[Path, wasmtime.Module] = {}


def _get_engine() -> wasmtime.Engine:
    global _engine
    if _engine is None:
        _engine = wasmtime.Engine()
    return _engine


def python_wasm_module(tc: Toolchain) -> tuple[wasmtime.Engine, wasmtime.Module]:
    """The compiled python3.11.wasm; the machine code is cached next to it.

    Compiling the 20 MB interpreter with Cranelift takes seconds; the
    serialised artefact loads in about a millisecond.
    """
    with _engine_lock:
        engine = _get_engine()
        mod = _modules.get(tc.python_wasm)
        if mod is not None:
            return engine, mod
        key = f"wasmtime-{wasmtime.__version__ if hasattr(wasmtime, '__version__') else _wasmtime_version()}"
        cwasm = tc.python_wasm.with_name(f"python3.11.{key}-{platform.machine()}.cwasm")
        mod = None
        if cwasm.is_file():
            try:
                mod = wasmtime.Module.deserialize_file(engine, str(cwasm))
            except wasmtime.WasmtimeError:
                mod = None  # stale or foreign artefact: rebuild it
        if mod is None:
            mod = wasmtime.Module.from_file(engine, str(tc.python_wasm))
            fd, tmp = tempfile.mkstemp(dir=cwasm.parent, prefix=".cwasm-")
            with os.fdopen(fd, "wb") as f:
                f.write(mod.serialize())
            os.replace(tmp, cwasm)
        _modules[tc.python_wasm] = mod
        return engine, mod


def _wasmtime_version() -> str:
    from importlib.metadata import version

    return version("wasmtime")


_DRIVER = r"""
import ast, json, marshal, sys
job = json.load(open("/job/request.json"))

def strip(tree):
    # Drop docstrings (a body's first string constant); keep line numbers.
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) \
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
            if len(body) > 1:
                del body[0]
            else:
                body[0] = ast.copy_location(ast.Pass(), body[0])
    return tree

for i, m in enumerate(job["modules"]):
    with open("/job/src/%d.py" % i, "rb") as f:
        src = f.read()
    try:
        if m.get("strip"):
            src = strip(ast.parse(src, m["filename"]))
        code = compile(src, m["filename"], "exec", dont_inherit=True, optimize=job["optimize"])
    except SyntaxError as e:
        with open("/job/error.json", "w") as f:
            json.dump({"module": m["name"], "error": "%s: %s (line %s)" % (type(e).__name__, e.msg, e.lineno)}, f)
        sys.exit(3)
    with open("/job/out/%d.bin" % i, "wb") as f:
        f.write(marshal.dumps(code))
"""


def run_python_wasm(
    tc: Toolchain, argv: Sequence[str], preopens: dict[str, Path]
) -> tuple[int, str]:
    """Run python3.11.wasm (WASI) with the stdlib at /py; returns (exit code, stderr+stdout)."""
    engine, module = python_wasm_module(tc)
    with tempfile.TemporaryDirectory(prefix="pw-py311-") as td:
        out, err = Path(td) / "stdout", Path(td) / "stderr"
        wasi = wasmtime.WasiConfig()
        wasi.argv = ["python3.11", *argv]
        wasi.env = [
            ("PYTHONHOME", "/py"),
            ("PYTHONDONTWRITEBYTECODE", "1"),
            ("PYTHONHASHSEED", "0"),
        ]
        wasi.preopen_dir(str(tc.stdlib_dir), "/py/lib/python3.11")
        for guest, host in preopens.items():
            wasi.preopen_dir(str(host), guest)
        wasi.stdout_file = str(out)
        wasi.stderr_file = str(err)
        store = wasmtime.Store(engine)
        store.set_wasi(wasi)
        linker = wasmtime.Linker(engine)
        linker.define_wasi()
        inst = linker.instantiate(store, module)
        start = inst.exports(store)["_start"]
        assert isinstance(start, wasmtime.Func)
        code = 0
        try:
            start(store)
        except wasmtime.ExitTrap as e:
            code = e.code
        except wasmtime.Trap as e:
            code = -1
            err.write_text((err.read_text() if err.exists() else "") + f"\ntrap: {e}")
        text = (out.read_text(errors="replace") if out.exists() else "") + (
            err.read_text(errors="replace") if err.exists() else ""
        )
        return code, text


def compile_modules(
    tc: Toolchain, sources: Iterable[ModuleSource], *, optimize: int = 0
) -> list[FrozenModule]:
    """Compile and marshal modules with CPython 3.11 (python3.11.wasm)."""
    sources = list(sources)
    names = [s.name for s in sources]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise FreezeError(f"modules given twice: {', '.join(sorted(dupes))}")
    if not sources:
        return []
    with tempfile.TemporaryDirectory(prefix="pw-freeze-") as td:
        job = Path(td)
        (job / "src").mkdir()
        (job / "out").mkdir()
        for i, s in enumerate(sources):
            (job / "src" / f"{i}.py").write_bytes(s.source)
        (job / "request.json").write_text(
            json.dumps(
                {
                    "optimize": optimize,
                    "modules": [
                        {"name": s.name, "filename": s.co_filename, "strip": s.strip_docstrings}
                        for s in sources
                    ],
                }
            )
        )
        (job / "driver.py").write_text(_DRIVER)
        code, output = run_python_wasm(tc, ["-S", "-B", "-s", "/job/driver.py"], {"/job": job})
        if (job / "error.json").is_file():
            e = json.loads((job / "error.json").read_text())
            raise FreezeError(f"cannot freeze {e['module']!r}: {e['error']}")
        if code != 0:
            raise FreezeError(
                f"python3.11.wasm failed (exit {code}) while freezing "
                f"{', '.join(names)}:\n{output[-4000:]}"
            )
        return [
            FrozenModule(s.name, (job / "out" / f"{i}.bin").read_bytes(), s.is_package)
            for i, s in enumerate(sources)
        ]


# --- C output -------------------------------------------------------------------


def _c_ident(name: str) -> str:
    return "_pw_frozen_" + "".join(c if c.isalnum() else "_" for c in name)


def _c_string(s: str) -> str:
    """A C string literal for an ASCII string (anything unusual octal-escaped)."""
    return '"' + "".join(c if (c.isalnum() or c in "._-") else f"\\{ord(c):03o}" for c in s) + '"'


def _c_bytes(data: bytes, width: int = 32) -> str:
    lines = []
    for i in range(0, len(data), width):
        lines.append('    "' + "".join(f"\\x{b:02x}" for b in data[i : i + width]) + '"')
    return "\n".join(lines) if lines else '    ""'


def frozen_c_source(modules: Sequence[FrozenModule], init_imports: Sequence[str] = ()) -> str:
    """C source defining ``_pw_frozen_modules`` and ``_pw_init_imports``."""
    for name in init_imports:
        if not name.isascii():
            raise FreezeError(f"module name must be ASCII: {name!r}")
    parts = [
        "/* Generated by proxywasm_compiler.freeze: frozen CPython 3.11 modules. */",
        "#include <Python.h>",
        "",
    ]
    idents: dict[str, str] = {}
    for m in modules:
        if not m.name.isascii():
            raise FreezeError(f"module name must be ASCII: {m.name!r}")
        ident = _c_ident(m.name)
        while ident in idents.values():
            ident += "_"
        idents[m.name] = ident
        parts.append(f"static unsigned char {ident}[{len(m.code)}] =\n{_c_bytes(m.code)};")
    parts.append("")
    parts.append("struct _frozen _pw_frozen_modules[] = {")
    for m in modules:
        parts.append(
            f"    {{{_c_string(m.name)}, {idents[m.name]}, (int)sizeof({idents[m.name]}), "
            f"{1 if m.is_package else 0}, NULL}},"
        )
    parts.append("    {NULL, NULL, 0, 0, NULL},")
    parts.append("};")
    parts.append("")
    parts.append("const char *const _pw_init_imports[] = {")
    for name in init_imports:
        parts.append(f"    {_c_string(name)},")
    parts.append("    NULL,")
    parts.append("};")
    parts.append("")
    return "\n".join(parts)
