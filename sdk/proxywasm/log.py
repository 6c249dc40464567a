"""Logging to the host: ``log_info(...)`` and friends, a ``logging.Handler``,
and the text stream that ``print`` writes to inside a compiled module.
"""

from __future__ import annotations

import io

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

from . import hostcalls as hc
from .types import LogLevel, NotInCallbackError

if TYPE_CHECKING:
    import logging

    import _proxywasm as _abi
else:
    _abi = hc._abi  # the host module hostcalls bound, for log_debug's fast path

_DEBUG = int(LogLevel.DEBUG)

__all__ = [
    "HostLogStream",
    "ProxyLogHandler",  # noqa: F822 -- made on first access (module __getattr__)
    "log",
    "log_critical",
    "log_debug",
    "log_error",
    "log_info",
    "log_trace",
    "log_warn",
]


def log(level: LogLevel | int, message: str) -> None:
    """Write one entry to the host log."""
    hc.log(level, message)


def log_trace(message: str) -> None:
    """Log at TRACE."""
    hc.log(LogLevel.TRACE, message)


def log_debug(message: str) -> None:
    """Log at DEBUG."""
    # Per-request hot path: a str message in this one frame; anything else via hc.log.
    if type(message) is str:
        status = _abi.proxy_log(_DEBUG, message.encode("utf-8", "surrogateescape"))
        if status != 0:  # hc.log's error for this status, without logging again
            hc._check("proxy_log", status)
        return
    hc.log(LogLevel.DEBUG, message)


def log_info(message: str) -> None:
    """Log at INFO."""
    hc.log(LogLevel.INFO, message)


def log_warn(message: str) -> None:
    """Log at WARN."""
    hc.log(LogLevel.WARN, message)


def log_error(message: str) -> None:
    """Log at ERROR."""
    hc.log(LogLevel.ERROR, message)


def log_critical(message: str) -> None:
    """Log at CRITICAL."""
    hc.log(LogLevel.CRITICAL, message)


class HostLogStream(io.TextIOBase):
    """A text stream that sends each complete line to the host log at ``level``.

    Compiled modules install it as ``sys.stdout`` (INFO) and ``sys.stderr``
    (ERROR), so ``print`` reaches Envoy's log. ``fallback`` receives text
    written when no host call is possible (outside a callback).
    """

    def __init__(self, level: LogLevel, fallback: Any = None) -> None:
        super().__init__()
        self.level = level
        self.fallback = fallback
        self._pending = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if self.fallback is not None:
            self.fallback.write(text)
        self._pending += text
        if "\n" in self._pending:
            *lines, self._pending = self._pending.split("\n")
            for line in lines:
                self._emit(line)
        return len(text)

    def flush(self) -> None:
        if self.fallback is not None:
            self.fallback.flush()

    def emit_pending(self) -> None:
        """Send a trailing partial line (the glue calls this after each callback)."""
        if self._pending:
            line, self._pending = self._pending, ""
            self._emit(line)

    def _emit(self, line: str) -> None:
        try:
            hc.log(self.level, line)
        except NotInCallbackError:
            pass


def _handler_class() -> type[logging.Handler]:
    import logging

    class ProxyLogHandler(logging.Handler):
        """Routes :mod:`logging` records to the host log, mapping levels."""

        def emit(self, record: logging.LogRecord) -> None:
            if record.levelno >= logging.CRITICAL:
                level = LogLevel.CRITICAL
            elif record.levelno >= logging.ERROR:
                level = LogLevel.ERROR
            elif record.levelno >= logging.WARNING:
                level = LogLevel.WARN
            elif record.levelno >= logging.INFO:
                level = LogLevel.INFO
            elif record.levelno >= logging.DEBUG:
                level = LogLevel.DEBUG
            else:
                level = LogLevel.TRACE
            try:
                hc.log(level, self.format(record))
            except Exception:  # noqa: BLE001  # logging's own contract: report, never raise
                self.handleError(record)

    return ProxyLogHandler


def __getattr__(name: str) -> Any:
    # The handler class is made on demand so that modules which never use
    # `logging` do not freeze it (and its imports) into the module.
    if name == "ProxyLogHandler":
        cls = _handler_class()
        globals()[name] = cls
        return cls
    raise AttributeError(name)
