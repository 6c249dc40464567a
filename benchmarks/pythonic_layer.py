"""Per-request cost of the Pythonic views against the Rust-named methods, in one run.

    python benchmarks/pythonic_layer.py [--requests 20000] [--rounds 5]
    python benchmarks/pythonic_layer.py --envoy [--cycles 8]
    python benchmarks/pythonic_layer.py --fuel [--requests 3000]

The same work (read ``:path`` and ``x-custom``, one debug log, add a response
header) written both ways (benchmarks/pythonic/), run natively in the null
runtime and compiled (cpython backend) in the wasm harness; rounds alternate
so the machine's noise falls on both. Prints microseconds per full request
lifecycle (best round) and the ratio views / Rust-named. A figure, not a test.

``--envoy`` measures what a proxy pays instead: both filters built with the
cpython and the compact backend, each in its own Envoy 1.40 beside one with no
filter, loaded in interleaved cycles by wrk (the Envoy benchmark's own runner,
benchmarks/envoy_bench/); it prints Envoy's extra CPU per request over no
filter (median of the cycles, paired within each) and the ratio.

``--fuel`` counts the wasm instructions per request lifecycle of both filters
with both backends (wasmtime fuel, callback by callback: deterministic, so the
machine's load does not matter; benchmarks/callback_profile.py's lifecycle).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from proxywasm.testing import HostEmulator, load_filter

HERE = Path(__file__).resolve().parent / "pythonic"
REQUEST = [(":method", "GET"), (":path", "/hello"), (":authority", "x"), ("x-custom", "abc")]
RESPONSE = [(":status", "200"), ("content-type", "text/plain")]


def per_request_us(host: HostEmulator, n: int) -> float:
    started = time.perf_counter()
    for _ in range(n):
        ctx = host.initialize_http_context()
        host.call_on_request_headers(ctx, REQUEST, end_of_stream=True)
        host.call_on_response_headers(ctx, RESPONSE, end_of_stream=True)
        host.complete_http_context(ctx)
    return (time.perf_counter() - started) / n * 1e6


def started(host: HostEmulator) -> HostEmulator:
    assert host.start_vm() and host.start_plugin()
    return host


def fuel(requests: int) -> None:
    """Wasm instructions per request, views vs Rust-named, for both backends (see above)."""
    from proxywasm_compiler.build import build_filter

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import callback_profile

    print(f"wasm instructions per request lifecycle ({requests} lifecycles, wasmtime fuel)")
    print(f"{'backend':8} {'callback':17} {'rust-named':>11} {'views':>8} {'views/rust':>11}")
    with tempfile.TemporaryDirectory() as tmp:
        for backend in ("cpython", "compact"):
            got: dict[str, dict[str, float]] = {}
            for kind in ("rust_named", "views"):
                wasm = Path(tmp) / f"{kind}-{backend}.wasm"
                build_filter(HERE / f"{kind}.py", wasm, backend=backend)
                got[kind] = callback_profile.instructions(wasm, requests)
            rust, views = got["rust_named"], got["views"]
            for name in [*rust, "request"]:
                r = sum(rust.values()) if name == "request" else rust[name]
                v = sum(views.values()) if name == "request" else views.get(name, 0.0)
                ratio = f"{v / r:11.2f}" if r else f"{'-':>11}"
                print(f"{backend:8} {name:17} {r:11,.0f} {v:8,.0f} {ratio}")


def envoy(cycles: int) -> None:
    """Envoy's extra CPU per request, views vs Rust-named, for both backends (see the docstring)."""
    import importlib
    import shutil

    repo = Path(__file__).resolve().parents[1]
    if str(repo) not in sys.path:
        sys.path.insert(0, str(repo))
    # Imported by name, as benchmarks/run.py does (mypy knows the package as ``envoy_bench``).
    filters = importlib.import_module("benchmarks.envoy_bench.filters")
    measure = importlib.import_module("benchmarks.envoy_bench.measure")
    process = importlib.import_module("benchmarks.envoy_bench.process")
    cpus = sorted(os.sched_getaffinity(0))
    env_cpus, load_cpus = ({cpus[0]}, {cpus[1]}) if len(cpus) >= 2 else (None, None)
    plan = measure.Plan(
        startup_rounds=0,
        cycles=cycles,
        warmup_s=2,
        load_s=2,
        latency_s=2,
        connections=10,
        proxied_cycles=0,
    )
    work = Path(tempfile.mkdtemp(prefix="pwbench-pythonic-"))
    try:
        lua = work / "report.lua"
        lua.write_text(process.WRK_LUA)
        wasms: dict[str, Path | None] = {"none": None}
        for backend in ("cpython", "compact"):
            for kind in ("rust_named", "views"):
                out = work / f"{kind}-{backend}" / "filter.wasm"
                filters.build_in_subprocess(HERE / f"{kind}.py", out, {}, backend)
                wasms[f"{kind}-{backend}"] = out
        expects = {name: b"x-hello: world" for name in wasms if name != "none"}
        load = measure.measure_load("direct", wasms, plan, env_cpus, load_cpus, lua, expects)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    medians = measure.summarise_load(load)
    print(f"machine: {platform.machine()} {os.cpu_count()} cpus, load {os.getloadavg()[0]:.2f}")
    print(f"Envoy extra CPU per request over no filter, median of {cycles} cycles (µs)")
    print(f"{'backend':8} {'load':>5} {'rust-named':>11} {'views':>8} {'views/rust':>11}")
    for backend in ("cpython", "compact"):
        rust, views = medians[f"rust_named-{backend}"], medians[f"views-{backend}"]
        for label, key in (("10c", "extra_cpu_us"), ("1c", "extra_cpu_us_c1")):
            r, v = rust[key], views[key]
            print(f"{backend:8} {label:>5} {r:11.1f} {v:8.1f} {v / r:11.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--envoy", action="store_true", help="measure in Envoy (see above)")
    parser.add_argument("--cycles", type=int, default=8, help="load cycles with --envoy")
    parser.add_argument("--fuel", action="store_true", help="count wasm instructions (see above)")
    args = parser.parse_args()
    if args.fuel:
        fuel(min(args.requests, 3000))
        return
    if args.envoy:
        envoy(args.cycles)
        return
    from proxywasm_compiler.build import build_filter

    kinds = ("rust_named", "views")
    with tempfile.TemporaryDirectory() as tmp:
        hosts: dict[tuple[str, str], HostEmulator] = {}
        for kind in kinds:
            path = HERE / f"{kind}.py"
            hosts["native", kind] = started(HostEmulator(load_filter(path), log_level=2))
            wasm = Path(tmp) / f"{kind}.wasm"
            build_filter(path, wasm)
            hosts["wasm", kind] = started(HostEmulator.from_wasm(str(wasm), log_level=2))
        best: dict[tuple[str, str], float] = {}
        for _ in range(args.rounds):
            for key, host in hosts.items():
                n = args.requests if key[0] == "native" else max(1000, args.requests // 5)
                us = per_request_us(host, n)
                best[key] = min(us, best.get(key, us))
    print(f"machine: {platform.machine()} {os.cpu_count()} cpus, Python {sys.version.split()[0]}")
    print(f"{'runtime':8} {'rust-named us':>14} {'views us':>10} {'views/rust':>11}")
    for runtime in ("native", "wasm"):
        rust, views = best[runtime, "rust_named"], best[runtime, "views"]
        print(f"{runtime:8} {rust:14.1f} {views:10.1f} {views / rust:11.2f}")


if __name__ == "__main__":
    main()
