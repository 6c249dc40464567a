"""The compact backend: a typed filter compiled to C, then wasm, with no interpreter inside.

Pipeline (each stage a module of this package):

1. :mod:`.frontend` - mypy type-checks the filter against the real SDK; its
   typed AST is lowered to :mod:`.ir` (anything outside the subset is a
   build error naming file:line and the way out, ``--backend cpython``);
2. :mod:`.codegen` - the IR printed as one C file, plus the host imports
   declared from ``abi-stubs/abi.toml``;
3. compile and link with the toolchain's zig (``-Oz``) against the small C
   runtime in ``runtime/`` (values, collector, exceptions, JSON, the SDK's
   dispatcher and host calls) and zig's wasm32-wasi libc;
4. write atomically: nothing half-written is ever left at the output path.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from ...build import BuildError, BuildResult, _Progress, write_module
from .codegen import render_host_header, render_module, render_unicode_header
from .frontend import CompactError, lower_module

__all__ = ["RUNTIME_DIR", "build_compact", "compile_to_c"]

RUNTIME_DIR = Path(__file__).resolve().parent / "runtime"
RUNTIME_SOURCES = ("pw_rt.c", "pw_sdk.c", "pw_views.c")
C_FLAGS = (
    "-Oz",
    "-std=gnu11",
    "-fno-exceptions",
    "-Wall",
    "-Wno-unused-label",
    "-Wno-unused-variable",
    "-Wno-unused-function",
)
#: The compact runtime never recurses deeply: 64 KiB of wasm stack is plenty.
STACK_SIZE = 64 * 1024


def compile_to_c(source: Path | str) -> str:
    """The generated C of a filter (raises :class:`CompactError` outside the subset)."""
    source = Path(source).resolve()
    module = lower_module(source, source.stem)
    return render_module(module)


def _run(cmd: list[str], what: str) -> None:
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True)
    if proc.returncode != 0:
        raise BuildError(
            f"{what} failed (exit {proc.returncode}): {shlex.join(cmd)}\n{(proc.stdout + proc.stderr)[-6000:]}"
        )


def build_compact(
    source: Path | str,
    output: Path | str | None = None,
    *,
    progress: IO[str] | None = None,
    hash_seed: int | None = None,
    keep_compiler: bool = False,
    include: Sequence[str] = (),
) -> BuildResult:
    """Compile the typed filter ``source`` into a compact proxy-wasm module at ``output``.

    ``hash_seed`` and ``keep_compiler`` have no meaning here (no interpreter,
    no string hashing yet) and are accepted for the common backend signature.
    ``include`` (extra modules for the CPython backend) is not supported yet.
    Raises :class:`~proxywasm_compiler.build.BuildError` for anything the
    backend cannot compile, naming file:line.
    """
    from ...link import LinkError, check_imports
    from ...toolchain import ToolchainError, ensure_zig_libc, zig_argv

    del hash_seed, keep_compiler
    source = Path(source).resolve()
    out = Path(output) if output else source.with_suffix(".wasm")
    if include:
        raise BuildError(
            "--include is not supported by the compact backend yet; use `--backend cpython`"
        )
    if not source.is_file():
        raise BuildError(f"{source}: no such filter file")
    p = _Progress(progress)
    try:
        p.stage("types", f"mypy on {source.name} and the SDK it subclasses")
        module = lower_module(source, source.stem)
        p.stage("codegen", f"{len(module.classes)} classes, {len(module.functions)} functions to C")
        c_source = render_module(module)
        p.stage("toolchain", "zig's wasm32-wasi libc (built once, then cached)")
        libc_dir = ensure_zig_libc(progress=p.note)
        zig = list(zig_argv())
        p.stage("compile", "zig cc -Oz, wasm-ld")
        with tempfile.TemporaryDirectory(prefix="pw-compact-") as td:
            work = Path(os.environ.get("PROXYWASM_BUILD_DIR") or td)
            work.mkdir(parents=True, exist_ok=True)
            (work / "pw_host.h").write_text(render_host_header())
            (work / "pw_unicode.h").write_text(render_unicode_header())
            (work / "pw_filter.c").write_text(c_source)
            sources = [work / "pw_filter.c"] + [RUNTIME_DIR / s for s in RUNTIME_SOURCES]
            objects = []
            for src in sources:
                obj = work / (src.stem + ".o")
                _run(
                    [
                        *zig,
                        "cc",
                        "-target",
                        "wasm32-wasi",
                        *C_FLAGS,
                        "-I",
                        str(work),
                        "-I",
                        str(RUNTIME_DIR),
                        "-c",
                        str(src),
                        "-o",
                        str(obj),
                    ],
                    f"compiling {src.name}",
                )
                objects.append(obj)
            linked = work / "linked.wasm"
            _run(
                [
                    *zig,
                    "wasm-ld",
                    "--no-entry",
                    "--export-memory",
                    "--stack-first",
                    "-z",
                    f"stack-size={STACK_SIZE}",
                    "--gc-sections",
                    "--strip-all",
                    "-o",
                    str(linked),
                    str(libc_dir / "crt1-reactor.o"),
                    *map(str, objects),
                    str(libc_dir / "libc.a"),
                    str(libc_dir / "libzigc.a"),
                    str(libc_dir / "libcompiler_rt.a"),
                ],
                "linking",
            )
            check_imports(linked)
            data = linked.read_bytes()
            p.stage("write", str(out))
            write_module(out, data)
    except CompactError as exc:
        raise BuildError(str(exc)) from None
    except (ToolchainError, LinkError) as exc:
        raise BuildError(str(exc)) from None
    seconds = p.finish()
    size = out.stat().st_size
    if progress is not None:
        print(
            f"built {out} ({size / 1e3:.1f} KB, compact backend) in {seconds:.1f} s",
            file=progress,
            flush=True,
        )
    return BuildResult(out, size, seconds, 1, p.stages)
