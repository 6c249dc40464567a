"""Enums and errors of the proxy-wasm ABI v0.2.1.

The numeric values are the ABI's (``abi-stubs/abi.toml``); a test checks that
every member here matches the table.
"""

from __future__ import annotations

from enum import IntEnum

__all__ = [
    "Action",
    "BufferType",
    "CasMismatchError",
    "ConfigError",
    "HostCallError",
    "LogLevel",
    "MapType",
    "MetricType",
    "NotInCallbackError",
    "PeerType",
    "ProxyWasmError",
    "Status",
    "StreamType",
]


class LogLevel(IntEnum):
    """Severity of a log entry (``proxy_log_level_t``)."""

    TRACE = 0
    DEBUG = 1
    INFO = 2
    WARN = 3
    ERROR = 4
    CRITICAL = 5


class Status(IntEnum):
    """Result of a host call (``proxy_status_t``)."""

    OK = 0
    NOT_FOUND = 1
    BAD_ARGUMENT = 2
    SERIALIZATION_FAILURE = 3
    PARSE_FAILURE = 4
    INVALID_MEMORY_ACCESS = 6
    EMPTY = 7
    CAS_MISMATCH = 8
    INTERNAL_FAILURE = 10
    UNIMPLEMENTED = 12


class Action(IntEnum):
    """What a stream callback tells the host to do next (``proxy_action_t``)."""

    CONTINUE = 0
    PAUSE = 1


class BufferType(IntEnum):
    """Which byte buffer a buffer call reads or writes (``proxy_buffer_type_t``)."""

    HTTP_REQUEST_BODY = 0
    HTTP_RESPONSE_BODY = 1
    DOWNSTREAM_DATA = 2
    UPSTREAM_DATA = 3
    HTTP_CALL_RESPONSE_BODY = 4
    GRPC_CALL_MESSAGE = 5
    VM_CONFIGURATION = 6
    PLUGIN_CONFIGURATION = 7
    FOREIGN_FUNCTION_ARGUMENTS = 8


class MapType(IntEnum):
    """Which header / metadata map a map call uses (``proxy_map_type_t``)."""

    HTTP_REQUEST_HEADERS = 0
    HTTP_REQUEST_TRAILERS = 1
    HTTP_RESPONSE_HEADERS = 2
    HTTP_RESPONSE_TRAILERS = 3
    GRPC_CALL_INITIAL_METADATA = 4
    GRPC_CALL_TRAILING_METADATA = 5
    HTTP_CALL_RESPONSE_HEADERS = 6
    HTTP_CALL_RESPONSE_TRAILERS = 7


class PeerType(IntEnum):
    """Which side closed a TCP connection (``proxy_peer_type_t``)."""

    UNKNOWN = 0
    LOCAL = 1
    REMOTE = 2


class StreamType(IntEnum):
    """Which direction of a stream to resume or close (``proxy_stream_type_t``)."""

    HTTP_REQUEST = 0
    HTTP_RESPONSE = 1
    DOWNSTREAM = 2
    UPSTREAM = 3


class MetricType(IntEnum):
    """Kind of a metric (``proxy_metric_type_t``)."""

    COUNTER = 0
    GAUGE = 1
    HISTOGRAM = 2


class ProxyWasmError(Exception):
    """Base class of every error the SDK raises."""


class ConfigError(ProxyWasmError):
    """A configuration the filter cannot use.

    Raised out of ``on_configure`` or ``on_vm_start``, it is logged as one
    error line with its message (no traceback) and the callback returns
    ``False``: Envoy rejects the configuration.
    """


class HostCallError(ProxyWasmError):
    """A host call returned a status the SDK cannot turn into a value.

    ``function`` is the ABI function (``proxy_...``), ``status`` the
    :class:`Status` it returned.
    """

    def __init__(self, function: str, status: int, detail: str = "") -> None:
        self.function = function
        try:
            self.status: Status | int = Status(status)
            name = self.status.name
        except ValueError:
            self.status = status
            name = str(status)
        msg = f"{function} failed with {name}"
        if detail:
            msg += f": {detail}"
        super().__init__(msg)


class CasMismatchError(HostCallError):
    """``set_shared_data`` was given a CAS that is no longer current.

    Read the key again (``get_shared_data``) and retry with the new CAS.
    """


class NotInCallbackError(ProxyWasmError):
    """A host function was called while the host is not running a callback.

    Natively this means the call happened outside a ``HostEmulator`` callback
    (for instance at import time or directly from a test); drive the filter
    through :class:`proxywasm.testing.HostEmulator` instead.
    """
