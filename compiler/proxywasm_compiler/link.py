"""Compile C for wasm32-wasi and link the proxy-wasm core module.

* compile: ``python -m proxywasm_compiler.zig cc -target wasm32-wasi -O2 -c`` with the
  CPython 3.11 headers;
* link: ``python -m proxywasm_compiler.zig wasm-ld`` called directly (``zig cc`` as a linker
  fails on libpython: duplicate pthread stubs and refused flags) as a reactor
  (``crt1-reactor.o``: exports ``_initialize``) with ``--no-entry
  --export-memory --stack-first -z stack-size=N``, our objects, then
  libpython / libmpdec / libexpat, then zig's ``libc.a``, ``libzigc.a``,
  ``libcompiler_rt.a``; ``--gc-sections``, ``--strip-debug`` (the name
  section stays for the trim pass, which drops it) and ``--emit-relocs``;
* prune: with those relocations, the built-in methods no Python code of the
  module looks up are replaced (:func:`dce.prune_methods`, names from
  :func:`python_names`); the relocation sections go;
* check: the module's imports must be ``env.*`` (proxy-wasm host functions)
  or one of the WASI functions Envoy provides; ``wasi_stubs.c`` defines the
  rest inside the module.
"""

from __future__ import annotations

import ast
import concurrent.futures
import dataclasses
import os
import re
import shlex
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

from . import dce
from .freeze import FrozenModule, frozen_c_source
from .toolchain import Toolchain
from .wasmbin import parse_module

PACKAGE_DIR = Path(__file__).resolve().parent
RUNTIME_C = PACKAGE_DIR / "runtime.c"
WASI_STUBS_C = PACKAGE_DIR / "wasi_stubs.c"
SELFTEST_C = PACKAGE_DIR / "selftest.c"

#: The WASI preview1 functions Envoy's proxy-wasm host (proxy-wasm-cpp-host)
#: provides and our module may import; everything else is defined inside.
ENVOY_WASI_IMPORTS = frozenset(
    {
        "fd_write",
        "clock_time_get",
        "random_get",
        "environ_get",
        "environ_sizes_get",
        "args_get",
        "args_sizes_get",
        "proc_exit",
    }
)
WASI_MODULE = "wasi_snapshot_preview1"
HOST_MODULE = "env"

#: Set (to anything non-empty) to keep the name section and write a link map
#: ``<out>.map`` next to the linked module: what ``benchmarks/code_profile.py``
#: reads to say where the code comes from. Function indices do not change.
PROFILE_ENV = "PROXYWASM_LINK_PROFILE"

DEFAULT_STACK_SIZE = 1 << 20  # 1 MiB: CPython 3.11 recursion in wasm needs room
C_FLAGS = ("-O2",)


class LinkError(RuntimeError):
    """Compiling, linking or checking failed; the message names the step."""


def _run(cmd: list[str], what: str, cwd: Path | None = None) -> str:
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True, cwd=cwd)
    if proc.returncode != 0:
        raise LinkError(
            f"{what} failed (exit {proc.returncode}):\n  {shlex.join(cmd)}\n"
            f"{(proc.stdout + proc.stderr).strip()[-6000:]}"
        )
    return proc.stdout + proc.stderr


def compile_c_cmd(
    tc: Toolchain,
    src: Path,
    out: Path,
    *,
    defines: dict[str, str] | None = None,
    include_dirs: Sequence[Path] = (),
    cflags: Sequence[str] = C_FLAGS,
) -> list[str]:
    cmd = tc.zig_cmd("cc", "-target", "wasm32-wasi", *cflags, "-c", "-I", tc.include_dir)
    for d in include_dirs:
        cmd += ["-I", str(d)]
    for k, v in (defines or {}).items():
        cmd.append(f"-D{k}={v}")
    return cmd + [str(src), "-o", str(out)]


def compile_c(tc: Toolchain, src: Path, out: Path, **kw: object) -> Path:
    _run(compile_c_cmd(tc, src, out, **kw), f"compiling {src.name}")  # type: ignore[arg-type]
    return out


def link_cmd(
    tc: Toolchain,
    objects: Sequence[Path],
    out: Path,
    *,
    exports: Iterable[str] = (),
    stack_size: int = DEFAULT_STACK_SIZE,
    strip: bool = True,
    emit_relocs: bool = False,
) -> list[str]:
    cmd = tc.zig_cmd(
        "wasm-ld",
        "--no-entry",
        "--export-memory",
        "--stack-first",
        "-z",
        f"stack-size={stack_size}",
        "--gc-sections",
    )
    profile = bool(os.environ.get(PROFILE_ENV))
    if strip and not profile:
        # Debug info goes; the name section stays, for the trim pass (dce.py) to
        # find the functions it replaces by name. It drops the section itself.
        cmd.append("--strip-debug")
    if profile:
        cmd.append(f"--Map={out}.map")
    if emit_relocs:  # for dce.prune_methods, which drops them
        cmd.append("--emit-relocs")
    for name in exports:
        cmd.append(f"--export={name}")
    cmd += ["-o", str(out), str(tc.crt1_reactor)]
    cmd += [str(o) for o in objects]
    cmd += [str(tc.libpython), str(tc.libmpdec), str(tc.libexpat)]
    cmd += [str(tc.libc), str(tc.libzigc), str(tc.libcompiler_rt)]
    return cmd


def link(tc: Toolchain, objects: Sequence[Path], out: Path, **kw: object) -> Path:
    _run(link_cmd(tc, objects, out, **kw), f"linking {out.name}")  # type: ignore[arg-type]
    return out


def module_imports(wasm: Path | bytes | bytearray) -> list[tuple[str, str]]:
    """(module, name) of every import, read without compiling the module."""
    data = bytes(wasm) if isinstance(wasm, (bytes, bytearray)) else Path(wasm).read_bytes()
    return [(i.module, i.name) for i in parse_module(data).imports]


def check_imports(wasm: Path | bytes | bytearray) -> list[tuple[str, str]]:
    """Raise LinkError unless every import is env.* or a WASI function Envoy provides."""
    imports = module_imports(wasm)
    bad = [
        f"{m}.{n}"
        for m, n in imports
        if not (m == HOST_MODULE or (m == WASI_MODULE and n in ENVOY_WASI_IMPORTS))
    ]
    if bad:
        raise LinkError("the module imports functions Envoy does not provide: " + ", ".join(bad))
    return imports


@dataclasses.dataclass(frozen=True)
class BuildResult:
    wasm: Path
    imports: list[tuple[str, str]]
    compile_cmds: list[list[str]]
    link_cmd: list[str]
    #: What the method pruning did (None when it did not run).
    pruned: dce.MethodPruneResult | None = None


def build_module(
    tc: Toolchain,
    out: Path,
    *,
    modules: Sequence[FrozenModule],
    init_imports: Sequence[str] = (),
    extra_sources: Sequence[Path] = (),
    exports: Iterable[str] = (),
    defines: dict[str, str] | None = None,
    stack_size: int = DEFAULT_STACK_SIZE,
    strip: bool = True,
    workdir: Path | None = None,
    prune: bool | None = None,
) -> BuildResult:
    """Compile runtime.c, wasi_stubs.c, the frozen-module table and extra_sources; link; check.

    ``prune``: replace the built-in methods no Python code of the module names
    (:func:`dce.prune_methods`); None follows ``PROXYWASM_TRIM`` (on unless
    ``safe`` or ``noprune``).
    """
    with tempfile.TemporaryDirectory(prefix="pw-link-") as td:
        work = workdir or Path(td)
        work.mkdir(parents=True, exist_ok=True)
        frozen_c = work / "pw_frozen.c"
        frozen_c.write_text(frozen_c_source(modules, init_imports))
        sources = [RUNTIME_C, WASI_STUBS_C, frozen_c, *extra_sources]
        stems = [f"{i}_{s.stem}" for i, s in enumerate(sources)]
        objects = [work / f"{stem}.o" for stem in stems]
        cmds = [compile_c_cmd(tc, s, o, defines=defines) for s, o in zip(sources, objects)]
        with concurrent.futures.ThreadPoolExecutor(max_workers=len(cmds)) as pool:
            for f in [pool.submit(_run, c, f"compiling {s.name}") for c, s in zip(cmds, sources)]:
                f.result()
        if prune is None:
            prune = dce.trim_options().prune
        lcmd = link_cmd(
            tc, objects, out, exports=exports, stack_size=stack_size, strip=strip, emit_relocs=prune
        )
        _run(lcmd, f"linking {out.name}")
    pruned = None
    if prune:
        pruned = dce.prune_methods(out.read_bytes(), python_names(tc, modules))
        out.write_bytes(pruned.wasm)
    imports = check_imports(out)
    return BuildResult(out, imports, cmds, lcmd, pruned)


#: Modules libpython froze itself that every interpreter imports at start-up.
STARTUP_FROZEN = (
    "importlib._bootstrap",
    "importlib._bootstrap_external",
    "zipimport",
    "codecs",
    "io",
    "abc",
)
#: What Modules/getpath.py, which libpython runs at start-up to compute its
#: paths (frozen, but not shipped as source), calls of its ``getpath`` module.
GETPATH_NAMES = frozenset(
    {
        "abspath",
        "basename",
        "dirname",
        "hassuffix",
        "isabs",
        "isdir",
        "isfile",
        "isxfile",
        "joinpath",
        "readlines",
        "realpath",
        "warn",
        "nowarn",
    }
)
#: Other names of libpython's frozen modules.
_FROZEN_ALIASES = {
    "_frozen_importlib": "importlib._bootstrap",
    "_frozen_importlib_external": "importlib._bootstrap_external",
    "os.path": "posixpath",
}


def _frozen_sources(tc: Toolchain) -> dict[str, Path]:
    """libpython's own frozen modules (``FROZEN_FILES_IN`` of the Makefile) and their sources."""
    makefile = tc.stdlib_dir / "config-3.11-wasm32-wasi" / "Makefile"
    text = makefile.read_text(errors="replace") if makefile.is_file() else ""
    frozen_in = text[text.find("FROZEN_FILES_IN") :]
    frozen_in = frozen_in[: frozen_in.find("\n\n")]
    out: dict[str, Path] = {}
    for rel in re.findall(r"Lib/([\w/]+)\.py", frozen_in):
        src = tc.stdlib_dir / f"{rel}.py"
        name = rel.replace("/", ".").removesuffix(".__init__")
        if src.is_file():
            out[name] = src
    return out


def _imports(source: bytes) -> set[str]:
    """Every module an ``import`` statement of ``source`` names (function-level ones too)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
    return {_FROZEN_ALIASES.get(n, n) for n in out}


def python_names(tc: Toolchain, modules: Iterable[FrozenModule]) -> set[str]:
    """Every name Python code in the module can look up, for dce.prune_methods.

    The names our frozen modules' code looks up (:func:`dce.code_names`),
    those of the modules libpython froze itself that can run (imported at
    start-up, or by our modules, and what they import in turn; read from
    the toolchain's sources), what its start-up path computation calls
    (:data:`GETPATH_NAMES`) and the interpreter's own identifier table
    (``_Py_ID``, pycore_global_strings.h). A method called at build time
    that this misses fails the build (NotImplementedError in the snapshot).
    """
    names: set[str] = set(GETPATH_NAMES)
    for m in modules:
        names |= dce.code_names(m.code)
    frozen = _frozen_sources(tc)
    # IMPORT_NAME looks up the dotted name; `from a import b` names a and b.
    wanted = {n for n in frozen if n in names or n.rpartition(".")[2] in names}
    todo = [*STARTUP_FROZEN, *wanted]
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen or name not in frozen:
            continue
        seen.add(name)
        source = frozen[name].read_bytes()
        names |= dce.source_names(source)
        todo.extend(_imports(source))
    ids = tc.include_dir / "internal" / "pycore_global_strings.h"
    if ids.is_file():
        names.update(re.findall(r"STRUCT_FOR_(?:ID|STR)\((\w+)", ids.read_text()))
        names |= dce.identifiers(re.findall(rb'"([^"\\]*)"', ids.read_bytes()))
    return names
