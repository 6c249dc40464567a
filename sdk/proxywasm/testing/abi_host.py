"""The host side of the proxy-wasm ABI, in Python: every ``env.proxy_*`` function.

:class:`AbiHost` keeps the host state and implements each host function with
the Python-level signature of ``_proxywasm`` (``abi-stubs/``): ``bytes`` for
pointer/size pairs, ``(status, *outputs)`` results. Natively the SDK calls it
through ``proxywasm._nullhost``; for a compiled module the wasmtime host
(:mod:`.wasm`) converts wasm memory to the same calls. It behaves as Envoy
1.40 / proxy-wasm-cpp-host do where that is observable.
"""

from __future__ import annotations

import itertools
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import ClassVar

from .._serde import MapSerializationError, deserialize_map, serialize_map, serialize_pairs
from ..types import Action, BufferType, LogLevel, MapType, MetricType, Status, StreamType
from .state import (
    GrpcCallAttributes,
    HttpCallAttributes,
    HttpStream,
    LocalResponse,
    Metric,
    Pairs,
    SharedQueue,
    TcpConnection,
)

__all__ = ["AbiHost", "ForeignFunction", "encode_property"]

OK = int(Status.OK)
NOT_FOUND = int(Status.NOT_FOUND)
BAD_ARGUMENT = int(Status.BAD_ARGUMENT)
SERIALIZATION_FAILURE = int(Status.SERIALIZATION_FAILURE)
EMPTY = int(Status.EMPTY)
CAS_MISMATCH = int(Status.CAS_MISMATCH)
INTERNAL_FAILURE = int(Status.INTERNAL_FAILURE)
UNIMPLEMENTED = int(Status.UNIMPLEMENTED)

#: A foreign function a test registers: arguments in, result out.
ForeignFunction = Callable[[bytes], bytes | None]

PropertyValue = bytes | str | int | bool

#: Defaults for what a long run keeps (see :class:`AbiHost`).
KEEP_FINISHED = 1000
MAX_LOG_ENTRIES = 10_000
MAX_HISTOGRAM_SAMPLES = 10_000

_REQUEST_HEADERS = int(MapType.HTTP_REQUEST_HEADERS)
_REQUEST_TRAILERS = int(MapType.HTTP_REQUEST_TRAILERS)
_RESPONSE_HEADERS = int(MapType.HTTP_RESPONSE_HEADERS)
_RESPONSE_TRAILERS = int(MapType.HTTP_RESPONSE_TRAILERS)
_MAP_TYPES = frozenset(int(m) for m in MapType)

# LogLevel(n) goes through Enum.__call__; a dict lookup is ~10x cheaper on the log path.
_LOG_LEVELS = {int(level): level for level in LogLevel}


def encode_property(value: PropertyValue) -> bytes:
    """Encode a property as Envoy does: strings raw, integers as 8-byte little-endian, bools as one byte."""
    if isinstance(value, bool):
        return b"\x01" if value else b"\x00"
    if isinstance(value, int):
        return value.to_bytes(8, "little", signed=True)
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    raise TypeError(f"property value must be bytes, str, int or bool, not {type(value).__name__}")


def _lower(name: bytes) -> bytes:
    return name.lower()


def _first(pairs: Pairs, key: bytes) -> bytes | None:
    key = key.lower()
    for k, v in pairs:
        if k == key:
            return v
    return None


class AbiHost:
    """Host state and the 39 ``proxy_*`` host functions of ABI v0.2.1.

    What a long run keeps is bounded, so that the cost of a request does not
    grow with the number served before it:

    - ``http_streams`` / ``tcp_connections`` hold the *live* contexts only. A
      finished one (after ``on_delete``) moves to ``finished_http_streams`` /
      ``finished_connections``, which keep the ``keep_finished`` most recent
      records (oldest dropped first; ``0`` keeps none) so that a test can still
      inspect a finished stream. A finished context id is no longer a context:
      ``proxy_set_effective_context`` on it answers BAD_ARGUMENT, as in Envoy.
    - ``logs`` keeps the last ``max_log_entries`` entries (``None``: all).
    - A histogram keeps its last ``max_histogram_samples`` samples (``None``:
      all) in ``Metric.samples``; ``Metric.sample_count`` counts every one.
    """

    def __init__(
        self,
        *,
        vm_configuration: bytes | None,
        root_id: str,
        vm_id: str,
        log_level: LogLevel,
        properties: dict[str, PropertyValue] | None,
        upstreams: list[str] | None,
        keep_finished: int = KEEP_FINISHED,
        max_log_entries: int | None = MAX_LOG_ENTRIES,
        max_histogram_samples: int | None = MAX_HISTOGRAM_SAMPLES,
    ) -> None:
        if keep_finished < 0:
            raise ValueError(f"keep_finished must be >= 0, got {keep_finished}")
        self.vm_configuration = vm_configuration
        self.root_id = root_id
        self.vm_id = vm_id
        self.log_level = log_level
        #: Clusters a callout may target; ``None`` accepts any name.
        self.upstreams = upstreams
        #: Fixed clock for tests (nanoseconds); ``None`` reads the real clock.
        self.now_ns: int | None = None
        #: The last ``max_log_entries`` entries, oldest first.
        self.logs: deque[tuple[LogLevel, str]] = deque(maxlen=max_log_entries)
        self.plugin_configurations: dict[int, bytes | None] = {}
        self.plugin_root_ids: dict[int, str] = {}
        #: Live streams and connections (finished ones leave; see the class docstring).
        self.http_streams: dict[int, HttpStream] = {}
        self.tcp_connections: dict[int, TcpConnection] = {}
        #: Records of the ``keep_finished`` most recently finished contexts, oldest first.
        self.finished_http_streams: OrderedDict[int, HttpStream] = OrderedDict()
        self.finished_connections: OrderedDict[int, TcpConnection] = OrderedDict()
        self.keep_finished = keep_finished
        self.max_histogram_samples = max_histogram_samples
        #: Streams that may have host work once the running callback returns
        #: (a local reply to send, held body / trailers to release).
        self.ready_streams: deque[int] = deque()
        self.root_contexts: list[int] = []
        self.tick_periods: dict[int, int] = {}
        self.shared_data: dict[bytes, tuple[bytes, int]] = {}
        self.queues: dict[int, SharedQueue] = {}
        self.metrics: dict[int, Metric] = {}
        self.http_calls: dict[int, HttpCallAttributes] = {}
        self.grpc_calls: dict[int, GrpcCallAttributes] = {}
        self.foreign_functions: dict[str, ForeignFunction] = {}
        self.properties: dict[tuple[str, ...], bytes] = {}
        for path, value in (properties or {}).items():
            self.properties[tuple(path.split("."))] = encode_property(value)
        #: Root contexts whose ``on_done`` returned False at shutdown, waiting for ``proxy_done``.
        self.pending_done: list[int] = []
        #: Root contexts that called ``proxy_done``: deleted once the running callback returns.
        self.pending_delete: deque[int] = deque()
        # What the running callback may see.
        self.effective_context_id = 0
        self.callback = ""
        #: The callout answer being delivered: headers, body (``None``: a reset,
        #: where Envoy has no body buffer), trailers.
        self.call_response: tuple[Pairs, bytes | None, Pairs] | None = None
        self.grpc_message: bytes | None = None
        self.grpc_initial_metadata: Pairs | None = None
        self.grpc_trailing_metadata: Pairs | None = None
        self.foreign_arguments: bytes | None = None
        self.last_status: tuple[int, bytes] = (0, b"")
        self.pending_queue_ready: deque[tuple[int, int]] = deque()
        self._ids = itertools.count(1)
        self._cas = itertools.count(1)

    # -- helpers ----------------------------------------------------------------------

    def _new_id(self) -> int:
        return next(self._ids)

    def _root_of(self, context_id: int) -> int:
        stream = self.http_streams.get(context_id) or self.tcp_connections.get(context_id)
        return stream.root_context_id if stream is not None else context_id

    def _http(self) -> HttpStream | None:
        return self.http_streams.get(self.effective_context_id)

    def _tcp(self) -> TcpConnection | None:
        return self.tcp_connections.get(self.effective_context_id)

    # -- context lifecycle ------------------------------------------------------------

    def proxy_done(self) -> int:
        # As proxy-wasm-cpp-host: only a root context that returned False from
        # on_done at shutdown may finish later; anything else is NOT_FOUND.
        ctx = self.effective_context_id
        if ctx not in self.pending_done:
            return NOT_FOUND
        self.pending_done.remove(ctx)
        self.pending_delete.append(ctx)
        return OK

    def proxy_set_effective_context(self, context_id: int) -> int:
        if (
            context_id not in self.http_streams
            and context_id not in self.tcp_connections
            and context_id not in self.root_contexts
        ):
            return BAD_ARGUMENT
        self.effective_context_id = context_id
        return OK

    # -- logging, clocks, timers ---------------------------------------------------------

    def proxy_log(self, log_level: int, message: bytes) -> int:
        level = _LOG_LEVELS.get(log_level)
        if level is None:
            return BAD_ARGUMENT
        if level >= self.log_level:
            self.logs.append((level, message.decode("utf-8", "replace")))
        return OK

    def proxy_get_log_level(self) -> tuple[int, int]:
        return OK, int(self.log_level)

    def proxy_get_current_time_nanoseconds(self) -> tuple[int, int]:
        return OK, self.now_ns if self.now_ns is not None else time.time_ns()

    def proxy_set_tick_period_milliseconds(self, tick_period: int) -> int:
        self.tick_periods[self._root_of(self.effective_context_id)] = tick_period
        return OK

    # -- buffers -------------------------------------------------------------------------

    def _buffer(self, buffer_id: int) -> bytearray | bytes | None:
        """The buffer visible now, or None (NOT_FOUND) if this callback has none."""
        cb = self.callback
        # A body is visible in its own callback and, while the filter holds it
        # paused (Envoy's buffering_*_body_), from any callback of the stream.
        if buffer_id == BufferType.HTTP_REQUEST_BODY:
            s = self._http()
            if s is None or not (cb == "proxy_on_request_body" or s.request_body_paused):
                return None
            return s.request_body
        if buffer_id == BufferType.HTTP_RESPONSE_BODY:
            s = self._http()
            if s is None or not (cb == "proxy_on_response_body" or s.response_body_paused):
                return None
            return s.response_body
        if buffer_id == BufferType.DOWNSTREAM_DATA:
            c = self._tcp()
            if c is None or not (cb == "proxy_on_downstream_data" or c.downstream_paused):
                return None
            return c.downstream_data
        if buffer_id == BufferType.UPSTREAM_DATA:
            c = self._tcp()
            if c is None or not (cb == "proxy_on_upstream_data" or c.upstream_paused):
                return None
            return c.upstream_data
        if buffer_id == BufferType.HTTP_CALL_RESPONSE_BODY:
            return self.call_response[1] if self.call_response is not None else None
        if buffer_id == BufferType.GRPC_CALL_MESSAGE:
            return self.grpc_message
        if buffer_id == BufferType.VM_CONFIGURATION:
            # Envoy serves it in any callback; with no configuration it is empty, not missing.
            return self.vm_configuration or b""
        if buffer_id == BufferType.PLUGIN_CONFIGURATION:
            if cb != "proxy_on_configure":
                return None
            # In on_configure Envoy always has the buffer: empty when there is no
            # configuration (the AssemblyScript SDK aborts on NOT_FOUND here).
            return self.plugin_configurations.get(self.effective_context_id) or b""
        if buffer_id == BufferType.FOREIGN_FUNCTION_ARGUMENTS:
            return self.foreign_arguments
        return None

    def proxy_get_buffer_bytes(
        self, buffer_id: int, start: int, max_size: int
    ) -> tuple[int, bytes]:
        if buffer_id not in BufferType._value2member_map_:
            return BAD_ARGUMENT, b""
        buf = self._buffer(buffer_id)
        if buf is None:
            return NOT_FOUND, b""
        # proxy-wasm-cpp-host clamps: reading at or past the end returns no bytes.
        return OK, bytes(buf[start : start + max_size])

    def proxy_get_buffer_status(self, buffer_id: int) -> tuple[int, int, int]:
        if buffer_id not in BufferType._value2member_map_:
            return BAD_ARGUMENT, 0, 0
        buf = self._buffer(buffer_id)
        if buf is None:
            return NOT_FOUND, 0, 0
        return OK, len(buf), 0

    def proxy_set_buffer_bytes(self, buffer_id: int, start: int, size: int, value: bytes) -> int:
        if buffer_id not in BufferType._value2member_map_:
            return BAD_ARGUMENT
        buf = self._buffer(buffer_id)
        if buf is None:
            return NOT_FOUND
        if not isinstance(buf, bytearray):  # call responses, configuration: read-only
            return BAD_ARGUMENT
        # Envoy's rule: start 0 drains `size` bytes and prepends; start at or
        # past the end appends; anything else is refused.
        if start == 0:
            del buf[:size]
            buf[0:0] = value
        elif start >= len(buf):
            buf += value
        else:
            return BAD_ARGUMENT
        return OK

    # -- header maps ----------------------------------------------------------------------

    def _map(self, map_id: int) -> Pairs | None:
        """The live list behind a map (mutations are seen by the host), or None."""
        # Stream maps first, compared as plain ints: this runs for every header access.
        if map_id <= _RESPONSE_TRAILERS and map_id >= 0:
            s = self.http_streams.get(self.effective_context_id)
            if s is None or not self._map_reachable(s, map_id):
                return None
            if map_id == _REQUEST_HEADERS:
                return s.request_headers
            if map_id == _RESPONSE_HEADERS:
                return s.response_headers
            if map_id == _REQUEST_TRAILERS:
                if s.request_trailers is None and self.callback == "proxy_on_request_body":
                    s.request_trailers = []  # Envoy lets the last body chunk add trailers
                return s.request_trailers
            if s.response_trailers is None and self.callback == "proxy_on_response_body":
                s.response_trailers = []
            return s.response_trailers
        if (
            map_id == MapType.HTTP_CALL_RESPONSE_HEADERS
            or map_id == MapType.HTTP_CALL_RESPONSE_TRAILERS
        ):
            if self.call_response is None:
                return None
            return (
                self.call_response[0]
                if map_id == MapType.HTTP_CALL_RESPONSE_HEADERS
                else self.call_response[2]
            )
        if map_id == MapType.GRPC_CALL_INITIAL_METADATA:
            return self.grpc_initial_metadata
        if map_id == MapType.GRPC_CALL_TRAILING_METADATA:
            return self.grpc_trailing_metadata
        return None

    _OWN_CALLBACK: ClassVar[dict[int, tuple[str, ...]]] = {
        int(MapType.HTTP_REQUEST_HEADERS): ("proxy_on_request_headers",),
        int(MapType.HTTP_REQUEST_TRAILERS): ("proxy_on_request_trailers", "proxy_on_request_body"),
        int(MapType.HTTP_RESPONSE_HEADERS): ("proxy_on_response_headers",),
        int(MapType.HTTP_RESPONSE_TRAILERS): (
            "proxy_on_response_trailers",
            "proxy_on_response_body",
        ),
    }

    def _map_reachable(self, s: HttpStream, map_id: int) -> bool:
        """Envoy's rule: a stream map is reachable in its own callback, for good
        once that callback returned PAUSE, and (read-only) in on_log."""
        if self.callback in self._OWN_CALLBACK.get(map_id, ()) or map_id in s.kept_maps:
            return True
        return self.callback == "proxy_on_log" and map_id != MapType.HTTP_REQUEST_TRAILERS

    def _map_status(self, map_id: int) -> int:
        """Why a map is missing: BAD_ARGUMENT when Envoy has let go of it, else NOT_FOUND."""
        s = self._http()
        if s is not None and map_id in self._OWN_CALLBACK and not self._map_reachable(s, map_id):
            return BAD_ARGUMENT
        return NOT_FOUND

    _READ_ONLY = frozenset(
        {
            int(MapType.HTTP_CALL_RESPONSE_HEADERS),
            int(MapType.HTTP_CALL_RESPONSE_TRAILERS),
            int(MapType.GRPC_CALL_INITIAL_METADATA),
            int(MapType.GRPC_CALL_TRAILING_METADATA),
        }
    )

    def _writable_map(self, map_id: int) -> tuple[int, Pairs | None]:
        if map_id not in _MAP_TYPES:
            return BAD_ARGUMENT, None
        if map_id in self._READ_ONLY or self.callback == "proxy_on_log":
            return BAD_ARGUMENT, None
        m = self._map(map_id)
        return (OK, m) if m is not None else (self._map_status(map_id), None)

    def proxy_get_header_map_size(self, map_id: int) -> tuple[int, int]:
        status, data = self.proxy_get_header_map_pairs(map_id)
        return status, len(data)

    def proxy_get_header_map_pairs(self, map_id: int) -> tuple[int, bytes]:
        if map_id not in MapType._value2member_map_:
            return BAD_ARGUMENT, b""
        m = self._map(map_id)
        if m is None:
            status = self._map_status(map_id)
            return (OK, serialize_map([])) if status == BAD_ARGUMENT else (NOT_FOUND, b"")
        return OK, serialize_pairs(m)

    def proxy_set_header_map_pairs(self, map_id: int, serialized_pairs: bytes) -> int:
        status, m = self._writable_map(map_id)
        if m is None:
            return status
        try:
            pairs = deserialize_map(serialized_pairs)
        except MapSerializationError:
            return SERIALIZATION_FAILURE
        m[:] = [(_lower(k), v) for k, v in pairs]
        return OK

    def proxy_get_header_map_value(self, map_id: int, key: bytes) -> tuple[int, bytes]:
        if map_id not in _MAP_TYPES:
            return BAD_ARGUMENT, b""
        m = self._map(map_id)
        if m is None:
            return self._map_status(map_id), b""
        value = _first(m, key)
        return (NOT_FOUND, b"") if value is None else (OK, value)

    def proxy_add_header_map_value(self, map_id: int, key: bytes, value: bytes) -> int:
        status, m = self._writable_map(map_id)
        if m is None:
            return status
        m.append((_lower(key), value))
        return OK

    def proxy_replace_header_map_value(self, map_id: int, key: bytes, value: bytes) -> int:
        status, m = self._writable_map(map_id)
        if m is None:
            return status
        # As Envoy 1.40 (measured): every value goes, the new one is appended at the end.
        key = _lower(key)
        m[:] = [(k, v) for k, v in m if k != key]
        m.append((key, value))
        return OK

    def proxy_remove_header_map_value(self, map_id: int, key: bytes) -> int:
        status, m = self._writable_map(map_id)
        if m is None:
            return status
        key = _lower(key)
        m[:] = [(k, v) for k, v in m if k != key]
        return OK

    # -- stream control --------------------------------------------------------------------

    def proxy_continue_stream(self, stream_type: int) -> int:
        s = self._http()
        c = self._tcp()
        if s is not None and stream_type in (StreamType.HTTP_REQUEST, StreamType.HTTP_RESPONSE):
            self.ready_streams.append(s.context_id)  # held body / trailers may go now
        if stream_type == StreamType.HTTP_REQUEST and s is not None:
            s.request_action = s.action = Action.CONTINUE
            s.request_headers_paused = (
                False  # held body / trailers are delivered after the callback
            )
            if s.request_body_paused:
                s.forwarded_request_body += s.request_body
                s.request_body_paused = False
            return OK
        if stream_type == StreamType.HTTP_RESPONSE and s is not None:
            s.response_action = s.action = Action.CONTINUE
            s.response_headers_paused = False
            if s.response_body_paused:
                s.forwarded_response_body += s.response_body
                s.response_body_paused = False
            return OK
        if stream_type == StreamType.DOWNSTREAM and c is not None:
            c.action = Action.CONTINUE
            if c.downstream_paused:
                c.forwarded_downstream += c.downstream_data
                c.downstream_paused = False
            return OK
        if stream_type == StreamType.UPSTREAM and c is not None:
            return UNIMPLEMENTED  # Envoy cannot resume the upstream direction
        return BAD_ARGUMENT if stream_type not in StreamType._value2member_map_ else NOT_FOUND

    def proxy_close_stream(self, stream_type: int) -> int:
        s = self._http()
        c = self._tcp()
        if stream_type in (StreamType.HTTP_REQUEST, StreamType.HTTP_RESPONSE) and s is not None:
            s.reset = True
            s.request_ended = True
            s.action = Action.PAUSE
            return OK
        if stream_type == StreamType.DOWNSTREAM and c is not None:
            c.downstream_closed = True
            return OK
        if stream_type == StreamType.UPSTREAM and c is not None:
            c.upstream_closed = True
            return OK
        return BAD_ARGUMENT if stream_type not in StreamType._value2member_map_ else NOT_FOUND

    def proxy_get_status(self) -> tuple[int, int, bytes]:
        code, message = self.last_status
        return OK, code, message

    def proxy_send_local_response(
        self,
        status_code: int,
        status_code_details: bytes,
        body: bytes,
        serialized_headers: bytes,
        grpc_status: int,
    ) -> int:
        s = self._http()
        if s is None:
            return NOT_FOUND
        # Measured in Envoy 1.40: a second reply returns OK. Sent in the same
        # callback as the first it is dropped (the client gets the first); sent
        # from the response callbacks the first reply runs through, it replaces
        # the first and does not run through them again.
        if s.pending_local_response is not None:
            return OK
        if s.local_response is not None and not s.replying:
            return OK
        if s.reset:
            return BAD_ARGUMENT
        try:
            headers = deserialize_map(serialized_headers)
        except MapSerializationError:
            return SERIALIZATION_FAILURE
        grpc = grpc_status if grpc_status < 0x80000000 else grpc_status - 0x100000000
        self.ready_streams.append(s.context_id)
        s.pending_local_response = LocalResponse(
            status_code=status_code,
            headers=[
                (k.decode("utf-8", "surrogateescape").lower(), v.decode("utf-8", "surrogateescape"))
                for k, v in headers
            ],
            body=bytes(body),
            details=status_code_details.decode("utf-8", "replace"),
            grpc_status=grpc,
        )
        return OK

    # -- HTTP and gRPC calls -----------------------------------------------------------------

    def proxy_http_call(
        self,
        upstream_name: bytes,
        serialized_headers: bytes,
        body: bytes,
        serialized_trailers: bytes,
        timeout: int,
    ) -> tuple[int, int]:
        upstream = upstream_name.decode("utf-8", "replace")
        if self.upstreams is not None and upstream not in self.upstreams:
            return BAD_ARGUMENT, 0
        try:
            headers = deserialize_map(serialized_headers)
            trailers = deserialize_map(serialized_trailers)
        except MapSerializationError:
            return SERIALIZATION_FAILURE, 0
        names = {k.lower() for k, _ in headers}
        if not {b":method", b":path", b":authority"} <= names:
            return BAD_ARGUMENT, 0  # Envoy refuses a callout without these
        token = self._new_id()
        self.http_calls[token] = HttpCallAttributes(
            token=token,
            upstream=upstream,
            headers=[
                (k.decode("utf-8", "surrogateescape"), v.decode("utf-8", "surrogateescape"))
                for k, v in headers
            ],
            body=bytes(body),
            trailers=[
                (k.decode("utf-8", "surrogateescape"), v.decode("utf-8", "surrogateescape"))
                for k, v in trailers
            ],
            timeout_ms=timeout,
            root_context_id=self._root_of(self.effective_context_id),
            context_id=self.effective_context_id,
        )
        return OK, token

    def _grpc_open(
        self,
        upstream_name: bytes,
        service_name: bytes,
        method_name: bytes,
        serialized_initial_metadata: bytes,
        messages: list[bytes],
        timeout: int,
        is_stream: bool,
    ) -> tuple[int, int]:
        upstream = upstream_name.decode("utf-8", "replace")
        if self.upstreams is not None and upstream not in self.upstreams:
            return BAD_ARGUMENT, 0
        try:
            metadata = deserialize_map(serialized_initial_metadata)
        except MapSerializationError:
            return SERIALIZATION_FAILURE, 0
        token = self._new_id()
        self.grpc_calls[token] = GrpcCallAttributes(
            token=token,
            upstream=upstream,
            service=service_name.decode("utf-8", "replace"),
            method=method_name.decode("utf-8", "replace"),
            initial_metadata=[(k.decode(), v.decode("utf-8", "replace")) for k, v in metadata],
            messages=messages,
            timeout_ms=timeout,
            is_stream=is_stream,
            root_context_id=self._root_of(self.effective_context_id),
            context_id=self.effective_context_id,
        )
        return OK, token

    def proxy_grpc_call(
        self,
        upstream_name: bytes,
        service_name: bytes,
        method_name: bytes,
        serialized_initial_metadata: bytes,
        message: bytes,
        timeout: int,
    ) -> tuple[int, int]:
        return self._grpc_open(
            upstream_name,
            service_name,
            method_name,
            serialized_initial_metadata,
            [bytes(message)],
            timeout,
            False,
        )

    def proxy_grpc_stream(
        self,
        upstream_name: bytes,
        service_name: bytes,
        method_name: bytes,
        serialized_initial_metadata: bytes,
    ) -> tuple[int, int]:
        return self._grpc_open(
            upstream_name, service_name, method_name, serialized_initial_metadata, [], 0, True
        )

    def proxy_grpc_send(self, stream_id: int, message: bytes, end_stream: int) -> int:
        call = self.grpc_calls.get(stream_id)
        if call is None or not call.is_stream:
            return NOT_FOUND
        if call.closed_by_filter:
            return BAD_ARGUMENT
        call.messages.append(bytes(message))
        if end_stream:
            call.closed_by_filter = True
        return OK

    def proxy_grpc_cancel(self, call_or_stream_id: int) -> int:
        if self.grpc_calls.pop(call_or_stream_id, None) is None:
            return NOT_FOUND
        return OK

    def proxy_grpc_close(self, call_or_stream_id: int) -> int:
        call = self.grpc_calls.get(call_or_stream_id)
        if call is None:
            return NOT_FOUND
        call.closed_by_filter = True
        return OK

    # -- shared data and queues ------------------------------------------------------------

    def proxy_get_shared_data(self, key: bytes) -> tuple[int, bytes, int]:
        entry = self.shared_data.get(bytes(key))
        if entry is None:
            return NOT_FOUND, b"", 0
        return OK, entry[0], entry[1]

    def proxy_set_shared_data(self, key: bytes, value: bytes, cas: int) -> int:
        key = bytes(key)
        entry = self.shared_data.get(key)
        if cas and entry is not None and entry[1] != cas:
            return CAS_MISMATCH
        self.shared_data[key] = (bytes(value), next(self._cas))
        return OK

    def proxy_register_shared_queue(self, name: bytes) -> tuple[int, int]:
        text = name.decode("utf-8", "replace")
        owner = self._root_of(self.effective_context_id)
        for q in self.queues.values():
            if q.vm_id == self.vm_id and q.name == text:
                q.owner_context_id = owner
                return OK, q.queue_id
        queue_id = self._new_id()
        self.queues[queue_id] = SharedQueue(queue_id, self.vm_id, text, owner)
        return OK, queue_id

    def proxy_resolve_shared_queue(self, vm_id: bytes, name: bytes) -> tuple[int, int]:
        vm = vm_id.decode("utf-8", "replace") or self.vm_id
        text = name.decode("utf-8", "replace")
        for q in self.queues.values():
            if q.vm_id == vm and q.name == text:
                return OK, q.queue_id
        return NOT_FOUND, 0

    def proxy_enqueue_shared_queue(self, queue_id: int, value: bytes) -> int:
        q = self.queues.get(queue_id)
        if q is None:
            return NOT_FOUND
        q.items.append(bytes(value))
        self.pending_queue_ready.append((q.owner_context_id, queue_id))
        return OK

    def proxy_dequeue_shared_queue(self, queue_id: int) -> tuple[int, bytes]:
        q = self.queues.get(queue_id)
        if q is None:
            return NOT_FOUND, b""
        if not q.items:
            return EMPTY, b""
        return OK, q.items.popleft()

    # -- metrics -----------------------------------------------------------------------------

    def proxy_define_metric(self, metric_type: int, name: bytes) -> tuple[int, int]:
        if metric_type not in MetricType._value2member_map_:
            return BAD_ARGUMENT, 0
        text = name.decode("utf-8", "replace")
        for m in self.metrics.values():
            if m.name == text and m.metric_type == metric_type:
                return OK, m.metric_id
        metric_id = self._new_id()
        samples: deque[int] = deque(maxlen=self.max_histogram_samples)
        self.metrics[metric_id] = Metric(metric_id, MetricType(metric_type), text, samples=samples)
        return OK, metric_id

    def proxy_record_metric(self, metric_id: int, value: int) -> int:
        m = self.metrics.get(metric_id)
        if m is None:
            return NOT_FOUND
        if m.metric_type == MetricType.HISTOGRAM:
            m.samples.append(value)
            m.sample_count += 1
        elif m.metric_type == MetricType.COUNTER:
            m.value += value  # Envoy: recording on a counter adds
        else:
            m.value = value
        return OK

    def proxy_increment_metric(self, metric_id: int, delta: int) -> int:
        m = self.metrics.get(metric_id)
        if m is None:
            return NOT_FOUND
        if m.metric_type == MetricType.HISTOGRAM:
            return BAD_ARGUMENT
        if m.metric_type == MetricType.COUNTER and delta <= 0:
            return BAD_ARGUMENT  # Envoy refuses a counter offset that is not positive
        m.value += delta
        return OK

    def proxy_get_metric(self, metric_id: int) -> tuple[int, int]:
        m = self.metrics.get(metric_id)
        if m is None:
            return NOT_FOUND, 0
        if m.metric_type == MetricType.HISTOGRAM:
            return BAD_ARGUMENT, 0
        return OK, m.value

    # -- properties and foreign functions -------------------------------------------------------

    def _derived_property(self, path: tuple[str, ...]) -> bytes | None:
        """Envoy's well-known attributes that follow from the stream being driven."""
        ctx = self.effective_context_id
        if path == ("plugin_root_id",):
            return self.plugin_root_ids.get(self._root_of(ctx), self.root_id).encode()
        if path == ("plugin_vm_id",):
            return self.vm_id.encode()
        s = self.http_streams.get(ctx)
        if s is None:
            return None
        h = s.request_headers
        if path == ("request", "path"):
            return _first(h, b":path")
        if path == ("request", "url_path"):
            p = _first(h, b":path")
            return None if p is None else p.split(b"?", 1)[0]
        if path == ("request", "query"):
            p = _first(h, b":path")
            return None if p is None or b"?" not in p else p.split(b"?", 1)[1]
        if path == ("request", "method"):
            return _first(h, b":method")
        if path == ("request", "host"):
            return _first(h, b":authority")
        if path == ("request", "scheme"):
            return _first(h, b":scheme")
        if path == ("request", "id"):
            return _first(h, b"x-request-id")
        if path == ("request", "useragent"):
            return _first(h, b"user-agent")
        if path == ("request", "referer"):
            return _first(h, b"referer")
        if path == ("request", "headers") or path == ("response", "headers"):
            m = h if path[0] == "request" else s.response_headers
            return None if m is None else serialize_map(m)
        if path == ("response", "code") and s.response_headers is not None:
            code = _first(s.response_headers, b":status")
            return None if code is None or not code.isdigit() else encode_property(int(code))
        if path == ("connection", "id"):
            return encode_property(ctx)
        return None

    def proxy_get_property(self, path: bytes) -> tuple[int, bytes]:
        parts = tuple(p.decode("utf-8", "replace") for p in bytes(path).split(b"\x00"))
        ctx = self.effective_context_id
        stream: HttpStream | TcpConnection | None = self.http_streams.get(
            ctx
        ) or self.tcp_connections.get(ctx)
        if stream is not None and parts in stream.properties:
            return OK, stream.properties[parts]
        if parts in self.properties:
            return OK, self.properties[parts]
        value = self._derived_property(parts)
        if value is None:
            return NOT_FOUND, b""
        return OK, value

    def proxy_set_property(self, path: bytes, value: bytes) -> int:
        parts = tuple(p.decode("utf-8", "replace") for p in bytes(path).split(b"\x00"))
        ctx = self.effective_context_id
        stream: HttpStream | TcpConnection | None = self.http_streams.get(
            ctx
        ) or self.tcp_connections.get(ctx)
        (stream.properties if stream is not None else self.properties)[parts] = bytes(value)
        return OK

    def proxy_call_foreign_function(self, name: bytes, arguments: bytes) -> tuple[int, bytes]:
        fn = self.foreign_functions.get(name.decode("utf-8", "replace"))
        if fn is None:
            return NOT_FOUND, b""
        try:
            result = fn(bytes(arguments))
        except Exception as exc:  # noqa: BLE001 -- a failing host extension is the host's failure
            self.logs.append((LogLevel.ERROR, f"foreign function {name!r} raised {exc!r}"))
            return INTERNAL_FAILURE, b""
        return OK, bytes(result or b"")
