"""Metrics, shared-data helpers, the logging handler and HostCallError at their edges.

Found unchecked by mutation testing (scripts/mutation.py). Driven natively
against the null runtime; where a test needs another worker to act between
two host calls, the host's clock read is where that worker acts (the host is
the dependency, the helper under test is real).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from proxywasm import LogLevel, RootContext
from proxywasm.dispatcher import Dispatcher
from proxywasm.metrics import Counter, Gauge, Histogram
from proxywasm.shared import (
    LOCK_STALE_NS,
    SharedDataContendedError,
    ensure_shared_data,
    update_shared_data,
)
from proxywasm.testing import HostEmulator
from proxywasm.types import HostCallError, ProxyWasmError, Status


@contextmanager
def _host(**kwargs: Any) -> Iterator[HostEmulator]:
    host = HostEmulator(RootContext, **kwargs)
    assert host.start_vm() and host.start_plugin()
    with host.in_context():
        yield host


# -- metrics ---------------------------------------------------------------------------------------


def test_metrics_take_zero_and_refuse_what_they_cannot_hold() -> None:
    with _host() as host:
        counter, gauge, histogram = Counter("c0"), Gauge("g0"), Histogram("h0")
        counter.increment(0)  # adding nothing is allowed (and sent as nothing)
        counter.increment()
        gauge.increment()
        histogram.record(0)
        with pytest.raises(ValueError) as info:
            counter.increment(-1)
        assert str(info.value) == "counter 'c0' cannot decrease (delta -1)"
        with pytest.raises(ValueError) as info:
            histogram.record(-1)
        assert str(info.value) == "histogram 'h0' takes values >= 0, got -1"
        assert host.get_metric("c0") == 1 and host.get_metric("g0") == 1
        assert host.get_histogram("h0") == [0]


def test_a_metric_needs_a_name() -> None:
    with pytest.raises(ValueError) as info:
        Counter("")
    assert str(info.value) == "metric name must be a non-empty str, got ''"


def test_a_metric_is_defined_in_the_first_vm_too() -> None:
    # A compiled module has one VM, the first dispatcher (key 1): a metric must not take
    # that key for one it is already bound to.
    vm = Dispatcher({None: RootContext})
    vm.key = 1
    host = HostEmulator(_callbacks=vm)
    assert host.start_vm() and host.start_plugin()
    with host.in_context():
        Counter("first").increment(2)
    assert host.get_metric("first") == 2


# -- HostCallError ---------------------------------------------------------------------------------


def test_a_host_call_error_names_a_status_the_sdk_does_not_know() -> None:
    error = HostCallError("proxy_x", 99)
    assert error.function == "proxy_x" and error.status == 99
    assert str(error) == "proxy_x failed with 99"
    known = HostCallError("proxy_y", 1, "why")
    assert known.status is Status.NOT_FOUND and str(known) == "proxy_y failed with NOT_FOUND: why"


# -- the logging handler ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("levelno", "level"),
    [
        (logging.CRITICAL, LogLevel.CRITICAL),
        (logging.ERROR, LogLevel.ERROR),
        (logging.WARNING, LogLevel.WARN),
        (logging.INFO, LogLevel.INFO),
        (logging.DEBUG, LogLevel.DEBUG),
        (logging.DEBUG - 1, LogLevel.TRACE),
    ],
)
def test_logging_levels_map_to_host_levels_at_their_bounds(levelno: int, level: LogLevel) -> None:
    from proxywasm.log import _handler_class

    handler = _handler_class()()  # made fresh: the module caches the class it makes first
    handler.setFormatter(logging.Formatter("%(message)s"))
    record = logging.LogRecord("f", levelno, __file__, 1, "msg %d", (7,), None)
    with _host() as host:
        host.clear_logs()
        handler.emit(record)
        assert host.get_all_logs() == [(level, "msg 7")]


def test_the_log_module_makes_only_the_handler_on_demand() -> None:
    import importlib

    log_module: Any = importlib.import_module("proxywasm.log")  # `proxywasm.log` is a function
    assert isinstance(log_module.ProxyLogHandler, type)
    assert issubclass(log_module.ProxyLogHandler, logging.Handler)
    with pytest.raises(AttributeError):
        log_module.NoSuchThing  # noqa: B018


class _Sink:
    def __init__(self) -> None:
        self.text = ""
        self.flushes = 0

    def write(self, text: str) -> int:
        self.text += text
        return len(text)

    def flush(self) -> None:
        self.flushes += 1


def test_the_print_stream_sends_lines_and_flushes_its_fallback() -> None:
    from proxywasm.log import HostLogStream

    sink = _Sink()
    stream = HostLogStream(LogLevel.WARN, sink)
    with _host() as host:
        host.clear_logs()
        stream.write("a\nb")
        stream.emit_pending()
        stream.emit_pending()  # nothing left: nothing sent
        stream.write("c\n")
        stream.flush()
        assert host.get_all_logs() == [
            (LogLevel.WARN, "a"),
            (LogLevel.WARN, "b"),
            (LogLevel.WARN, "c"),
        ]
    assert sink.text == "a\nbc\n" and sink.flushes == 1
    HostLogStream(LogLevel.INFO).flush()  # without a fallback: nothing to flush


# -- shared data -----------------------------------------------------------------------------------


def test_ensure_shared_data_creates_with_its_initial_value_once() -> None:
    with _host() as host:
        assert ensure_shared_data("k", b"init") is True
        assert ensure_shared_data("k", b"other") is False
        assert host.get_shared_data("k")[0] == b"init"


def test_updating_a_missing_key_without_a_lock_is_refused() -> None:
    with _host(), pytest.raises(ProxyWasmError) as info:
        update_shared_data("gone", lambda v: b"x")
    assert str(info.value) == (
        "shared data key 'gone' does not exist: create it with ensure_shared_data() in "
        "on_configure, or pass lock_key= to create it under a lock"
    )


def test_an_update_that_loses_a_race_reads_again() -> None:
    with _host() as host:
        ensure_shared_data("n", b"1")
        seen: list[bytes | None] = []

        def add_one(value: bytes | None) -> str:
            seen.append(value)
            if len(seen) == 1:
                host.set_shared_data("n", b"5")  # another worker writes meanwhile
            return str(int(value or b"0") + 1)

        assert update_shared_data("n", add_one) == b"6"
        assert seen == [b"1", b"5"]
        assert host.get_shared_data("n")[0] == b"6"


def test_an_update_that_always_loses_gives_up_after_its_attempts() -> None:
    with _host() as host:
        ensure_shared_data("n", b"0")
        calls: list[int] = []

        def contended(value: bytes | None) -> bytes:
            calls.append(1)
            host.set_shared_data("n", str(len(calls)).encode())  # always one step ahead
            return b"mine"

        with pytest.raises(SharedDataContendedError) as info:
            update_shared_data("n", contended)
        assert str(info.value) == "shared data key 'n': no update after 64 attempts"
        assert len(calls) == 64


def test_a_missing_key_is_created_under_the_lock() -> None:
    with _host() as host:
        host.now_ns = 5 * LOCK_STALE_NS
        ensure_shared_data("lock")
        locks: list[bytes | None] = []
        args: list[bytes | None] = []

        def create(value: bytes | None) -> str:
            args.append(value)
            locks.append(host.get_shared_data("lock")[0])
            return "first"

        assert update_shared_data("client-1", create, lock_key="lock") == b"first"
        assert args == [None]
        assert locks == [str(5 * LOCK_STALE_NS).encode()]  # held, with the time as its token
        assert host.get_shared_data("client-1")[0] == b"first"
        assert host.get_shared_data("lock")[0] == b""  # and let go


@pytest.mark.parametrize(
    ("lock", "now", "taken"),
    [
        (b"junk", LOCK_STALE_NS, True),  # unreadable: as old as time 0
        (b"0", LOCK_STALE_NS, True),  # exactly stale
        (b"1", LOCK_STALE_NS, False),  # one nanosecond short of stale
    ],
)
def test_a_held_lock_is_taken_over_only_once_stale(lock: bytes, now: int, taken: bool) -> None:
    with _host() as host:
        host.now_ns = now
        host.set_shared_data("lock", lock)
        if taken:
            assert update_shared_data("k", lambda v: b"v", lock_key="lock", attempts=1) == b"v"
        else:
            with pytest.raises(SharedDataContendedError):
                update_shared_data("k", lambda v: b"v", lock_key="lock", attempts=2)
            assert host.get_shared_data("k")[0] is None


def _at_clock_read(host: HostEmulator, action: Any) -> None:
    """Let another worker act when the helper reads the clock (between two of its calls)."""
    read = host.proxy_get_current_time_nanoseconds

    def clock() -> tuple[int, int]:
        action()
        return read()

    host.proxy_get_current_time_nanoseconds = clock  # type: ignore[method-assign]


def test_a_lock_taken_by_another_worker_first_is_not_overwritten() -> None:
    with _host() as host:
        host.now_ns = 5 * LOCK_STALE_NS
        ensure_shared_data("lock")
        _at_clock_read(host, lambda: host.set_shared_data("lock", str(5 * LOCK_STALE_NS)))
        with pytest.raises(SharedDataContendedError):
            update_shared_data("k", lambda v: b"v", lock_key="lock", attempts=3)
        assert host.get_shared_data("k")[0] is None


def test_a_key_created_while_taking_the_lock_is_updated_instead() -> None:
    with _host() as host:
        host.now_ns = 5 * LOCK_STALE_NS
        ensure_shared_data("lock")
        made: list[int] = []

        def other_worker_creates() -> None:
            if not made:
                made.append(1)
                host.set_shared_data("k", b"10")

        _at_clock_read(host, other_worker_creates)
        result = update_shared_data("k", lambda v: b"%d" % (int(v or b"0") + 1), lock_key="lock")
        assert result == b"11"
        assert host.get_shared_data("lock")[0] == b""


def test_a_log_record_outside_a_callback_is_reported_as_logging_does(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from proxywasm.log import _handler_class

    handler = _handler_class()()
    record = logging.LogRecord("f", logging.INFO, __file__, 1, "lost %s", ("here",), None)
    handler.emit(record)  # no host: logging's own error report, never an exception
    err = capsys.readouterr().err
    assert "--- Logging error ---" in err and "lost %s" in err and "('here',)" in err
