"""``proxywasm build --backend compact`` from the command line."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ADD_HEADER

pytestmark = pytest.mark.slow


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "proxywasm_compiler.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_build_compact_writes_a_small_readable_module(tmp_path: Path) -> None:
    shutil.copy(ADD_HEADER, tmp_path / "filter.py")
    proc = run_cli("build", "--backend", "compact", "filter.py", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "filter.wasm"
    assert out.read_bytes()[:4] == b"\0asm"
    assert out.stat().st_size < 200_000
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~umask
    assert "compact backend" in proc.stderr


def test_build_compact_refusal_is_one_clear_line(tmp_path: Path) -> None:
    src = tmp_path / "filter.py"
    src.write_text(
        ADD_HEADER.read_text().replace('value = "world"', 'value = "world"\n    seen = [1]')
    )
    proc = run_cli("build", "--backend", "compact", "filter.py", cwd=tmp_path)
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"proxywasm: error: {src}:27: a class attribute"), proc.stderr
    assert last.endswith("use `--backend cpython` for this filter")
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "filter.wasm").exists()


def test_unknown_backend_is_refused(tmp_path: Path) -> None:
    shutil.copy(ADD_HEADER, tmp_path / "filter.py")
    proc = run_cli("build", "--backend", "rust", "filter.py", cwd=tmp_path)
    assert proc.returncode == 2
    assert "invalid choice: 'rust'" in proc.stderr
