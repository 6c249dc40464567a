"""Typed host calls: one Python function per ABI host function, bytes in and out.

This is the only module that talks to ``_proxywasm`` (the generated C glue in a
compiled module, the null runtime natively). It turns statuses into values
(``NOT_FOUND`` -> ``None``) or :class:`~proxywasm.types.HostCallError`.
Filter authors normally use the context methods instead (``self.get_...``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

TYPE_CHECKING = False

from . import _state
from ._serde import deserialize_map, serialize_map, to_bytes, to_str
from .types import (
    BufferType,
    CasMismatchError,
    HostCallError,
    LogLevel,
    MapType,
    MetricType,
    Status,
    StreamType,
)

if TYPE_CHECKING:
    import _proxywasm as _abi
else:
    try:  # inside a compiled module: the generated C glue
        import _proxywasm as _abi
    except ModuleNotFoundError:  # natively: the null runtime, bound per callback
        from . import _nullhost as _abi

__all__ = [
    "HeaderValue",
    "Headers",
    "PropertyPath",
    "add_map_value",
    "call_foreign_function",
    "close_stream",
    "continue_stream",
    "define_metric",
    "dequeue_shared_queue",
    "done",
    "enqueue_shared_queue",
    "get_buffer_bytes",
    "get_buffer_status",
    "get_current_time_nanoseconds",
    "get_log_level",
    "get_map",
    "get_map_bytes",
    "get_map_value",
    "get_map_value_bytes",
    "get_metric",
    "get_property",
    "get_shared_data",
    "get_status",
    "grpc_call",
    "grpc_cancel",
    "grpc_close",
    "grpc_send",
    "grpc_stream",
    "http_call",
    "increment_metric",
    "log",
    "record_metric",
    "register_shared_queue",
    "remove_map_value",
    "replace_map_value",
    "resolve_shared_queue",
    "send_local_response",
    "set_buffer_bytes",
    "set_effective_context",
    "set_map",
    "set_property",
    "set_shared_data",
    "set_tick_period_milliseconds",
]

HeaderValue = str | bytes
#: Headers as filters pass them: ``[(name, value), ...]`` or a mapping ``{name: value}``.
Headers = (
    Sequence[tuple[HeaderValue, HeaderValue]]
    | Mapping[str, HeaderValue]
    | Mapping[bytes, HeaderValue]
)
#: A property path: ``"request.path"`` or ``["request", "path"]``.
PropertyPath = str | Sequence[str]

_OK = 0
_NOT_FOUND = 1
_EMPTY = 7
_CAS_MISMATCH = 8


def _check(function: str, status: int, detail: str = "") -> None:
    if status != _OK:
        raise HostCallError(function, status, detail)


# -- logging, clocks, timers -------------------------------------------------


def log(level: LogLevel | int, message: str) -> None:
    """Write one entry to the host log (Envoy's log, or the emulator's)."""
    data = (
        message.encode("utf-8", "surrogateescape")
        if type(message) is str
        else to_bytes(message, "log message")
    )
    status = _abi.proxy_log(int(level), data)
    if status != _OK:
        _check("proxy_log", status)


def get_log_level() -> LogLevel:
    """The host's current log level: entries below it are dropped."""
    status, level = _abi.proxy_get_log_level()
    _check("proxy_get_log_level", status)
    return LogLevel(level)


def get_current_time_nanoseconds() -> int:
    """Wall-clock time in nanoseconds since the Unix epoch, from the host."""
    status, now = _abi.proxy_get_current_time_nanoseconds()
    _check("proxy_get_current_time_nanoseconds", status)
    return now


def set_tick_period_milliseconds(period_ms: int) -> None:
    """Call ``on_tick`` of the current root context every ``period_ms`` (0 stops it)."""
    if period_ms < 0:
        raise ValueError(f"tick period must be >= 0 ms, got {period_ms}")
    _check("proxy_set_tick_period_milliseconds", _abi.proxy_set_tick_period_milliseconds(period_ms))


# -- buffers -------------------------------------------------------------------

_MAX_SIZE = 0xFFFFFFFF


def get_buffer_bytes(
    buffer: BufferType | int, start: int = 0, size: int | None = None
) -> bytes | None:
    """Bytes ``[start, start+size)`` of a buffer (``size=None``: to the end).

    ``None`` if the buffer does not exist in this callback (``NOT_FOUND``) or
    is empty.
    """
    if start < 0 or (size is not None and size < 0):
        raise ValueError(f"buffer range must not be negative (start={start}, size={size})")
    status, data = _abi.proxy_get_buffer_bytes(
        int(buffer), start, _MAX_SIZE if size is None else size
    )
    if status in (_NOT_FOUND, _EMPTY):
        return None
    if status != _OK:
        _check("proxy_get_buffer_bytes", status, BufferType(buffer).name)
    return data or None  # the host hands back no bytes (a null pointer) for an empty range


def get_buffer_status(buffer: BufferType | int) -> tuple[int, int] | None:
    """``(size, flags)`` of a buffer, or ``None`` if it does not exist now."""
    status, size, flags = _abi.proxy_get_buffer_status(int(buffer))
    if status == _NOT_FOUND:
        return None
    if status != _OK:
        _check("proxy_get_buffer_status", status, BufferType(buffer).name)
    return size, flags


def set_buffer_bytes(
    buffer: BufferType | int, value: bytes, start: int = 0, size: int | None = None
) -> None:
    """Replace ``size`` bytes at ``start`` with ``value`` (``size=None``: to the end).

    As Envoy: ``start=0`` replaces the first ``size`` bytes; ``start`` at or
    past the end appends; any other range is ``BAD_ARGUMENT``.
    """
    value = to_bytes(value, "buffer value")
    if start < 0 or (size is not None and size < 0):
        raise ValueError(f"buffer range must not be negative (start={start}, size={size})")
    if size is None:
        current = get_buffer_status(buffer)
        size = max(0, (current[0] if current else 0) - start)
    status = _abi.proxy_set_buffer_bytes(int(buffer), start, size, value)
    if status != _OK:
        _check(
            "proxy_set_buffer_bytes", status, f"{BufferType(buffer).name} start={start} size={size}"
        )


# -- header maps ---------------------------------------------------------------


def get_map_bytes(map_type: MapType | int) -> list[tuple[bytes, bytes]]:
    """All pairs of a map as bytes (empty if the map does not exist now)."""
    status, data = _abi.proxy_get_header_map_pairs(int(map_type))
    if status == _NOT_FOUND:
        return []
    if status != _OK:
        _check("proxy_get_header_map_pairs", status, MapType(map_type).name)
    return deserialize_map(data)


def get_map(map_type: MapType | int) -> list[tuple[str, str]]:
    """All pairs of a map as ``str`` (UTF-8; undecodable bytes round-trip)."""
    return [(to_str(k), to_str(v)) for k, v in get_map_bytes(map_type)]


def set_map(
    map_type: MapType | int, pairs: Iterable[tuple[HeaderValue, HeaderValue]] | Headers
) -> None:
    """Replace a whole map (pairs, or a mapping ``{name: value}``)."""
    _state.map_epoch += 1
    _map_check(
        "proxy_set_header_map_pairs",
        _abi.proxy_set_header_map_pairs(int(map_type), serialize_map(pairs)),
        map_type,
    )


_BAD_ARGUMENT = 2

#: Why Envoy refuses a stream map (BAD_ARGUMENT): it keeps each one only while
#: its callback runs, or for good once that callback returned PAUSE.
_MAP_HINTS = {
    0: "request headers are only reachable in on_http_request_headers (or after it returned PAUSE) and in on_log",
    1: "request trailers are only reachable in on_http_request_trailers (or after it returned PAUSE)",
    2: "response headers are only reachable in on_http_response_headers (or after it returned PAUSE) and in on_log",
    3: "response trailers are only reachable in on_http_response_trailers (or after it returned PAUSE) and in on_log",
}


def _map_check(function: str, status: int, map_type: MapType | int) -> None:
    if status == _OK:  # the common case: no enum lookup for the error detail
        return
    if status == _BAD_ARGUMENT and int(map_type) in _MAP_HINTS:
        raise HostCallError(
            function,
            status,
            f"{MapType(map_type).name}: {_MAP_HINTS[int(map_type)]}; "
            "read what you need there and keep it on self",
        )
    _check(function, status, MapType(map_type).name)


def get_map_value_bytes(map_type: MapType | int, key: HeaderValue) -> bytes | None:
    """The first value of ``key`` (case-insensitive for HTTP), or ``None``."""
    status, value = _abi.proxy_get_header_map_value(int(map_type), to_bytes(key, "header name"))
    if status == _NOT_FOUND:
        return None
    _map_check("proxy_get_header_map_value", status, map_type)
    return value


def get_map_value(map_type: MapType | int, key: HeaderValue) -> str | None:
    """The first value of ``key`` as ``str``, or ``None``."""
    value = get_map_value_bytes(map_type, key)
    return None if value is None else to_str(value)


def find_map_value(map_type: MapType | int, key: str) -> str | None:
    """The first value of ``key`` as ``str``, or ``None``: the views' single read.

    ``None`` also when the host has let go of the map (BAD_ARGUMENT), as
    :func:`get_map` reads that map as empty, so a view's ``get`` and its
    iteration agree."""
    status, value = _abi.proxy_get_header_map_value(
        int(map_type), key.encode("utf-8", "surrogateescape")
    )
    if status == _OK:
        return to_str(value)
    if status == _NOT_FOUND or status == _BAD_ARGUMENT:
        return None
    _map_check("proxy_get_header_map_value", status, map_type)
    return None


def add_map_value(map_type: MapType | int, key: HeaderValue, value: HeaderValue) -> None:
    """Add a value to ``key`` (keeps existing values)."""
    _state.map_epoch += 1
    status = _abi.proxy_add_header_map_value(
        int(map_type), to_bytes(key, "header name"), to_bytes(value, "header value")
    )
    _map_check("proxy_add_header_map_value", status, map_type)


def replace_map_value(map_type: MapType | int, key: HeaderValue, value: HeaderValue) -> None:
    """Set ``key`` to exactly ``value`` (adds it if missing)."""
    _state.map_epoch += 1
    status = _abi.proxy_replace_header_map_value(
        int(map_type), to_bytes(key, "header name"), to_bytes(value, "header value")
    )
    _map_check("proxy_replace_header_map_value", status, map_type)


def remove_map_value(map_type: MapType | int, key: HeaderValue) -> None:
    """Remove every value of ``key`` (no error if missing)."""
    _state.map_epoch += 1
    status = _abi.proxy_remove_header_map_value(int(map_type), to_bytes(key, "header name"))
    if status == _NOT_FOUND:
        return
    _map_check("proxy_remove_header_map_value", status, map_type)


# -- streams -------------------------------------------------------------------


def unskip_callback(name: str) -> None:
    """Make the compiled glue call Python for callback ``name`` again (see
    ``Dispatcher.glue_skips``). Not an ABI call: the glue's own switch."""
    unskip = getattr(_abi, "pw_unskip", None)  # natively nothing is ever skipped
    if unskip is not None:
        unskip(name)


def continue_stream(stream: StreamType | int) -> None:
    """Resume a paused stream direction."""
    _check(
        "proxy_continue_stream", _abi.proxy_continue_stream(int(stream)), StreamType(stream).name
    )


def close_stream(stream: StreamType | int) -> None:
    """Close (reset) a stream direction."""
    _check("proxy_close_stream", _abi.proxy_close_stream(int(stream)), StreamType(stream).name)


def get_status() -> tuple[int, str]:
    """``(code, message)`` of the last call answered (HTTP call, gRPC)."""
    status, code, message = _abi.proxy_get_status()
    _check("proxy_get_status", status)
    return code, to_str(message)


def send_local_response(
    status_code: int,
    headers: Headers | None = None,
    body: bytes | str | None = None,
    details: str = "",
    grpc_status: int = -1,
) -> None:
    """Answer the stream from the filter instead of the upstream."""
    _state.map_epoch += 1
    _state.replied_context = _state.effective_context_id
    if not 100 <= status_code <= 999:
        raise ValueError(f"HTTP status must be 100..999, got {status_code}")
    status = _abi.proxy_send_local_response(
        status_code,
        to_bytes(details, "status details"),
        to_bytes(body or b"", "body"),
        serialize_map(headers or ()),
        grpc_status & 0xFFFFFFFF,
    )
    _check("proxy_send_local_response", status, f"status {status_code}")


# -- HTTP and gRPC calls -------------------------------------------------------


def http_call(
    upstream: str,
    headers: Headers,
    body: bytes | str | None = None,
    trailers: Headers | None = None,
    timeout_ms: int = 1000,
) -> int:
    """Send an HTTP request to cluster ``upstream``; returns the call token."""
    status, token = _abi.proxy_http_call(
        to_bytes(upstream, "upstream"),
        serialize_map(headers),
        to_bytes(body or b"", "body"),
        serialize_map(trailers or ()),
        timeout_ms,
    )
    _check(
        "proxy_http_call",
        status,
        f"upstream {upstream!r} (an unknown cluster, or headers missing :method, :path or :authority)",
    )
    return token


def grpc_call(
    upstream: str,
    service: str,
    method: str,
    initial_metadata: Headers | None,
    message: bytes,
    timeout_ms: int = 1000,
) -> int:
    """Start a unary gRPC call; returns the call token."""
    status, token = _abi.proxy_grpc_call(
        to_bytes(upstream, "upstream"),
        to_bytes(service, "service"),
        to_bytes(method, "method"),
        serialize_map(initial_metadata or ()),
        to_bytes(message, "message"),
        timeout_ms,
    )
    _check("proxy_grpc_call", status, f"{service}/{method} on {upstream!r}")
    return token


def grpc_stream(
    upstream: str, service: str, method: str, initial_metadata: Headers | None = None
) -> int:
    """Open a gRPC stream; returns its token."""
    status, token = _abi.proxy_grpc_stream(
        to_bytes(upstream, "upstream"),
        to_bytes(service, "service"),
        to_bytes(method, "method"),
        serialize_map(initial_metadata or ()),
    )
    _check("proxy_grpc_stream", status, f"{service}/{method} on {upstream!r}")
    return token


def grpc_send(token: int, message: bytes, end_of_stream: bool = False) -> None:
    """Send a message on an open gRPC stream."""
    _check(
        "proxy_grpc_send",
        _abi.proxy_grpc_send(token, to_bytes(message, "message"), int(end_of_stream)),
    )


def grpc_cancel(token: int) -> None:
    """Cancel a gRPC call or stream."""
    _check("proxy_grpc_cancel", _abi.proxy_grpc_cancel(token))


def grpc_close(token: int) -> None:
    """Close a gRPC call or stream."""
    _check("proxy_grpc_close", _abi.proxy_grpc_close(token))


# -- shared data and queues -------------------------------------------------------


def get_shared_data(key: str) -> tuple[bytes | None, int | None]:
    """``(value, cas)``; ``(None, None)`` if the key does not exist."""
    status, value, cas = _abi.proxy_get_shared_data(to_bytes(key, "shared data key"))
    if status == _NOT_FOUND:
        return None, None
    _check("proxy_get_shared_data", status, repr(key))
    return value, cas


def set_shared_data(key: str, value: bytes | str | None, cas: int | None = None) -> None:
    """Store ``value`` under ``key``; with ``cas`` only if it is still current.

    Raises :class:`~proxywasm.types.CasMismatchError` if another writer got
    there first.
    """
    status = _abi.proxy_set_shared_data(
        to_bytes(key, "shared data key"), to_bytes(value or b"", "shared data value"), cas or 0
    )
    if status == _CAS_MISMATCH:
        raise CasMismatchError("proxy_set_shared_data", status, f"key {key!r}, cas {cas}")
    _check("proxy_set_shared_data", status, repr(key))


def register_shared_queue(name: str) -> int:
    """Create (or look up) this VM's queue ``name``; returns its id."""
    status, queue_id = _abi.proxy_register_shared_queue(to_bytes(name, "queue name"))
    _check("proxy_register_shared_queue", status, repr(name))
    return queue_id


def resolve_shared_queue(vm_id: str, name: str) -> int | None:
    """Id of queue ``name`` registered by VM ``vm_id``, or ``None``."""
    status, queue_id = _abi.proxy_resolve_shared_queue(
        to_bytes(vm_id, "vm id"), to_bytes(name, "queue name")
    )
    if status == _NOT_FOUND:
        return None
    _check("proxy_resolve_shared_queue", status, repr(name))
    return queue_id


def enqueue_shared_queue(queue_id: int, value: bytes | str) -> None:
    """Append ``value`` to a queue (wakes its owner's ``on_queue_ready``)."""
    status = _abi.proxy_enqueue_shared_queue(queue_id, to_bytes(value, "queue item"))
    _check("proxy_enqueue_shared_queue", status, f"queue {queue_id}")


def dequeue_shared_queue(queue_id: int) -> bytes | None:
    """Pop the oldest item of a queue, or ``None`` when it is empty."""
    status, value = _abi.proxy_dequeue_shared_queue(queue_id)
    if status == _EMPTY:
        return None
    _check("proxy_dequeue_shared_queue", status, f"queue {queue_id}")
    return value


# -- metrics -------------------------------------------------------------------


def define_metric(metric_type: MetricType | int, name: str) -> int:
    """Define (or look up) a metric; returns its id."""
    status, metric_id = _abi.proxy_define_metric(int(metric_type), to_bytes(name, "metric name"))
    _check("proxy_define_metric", status, repr(name))
    return metric_id


def record_metric(metric_id: int, value: int) -> None:
    """Set a gauge, or record a histogram sample."""
    _check("proxy_record_metric", _abi.proxy_record_metric(metric_id, value), f"metric {metric_id}")


def increment_metric(metric_id: int, delta: int) -> None:
    """Add ``delta`` (may be negative for gauges) to a metric."""
    _check(
        "proxy_increment_metric",
        _abi.proxy_increment_metric(metric_id, delta),
        f"metric {metric_id}",
    )


def get_metric(metric_id: int) -> int:
    """Current value of a counter or gauge."""
    status, value = _abi.proxy_get_metric(metric_id)
    _check("proxy_get_metric", status, f"metric {metric_id}")
    return value


# -- properties and foreign functions ----------------------------------------------


def _path(path: PropertyPath) -> bytes:
    if isinstance(path, str):
        parts: Sequence[str] = path.split(".")
    elif isinstance(path, (list, tuple)):
        parts = path
    else:
        raise TypeError(
            f"property path must be str or a sequence of str, not {type(path).__name__}"
        )
    return b"\x00".join(to_bytes(p, "property path segment") for p in parts)


def get_property(path: PropertyPath) -> bytes | None:
    """Raw value of a host property (``"request.path"``), or ``None``."""
    status, value = _abi.proxy_get_property(_path(path))
    if status == _NOT_FOUND:
        return None
    _check("proxy_get_property", status, repr(path))
    return value


def set_property(path: PropertyPath, value: bytes | str) -> None:
    """Set a host property (Envoy allows writing filter state)."""
    _check(
        "proxy_set_property",
        _abi.proxy_set_property(_path(path), to_bytes(value, "property value")),
    )


def call_foreign_function(name: str, arguments: bytes = b"") -> bytes | None:
    """Call a host extension function by name; ``None`` if it returns nothing."""
    status, result = _abi.proxy_call_foreign_function(to_bytes(name, "function name"), arguments)
    if status == _NOT_FOUND:
        raise HostCallError("proxy_call_foreign_function", status, f"no foreign function {name!r}")
    _check("proxy_call_foreign_function", status, repr(name))
    return result or None


# -- context lifecycle -------------------------------------------------------------


def set_effective_context(context_id: int) -> None:
    """Make host calls act on ``context_id`` (e.g. resume a stream from a callout)."""
    _check(
        "proxy_set_effective_context",
        _abi.proxy_set_effective_context(context_id),
        f"context {context_id}",
    )


def done() -> None:
    """Tell the host a context that returned ``False`` from ``on_done`` is finished."""
    _check("proxy_done", _abi.proxy_done())


assert Status.OK == _OK and Status.NOT_FOUND == _NOT_FOUND and Status.EMPTY == _EMPTY
