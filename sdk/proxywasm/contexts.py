"""The classes filter authors subclass: ``RootContext``, ``HttpContext``, ``StreamContext``.

Callbacks (``on_*``) are what the host calls; override the ones you need, the
defaults let traffic through. Host calls are methods on every context
(``self.get_property(...)``), as in the Rust SDK's ``Context`` trait.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Coroutine
    from typing import Any, ClassVar, Generic

    from typing_extensions import TypeVar

    #: The root context type a stream context is generic over (``HttpContext["Root"]``).
    _R_co = TypeVar("_R_co", bound="RootContext", default="RootContext", covariant=True)
else:

    class Generic:
        """Run-time stand-in for ``typing.Generic`` (typing is not frozen into modules):
        ``HttpContext["Root"]`` is ``HttpContext`` itself when the program runs."""

        def __class_getitem__(cls, item: object) -> type:
            return cls

    _R_co = None

from . import _state
from . import hostcalls as hc
from .calls import HttpCall
from .hostcalls import Headers, HeaderValue, PropertyPath
from .types import Action, BufferType, ConfigError, LogLevel, MapType, PeerType, StreamType
from .views import HeaderMap, Request, Response

if TYPE_CHECKING:
    import _proxywasm as _abi
else:
    # The host module hostcalls bound (the C glue compiled, the null runtime
    # natively), for the one-frame fast paths below.
    _abi = hc._abi

#: ``int(MapType...)`` once, so the fast paths pass a plain int as hostcalls does.
_REQUEST_HEADERS = int(MapType.HTTP_REQUEST_HEADERS)
_RESPONSE_HEADERS = int(MapType.HTTP_RESPONSE_HEADERS)

if TYPE_CHECKING:
    #: What a stream callback returns: an action (``None`` continues), or, from an
    #: ``async def`` callback, a coroutine that ends with one.
    CallbackResult = Action | None | Coroutine[Any, Any, Action | None]
    #: What ``on_tick`` / ``on_queue_ready`` return: nothing, or a coroutine.
    RootCallbackResult = None | Coroutine[Any, Any, None]

__all__ = ["BaseContext", "HttpContext", "RootContext", "StreamContext"]


def _json(raw: bytes | None, what: str) -> Any:
    """Parse a configuration buffer; bad JSON is a :class:`ConfigError` saying where."""
    if raw is None or not raw.strip():
        return None
    import json

    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{what} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from None
    except ValueError as exc:  # not UTF-8
        raise ConfigError(f"{what} is not valid JSON: {exc}") from None


def _enter(context_id: int) -> None:
    """Make ``context_id`` the host's effective context if it is not already."""
    if _state.effective_context_id != context_id:
        hc.set_effective_context(context_id)
        _state.effective_context_id = context_id


class BaseContext:
    """Host calls and callbacks common to every context."""

    context_id: int

    # -- callbacks -------------------------------------------------------------

    def on_http_call_response(
        self, token_id: int, num_headers: int, body_size: int, num_trailers: int
    ) -> None:
        """The answer to :meth:`dispatch_http_call` ``token_id`` arrived.

        Read it with :meth:`get_http_call_response_headers` and
        :meth:`get_http_call_response_body`. Envoy answers failures itself: a
        timeout arrives as a ``504``, a refused connection as a ``503`` (both
        with headers); only a reset stream arrives with no headers at all.
        """

    def on_grpc_call_response(self, token_id: int, status_code: int, response_size: int) -> None:
        """A unary gRPC call ended: ``status_code`` 0 with the reply, or the error."""

    def on_grpc_stream_initial_metadata(self, token_id: int, num_elements: int) -> None:
        """Initial metadata arrived on a gRPC stream."""

    def on_grpc_stream_message(self, token_id: int, message_size: int) -> None:
        """A message arrived on a gRPC stream (:meth:`get_grpc_receive_message`)."""

    def on_grpc_stream_trailing_metadata(self, token_id: int, num_elements: int) -> None:
        """Trailing metadata arrived on a gRPC stream."""

    def on_grpc_stream_close(self, token_id: int, status_code: int) -> None:
        """A gRPC stream closed with ``status_code``."""

    def on_done(self) -> bool:
        """The host is finishing this context. Return ``False`` to delay, then call :meth:`done`."""
        return True

    def on_log(self) -> None:
        """Access-log time: the stream or connection is complete."""

    def on_delete(self) -> None:
        """The context is gone; drop references to it."""

    # -- logging, time ------------------------------------------------------------

    def log(self, level: LogLevel | int, message: str) -> None:
        """Write one entry to the host log."""
        hc.log(level, message)

    def get_log_level(self) -> LogLevel:
        """The host's log level."""
        return hc.get_log_level()

    def get_current_time_nanoseconds(self) -> int:
        """Host wall clock, nanoseconds since the Unix epoch."""
        return hc.get_current_time_nanoseconds()

    # -- properties ---------------------------------------------------------------

    def get_property(self, path: PropertyPath) -> bytes | None:
        """Raw bytes of a host property (``"request.path"``, ``["source", "address"]``), or ``None``."""
        _enter(self.context_id)
        return hc.get_property(path)

    def get_property_str(self, path: PropertyPath) -> str | None:
        """A string property decoded as UTF-8, or ``None``."""
        value = self.get_property(path)
        return None if value is None else value.decode("utf-8", "surrogateescape")

    def get_property_int(self, path: PropertyPath) -> int | None:
        """An integer property (Envoy encodes them as 8-byte little-endian), or ``None``."""
        value = self.get_property(path)
        return None if value is None else int.from_bytes(value, "little", signed=True)

    def set_property(self, path: PropertyPath, value: bytes | str) -> None:
        """Set a host property."""
        _enter(self.context_id)
        hc.set_property(path, value)

    # -- shared data and queues -------------------------------------------------------

    def get_shared_data(self, key: str) -> tuple[bytes | None, int | None]:
        """``(value, cas)`` of a key shared by every VM of this plugin; ``(None, None)`` if missing."""
        return hc.get_shared_data(key)

    def set_shared_data(self, key: str, value: bytes | str | None, cas: int | None = None) -> None:
        """Store a shared value; with ``cas``, only if unchanged since read (else :class:`CasMismatchError`)."""
        hc.set_shared_data(key, value, cas)

    def register_shared_queue(self, name: str) -> int:
        """Create this VM's queue ``name``; ``on_queue_ready`` fires on the root context."""
        return hc.register_shared_queue(name)

    def resolve_shared_queue(self, vm_id: str, name: str) -> int | None:
        """Find a queue registered by VM ``vm_id``; ``None`` if there is none."""
        return hc.resolve_shared_queue(vm_id, name)

    def enqueue_shared_queue(self, queue_id: int, value: bytes | str) -> None:
        """Append an item to a queue."""
        hc.enqueue_shared_queue(queue_id, value)

    def dequeue_shared_queue(self, queue_id: int) -> bytes | None:
        """Pop an item from a queue; ``None`` when empty."""
        return hc.dequeue_shared_queue(queue_id)

    # -- HTTP callouts -----------------------------------------------------------------

    def dispatch_http_call(
        self,
        upstream: str,
        headers: Headers,
        body: bytes | str | None = None,
        trailers: Headers | None = None,
        timeout_ms: int = 1000,
    ) -> int:
        """Send an HTTP request to cluster ``upstream``; returns the token.

        The answer arrives at this context's :meth:`on_http_call_response`.
        ``headers`` must hold ``:method``, ``:path`` and ``:authority``.
        """
        token = hc.http_call(upstream, headers, body, trailers, timeout_ms)
        vm = _state.vm
        if vm is not None:
            vm.callouts[token] = self.context_id
        return token

    def http_call(
        self,
        cluster: str,
        *,
        method: str = "GET",
        path: str = "/",
        headers: Headers | None = None,
        body: bytes | str | None = None,
        trailers: Headers | None = None,
        timeout_ms: int = 1000,
        authority: str | None = None,
    ) -> HttpCall:
        """Send an HTTP request to cluster ``cluster``; ``await`` the result for the answer.

        ``answer = await self.http_call("auth", path="/check", headers={...})``
        inside an ``async def`` callback pauses the stream until the answer
        arrives (``answer.status``, ``answer.headers``, ``answer.body``).
        ``:method``, ``:path`` and ``:authority`` (default: the cluster
        name) come from the keywords. A call the host refuses raises
        :class:`HostCallError` here; one that fails later (timeout, no
        upstream) answers with Envoy's status (504, 503). Not awaited, its
        answer goes to :meth:`on_http_call_response` as for
        :meth:`dispatch_http_call`.
        """
        pairs: list[tuple[HeaderValue, HeaderValue]] = [
            (":method", method),
            (":path", path),
            (":authority", authority if authority is not None else cluster),
        ]
        if headers:
            items = headers.items() if hasattr(headers, "items") else headers
            pairs.extend((k, v) for k, v in items if k not in (":method", ":path", ":authority"))
        return HttpCall(
            self.dispatch_http_call(cluster, pairs, body, trailers, timeout_ms), cluster
        )

    def get_http_call_response_headers(self) -> list[tuple[str, str]]:
        """Headers of the callout answer being delivered."""
        return hc.get_map(MapType.HTTP_CALL_RESPONSE_HEADERS)

    def get_http_call_response_header(self, name: str) -> str | None:
        """One header of the callout answer, or ``None``."""
        return hc.get_map_value(MapType.HTTP_CALL_RESPONSE_HEADERS, name)

    def get_http_call_response_body(self, start: int = 0, size: int | None = None) -> bytes | None:
        """Body of the callout answer, or ``None`` if it has none."""
        return hc.get_buffer_bytes(BufferType.HTTP_CALL_RESPONSE_BODY, start, size)

    def get_http_call_response_trailers(self) -> list[tuple[str, str]]:
        """Trailers of the callout answer."""
        return hc.get_map(MapType.HTTP_CALL_RESPONSE_TRAILERS)

    # -- gRPC ---------------------------------------------------------------------------

    def dispatch_grpc_call(
        self,
        upstream: str,
        service: str,
        method: str,
        initial_metadata: Headers | None,
        message: bytes,
        timeout_ms: int = 1000,
    ) -> int:
        """Start a unary gRPC call; the answer arrives at :meth:`on_grpc_call_response`."""
        token = hc.grpc_call(upstream, service, method, initial_metadata, message, timeout_ms)
        vm = _state.vm
        if vm is not None:
            vm.grpc_calls[token] = (self.context_id, False)
        return token

    def open_grpc_stream(
        self, upstream: str, service: str, method: str, initial_metadata: Headers | None = None
    ) -> int:
        """Open a gRPC stream; events arrive at the ``on_grpc_stream_*`` callbacks."""
        token = hc.grpc_stream(upstream, service, method, initial_metadata)
        vm = _state.vm
        if vm is not None:
            vm.grpc_calls[token] = (self.context_id, True)
        return token

    def send_grpc_stream_message(
        self, token_id: int, message: bytes, end_of_stream: bool = False
    ) -> None:
        """Send a message on an open gRPC stream."""
        hc.grpc_send(token_id, message, end_of_stream)

    def cancel_grpc_call(self, token_id: int) -> None:
        """Cancel a gRPC call or stream (no callback follows)."""
        hc.grpc_cancel(token_id)

    def close_grpc_stream(self, token_id: int) -> None:
        """Close a gRPC stream from this side."""
        hc.grpc_close(token_id)

    def get_grpc_receive_message(self, start: int = 0, size: int | None = None) -> bytes | None:
        """The gRPC message being delivered (unary reply or stream message)."""
        return hc.get_buffer_bytes(BufferType.GRPC_CALL_MESSAGE, start, size)

    def get_grpc_initial_metadata(self) -> list[tuple[str, str]]:
        """Initial metadata being delivered."""
        return hc.get_map(MapType.GRPC_CALL_INITIAL_METADATA)

    def get_grpc_trailing_metadata(self) -> list[tuple[str, str]]:
        """Trailing metadata being delivered."""
        return hc.get_map(MapType.GRPC_CALL_TRAILING_METADATA)

    def get_grpc_status(self) -> tuple[int, str]:
        """``(code, message)`` of the gRPC call that just ended."""
        return hc.get_status()

    # -- foreign functions, lifecycle -------------------------------------------------------

    def call_foreign_function(self, name: str, arguments: bytes = b"") -> bytes | None:
        """Call a host extension function (e.g. Envoy's ``compress``)."""
        _enter(self.context_id)
        return hc.call_foreign_function(name, arguments)

    def done(self) -> None:
        """Finish a context whose :meth:`on_done` returned ``False``."""
        _enter(self.context_id)
        hc.done()


class RootContext(BaseContext):
    """One per plugin per VM: configuration, timers, queues, and the factory of
    per-request / per-connection contexts.

    Set ``fail_open = True`` on the subclass to let streams continue when a
    callback raises; the default fails closed (a 500 local reply), as Envoy
    and Istio do.
    """

    #: Continue streams after an exception in a callback (default: 500 and stop).
    fail_open: ClassVar[bool] = False
    #: The ``HttpContext`` subclass made for each HTTP stream, as
    #: ``http_context(context_id, root)``: set it instead of overriding
    #: :meth:`create_http_context` when that would only construct it.
    http_context: ClassVar[type[HttpContext[Any]] | None] = None
    #: The same for TCP connections (:meth:`create_stream_context`).
    stream_context: ClassVar[type[StreamContext[Any]] | None] = None

    def __init__(self, context_id: int) -> None:
        self.context_id = context_id

    # -- callbacks ---------------------------------------------------------------------

    def on_vm_start(self, vm_configuration_size: int) -> bool:
        """The VM started; ``get_vm_configuration()`` reads its configuration. ``False`` fails the VM."""
        return True

    def on_configure(self, plugin_configuration_size: int) -> bool:
        """The plugin is (re)configured; ``get_plugin_configuration()``. ``False`` rejects the config."""
        return True

    def on_tick(self) -> RootCallbackResult:
        """Timer set with :meth:`set_tick_period_ms` fired."""

    def on_queue_ready(self, queue_id: int) -> RootCallbackResult:
        """An item was enqueued on a queue this root registered."""

    def on_foreign_function(self, function_id: int, arguments_size: int) -> None:
        """The host called into the plugin (``get_foreign_function_arguments()``)."""

    def create_http_context(self, context_id: int) -> HttpContext[Any]:
        """Make the context of a new HTTP stream: ``http_context(context_id, self)``,
        or, without ``http_context``, one that lets traffic through."""
        cls = self.http_context
        return HttpContext(context_id, self) if cls is None else cls(context_id, self)

    def create_stream_context(self, context_id: int) -> StreamContext[Any]:
        """Make the context of a new TCP connection: ``stream_context(context_id, self)``,
        or, without ``stream_context``, one that lets traffic through."""
        cls = self.stream_context
        return StreamContext(context_id, self) if cls is None else cls(context_id, self)

    # -- host calls -------------------------------------------------------------------

    def get_vm_configuration(self) -> bytes | None:
        """The VM configuration (in ``on_vm_start``), or ``None`` if there is none."""
        return hc.get_buffer_bytes(BufferType.VM_CONFIGURATION)

    def get_plugin_configuration(self) -> bytes | None:
        """The plugin configuration (in ``on_configure``), or ``None`` if there is none."""
        return hc.get_buffer_bytes(BufferType.PLUGIN_CONFIGURATION)

    def get_plugin_configuration_json(self) -> Any:
        """The plugin configuration parsed as JSON (in ``on_configure``); ``None`` if there is none.

        Invalid JSON raises :class:`ConfigError` naming the line and column;
        raised out of ``on_configure`` it is logged as one line and the
        configuration is rejected.
        """
        return _json(self.get_plugin_configuration(), "plugin configuration")

    def get_vm_configuration_json(self) -> Any:
        """The VM configuration parsed as JSON (in ``on_vm_start``); ``None`` if there is none."""
        return _json(self.get_vm_configuration(), "VM configuration")

    def get_foreign_function_arguments(self) -> bytes | None:
        """Arguments of the foreign call being delivered to :meth:`on_foreign_function`."""
        return hc.get_buffer_bytes(BufferType.FOREIGN_FUNCTION_ARGUMENTS)

    def set_tick_period_ms(self, period_ms: int) -> None:
        """Call :meth:`on_tick` every ``period_ms`` milliseconds (0 stops the timer)."""
        _enter(self.context_id)
        hc.set_tick_period_milliseconds(period_ms)


class _StreamContext(BaseContext, Generic[_R_co]):
    """What HTTP and TCP stream contexts share: the plugin's root context."""

    root: _R_co

    def __init__(self, context_id: int, root: _R_co) -> None:
        self.context_id = context_id
        self.root = root


class HttpContext(_StreamContext[_R_co]):
    """One per HTTP request/response pair. ``self.root`` is the plugin's root context.

    Stream callbacks return :data:`Action.CONTINUE` or :data:`Action.PAUSE`
    (``None`` continues too), and may be ``async def`` to await callouts
    (:meth:`http_call`). ``class Gate(HttpContext["Root"])`` types
    ``self.root`` as ``Root`` for mypy.

    ``self.request`` and ``self.response`` are views of the stream:
    ``.headers`` / ``.trailers`` (live mappings, :class:`~proxywasm.views.HeaderMap`)
    and ``.body`` (:class:`~proxywasm.views.Body`).
    """

    # Made on first use and kept. Plain attributes (not ``self.__dict__``, which would
    # turn the instance's inline values into a dict), both objects made in this frame
    # (views.HeaderMap has no __init__): each step was measured per request.
    _pw_request: Request | None = None
    _pw_response: Response | None = None

    @property
    def request(self) -> Request:
        """The request: ``headers``, ``trailers``, ``body``, ``method``, ``path`` ..."""
        view = self._pw_request
        if view is None:
            view = self._pw_request = Request()
            view.headers = headers = HeaderMap()
            headers._context_id = view._context_id = self.context_id
            headers._map_type = _REQUEST_HEADERS
            headers._epoch = view._trailers = view._body = None
        return view

    @property
    def response(self) -> Response:
        """The response: ``headers``, ``trailers``, ``body``, ``status``."""
        view = self._pw_response
        if view is None:
            view = self._pw_response = Response()
            view.headers = headers = HeaderMap()
            headers._context_id = view._context_id = self.context_id
            headers._map_type = _RESPONSE_HEADERS
            headers._epoch = view._trailers = view._body = None
        return view

    # -- callbacks ---------------------------------------------------------------------

    def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> CallbackResult:
        """Request headers arrived."""
        return Action.CONTINUE

    def on_http_request_body(self, body_size: int, end_of_stream: bool) -> CallbackResult:
        """A request body chunk arrived (after PAUSE, ``body_size`` is all that is buffered)."""
        return Action.CONTINUE

    def on_http_request_trailers(self, num_trailers: int) -> CallbackResult:
        """Request trailers arrived."""
        return Action.CONTINUE

    def on_http_response_headers(self, num_headers: int, end_of_stream: bool) -> CallbackResult:
        """Response headers arrived (from upstream, or a local reply)."""
        return Action.CONTINUE

    def on_http_response_body(self, body_size: int, end_of_stream: bool) -> CallbackResult:
        """A response body chunk arrived."""
        return Action.CONTINUE

    def on_http_response_trailers(self, num_trailers: int) -> CallbackResult:
        """Response trailers arrived."""
        return Action.CONTINUE

    # -- header maps (shared helpers) -----------------------------------------------------

    def _get_headers(self, map_type: MapType) -> list[tuple[str, str]]:
        _enter(self.context_id)
        return hc.get_map(map_type)

    def _get_header(self, map_type: MapType, name: str) -> str | None:
        _enter(self.context_id)
        return hc.get_map_value(map_type, name)

    def _set_header(self, map_type: MapType, name: str, value: HeaderValue | None) -> None:
        _enter(self.context_id)
        if value is None:
            hc.remove_map_value(map_type, name)
        else:
            hc.replace_map_value(map_type, name, value)

    def _set_headers(self, map_type: MapType, headers: Headers) -> None:
        _enter(self.context_id)
        hc.set_map(map_type, headers)

    def _add_header(self, map_type: MapType, name: str, value: HeaderValue) -> None:
        _enter(self.context_id)
        hc.add_map_value(map_type, name, value)

    # -- request headers ---------------------------------------------------------------

    def get_http_request_headers(self) -> list[tuple[str, str]]:
        """All request headers, pseudo-headers (``:path``, ``:method``...) included."""
        return self._get_headers(MapType.HTTP_REQUEST_HEADERS)

    def get_http_request_headers_bytes(self) -> list[tuple[bytes, bytes]]:
        """All request headers as raw bytes."""
        _enter(self.context_id)
        return hc.get_map_bytes(MapType.HTTP_REQUEST_HEADERS)

    def set_http_request_headers(self, headers: Headers) -> None:
        """Replace all request headers."""
        self._set_headers(MapType.HTTP_REQUEST_HEADERS, headers)

    def get_http_request_header(self, name: str) -> str | None:
        """First value of a request header, or ``None``."""
        # Per-request hot path: the common case (a str name, this context
        # already effective) in this one frame; the rest goes the general way.
        if type(name) is str and _state.effective_context_id == self.context_id:
            status, value = _abi.proxy_get_header_map_value(
                _REQUEST_HEADERS, name.encode("utf-8", "surrogateescape")
            )
            if status == 0:  # OK
                return value.decode("utf-8", "surrogateescape")
            if status == 1:  # NOT_FOUND
                return None
            # The general path's error for this status (hint included), without asking again.
            hc._map_check("proxy_get_header_map_value", status, MapType.HTTP_REQUEST_HEADERS)
        return self._get_header(MapType.HTTP_REQUEST_HEADERS, name)

    def get_http_request_header_bytes(self, name: str) -> bytes | None:
        """First value of a request header as raw bytes, or ``None``."""
        _enter(self.context_id)
        return hc.get_map_value_bytes(MapType.HTTP_REQUEST_HEADERS, name)

    def set_http_request_header(self, name: str, value: HeaderValue | None) -> None:
        """Set a request header to one value (``None`` removes it)."""
        self._set_header(MapType.HTTP_REQUEST_HEADERS, name, value)

    def add_http_request_header(self, name: str, value: HeaderValue) -> None:
        """Add a request header value, keeping existing ones."""
        self._add_header(MapType.HTTP_REQUEST_HEADERS, name, value)

    def remove_http_request_header(self, name: str) -> None:
        """Remove a request header (every value)."""
        self._set_header(MapType.HTTP_REQUEST_HEADERS, name, None)

    # -- request body and trailers -------------------------------------------------------

    def get_http_request_body(self, start: int = 0, size: int | None = None) -> bytes | None:
        """Buffered request body bytes ``[start, start+size)``, or ``None``."""
        _enter(self.context_id)
        return hc.get_buffer_bytes(BufferType.HTTP_REQUEST_BODY, start, size)

    def set_http_request_body(
        self, value: bytes | str, start: int = 0, size: int | None = None
    ) -> None:
        """Replace request body bytes (``size=None``: from ``start`` to the end)."""
        _enter(self.context_id)
        hc.set_buffer_bytes(
            BufferType.HTTP_REQUEST_BODY,
            value if isinstance(value, bytes) else value.encode(),
            start,
            size,
        )

    def get_http_request_trailers(self) -> list[tuple[str, str]]:
        """All request trailers."""
        return self._get_headers(MapType.HTTP_REQUEST_TRAILERS)

    def set_http_request_trailers(self, trailers: Headers) -> None:
        """Replace all request trailers."""
        self._set_headers(MapType.HTTP_REQUEST_TRAILERS, trailers)

    def get_http_request_trailer(self, name: str) -> str | None:
        """First value of a request trailer, or ``None``."""
        return self._get_header(MapType.HTTP_REQUEST_TRAILERS, name)

    def set_http_request_trailer(self, name: str, value: HeaderValue | None) -> None:
        """Set a request trailer (``None`` removes it)."""
        self._set_header(MapType.HTTP_REQUEST_TRAILERS, name, value)

    def add_http_request_trailer(self, name: str, value: HeaderValue) -> None:
        """Add a request trailer value."""
        self._add_header(MapType.HTTP_REQUEST_TRAILERS, name, value)

    def remove_http_request_trailer(self, name: str) -> None:
        """Remove a request trailer."""
        self._set_header(MapType.HTTP_REQUEST_TRAILERS, name, None)

    # -- response headers ---------------------------------------------------------------

    def get_http_response_headers(self) -> list[tuple[str, str]]:
        """All response headers, ``:status`` included."""
        return self._get_headers(MapType.HTTP_RESPONSE_HEADERS)

    def get_http_response_headers_bytes(self) -> list[tuple[bytes, bytes]]:
        """All response headers as raw bytes."""
        _enter(self.context_id)
        return hc.get_map_bytes(MapType.HTTP_RESPONSE_HEADERS)

    def set_http_response_headers(self, headers: Headers) -> None:
        """Replace all response headers."""
        self._set_headers(MapType.HTTP_RESPONSE_HEADERS, headers)

    def get_http_response_header(self, name: str) -> str | None:
        """First value of a response header, or ``None``."""
        return self._get_header(MapType.HTTP_RESPONSE_HEADERS, name)

    def get_http_response_header_bytes(self, name: str) -> bytes | None:
        """First value of a response header as raw bytes, or ``None``."""
        _enter(self.context_id)
        return hc.get_map_value_bytes(MapType.HTTP_RESPONSE_HEADERS, name)

    def set_http_response_header(self, name: str, value: HeaderValue | None) -> None:
        """Set a response header to one value (``None`` removes it)."""
        self._set_header(MapType.HTTP_RESPONSE_HEADERS, name, value)

    def add_http_response_header(self, name: str, value: HeaderValue) -> None:
        """Add a response header value, keeping existing ones."""
        # Per-request hot path, as get_http_request_header: str name and value,
        # this context already effective; bytes or a bad type go the general way.
        if (
            type(name) is str
            and type(value) is str
            and _state.effective_context_id == self.context_id
        ):
            _state.map_epoch += 1
            status = _abi.proxy_add_header_map_value(
                _RESPONSE_HEADERS,
                name.encode("utf-8", "surrogateescape"),
                value.encode("utf-8", "surrogateescape"),
            )
            if status != 0:  # the general path's error, without adding again
                hc._map_check("proxy_add_header_map_value", status, MapType.HTTP_RESPONSE_HEADERS)
            return
        self._add_header(MapType.HTTP_RESPONSE_HEADERS, name, value)

    def remove_http_response_header(self, name: str) -> None:
        """Remove a response header (every value)."""
        self._set_header(MapType.HTTP_RESPONSE_HEADERS, name, None)

    # -- response body and trailers -------------------------------------------------------

    def get_http_response_body(self, start: int = 0, size: int | None = None) -> bytes | None:
        """Buffered response body bytes, or ``None``."""
        _enter(self.context_id)
        return hc.get_buffer_bytes(BufferType.HTTP_RESPONSE_BODY, start, size)

    def set_http_response_body(
        self, value: bytes | str, start: int = 0, size: int | None = None
    ) -> None:
        """Replace response body bytes (``size=None``: from ``start`` to the end)."""
        _enter(self.context_id)
        hc.set_buffer_bytes(
            BufferType.HTTP_RESPONSE_BODY,
            value if isinstance(value, bytes) else value.encode(),
            start,
            size,
        )

    def get_http_response_trailers(self) -> list[tuple[str, str]]:
        """All response trailers."""
        return self._get_headers(MapType.HTTP_RESPONSE_TRAILERS)

    def set_http_response_trailers(self, trailers: Headers) -> None:
        """Replace all response trailers."""
        self._set_headers(MapType.HTTP_RESPONSE_TRAILERS, trailers)

    def get_http_response_trailer(self, name: str) -> str | None:
        """First value of a response trailer, or ``None``."""
        return self._get_header(MapType.HTTP_RESPONSE_TRAILERS, name)

    def set_http_response_trailer(self, name: str, value: HeaderValue | None) -> None:
        """Set a response trailer (``None`` removes it)."""
        self._set_header(MapType.HTTP_RESPONSE_TRAILERS, name, value)

    def add_http_response_trailer(self, name: str, value: HeaderValue) -> None:
        """Add a response trailer value."""
        self._add_header(MapType.HTTP_RESPONSE_TRAILERS, name, value)

    def remove_http_response_trailer(self, name: str) -> None:
        """Remove a response trailer."""
        self._set_header(MapType.HTTP_RESPONSE_TRAILERS, name, None)

    # -- stream control -------------------------------------------------------------------

    def send_http_response(
        self,
        status_code: int,
        headers: Headers | None = None,
        body: bytes | str | None = None,
        details: str = "",
        grpc_status: int = -1,
    ) -> None:
        """Answer this request locally. Return :data:`Action.PAUSE` from the callback afterwards."""
        _enter(self.context_id)
        hc.send_local_response(status_code, headers, body, details, grpc_status)

    def resume_http_request(self) -> None:
        """Resume a paused request (e.g. after a callout answered)."""
        _enter(self.context_id)
        hc.continue_stream(StreamType.HTTP_REQUEST)

    def resume_http_response(self) -> None:
        """Resume a paused response."""
        _enter(self.context_id)
        hc.continue_stream(StreamType.HTTP_RESPONSE)

    def reset_http_request(self) -> None:
        """Reset (abort) the request."""
        _enter(self.context_id)
        hc.close_stream(StreamType.HTTP_REQUEST)

    def reset_http_response(self) -> None:
        """Reset (abort) the response."""
        _enter(self.context_id)
        hc.close_stream(StreamType.HTTP_RESPONSE)


class StreamContext(_StreamContext[_R_co]):
    """One per TCP connection (a network filter). ``self.root`` is the root context."""

    # -- callbacks ---------------------------------------------------------------------

    def on_new_connection(self) -> CallbackResult:
        """A downstream connection was accepted."""
        return Action.CONTINUE

    def on_downstream_data(self, data_size: int, end_of_stream: bool) -> CallbackResult:
        """Bytes arrived from the client (:meth:`get_downstream_data`)."""
        return Action.CONTINUE

    def on_downstream_close(self, peer_type: PeerType) -> None:
        """The client side closed."""

    def on_upstream_data(self, data_size: int, end_of_stream: bool) -> CallbackResult:
        """Bytes arrived from the upstream (:meth:`get_upstream_data`)."""
        return Action.CONTINUE

    def on_upstream_close(self, peer_type: PeerType) -> None:
        """The upstream side closed."""

    # -- host calls -------------------------------------------------------------------

    def get_downstream_data(self, start: int = 0, size: int | None = None) -> bytes | None:
        """Buffered client bytes, or ``None``."""
        _enter(self.context_id)
        return hc.get_buffer_bytes(BufferType.DOWNSTREAM_DATA, start, size)

    def set_downstream_data(self, value: bytes, start: int = 0, size: int | None = None) -> None:
        """Replace client bytes (``size=None``: from ``start`` to the end)."""
        _enter(self.context_id)
        hc.set_buffer_bytes(BufferType.DOWNSTREAM_DATA, value, start, size)

    def get_upstream_data(self, start: int = 0, size: int | None = None) -> bytes | None:
        """Buffered upstream bytes, or ``None``."""
        _enter(self.context_id)
        return hc.get_buffer_bytes(BufferType.UPSTREAM_DATA, start, size)

    def set_upstream_data(self, value: bytes, start: int = 0, size: int | None = None) -> None:
        """Replace upstream bytes (``size=None``: from ``start`` to the end)."""
        _enter(self.context_id)
        hc.set_buffer_bytes(BufferType.UPSTREAM_DATA, value, start, size)

    def resume_downstream(self) -> None:
        """Resume reading from the client."""
        _enter(self.context_id)
        hc.continue_stream(StreamType.DOWNSTREAM)

    def resume_upstream(self) -> None:
        """Resume reading from the upstream."""
        _enter(self.context_id)
        hc.continue_stream(StreamType.UPSTREAM)

    def close_downstream(self) -> None:
        """Close the client connection."""
        _enter(self.context_id)
        hc.close_stream(StreamType.DOWNSTREAM)

    def close_upstream(self) -> None:
        """Close the upstream connection."""
        _enter(self.context_id)
        hc.close_stream(StreamType.UPSTREAM)
