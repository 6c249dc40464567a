"""The measurement plan: start-up rounds, idle memory, interleaved load cycles, medians.

The machine is shared (2 CPUs, other jobs build and test meanwhile), so no
figure comes from one sample: variants are measured in rounds whose order
rotates, every comparison with the no-filter Envoy (or the AssemblyScript
one) is paired within a round, and the median over rounds is reported.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .filters import BY_KEY
from .process import RunningEnvoy, bench_config, free_port, measured_load, run_wrk, start_envoy
from .system import loadavg, log, median, proc_rss_kib

#: What idle RSS waits after readiness (the workers' VMs are made by then; this lets
#: the main thread finish what it does right after the listener is up).
IDLE_SETTLE_S = 0.5


@dataclass
class Plan:
    """How much of everything a run measures."""

    startup_rounds: int  # each configuration started (and stopped) alone this many times
    cycles: int  # load cycles: every configuration measured once per cycle, back to back
    warmup_s: float
    load_s: float  # per configuration per cycle, at ``connections``
    latency_s: float  # per configuration per cycle, at 1 connection
    connections: int
    proxied_cycles: int  # cross-check through a real upstream (0: skip)
    worker_rounds: int = 1  # idle-RSS starts at 2 workers per configuration


def rotated(names: list[str], k: int) -> list[str]:
    """``names`` started at index ``k`` (mod its length): each round a new order."""
    k %= len(names)
    return names[k:] + names[:k]


def start_checked(
    name: str,
    wasm: Path | None,
    upstream_port: int | None,
    cpus: set[int] | None,
    concurrency: int = 1,
    expect: bytes | None = None,
) -> RunningEnvoy:
    """Start one variant's Envoy and check that its filter ran on the first response.

    ``expect`` is what the first response must carry; by default the variant's own."""
    port = free_port()
    env = start_envoy(bench_config(wasm, port, upstream_port), port, cpus, concurrency=concurrency)
    if expect is None and name in BY_KEY:
        expect = BY_KEY[name].expect
    if expect and expect not in env.first_response.lower():
        env.stop()
        raise RuntimeError(
            f"{name}: the filter did not run on the first response:\n{env.first_response.decode()}"
        )
    return env


def measure_startup(
    wasms: dict[str, Path | None], plan: Plan, env_cpus: set[int] | None
) -> list[dict[str, Any]]:
    """Start and stop each Envoy alone ``startup_rounds`` times, order rotated.

    Each start gives its wall time and CPU to readiness and its idle RSS."""
    names = list(wasms)
    rounds: list[dict[str, Any]] = []
    for r in range(plan.startup_rounds):
        row: dict[str, Any] = {}
        for name in rotated(names, r):
            env = start_checked(name, wasms[name], None, env_cpus)
            try:
                time.sleep(IDLE_SETTLE_S)
                row[name] = {
                    "wall_s": env.startup_wall,
                    "cpu_s": env.startup_cpu,
                    "cpu_ns_s": env.startup_cpu_ns,
                    "rss_idle_kib": proc_rss_kib(env.pid),
                    "heap": env.heap(),
                }
            finally:
                env.stop()
            cpu = env.startup_cpu_ns if env.startup_cpu_ns is not None else env.startup_cpu
            log(
                f"start-up round {r + 1}/{plan.startup_rounds}: {name}: "
                f"{env.startup_wall * 1000:.0f} ms wall, {cpu * 1000:.0f} ms CPU, "
                f"idle RSS {row[name]['rss_idle_kib'] / 1024:.0f} MiB"
            )
        rounds.append(row)
    return rounds


def measure_workers(
    wasms: dict[str, Path | None], plan: Plan, env_cpus: set[int] | None
) -> list[dict[str, Any]]:
    """Idle RSS with 2 workers (``--concurrency 2``): what each extra VM costs."""
    names = list(wasms)
    rounds: list[dict[str, Any]] = []
    for r in range(plan.worker_rounds):
        row: dict[str, Any] = {}
        for name in rotated(names, r):
            env = start_checked(name, wasms[name], None, env_cpus, concurrency=2)
            try:
                time.sleep(IDLE_SETTLE_S)
                row[name] = {"rss_idle_kib": proc_rss_kib(env.pid), "wall_s": env.startup_wall}
            finally:
                env.stop()
        log(
            f"2 workers, round {r + 1}/{plan.worker_rounds}: "
            + ", ".join(f"{n} {row[n]['rss_idle_kib'] / 1024:.0f} MiB" for n in names)
        )
        rounds.append(row)
    return rounds


def measure_load(
    mode: str,
    wasms: dict[str, Path | None],
    plan: Plan,
    env_cpus: set[int] | None,
    load_cpus: set[int] | None,
    lua: Path,
    expects: dict[str, bytes] | None = None,
) -> dict[str, Any]:
    """All Envoys up at once (idle ones cost nothing), loaded one after another in short cycles.

    Interleaving in time makes each cycle a paired comparison: a change in the
    machine's background load hits all configurations of a cycle alike."""
    cycles = plan.cycles if mode == "direct" else plan.proxied_cycles
    latency = mode == "direct"
    names = list(wasms)
    envs: dict[str, RunningEnvoy] = {}
    upstream: RunningEnvoy | None = None
    try:
        upstream_port = None
        if mode == "proxied":
            # the upstream: another Envoy answering with direct_response, on the load generator's CPU
            p = free_port()
            upstream = start_envoy(bench_config(None, p, None), p, load_cpus)
            upstream_port = p
        for name in names:
            expect = (expects or {}).get(name)
            envs[name] = start_checked(name, wasms[name], upstream_port, env_cpus, expect=expect)
        rss: dict[str, int] = {}
        for name in names:
            run_wrk(envs[name].port, plan.warmup_s, plan.connections, load_cpus, lua)
            rss[name] = proc_rss_kib(envs[name].pid)
        out: list[dict[str, Any]] = []
        for k in range(cycles):
            order = rotated(names, k)
            row: dict[str, Any] = {name: {} for name in names}
            for name in order:
                row[name]["load"] = measured_load(
                    envs[name], plan.load_s, plan.connections, load_cpus, lua
                )
            if latency:
                for name in order:
                    row[name]["latency"] = measured_load(
                        envs[name], plan.latency_s, 1, load_cpus, lua
                    )
            row["loadavg"] = loadavg()
            out.append(row)
            log(
                f"{mode} cycle {k + 1}/{cycles}: "
                + ", ".join(f"{n} {row[n]['load']['cpu_us_per_req']:.1f} µs/req" for n in names)
                + f" (load average {row['loadavg']})"
            )
        rss_end = {name: proc_rss_kib(envs[name].pid) for name in names}
        return {"rss_kib": rss, "rss_end_kib": rss_end, "cycles": out}
    finally:
        for env in [*envs.values(), *([upstream] if upstream else [])]:
            env.stop()


# --------------------------------------------------------------------------- medians


def _span(xs: list[float]) -> tuple[float, float]:
    return (min(xs), max(xs)) if xs else (float("nan"), float("nan"))


def _startup_cpu(r: dict[str, Any]) -> float:
    """Start-up CPU of one start: schedstat (ns) when the kernel has it, else clock ticks."""
    ns = r.get("cpu_ns_s")
    return float(ns) if ns is not None else float(r["cpu_s"])


def _paired(
    rs: list[dict[str, Any]], base: list[dict[str, Any]], part: str, key: str = "cpu_us_per_req"
) -> list[float]:
    return [x[part][key] - b[part][key] for x, b in zip(rs, base, strict=True)]


def summarise_load(load: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Medians over cycles; extras paired within each cycle against no filter and AssemblyScript."""
    out: dict[str, dict[str, Any]] = {}
    cycles = load["cycles"]
    names = list(load["rss_kib"])
    base = [c["none"] for c in cycles]
    anchor = [c["as"] for c in cycles] if "as" in names else None
    has_latency = "latency" in cycles[0]["none"]
    for name in names:
        rs = [c[name] for c in cycles]
        s: dict[str, Any] = {
            "cpu_us": median([x["load"]["cpu_us_per_req"] for x in rs]),
            "rps": median([x["load"]["rps"] for x in rs]),
            "p50_load_us": median([x["load"]["p50_us"] for x in rs]),
            "p99_load_us": median([x["load"]["p99_us"] for x in rs]),
            "rss_mib": load["rss_kib"][name] / 1024,
            "rss_end_mib": load["rss_end_kib"][name] / 1024,
            "requests": sum(x["load"]["envoy_requests"] for x in rs),
            "min_cpu_s": min(
                [x["load"]["envoy_cpu_s"] for x in rs]
                + [x["latency"]["envoy_cpu_s"] for x in rs if "latency" in x]
            ),
        }
        if has_latency:
            s["p50_us"] = median([x["latency"]["p50_us"] for x in rs])
            s["p99_us"] = median([x["latency"]["p99_us"] for x in rs])
            s["p999_us"] = median([x["latency"]["p999_us"] for x in rs])
            s["cpu_us_c1"] = median([x["latency"]["cpu_us_per_req"] for x in rs])
            s["rps_c1"] = median([x["latency"]["rps"] for x in rs])
        if name != "none":
            extra = _paired(rs, base, "load")
            s["extra_cpu_us"] = median(extra)
            s["extra_cpu_range"] = _span(extra)
            s["cpu_ratio"] = median(
                [
                    x["load"]["cpu_us_per_req"] / b["load"]["cpu_us_per_req"]
                    for x, b in zip(rs, base)
                ]
            )
            s["rps_ratio"] = median([x["load"]["rps"] / b["load"]["rps"] for x, b in zip(rs, base)])
            s["rss_extra_mib"] = (load["rss_kib"][name] - load["rss_kib"]["none"]) / 1024
            if has_latency:
                s["p50_c1_delta_us"] = median(_paired(rs, base, "latency", "p50_us"))
                extra1 = _paired(rs, base, "latency")
                s["extra_cpu_us_c1"] = median(extra1)
                s["extra_cpu_c1_range"] = _span(extra1)
        if anchor is not None and name not in ("none", "as"):
            # against AssemblyScript, paired within each cycle too
            d = _paired(rs, anchor, "load")
            s["vs_as_cpu_us"] = median(d)
            s["vs_as_cpu_range"] = _span(d)
            if has_latency:
                d1 = _paired(rs, anchor, "latency")
                s["vs_as_cpu_us_c1"] = median(d1)
                s["vs_as_cpu_c1_range"] = _span(d1)
        out[name] = s
    if anchor is not None:
        a = out["as"]
        for name, s in out.items():
            if name in ("none", "as"):
                continue
            s["extra_ratio_as"] = s["extra_cpu_us"] / a["extra_cpu_us"]
            if has_latency:
                s["extra_ratio_as_c1"] = s["extra_cpu_us_c1"] / a["extra_cpu_us_c1"]
            s["rss_load_vs_as_mib"] = s["rss_mib"] - a["rss_mib"]
    return out


def summarise_startup(
    startup: list[dict[str, Any]], workers: list[dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """Start-up wall and CPU, idle RSS at 1 and 2 workers: medians over rounds, paired ratios."""
    names = list(startup[0])
    out: dict[str, dict[str, Any]] = {}
    for name in names:
        walls = [r[name]["wall_s"] for r in startup]
        cpus = [_startup_cpu(r[name]) for r in startup]
        rss = [r[name]["rss_idle_kib"] / 1024 for r in startup]
        rss2 = [r[name]["rss_idle_kib"] / 1024 for r in workers]
        s: dict[str, Any] = {
            "startup_wall_s": median(walls),
            "startup_wall_range": _span(walls),
            "startup_cpu_s": median(cpus),
            "startup_cpu_range": _span(cpus),
            "startup_cpu_ticks_s": median([r[name]["cpu_s"] for r in startup]),
            "rss_idle_mib": median(rss),
            "rss_idle_range": _span(rss),
            "rss_idle_2w_mib": median(rss2),
        }
        heaps = [r[name].get("heap") or {} for r in startup]
        if all("allocated" in h for h in heaps):
            # Where the idle RSS is: Envoy's allocator (live, and freed pages it keeps) and
            # the rest (code V8 compiled, the VMs' linear memories, Envoy's own binary).
            s["heap_live_mib"] = median([h["allocated"] / 2**20 for h in heaps])
            s["heap_kept_free_mib"] = median(
                [
                    (h.get("pageheap_free", 0) + h.get("total_thread_cache", 0)) / 2**20
                    for h in heaps
                ]
            )
        if name != "none":
            s["startup_cpu_ratio"] = median(
                [_startup_cpu(r[name]) / _startup_cpu(r["none"]) for r in startup]
            )
            s["rss_idle_extra_mib"] = median(
                [(r[name]["rss_idle_kib"] - r["none"]["rss_idle_kib"]) / 1024 for r in startup]
            )
            s["rss_idle_2w_extra_mib"] = median(
                [(r[name]["rss_idle_kib"] - r["none"]["rss_idle_kib"]) / 1024 for r in workers]
            )
        if "as" in names and name not in ("none", "as"):
            s["startup_cpu_ratio_as"] = median(
                [_startup_cpu(r[name]) / _startup_cpu(r["as"]) for r in startup]
            )
            s["startup_wall_ratio_as"] = median(
                [r[name]["wall_s"] / r["as"]["wall_s"] for r in startup]
            )
            s["rss_idle_vs_as_mib"] = median(
                [(r[name]["rss_idle_kib"] - r["as"]["rss_idle_kib"]) / 1024 for r in startup]
            )
        out[name] = s
    return out
