"""Modules built with other proxy-wasm SDKs, for tests and benchmarks to compare against.

The AssemblyScript SDK (npm ``@solo-io/proxy-runtime`` 0.1.8 with
``assemblyscript`` 0.14) is what many users would pick instead. It is built
with npm, which only the test suite and the benchmark need: the toolchain a
user installs stays pip-only. Packages are installed once into the project's
user cache dir (``<cache>/anchors/node-<hash of the pins>``) and each built
module is cached by the hash of the pins and its source, so later runs cost
a file copy.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

from .toolchain import cache_root

__all__ = ["AS_PACKAGES", "AnchorBuildError", "build_assemblyscript"]

#: The npm packages and versions of the AssemblyScript build.
AS_PACKAGES = {"assemblyscript": "0.14", "@solo-io/proxy-runtime": "0.1.8"}


class AnchorBuildError(RuntimeError):
    """An anchor module could not be built; the message says which step failed and why."""


def _run(cmd: list[str], cwd: Path, what: str, timeout: float) -> None:
    proc = subprocess.run(
        cmd, cwd=cwd, check=False, capture_output=True, text=True, timeout=timeout
    )
    if proc.returncode != 0:
        raise AnchorBuildError(f"{what} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")


def build_assemblyscript(source: Path, out: Path, cache: Path | None = None) -> bool:
    """Compile the AssemblyScript proxy-wasm filter ``source`` (.ts) into ``out``.

    Returns ``True`` when it was built now, ``False`` when it came from the
    cache. Needs ``npm`` on the PATH (and the npm registry the first time).
    """
    cache = (cache or cache_root()) / "anchors"
    pins = json.dumps(AS_PACKAGES, sort_keys=True).encode()
    node_dir = cache / f"node-{hashlib.sha256(pins).hexdigest()[:12]}"
    cached = cache / f"as-{hashlib.sha256(pins + source.read_bytes()).hexdigest()[:16]}.wasm"
    out.parent.mkdir(parents=True, exist_ok=True)
    if cached.is_file():
        shutil.copyfile(cached, out)
        return False
    npm = shutil.which("npm")
    if npm is None:
        raise AnchorBuildError(
            "npm not found: building the AssemblyScript module needs node and npm"
        )
    asc = node_dir / "node_modules" / ".bin" / "asc"
    if not asc.is_file():
        # Installed beside, then renamed: a killed install leaves no half-made folder behind.
        tmp = node_dir.with_name(f"{node_dir.name}.tmp{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        (tmp / "package.json").write_text('{"name": "pw-anchors", "private": true}\n')
        specs = [f"{name}@{version}" for name, version in AS_PACKAGES.items()]
        try:
            _run(
                [npm, "install", "--no-audit", "--no-fund", "--silent", *specs],
                tmp,
                f"npm install {' '.join(specs)}",
                900,
            )
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        shutil.rmtree(node_dir, ignore_errors=True)
        tmp.rename(node_dir)
    # asc resolves the SDK from the source's own node_modules: compile from inside node_dir.
    work = node_dir / "assembly"
    work.mkdir(exist_ok=True)
    src = work / source.name
    shutil.copyfile(source, src)
    tmp_out = cached.with_name(f"{cached.stem}.tmp{os.getpid()}.wasm")
    try:
        _run(
            [
                str(asc),
                str(src),
                "-b",
                str(tmp_out),
                "--use",
                "abort=abort_proc_exit",
                "--optimize",
            ],
            node_dir,
            f"asc {source.name}",
            600,
        )
        if not tmp_out.is_file():
            raise AnchorBuildError(f"asc {source.name} wrote no module")
        tmp_out.replace(cached)
    finally:
        tmp_out.unlink(missing_ok=True)
    shutil.copyfile(cached, out)
    return True
