"""Logging: levels, get_logs, host log level, logging.Handler, HostLogStream."""

from __future__ import annotations

import logging

import proxywasm
import pytest
from proxywasm import LogLevel, NotInCallbackError, RootContext
from proxywasm.log import HostLogStream
from proxywasm.testing import HostEmulator


def run_tick(body: object, **kwargs: object) -> HostEmulator:
    class R(RootContext):
        def on_tick(self) -> None:
            body(self)  # type: ignore[operator]

    host = HostEmulator(R, **kwargs)  # type: ignore[arg-type]
    host.start_vm()
    host.start_plugin()
    host.tick(host.root_context_id)
    return host


def every_level(root: RootContext) -> None:
    proxywasm.log_trace("t")
    proxywasm.log_debug("d")
    proxywasm.log_info("i")
    proxywasm.log_warn("w")
    proxywasm.log_error("e")
    proxywasm.log_critical("c")
    root.log(LogLevel.INFO, "ctx-info")
    proxywasm.log(LogLevel.WARN, "mod-warn")


def test_each_level_lands_at_exactly_that_level() -> None:
    host = run_tick(every_level)
    assert host.get_logs(LogLevel.TRACE) == ["t"]
    assert host.get_logs(LogLevel.DEBUG) == ["d"]
    assert host.get_logs(LogLevel.INFO) == ["i", "ctx-info"]
    assert host.get_logs(LogLevel.WARN) == ["w", "mod-warn"]
    assert host.get_logs(LogLevel.ERROR) == ["e"]
    assert host.get_logs(LogLevel.CRITICAL) == ["c"]
    assert [lvl for lvl, _ in host.get_all_logs()] == [0, 1, 2, 3, 4, 5, 2, 3]


def test_host_log_level_filters_and_is_readable() -> None:
    seen: list[LogLevel] = []

    def body(root: RootContext) -> None:
        seen.append(root.get_log_level())
        seen.append(proxywasm.get_log_level())
        every_level(root)

    host = run_tick(body, log_level=LogLevel.WARN)
    assert seen == [LogLevel.WARN, LogLevel.WARN]
    assert host.get_logs(LogLevel.INFO) == [] and host.get_logs(LogLevel.DEBUG) == []
    assert host.get_logs(LogLevel.WARN) == ["w", "mod-warn"]
    assert host.get_logs(LogLevel.CRITICAL) == ["c"]


def test_clear_logs() -> None:
    host = run_tick(every_level)
    host.clear_logs()
    assert host.get_all_logs() == []


def test_non_ascii_messages() -> None:
    host = run_tick(lambda r: proxywasm.log_info("naïve ☃"))
    assert host.get_logs(LogLevel.INFO) == ["naïve ☃"]


def test_logging_outside_a_callback_raises() -> None:
    with pytest.raises(NotInCallbackError):
        proxywasm.log_info("no host here")


def test_proxy_log_handler_maps_logging_levels() -> None:
    logger = logging.getLogger("test_logging.handler")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    handler = proxywasm.ProxyLogHandler()
    handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    logger.addHandler(handler)
    try:

        def body(root: RootContext) -> None:
            logger.debug("dbg %d", 1)
            logger.info("inf")
            logger.warning("wrn")
            logger.error("err")
            logger.critical("crit")
            logger.log(5, "below debug")  # ignored by the logger's DEBUG level

        host = run_tick(body)
    finally:
        logger.removeHandler(handler)
    assert host.get_logs(LogLevel.DEBUG) == ["test_logging.handler: dbg 1"]
    assert host.get_logs(LogLevel.INFO) == ["test_logging.handler: inf"]
    assert host.get_logs(LogLevel.WARN) == ["test_logging.handler: wrn"]
    assert host.get_logs(LogLevel.ERROR) == ["test_logging.handler: err"]
    assert host.get_logs(LogLevel.CRITICAL) == ["test_logging.handler: crit"]
    assert host.get_logs(LogLevel.TRACE) == []


def test_proxy_log_handler_trace_level() -> None:
    logger = logging.getLogger("test_logging.trace")
    logger.propagate = False
    logger.setLevel(1)
    handler = proxywasm.ProxyLogHandler()
    logger.addHandler(handler)
    try:
        host = run_tick(lambda r: logger.log(5, "very fine"))
    finally:
        logger.removeHandler(handler)
    assert host.get_logs(LogLevel.TRACE) == ["very fine"]


def test_host_log_stream_sends_complete_lines() -> None:
    stream = HostLogStream(LogLevel.INFO)

    def body(root: RootContext) -> None:
        stream.write("one\ntw")
        stream.write("o\nthree")
        print("printed", file=stream)

    host = run_tick(body)
    assert host.get_logs(LogLevel.INFO) == ["one", "two", "threeprinted"]

    def flush(root: RootContext) -> None:
        stream.write("tail")
        stream.emit_pending()

    host2 = run_tick(flush)
    assert host2.get_logs(LogLevel.INFO) == ["tail"]


def test_host_log_stream_outside_a_callback_uses_the_fallback() -> None:
    import io

    fallback = io.StringIO()
    stream = HostLogStream(LogLevel.ERROR, fallback=fallback)
    stream.write("lost line\n")  # no host: no exception
    assert fallback.getvalue() == "lost line\n"
    assert stream.writable()
