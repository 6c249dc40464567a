"""Compile C for wasm32-wasi and link the proxy-wasm core module.

* compile: ``python -m proxywasm_compiler.zig cc -target wasm32-wasi -O2 -c`` with the
  CPython 3.11 headers;
* link: ``python -m proxywasm_compiler.zig wasm-ld`` called directly (``zig cc`` as a linker
  fails on libpython: duplicate pthread stubs and refused flags) as a reactor
  (``crt1-reactor.o``: exports ``_initialize``) with ``--no-entry
  --export-memory --stack-first -z stack-size=N``, our objects, then
  libpython / libmpdec / libexpat, then zig's ``libc.a``, ``libzigc.a``,
  ``libcompiler_rt.a``;
* check: the module's imports must be ``env.*`` (proxy-wasm host functions)
  or one of the WASI functions Envoy provides; ``wasi_stubs.c`` defines the
  rest inside the module.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import shlex
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

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
    if strip:
        cmd.append("--strip-all")
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
) -> BuildResult:
    """Compile runtime.c, wasi_stubs.c, the frozen-module table and extra_sources; link; check."""
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
        lcmd = link_cmd(tc, objects, out, exports=exports, stack_size=stack_size, strip=strip)
        _run(lcmd, f"linking {out.name}")
    imports = check_imports(out)
    return BuildResult(out, imports, cmds, lcmd)
