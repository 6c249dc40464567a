"""``python -m proxywasm_compiler.zig ARGS``: the ``ziglang`` package's zig, with our caches.

zig keeps a global cache (``~/.cache/zig``) and a local one (``zig-cache``
beside the sources) unless told otherwise; both go under the project's
cache dir instead (:func:`proxywasm_compiler.toolchain.zig_cache_dir`), where
:func:`~proxywasm_compiler.toolchain.prune_zig_cache` keeps them bounded.
"""

from __future__ import annotations

import os
import runpy
import subprocess
import sys
from pathlib import Path

from .toolchain import zig_cache_dir


def main() -> None:
    """Set zig's cache dirs (unless the caller set them), then run zig as ``python -m ziglang`` does."""
    cache = str(zig_cache_dir())
    os.environ.setdefault("ZIG_GLOBAL_CACHE_DIR", cache)
    os.environ.setdefault("ZIG_LOCAL_CACHE_DIR", cache)
    runpy.run_module("ziglang", run_name="__main__", alter_sys=True)


def compile_c_filter(source: Path, out: Path, *, timeout: float = 600) -> Path:
    """Compile a one-file C proxy-wasm filter (a wasm32-wasi reactor, ``-O2``, stripped)
    with zig cc and these caches: the reference module of the tests and benchmarks."""
    subprocess.run(
        [sys.executable, "-m", "proxywasm_compiler.zig", "cc", "-target", "wasm32-wasi"]
        + ["-mexec-model=reactor", "-O2", "-s", "-o", str(out), str(source)],
        check=True,
        timeout=timeout,
    )
    return out


if __name__ == "__main__":
    main()
