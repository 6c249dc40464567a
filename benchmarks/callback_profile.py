"""Where a request's time goes in a cpython-backend module, callback by callback.

    python benchmarks/callback_profile.py [--requests 2000] [--rounds 5] [--opt speed]

Builds the Envoy bench filter (``benchmarks/envoy_bench/bench_filter.py``: read
``:path`` and ``x-custom``, one debug log, add ``x-hello``) with the cpython
backend, cached by a hash of every source that goes into the module, and
drives full request lifecycles through ``HostEmulator.from_wasm`` (wasmtime),
as Envoy's ``direct_response`` route does: context create, request headers
(end of stream), response headers, a 3-byte response body, ``on_log``,
``on_done``, ``on_delete``; the host drops debug logs (Envoy's ``info``).

For each callback it reports:

* **wall**: the whole export call as the harness sees it;
* **host**: time inside the emulator's import functions (the Python host;
  Envoy's C++ host is much cheaper, so this column is the harness's, not
  Envoy's), and the number of host calls and of host-driven
  ``proxy_on_memory_allocate`` calls;
* **guest**: the rest, i.e. the C glue, the dispatcher, the SDK and the filter
  running inside wasm. The cost of crossing into the module and of each host
  call's crossing (measured on a tiny module with the same instrumentation) is
  taken out, so this estimates what the module itself spends;
* **py calls / C calls**: Python function calls and built-in (C) function
  calls the callback makes inside the module, counted by a second build with a
  ``sys.setprofile`` hook (see ``_COUNTER``).

Then the per-request wall time without instrumentation, best of
``--rounds`` rounds. Figures, not a test; the machine is shared and noisy.
"""

from __future__ import annotations

import argparse
import atexit
import hashlib
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from proxywasm.testing import HostEmulator
from proxywasm.types import LogLevel

REPO = Path(__file__).resolve().parents[1]
FILTER = REPO / "benchmarks" / "envoy_bench" / "bench_filter.py"
CACHE = Path(
    os.environ.get("PW_PROFILE_CACHE", Path(tempfile.gettempdir()) / "pw-callback-profile")
)

#: What Envoy hands the filter for wrk's ``GET /bench`` with ``x-custom: abc``.
REQUEST = [
    (":authority", "127.0.0.1:10000"),
    (":path", "/bench"),
    (":method", "GET"),
    (":scheme", "http"),
    ("x-custom", "abc"),
    ("x-forwarded-proto", "http"),
    ("x-request-id", "5f1c2d9e-8a7b-4c3d-9e0f-1a2b3c4d5e6f"),
]
#: Envoy's ``direct_response`` reply (status 200, a 3-byte body).
RESPONSE = [
    (":status", "200"),
    ("content-length", "3"),
    ("content-type", "text/plain"),
    ("date", "Thu, 03 Dec 2026 16:00:00 GMT"),
    ("server", "envoy"),
]
BODY = b"ok\n"

#: The callbacks of one lifecycle, in Envoy's order, and their short names.
CALLBACKS = [
    ("proxy_on_context_create", "context_create"),
    ("proxy_on_request_headers", "request_headers"),
    ("proxy_on_response_headers", "response_headers"),
    ("proxy_on_response_body", "response_body"),
    ("proxy_on_log", "log"),
    ("proxy_on_done", "done"),
    ("proxy_on_delete", "delete"),
]

#: Appended to the filter for the counting build. The hook counts the calls made
#: between the dispatcher method's call and its return (the outermost Python frame
#: of an export) and hands the two numbers over with one proxy_log, which the
#: profiling host takes out of the log and out of the host-call counts.
_COUNTER = """

import sys as _pw_sys
import _proxywasm as _pw_abi

_pw_n = [0, 0, 0]


def _pw_profile(frame, event, arg):
    if event == "call":
        if frame.f_back is None and frame.f_code.co_name.startswith("proxy_on_"):
            _pw_n[0] = 0
            _pw_n[1] = 0
            _pw_n[2] = 1
        _pw_n[0] += 1
    elif event == "c_call":
        _pw_n[1] += 1
    elif event == "return" and _pw_n[2] and frame.f_back is None:
        _pw_n[2] = 0
        _pw_abi.proxy_log(5, b"pwcount %d %d" % (_pw_n[0], _pw_n[1]))


_pw_sys.setprofile(_pw_profile)
"""


#: ``--sketch``: what the SDK layers between the filter and ``_proxywasm`` cost. Appended
#: to the filter, it replaces the three SDK functions the bench filter calls with
#: one-frame versions (same results for this filter's inputs; errors go back to the
#: SDK's own path). A measurement of a possible change to contexts.py / log.py /
#: hostcalls.py, not a proposal of this code.
_SKETCH = """

import _proxywasm as _pw_abi
from proxywasm import HttpContext as _PwHttp
from proxywasm import _state as _pw_state
from proxywasm import hostcalls as _pw_hc

_pw_slow_get = _PwHttp.get_http_request_header
_pw_slow_add = _PwHttp.add_http_response_header


def _pw_get(self, name):
    if _pw_state.effective_context_id != self.context_id:
        return _pw_slow_get(self, name)
    status, value = _pw_abi.proxy_get_header_map_value(0, name.encode())
    if status == 0:
        return value.decode("utf-8", "surrogateescape")
    return _pw_slow_get(self, name)


def _pw_add(self, name, value):
    if _pw_state.effective_context_id != self.context_id or type(value) is not str:
        return _pw_slow_add(self, name, value)
    _pw_state.map_epoch += 1
    if _pw_abi.proxy_add_header_map_value(2, name.encode(), value.encode()) != 0:
        _pw_slow_add(self, name, value)


def _pw_log_debug(message):
    if type(message) is not str or _pw_abi.proxy_log(1, message.encode("utf-8", "surrogateescape")):
        _pw_hc.log(1, message)


_PwHttp.get_http_request_header = _pw_get
_PwHttp.add_http_response_header = _pw_add
proxywasm.log_debug = _pw_log_debug
"""


def _source_hash(extra: str) -> str:
    """A hash of everything the module is built from (filter, SDK, compiler, ABI)."""
    h = hashlib.sha256(extra.encode())
    roots = [
        REPO / "sdk" / "proxywasm",
        REPO / "compiler" / "proxywasm_compiler",
        REPO / "abi-stubs",
    ]
    for root in roots:
        for path in sorted(root.rglob("*")):
            if path.suffix in (".py", ".c", ".h", ".toml", ".pyi") and "testing" not in path.parts:
                h.update(str(path.relative_to(REPO)).encode())
                h.update(path.read_bytes())
    return h.hexdigest()[:16]


def build(counting: bool, extra: str = "", tag: str = "") -> Path:
    """The bench filter's module (the counting variant with the profile hook), cached.
    ``extra`` is appended to the filter's source (``tag`` names it in the file name)."""
    from proxywasm_compiler.build import build_filter

    source = FILTER.read_text() + extra + (_COUNTER if counting else "")
    kind = ("count" if counting else "plain") + (f"-{tag}" if tag else "")
    out = CACHE / f"bench-{kind}-{_source_hash(source)}.wasm"
    if not out.is_file():
        CACHE.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix="pwprof-", dir=CACHE))
        src = work / "bench_filter.py"
        src.write_text(source)
        started = time.perf_counter()
        build_filter(src, work / "filter.wasm")
        os.replace(work / "filter.wasm", out)
        print(f"built {out.name} in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return out


def use_engine(opt: str, fuel: bool, perfmap: bool = False) -> None:
    """Make the wasm harness compile with Cranelift at ``opt`` (the tests use ``none``),
    counting executed wasm instructions (fuel) or not."""
    import wasmtime
    from proxywasm.testing import wasm

    key = (opt, fuel, perfmap)
    if key not in _ENGINES:
        config = wasmtime.Config()
        if perfmap:  # /tmp/perf-<pid>.map names the compiled wasm functions for perf
            config.profiler = "perfmap"
        config.cranelift_opt_level = opt
        config.consume_fuel = fuel
        config.cache = True
        _ENGINES[key] = wasmtime.Engine(config)
        if len(_ENGINES) == 1:
            atexit.register(wasm._release)
    if wasm._ENGINE is not _ENGINES[key]:
        # The harness caches compiled modules by path only: one cache per engine.
        if wasm._ENGINE is not None:
            _MODULE_CACHES[id(wasm._ENGINE)] = dict(wasm._MODULES)
        wasm._MODULES.clear()
        wasm._MODULES.update(_MODULE_CACHES.get(id(_ENGINES[key]), {}))
    wasm._ENGINE = _ENGINES[key]


_ENGINES: dict[tuple[str, bool, bool], Any] = {}
_MODULE_CACHES: dict[int, dict[Any, Any]] = {}
_FUEL = 1 << 62


def _fuel_stores() -> None:
    """Stores of a fuel-counting engine start with (practically) endless fuel: the
    harness makes its store and runs ``_initialize`` in one go."""
    import wasmtime

    original = wasmtime.Store.__init__

    def init(self: Any, engine: Any = None, *args: Any, **kwargs: Any) -> None:
        original(self, engine, *args, **kwargs)
        if any(engine is e for (_, fuel, _), e in _ENGINES.items() if fuel):
            self.set_fuel(_FUEL)

    wasmtime.Store.__init__ = init  # type: ignore[method-assign]


_fuel_stores()


class Recorder:
    """Per-callback totals: export wall time, host time and calls, allocations."""

    def __init__(self) -> None:
        self.current = ""
        self.wall: dict[str, int] = {}
        self.exports: dict[str, int] = {}
        self.fuel: dict[str, int] = {}
        self.host: dict[str, int] = {}
        self.host_calls: dict[str, dict[str, int]] = {}
        self.allocs: dict[str, int] = {}
        self.alloc_ns = 0  # inside the host call being timed
        self.uncounted = False
        self.counts: dict[str, list[tuple[int, int]]] = {}

    def reset(self) -> None:
        """Forget the totals (after the warm-up)."""
        self.__init__()  # type: ignore[misc]


REC = Recorder()


def instrument() -> None:
    """Time the harness's import functions and allocations (class-level patches)."""
    from proxywasm.testing import wasm

    clock = time.perf_counter_ns
    original_call = wasm._Adapter.__call__
    original_alloc = wasm.WasmCallbacks.allocate

    def timed_call(self: Any, caller: Any, *args: int) -> int:
        rec = REC
        outer_alloc = rec.alloc_ns
        rec.alloc_ns = 0
        t0 = clock()
        result = original_call(self, caller, *args)
        spent = clock() - t0 - rec.alloc_ns
        rec.alloc_ns = outer_alloc
        if rec.uncounted:
            rec.uncounted = False
            return result
        cb = rec.current
        rec.host[cb] = rec.host.get(cb, 0) + spent
        calls = rec.host_calls.setdefault(cb, {})
        name = self.fn.name
        calls[name] = calls.get(name, 0) + 1
        return result

    def timed_alloc(self: Any, caller: Any, size: int) -> int:
        rec = REC
        t0 = clock()
        ptr = original_alloc(self, caller, size)
        rec.alloc_ns += clock() - t0
        rec.allocs[rec.current] = rec.allocs.get(rec.current, 0) + 1
        return ptr

    wasm._Adapter.__call__ = timed_call  # type: ignore[method-assign]
    wasm.WasmCallbacks.allocate = timed_alloc  # type: ignore[method-assign]


def wrap_exports(host: HostEmulator, fuel: bool) -> None:
    """Time each export call of ``host``'s module as a whole (and count its fuel)."""
    vm: Any = host._vm
    store = vm.store
    if fuel:
        store.set_fuel(_FUEL)
    clock = time.perf_counter_ns
    for name, short in CALLBACKS:
        inner: Callable[..., Any] = getattr(vm, name)

        def timed(*args: int, _inner: Callable[..., Any] = inner, _short: str = short) -> Any:
            rec = REC
            rec.current = _short
            f0 = store.get_fuel() if fuel else 0
            t0 = clock()
            result = _inner(*args)
            rec.wall[_short] = rec.wall.get(_short, 0) + clock() - t0
            if fuel:
                rec.fuel[_short] = rec.fuel.get(_short, 0) + f0 - store.get_fuel()
            rec.exports[_short] = rec.exports.get(_short, 0) + 1
            return result

        vm.__dict__[name] = timed


class ProfilingHost(HostEmulator):
    """Takes the counting build's ``pwcount`` entries out of the log."""

    def proxy_log(self, log_level: int, message: bytes) -> int:
        if message.startswith(b"pwcount "):
            py, c = (int(x) for x in message.split()[1:])
            REC.counts.setdefault(REC.current, []).append((py, c))
            REC.uncounted = True  # this host call is the counter's, not the filter's
            return 0
        return super().proxy_log(log_level, message)


def lifecycle(host: HostEmulator) -> None:
    """One request as Envoy's direct_response route drives it."""
    ctx = host.initialize_http_context()
    host.call_on_request_headers(ctx, REQUEST, end_of_stream=True)
    host.call_on_response_headers(ctx, RESPONSE, end_of_stream=False)
    host.call_on_response_body(ctx, BODY, end_of_stream=True)
    host.complete_http_context(ctx)


def started(path: Path) -> HostEmulator:
    """A host running ``path``, VM and plugin started, debug logs dropped (Envoy's info)."""
    host = ProfilingHost.from_wasm(str(path), log_level=LogLevel.INFO)
    assert host.start_vm() and host.start_plugin()
    return host


def guest_share(host: HostEmulator, n: int) -> tuple[float, float]:
    """Harness µs per lifecycle over ``n`` lifecycles, and the share of the process's
    samples that fell in the module's compiled code: ``perf record`` on this process,
    the wasm functions named by wasmtime's perf map (``[JIT]``). The rest is the
    Python host, wasmtime-py's ctypes crossings and the emulator."""
    import shutil
    import signal
    import subprocess

    if shutil.which("perf") is None:
        return per_request_us(host, n), float("nan")
    data = CACHE / f"perf-{os.getpid()}.data"
    rec = subprocess.Popen(
        ["perf", "record", "-F", "2999", "-o", str(data), "-p", str(os.getpid())],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(0.3)  # perf attaches
    us = per_request_us(host, n)
    rec.send_signal(signal.SIGINT)
    rec.wait()
    report = subprocess.run(
        ["perf", "report", "-i", str(data), "--stdio", "--sort", "dso", "-q"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    data.unlink(missing_ok=True)
    share = sum(float(line.split("%")[0]) for line in report.splitlines() if "[JIT]" in line)
    # perf ran for 0.3 s more than the loop: count the samples over the loop's time only.
    loop_s = us * n / 1e6
    return us, share / 100 * (loop_s + 0.3) / loop_s


def instructions(path: Path, n: int) -> dict[str, float]:
    """Wasm instructions per lifecycle of ``path``'s module, per callback (fuel; the
    same every run but for dict resizes, so one pass is enough)."""
    saved = dict(REC.fuel), REC.current
    use_engine(OPT, True)
    host = started(path)
    wrap_exports(host, fuel=True)
    for _ in range(100):
        lifecycle(host)
    REC.fuel.clear()
    for _ in range(n):
        lifecycle(host)
    out = {k: v / n for k, v in REC.fuel.items()}
    REC.fuel, REC.current = saved
    return out


def per_request_us(host: HostEmulator, n: int) -> float:
    """Harness wall microseconds per lifecycle over ``n`` lifecycles."""
    t0 = time.perf_counter()
    for _ in range(n):
        lifecycle(host)
    return (time.perf_counter() - t0) / n * 1e6


OPT = "speed"
PLAIN = Path()


def main() -> None:
    global OPT, PLAIN
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--opt", default="speed", choices=("none", "speed", "speed_and_size"))
    parser.add_argument("--compare", type=Path, help="also time this .wasm, alternating rounds")
    parser.add_argument(
        "--sketch", action="store_true", help="also count a build with one-frame SDK calls"
    )
    args = parser.parse_args()
    OPT = args.opt
    PLAIN, counting = build(False), build(True)
    print(f"module: {PLAIN} ({PLAIN.stat().st_size:,} B)")
    n = args.requests

    # 1. Python-level call counts (the counting build; its timings are not used).
    use_engine(OPT, False)
    instrument()
    host = started(counting)
    wrap_exports(host, fuel=False)
    for _ in range(20):  # first requests: per-class checks, table growth
        lifecycle(host)
    REC.reset()
    for _ in range(300):
        lifecycle(host)
    # Averaged over every call of the export (one answered in C reports nothing).
    counts = {k: (sum(p for p, _ in v), sum(c for _, c in v)) for k, v in REC.counts.items()}
    count_calls = dict(REC.exports)

    # 2. Instrumented: host time and calls, wasm instructions, per callback.
    use_engine(OPT, True)
    host = started(PLAIN)
    wrap_exports(host, fuel=True)
    for _ in range(200):
        lifecycle(host)
    best_total = float("inf")
    for _ in range(args.rounds):
        REC.reset()
        t0 = time.perf_counter_ns()
        for _ in range(n):
            lifecycle(host)
        total = time.perf_counter_ns() - t0
        if total < best_total:
            best_total = total
            kept = (
                dict(REC.wall),
                dict(REC.host),
                {k: dict(v) for k, v in REC.host_calls.items()},
                dict(REC.allocs),
                dict(REC.fuel),
            )
    wall, hosttime, calls, allocs, fuel = kept

    # 3. Uninstrumented, under perf: the harness's per-request time and the guest's part.
    from proxywasm.testing import wasm

    wasm._Adapter.__call__ = ORIGINAL_CALL  # type: ignore[method-assign]
    wasm.WasmCallbacks.allocate = ORIGINAL_ALLOC  # type: ignore[method-assign]
    use_engine(OPT, False, perfmap=True)
    hosts = {"this build": started(PLAIN)}
    if args.compare:
        hosts[str(args.compare)] = started(args.compare)
    for h in hosts.values():
        per_request_us(h, 200)
    plain_best: dict[str, tuple[float, float]] = {}
    for _ in range(args.rounds):
        for label, h in hosts.items():
            us, share = guest_share(h, n)
            g = us * share
            if label not in plain_best or g < plain_best[label][1]:
                plain_best[label] = (us, g)
    ns_op = plain_best["this build"][1] * 1000 / (sum(fuel.values()) / n)

    print(
        f"machine: {platform.machine()} {os.cpu_count()} cpus, Python {sys.version.split()[0]}, "
        f"wasmtime cranelift {OPT}, load {os.getloadavg()[0]:.2f}; "
        f"{ns_op:.2f} ns per wasm instruction (perf samples in the module's code / fuel)"
    )
    print(f"per request, best of {args.rounds} rounds of {n} (instrumented):\n")
    print(
        "| callback | harness wall µs | in host functions µs | host calls | allocations "
        "| wasm instructions | guest µs (est.) | Python calls | C calls |"
    )
    print("|---|---:|---:|---|---:|---:|---:|---:|---:|")
    tot: dict[str, float] = {}
    for _, short in CALLBACKS:
        cs = calls.get(short, {})
        cnt = counts.get(short)
        row = {
            "wall": wall.get(short, 0) / n / 1000,
            "host": hosttime.get(short, 0) / n / 1000,
            "hc": sum(cs.values()) / n,
            "al": allocs.get(short, 0) / n,
            "ops": fuel.get(short, 0) / n,
            "py": cnt[0] / count_calls[short] if cnt else 0.0,
            "c": cnt[1] / count_calls[short] if cnt else 0.0,
        }
        for k, v in row.items():
            tot[k] = tot.get(k, 0.0) + v
        names = ", ".join(
            k.removeprefix("proxy_") + (f" ×{v / n:g}" if v != n else "")
            for k, v in sorted(cs.items())
            if v
        )
        print(
            f"| {short} | {row['wall']:.1f} | {row['host']:.1f} | {row['hc']:g}"
            f"{': ' + names if names else ''} | {row['al']:g} | {row['ops']:,.0f} | "
            f"{row['ops'] * ns_op / 1000:.2f} | {row['py']:.3g} | {row['c']:.3g} |"
        )
    print(
        f"| **request** | {tot['wall']:.1f} | {tot['host']:.1f} | {tot['hc']:g} | {tot['al']:g} "
        f"| **{tot['ops']:,.0f}** | **{tot['ops'] * ns_op / 1000:.2f}** | {tot['py']:.3g} "
        f"| {tot['c']:.3g} |"
    )
    print()
    others = {}
    if args.compare:
        others[args.compare.name] = instructions(args.compare, 500)
    if args.sketch:
        others["one-frame SDK calls (--sketch)"] = instructions(
            build(False, _SKETCH, "sketch"), 500
        )
    if others:
        print("\nwasm instructions per request, by callback:\n")
        print("| callback | this build | " + " | ".join(others) + " |")
        print("|---|---:|" + "---:|" * len(others))
        for _, short in [*CALLBACKS, ("", "request")]:
            mine = fuel.get(short, 0) / n if short != "request" else sum(fuel.values()) / n
            cells = [
                o.get(short, 0) if short != "request" else sum(o.values()) for o in others.values()
            ]
            print(f"| {short} | {mine:,.0f} | " + " | ".join(f"{c:,.0f}" for c in cells) + " |")
        print()
    for label, (us, g) in plain_best.items():
        print(
            f"uninstrumented harness, {label}: {us:.1f} µs per request, of which {g:.2f} µs "
            f"in the module's code (perf; best of {args.rounds})"
        )


def _originals() -> tuple[Any, Any]:
    from proxywasm.testing import wasm

    return wasm._Adapter.__call__, wasm.WasmCallbacks.allocate


ORIGINAL_CALL, ORIGINAL_ALLOC = _originals()

if __name__ == "__main__":
    main()
