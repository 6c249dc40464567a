"""Per-request cost of the Pythonic views against the Rust-named methods, in one run.

    python benchmarks/pythonic_layer.py [--requests 20000] [--rounds 5]

The same work (read ``:path`` and ``x-custom``, one debug log, add a response
header) written both ways (benchmarks/pythonic/), run natively in the null
runtime and compiled (cpython backend) in the wasm harness; rounds alternate
so the machine's noise falls on both. Prints microseconds per full request
lifecycle (best round) and the ratio views / Rust-named. A figure, not a test.
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
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
