"""One Envoy process and the load generator: bootstrap, start, counters, wrk, stop by PID.

The bootstrap comes from the project's own runner
(:func:`proxywasm_compiler.envoy.envoy_config`); the process is started here
because the benchmark needs what that runner does not give: the ELF started
directly, CPU pinning, readiness as the first proxied response (polled every
5 ms) and the CPU the process spent up to that moment.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from proxywasm_compiler.envoy import FilterSpec, envoy_config

from .system import proc_cpu_seconds, proc_runtime_seconds, real_envoy_binary

#: The request every load sends: the filters read these two headers.
REQUEST_PATH = "/bench"
REQUEST_HEADERS = {"x-custom": "abc"}

WRK_LUA = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRKJSON {\"requests\": %d, \"duration_us\": %d, \"errors\": %d, \"non2xx\": %d, " ..
    "\"p50_us\": %d, \"p90_us\": %d, \"p99_us\": %d, \"p999_us\": %d, \"max_us\": %d, \"mean_us\": %.1f}\n",
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    latency.max, latency.mean))
end
"""

COMPLETED = "http.ingress_http.downstream_rq_completed"


def free_port() -> int:
    """A port the kernel says is free on 127.0.0.1 now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pinner(cpus: set[int] | None) -> Callable[[], None] | None:
    """A ``preexec_fn`` that pins the child to ``cpus`` (None: no pinning)."""
    if not cpus:
        return None
    chosen = set(cpus)

    def _pin() -> None:
        os.sched_setaffinity(0, chosen)

    return _pin


def stop_process(proc: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM by PID, then SIGKILL after 10 s; no-op when it already exited."""
    if proc is None or proc.poll() is not None:
        return
    try:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


@dataclass
class RunningEnvoy:
    """An Envoy this benchmark started, with what its start-up cost."""

    proc: subprocess.Popen[bytes]
    port: int
    admin_port: int
    workdir: Path
    startup_wall: float
    startup_cpu: float  # clock ticks (10 ms)
    startup_cpu_ns: float | None  # schedstat, all threads
    first_response: bytes = b""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        """The Envoy process id."""
        return self.proc.pid

    def stop(self) -> None:
        """Stop the process by PID and remove its work dir."""
        stop_process(self.proc)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def heap(self) -> dict[str, int]:
        """Envoy's allocator (tcmalloc) figures from the admin ``/memory`` page, in bytes:
        ``allocated`` (live), ``pageheap_free`` (freed pages it keeps mapped),
        ``total_thread_cache``, ``heap_size``... ({} if the page is not there)."""
        url = f"http://127.0.0.1:{self.admin_port}/memory"
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                data = json.loads(r.read())
        except (OSError, ValueError):
            return {}
        return {k: int(v) for k, v in data.items() if str(v).isdigit()}

    def counter(self, name: str) -> int:
        """One counter from the admin API (0 when absent)."""
        url = f"http://127.0.0.1:{self.admin_port}/stats?filter=^{name}$"
        with urllib.request.urlopen(url, timeout=10) as r:
            for line in r.read().decode().splitlines():
                k, _, v = line.partition(": ")
                if k == name:
                    return int(v)
        return 0


def bench_config(wasm: Path | None, port: int, upstream_port: int | None) -> dict[str, Any]:
    """Envoy bootstrap: listener -> [wasm filter] -> router.

    With ``upstream_port`` the route goes to that cluster; without, the route
    is a ``direct_response`` (200, 3-byte body) answered by Envoy itself."""
    filters = [FilterSpec(wasm)] if wasm else []
    cfg = envoy_config(filters, ("127.0.0.1", upstream_port or 9), listen=("127.0.0.1", port))
    if upstream_port is None:
        listener = cfg["static_resources"]["listeners"][0]
        hcm = listener["filter_chains"][0]["filters"][-1]["typed_config"]
        hcm["route_config"]["virtual_hosts"][0]["routes"] = [
            {
                "match": {"prefix": "/"},
                "direct_response": {"status": 200, "body": {"inline_string": "ok\n"}},
            }
        ]
    return cfg


def _http_probe(port: int, timeout: float) -> bytes | None:
    """One GET; the response head, or None when nothing listens yet."""
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    except (TimeoutError, ConnectionRefusedError, OSError):
        return None
    extra = "".join(f"{k}: {v}\r\n" for k, v in REQUEST_HEADERS.items())
    with s:
        s.settimeout(timeout)
        s.sendall(
            f"GET {REQUEST_PATH} HTTP/1.1\r\nHost: bench\r\n{extra}Connection: close\r\n\r\n".encode()
        )
        buf = b""
        try:
            while b"\r\n\r\n" not in buf:
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
        except (TimeoutError, OSError):
            return None
        return buf or None


def start_envoy(
    cfg: dict[str, Any],
    port: int,
    cpus: set[int] | None,
    *,
    concurrency: int = 1,
    timeout: float = 180.0,
) -> RunningEnvoy:
    """Start Envoy; ready = the first proxied GET answered 200 (polled every 5 ms)."""
    workdir = Path(tempfile.mkdtemp(prefix="pwbench-envoy-"))
    (workdir / "envoy.json").write_text(json.dumps(cfg))
    admin_file = workdir / "admin.txt"
    cmd = [
        real_envoy_binary(),
        "-c",
        str(workdir / "envoy.json"),
        "--concurrency",
        str(concurrency),
        "--log-level",
        "info",
        "--admin-address-path",
        str(admin_file),
        "--base-id",
        str(port),
        "--disable-hot-restart",
    ]
    log_fh = (workdir / "envoy.log").open("wb")
    t0 = time.monotonic()
    proc = subprocess.Popen(
        cmd,
        stdout=log_fh,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=pinner(cpus),  # noqa: PLW1509 (no threads here)
    )
    log_fh.close()
    try:
        deadline = t0 + timeout
        head: bytes | None = None
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                tail = (workdir / "envoy.log").read_text()[-3000:]
                raise RuntimeError(f"envoy exited {proc.returncode}:\n{tail}")
            head = _http_probe(port, timeout=max(1.0, deadline - time.monotonic()))
            if head is not None:
                break
            time.sleep(0.005)
        wall = time.monotonic() - t0
        cpu = proc_cpu_seconds(proc.pid)
        cpu_ns = proc_runtime_seconds(proc.pid)
        tail = (workdir / "envoy.log").read_text()[-3000:]
        if head is None:
            raise RuntimeError(f"envoy not ready after {timeout} s:\n{tail}")
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(
                f"first response was not 200:\n{head.decode(errors='replace')}\n{tail}"
            )
        admin_port = int(admin_file.read_text().strip().rsplit(":", 1)[1])
        return RunningEnvoy(proc, port, admin_port, workdir, wall, cpu, cpu_ns, head)
    except BaseException:
        stop_process(proc)
        shutil.rmtree(workdir, ignore_errors=True)
        raise


def run_wrk(
    port: int, seconds: float, connections: int, cpus: set[int] | None, lua: Path
) -> dict[str, Any]:
    """One wrk run (1 thread) against the listener; wrk's summary as a dict."""
    if shutil.which("wrk") is None:
        raise SystemExit(
            "wrk not found: the Envoy benchmarks load Envoy with wrk (Debian: apt-get install wrk)"
        )
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "5s"]
    for k, v in REQUEST_HEADERS.items():
        cmd += ["-H", f"{k}: {v}"]
    cmd += ["-s", str(lua), f"http://127.0.0.1:{port}{REQUEST_PATH}"]
    proc = subprocess.run(
        cmd,
        check=False,
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        preexec_fn=pinner(cpus),
    )
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("WRKJSON ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    parsed: dict[str, Any] = json.loads(line[len("WRKJSON ") :])
    return parsed


def measured_load(
    env: RunningEnvoy, seconds: float, connections: int, cpus: set[int] | None, lua: Path
) -> dict[str, Any]:
    """wrk against Envoy; Envoy's CPU over exactly the load window, per completed request."""
    rq0 = env.counter(COMPLETED)
    cpu0 = proc_cpu_seconds(env.pid)
    t0 = time.monotonic()
    w = run_wrk(env.port, seconds, connections, cpus, lua)
    wall = time.monotonic() - t0
    cpu1 = proc_cpu_seconds(env.pid)
    served = env.counter(COMPLETED) - rq0
    if w["errors"] or w["non2xx"]:
        raise RuntimeError(f"load saw errors: {w}")
    return {
        **w,
        "envoy_requests": served,
        "envoy_cpu_s": cpu1 - cpu0,
        "window_s": wall,
        "cpu_us_per_req": (cpu1 - cpu0) / served * 1e6 if served else float("nan"),
        "rps": w["requests"] / (w["duration_us"] / 1e6),
    }
