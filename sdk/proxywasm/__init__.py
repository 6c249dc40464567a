"""proxy-wasm-python: write Envoy / Istio proxy-wasm filters in Python.

>>> import proxywasm
>>> from proxywasm import RootContext, HttpContext, Action
>>> class AddHeader(HttpContext):
...     def on_http_response_headers(self, num_headers: int, end_of_stream: bool) -> Action:
...         self.set_http_response_header("x-hello", "world")
...         return Action.CONTINUE
>>> class Root(RootContext):
...     def create_http_context(self, context_id: int) -> HttpContext:
...         return AddHeader(context_id, self)
>>> proxywasm.set_root_context(Root)

Run it natively with :class:`proxywasm.testing.HostEmulator`; compile it with
``proxywasm build filter.py``. The same code runs in both.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing is not imported at run time: it would be frozen into every module
if TYPE_CHECKING:
    from typing import Any, TypeVar

from . import hostcalls
from .calls import HttpCall, HttpResponse, gather
from .contexts import BaseContext, HttpContext, RootContext, StreamContext
from .dispatcher import RootFactory, set_root_context
from .hostcalls import (
    call_foreign_function,
    dequeue_shared_queue,
    enqueue_shared_queue,
    get_current_time_nanoseconds,
    get_log_level,
    get_property,
    get_shared_data,
    register_shared_queue,
    resolve_shared_queue,
    set_property,
    set_shared_data,
)
from .log import log, log_critical, log_debug, log_error, log_info, log_trace, log_warn
from .metrics import Counter, Gauge, Histogram
from .types import (
    Action,
    BufferType,
    CasMismatchError,
    ConfigError,
    HostCallError,
    LogLevel,
    MapType,
    MetricType,
    NotInCallbackError,
    PeerType,
    ProxyWasmError,
    Status,
    StreamType,
)
from .views import Body, FrozenHeaders, HeaderMap, Request, Response

__version__ = "0.1.0.dev0"

__all__ = [
    "Action",
    "BaseContext",
    "Body",
    "BufferType",
    "CasMismatchError",
    "ConfigError",
    "Counter",
    "FrozenHeaders",
    "Gauge",
    "HeaderMap",
    "Histogram",
    "HostCallError",
    "HttpCall",
    "HttpContext",
    "HttpResponse",
    "LogLevel",
    "MapType",
    "MetricType",
    "NotInCallbackError",
    "PeerType",
    "ProxyLogHandler",
    "ProxyWasmError",
    "Request",
    "Response",
    "RootContext",
    "RootFactory",
    "Status",
    "StreamContext",
    "StreamType",
    "call_foreign_function",
    "dequeue_shared_queue",
    "enqueue_shared_queue",
    "gather",
    "get_current_time_nanoseconds",
    "get_log_level",
    "get_property",
    "get_shared_data",
    "hostcalls",
    "log",
    "log_critical",
    "log_debug",
    "log_error",
    "log_info",
    "log_trace",
    "log_warn",
    "register_shared_queue",
    "resolve_shared_queue",
    "root_context",
    "set_property",
    "set_root_context",
    "set_shared_data",
    "set_tick_period_ms",
]

if TYPE_CHECKING:
    _R = TypeVar("_R", bound=type[RootContext])


def set_tick_period_ms(period_ms: int) -> None:
    """Module-level twin of :meth:`RootContext.set_tick_period_ms` (for the
    root context of the running callback)."""
    hostcalls.set_tick_period_milliseconds(period_ms)


def root_context(cls: _R) -> _R:
    """Class decorator: ``@proxywasm.root_context`` registers the root context."""
    set_root_context(cls)
    return cls


def __getattr__(name: str) -> Any:
    if name == "ProxyLogHandler":  # imports `logging` only when asked for
        from .log import ProxyLogHandler

        return ProxyLogHandler
    raise AttributeError(f"module 'proxywasm' has no attribute {name!r}")
