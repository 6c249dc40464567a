"""The null runtime over a long run: finished contexts leave the live tables, what is kept is bounded.

Also the wasm harness's WASI namespaces (a module importing ``wasi_unstable``,
as AssemblyScript SDK modules do, runs as under Envoy).

No timings here (see benchmarks/null_runtime.py for those): these tests count
records, so they fail if a table or a log starts growing with every request.
"""

from __future__ import annotations

import gc
import tracemalloc
from pathlib import Path
from typing import ClassVar

import proxywasm
import pytest
from proxywasm import (
    Action,
    HostCallError,
    HttpContext,
    LogLevel,
    RootContext,
    Status,
    StreamContext,
)
from proxywasm import hostcalls as hc
from proxywasm.metrics import Histogram
from proxywasm.testing import HostEmulator, load_filter
from proxywasm.testing.wasm import WasmTrapError

REQUEST = [
    (":method", "GET"),
    (":path", "/hello"),
    (":authority", "example.com"),
    ("x-custom", "abc"),
]
RESPONSE = [(":status", "200")]


#: The bench filter of issues 7 and 9 (two header reads, one debug log, one response
#: header): the one file the Envoy benchmark builds, so every figure measures the same work.
BENCH_FILTER = (
    Path(__file__).resolve().parents[1] / "benchmarks" / "envoy_bench" / "bench_filter.py"
)
Bench: type[HttpContext] = load_filter(BENCH_FILTER).Bench


def lifecycle(host: HostEmulator, body: bytes = b"") -> int:
    ctx = host.initialize_http_context()
    host.call_on_request_headers(ctx, REQUEST, end_of_stream=not body)
    if body:
        host.call_on_request_body(ctx, body, end_of_stream=True)
    host.call_on_response_headers(ctx, RESPONSE, end_of_stream=not body)
    if body:
        host.call_on_response_body(ctx, body, end_of_stream=True)
    host.complete_http_context(ctx)
    return ctx


def test_a_finished_stream_leaves_the_live_table_and_stays_inspectable() -> None:
    host = HostEmulator.for_http_context(Bench)
    ctx = lifecycle(host, body=b"payload")
    assert ctx not in host.http_streams
    assert ctx not in host._vm.streams  # the dispatcher let go of the context too
    stream = host.get_http_stream(ctx)
    assert stream.done and stream is host.finished_http_streams[ctx]
    assert ("x-hello", "world") in host.get_current_response_headers(ctx)
    assert host.get_current_request_headers(ctx)[1] == (":path", "/hello")
    assert host.get_forwarded_request_body(ctx) == b"payload"
    assert host.get_forwarded_response_body(ctx) == b"payload"
    host.complete_http_context(ctx)  # a second completion is a no-op: no callback runs twice
    assert host.get_logs(LogLevel.DEBUG) == ["bench: /hello abc"]


class Refuser(HttpContext):
    """Sends a local reply in its request headers callback."""

    def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
        self.send_http_response(403, [("x-why", "no")], b"denied")
        return Action.PAUSE


def test_a_finished_stream_keeps_its_local_response() -> None:
    host = HostEmulator.for_http_context(Refuser)
    ctx = host.initialize_http_context()
    host.call_on_request_headers(ctx, REQUEST, end_of_stream=True)
    host.complete_http_context(ctx)
    assert ctx not in host.http_streams
    reply = host.get_sent_local_response(ctx)
    assert reply is not None and reply.status_code == 403 and reply.body == b"denied"
    assert ("x-why", "no") in host.get_current_response_headers(ctx)
    assert host.get_current_response_body(ctx) == b"denied"


def test_only_the_most_recent_finished_records_are_kept() -> None:
    root = HostEmulator.for_http_context(Bench, keep_finished=3)
    ids = [lifecycle(root) for _ in range(10)]
    assert list(root.finished_http_streams) == ids[-3:]
    assert not root.http_streams
    for ctx in ids[-3:]:
        assert root.get_http_stream(ctx).done
    with pytest.raises(KeyError, match="keep_finished"):
        root.get_http_stream(ids[0])


def test_keep_finished_zero_keeps_no_record() -> None:
    host = HostEmulator.for_http_context(Bench, keep_finished=0)
    ctx = lifecycle(host)
    assert not host.finished_http_streams and not host.http_streams
    with pytest.raises(KeyError):
        host.get_http_stream(ctx)


def test_keep_finished_must_not_be_negative() -> None:
    with pytest.raises(ValueError, match="keep_finished"):
        HostEmulator(Bench, keep_finished=-1)


class Toucher(HttpContext):
    """Makes another stream's id effective, and records the status the host answered."""

    target: ClassVar[int] = 0
    statuses: ClassVar[list[object]] = []

    def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
        try:
            hc.set_effective_context(Toucher.target)
            Toucher.statuses.append(Status.OK)
        except HostCallError as exc:
            Toucher.statuses.append(exc.status)
        return Action.CONTINUE


def test_a_finished_context_id_is_a_bad_argument_for_set_effective_context() -> None:
    Toucher.statuses = []
    host = HostEmulator.for_http_context(Toucher)
    first = host.initialize_http_context()
    Toucher.target = first
    second = host.initialize_http_context()
    host.call_on_request_headers(second, REQUEST)  # first is alive: OK
    host.complete_http_context(first)
    third = host.initialize_http_context()
    host.call_on_request_headers(third, REQUEST)  # first has finished: as Envoy, BAD_ARGUMENT
    assert Toucher.statuses == [Status.OK, Status.BAD_ARGUMENT]


class Pipe(StreamContext):
    pass


class PipeRoot(RootContext):
    def create_stream_context(self, context_id: int) -> StreamContext:
        return Pipe(context_id, self)


def test_a_finished_connection_leaves_the_live_table() -> None:
    host = HostEmulator(PipeRoot, keep_finished=2)
    host.start_vm()
    host.start_plugin()
    ids = []
    for _ in range(4):
        ctx, _action = host.initialize_connection()
        host.call_on_downstream_data(ctx, b"ping", end_of_stream=True)
        host.complete_connection(ctx)
        ids.append(ctx)
    assert not host.tcp_connections
    assert list(host.finished_connections) == ids[-2:]
    assert host.get_connection(ids[-1]).forwarded_downstream == b"ping"
    with pytest.raises(KeyError):
        host.get_connection(ids[0])


class Chatty(HttpContext):
    histogram: ClassVar[Histogram | None] = None

    def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
        if Chatty.histogram is None:
            Chatty.histogram = Histogram("latency")
        Chatty.histogram.record(self.context_id)
        proxywasm.log_info(f"request {self.context_id}")
        return Action.CONTINUE


def test_logs_and_histogram_samples_keep_the_most_recent() -> None:
    Chatty.histogram = None
    host = HostEmulator.for_http_context(Chatty, max_log_entries=4, max_histogram_samples=3)
    ids = [lifecycle(host) for _ in range(10)]
    assert host.get_logs(LogLevel.INFO) == [f"request {i}" for i in ids[-4:]]
    assert host.get_histogram("latency") == ids[-3:]
    (metric,) = (m for m in host.metrics.values() if m.name == "latency")
    assert metric.sample_count == 10


def test_unbounded_logs_when_asked() -> None:
    Chatty.histogram = None
    host = HostEmulator.for_http_context(Chatty, max_log_entries=None, max_histogram_samples=None)
    for _ in range(50):
        lifecycle(host)
    assert len(host.get_logs(LogLevel.INFO)) == 50
    assert len(host.get_histogram("latency")) == 50


def test_tables_stay_bounded_over_a_long_run() -> None:
    host = HostEmulator.for_http_context(Bench, keep_finished=50, max_log_entries=100)
    for _ in range(3000):
        lifecycle(host, body=b"x" * 64)
    assert not host.http_streams and not host.ready_streams
    assert len(host.finished_http_streams) == 50
    assert len(host.logs) == 100
    vm = host._vm
    assert not vm.streams and not vm.pending and not vm.broken and not vm.callouts


def test_retained_memory_stops_growing_once_the_bounds_are_reached() -> None:
    """Memory kept per lifecycle after warm-up: counted with tracemalloc, not timed."""
    host = HostEmulator.for_http_context(Bench, keep_finished=100, max_log_entries=100)
    tracemalloc.start()  # before the warm-up, so that records freed later are subtracted
    try:
        for _ in range(500):  # fill the finished records and the log to their bounds
            lifecycle(host, body=b"x" * 1024)
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(2000):
            lifecycle(host, body=b"x" * 1024)
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    # Unbounded tables kept ~7 KB per lifecycle of this size; bounded ones keep ~0.
    assert (after - before) / 2000 < 100, after - before


# -- the wasm harness: both WASI namespaces, as Envoy serves them ------------------------------

_WAT = r"""
(module
  (import "{wasi}" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "{wasi}" "proc_exit" (func $proc_exit (param i32)))
  (import "env" "proxy_add_header_map_value" (func $add (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 4096))
  (data (i32.const 16) "x-wasi")
  (data (i32.const 32) "{wasi}")
  (data (i32.const 64) "hello from {wasi}\n")
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "malloc") (param $n i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $heap))
    (global.set $heap (i32.add (global.get $heap) (local.get $n)))
    (local.get $p))
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_configure") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    ;; one iovec at 1024 = {{ptr 64, len {hello_len}}}; the byte count goes to 1032
    (i32.store (i32.const 1024) (i32.const 64))
    (i32.store (i32.const 1028) (i32.const {hello_len}))
    (drop (call $fd_write (i32.const 1) (i32.const 1024) (i32.const 1) (i32.const 1032)))
    (drop (call $add (i32.const 0) (i32.const 16) (i32.const 6) (i32.const 32) (i32.const {wasi_len})))
    (i32.const 0))
  (func (export "proxy_on_tick") (param i32)
    (call $proc_exit (i32.const 3)))
)
"""


def _wat_module(tmp_path: Path, wasi: str, extra_import: str = "") -> Path:
    import wasmtime

    text = _WAT.format(
        wasi=wasi,
        wasi_len=len(wasi),
        hello_len=len(f"hello from {wasi}\n"),
    )
    if extra_import:  # imports must precede the other fields
        text = text.replace("(module\n", f"(module\n  {extra_import}\n", 1)
    path = tmp_path / f"{wasi}.wasm"
    path.write_bytes(wasmtime.wat2wasm(text))
    return path


@pytest.mark.parametrize("wasi", ["wasi_unstable", "wasi_snapshot_preview1"])
def test_a_module_importing_either_wasi_namespace_runs(tmp_path: Path, wasi: str) -> None:
    host = HostEmulator.from_wasm(str(_wat_module(tmp_path, wasi)))
    assert host.start_vm() and host.start_plugin()
    ctx = host.initialize_http_context()
    assert host.call_on_request_headers(ctx, [(":path", "/")]) == Action.CONTINUE
    assert host.get_current_request_headers(ctx) == [(":path", "/"), ("x-wasi", wasi)]
    assert host.get_all_logs() == [
        (LogLevel.INFO, f"hello from {wasi}")
    ]  # fd_write(1): an INFO line
    with pytest.raises(WasmTrapError, match=r"proc_exit\(3\)"):
        host.tick(host.root_context_id)


def test_a_wasi_unstable_function_wasmtime_lacks_is_named(tmp_path: Path) -> None:
    extra = '(import "wasi_unstable" "no_such_function" (func (param i32)))'
    with pytest.raises(ValueError, match="wasi_unstable::no_such_function"):
        HostEmulator.from_wasm(str(_wat_module(tmp_path, "wasi_unstable", extra)))
