"""Null runtime throughput and retained memory over a long run (``HostEmulator``, native filter).

    python benchmarks/null_runtime.py [--requests 100000] [--window 5000] [--body-size 0]

One emulator serves every request, as a long hypothesis run or a simulated day
of traffic would. The filter does the benchmark's same work (read ``:path``
and ``x-custom``, one debug log, add ``x-hello`` to the response). Prints the
full lifecycles per second (context create, request headers, response headers,
``on_log``, ``on_done``, ``on_delete``) in windows along the run, then, in a
second run under :mod:`tracemalloc`, the bytes still held per lifecycle.

A figure, not a test: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import sys
import time
import tracemalloc
from pathlib import Path

try:
    import proxywasm  # noqa: F401  (is the package installed?)
except ModuleNotFoundError:  # run from a checkout without the package installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sdk"))

from proxywasm import HttpContext
from proxywasm.testing import HostEmulator, load_filter

REQUEST = [
    (":method", "GET"),
    (":path", "/hello"),
    (":authority", "example.com"),
    ("x-custom", "abc"),
]
RESPONSE = [(":status", "200"), ("content-type", "text/plain")]


#: The bench filter of issues 7 and 9 (two header reads, one debug log, one response
#: header): the one file the Envoy benchmark builds, so every figure measures the same work.
BENCH_FILTER = (
    Path(__file__).resolve().parents[1] / "benchmarks" / "envoy_bench" / "bench_filter.py"
)
Bench: type[HttpContext] = load_filter(BENCH_FILTER).Bench


def lifecycle(host: HostEmulator, body: bytes) -> None:
    """One request through the filter, start to finish."""
    ctx = host.initialize_http_context()
    host.call_on_request_headers(ctx, REQUEST, end_of_stream=not body)
    if body:
        host.call_on_request_body(ctx, body, end_of_stream=True)
    host.call_on_response_headers(ctx, RESPONSE, end_of_stream=not body)
    if body:
        host.call_on_response_body(ctx, body, end_of_stream=True)
    host.complete_http_context(ctx)


def cpu_model() -> str:
    """The CPU model as /proc/cpuinfo names it (or what platform knows)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def throughput(requests: int, window: int, body: bytes) -> list[tuple[int, float]]:
    """Lifecycles/s in each window of the run: ``[(requests done, rate), ...]``."""
    host = HostEmulator.for_http_context(Bench)
    rates: list[tuple[int, float]] = []
    done = 0
    while done < requests:
        n = min(window, requests - done)
        start = time.perf_counter()
        for _ in range(n):
            lifecycle(host, body)
        elapsed = time.perf_counter() - start
        done += n
        rates.append((done, n / elapsed))
    return rates


def retained(requests: int, body: bytes) -> tuple[float, float, int]:
    """Bytes held per lifecycle: over the whole run, and over its second half only; and the total."""
    host = HostEmulator.for_http_context(Bench)
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        half = requests // 2
        for _ in range(half):
            lifecycle(host, body)
        gc.collect()
        middle = tracemalloc.get_traced_memory()[0]
        for _ in range(requests - half):
            lifecycle(host, body)
        gc.collect()
        end = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    return (end - base) / requests, (end - middle) / (requests - half), end - base


def main(argv: list[str] | None = None) -> int:
    """Run both measurements and print them."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--requests", type=int, default=100_000, help="lifecycles in one emulator (default 100000)"
    )
    parser.add_argument(
        "--window", type=int, default=5_000, help="lifecycles per timed window (default 5000)"
    )
    parser.add_argument(
        "--body-size", type=int, default=0, help="request and response body bytes (default 0)"
    )
    args = parser.parse_args(argv)
    body = b"x" * args.body_size

    print(f"machine: {os.cpu_count()} CPUs, {cpu_model()}; Python {platform.python_version()}")
    print(
        f"filter: read 2 request headers, 1 debug log, add 1 response header; body {args.body_size} B"
    )
    rates = throughput(args.requests, args.window, body)
    shown = {1, len(rates) // 10, len(rates) // 4, len(rates) // 2, 3 * len(rates) // 4, len(rates)}
    print(f"{'after':>10}  lifecycles/s (window of {args.window})")
    for i, (done, rate) in enumerate(rates, 1):
        if i in shown:
            print(f"{done:>10}  {rate:>10,.0f}")
    overall = sum(r for _, r in rates) / len(rates)
    print(f"{'mean':>10}  {overall:>10,.0f}   first/last window: {rates[0][1] / rates[-1][1]:.2f}")
    per, tail, total = retained(args.requests, body)
    print(
        f"retained (tracemalloc, {args.requests} lifecycles): {total / 1024:,.0f} KiB in all, "
        f"{per:.1f} B/lifecycle over the run, {tail:.1f} B/lifecycle over its second half"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
