"""The `proxywasm` command end to end: demo (build + real Envoy + request) and run."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "proxywasm_compiler.cli"]


def test_demo_prints_the_header_added_by_the_python_filter(tmp_path: Path) -> None:
    proc = subprocess.run(
        [*CLI, "demo", "-o", str(tmp_path / "add_header.wasm")],
        check=False,
        capture_output=True,
        text=True,
        timeout=900,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "x-hello: world" in proc.stdout
    assert "HTTP 200" in proc.stdout
    assert (tmp_path / "add_header.wasm").read_bytes()[:4] == b"\0asm"


def test_run_serves_a_filter_until_interrupted(tmp_path: Path) -> None:
    wasm = tmp_path / "add_header.wasm"
    subprocess.run(
        [*CLI, "build", str(REPO / "examples" / "add_header" / "filter.py"), "-o", str(wasm)],
        check=True,
        capture_output=True,
        timeout=900,
    )
    proc = subprocess.Popen(
        [*CLI, "run", str(wasm), "--port", "0", "--config", '{"value": "from-run"}'],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        port = 0
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not port:
            line = proc.stdout.readline()
            if not line and proc.poll() is not None:
                break
            m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
            if m:
                port = int(m.group(1))
        assert port, "proxywasm run never printed its port"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/x", timeout=10) as resp:
            assert resp.headers["x-hello"] == "from-run"
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
