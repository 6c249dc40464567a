"""``HostEmulator``: drive a filter callback by callback, as Envoy would, and inspect the result.

Natively the filter's own Python classes run in this process (so ``pdb`` and
coverage work); :meth:`HostEmulator.from_wasm` runs a compiled module under
wasmtime against the same host state, so one test can run both ways.
"""

from __future__ import annotations

import json
import os
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from types import ModuleType
from typing import Any, ClassVar, Protocol, Self

from .. import _nullhost, _state
from ..contexts import HttpContext, RootContext
from ..dispatcher import Dispatcher, RootFactory
from ..types import Action, LogLevel, MapType, MetricType, PeerType
from .abi_host import (
    KEEP_FINISHED,
    MAX_HISTOGRAM_SAMPLES,
    MAX_LOG_ENTRIES,
    AbiHost,
    ForeignFunction,
    PropertyValue,
    encode_property,
)
from .client import Body, BodyEnd, HttpCallHandler, HttpExchange, answer_http_calls, http
from .state import (
    GrpcCallAttributes,
    HttpCallAttributes,
    HttpStream,
    LocalResponse,
    Pairs,
    TcpConnection,
    _text,
)
from .wasm import DEFAULT_MEMORY_LIMIT, WasmTrapError

__all__ = ["CALLOUT_RESET_STATUS", "FAILURE_POLICIES", "Callbacks", "HeadersIn", "HostEmulator"]

#: What the host does once the VM trapped, as Envoy's ``failure_policy``
#: (``FAIL_CLOSED`` / ``FAIL_OPEN`` / ``FAIL_RELOAD``).
FAILURE_POLICIES = ("closed", "open", "reload")

#: What a callback answers on a failed VM (proxy-wasm-cpp-host's CHECK_FAIL):
#: the stream callbacks stop their stream unless the policy is open.
_STREAM_CALLBACKS = frozenset(
    f"proxy_on_{n}"
    for n in (
        "request_headers",
        "request_body",
        "request_trailers",
        "response_headers",
        "response_body",
        "response_trailers",
    )
)
_CONNECTION_CALLBACKS = frozenset(
    ("proxy_on_new_connection", "proxy_on_downstream_data", "proxy_on_upstream_data")
)

#: Action(n) goes through Enum.__call__; a dict lookup is cheaper on the per-callback path.
_ACTIONS: dict[object, Action] = {int(a): a for a in Action}

#: Headers as a test passes them: pairs or a mapping (a dict), ``str`` or ``bytes``.
HeadersIn = Sequence[tuple[str | bytes, str | bytes]] | Mapping[str, str] | Mapping[bytes, bytes]

#: The ``proxy_get_status`` code of a callout that was reset: proxy-wasm-cpp-host's
#: ``WasmResult::BrokenConnection`` (not in the ABI's ``proxy_status_t``; measured
#: in Envoy 1.40 together with the message ``"reset"``).
CALLOUT_RESET_STATUS = 11


class Callbacks(Protocol):
    """What the host calls: the ``proxy_on_*`` exports of a module (a Dispatcher natively)."""

    def proxy_on_context_create(self, context_id: int, parent_context_id: int) -> None: ...
    def proxy_on_vm_start(self, root_context_id: int, vm_configuration_size: int) -> bool: ...
    def proxy_on_configure(self, root_context_id: int, plugin_configuration_size: int) -> bool: ...


def _roots_of(root: RootFactory | ModuleType | None) -> dict[str | None, RootFactory] | None:
    if root is None:
        return None  # what set_root_context registered
    if isinstance(root, ModuleType):
        from .loader import filter_roots

        return filter_roots(root)
    return {None: root}


def _b(value: str | bytes) -> bytes:
    return value.encode("utf-8", "surrogateescape") if isinstance(value, str) else bytes(value)


def _pairs(headers: HeadersIn | None) -> Pairs:
    if headers is None:
        return []
    items = headers.items() if isinstance(headers, Mapping) else headers
    if isinstance(items, (str, bytes)):
        raise TypeError(
            f"headers must be (name, value) pairs or a mapping, got {type(items).__name__}"
        )
    out: Pairs = []
    append = out.append
    for item in items:
        # Fast path first (str pairs, what tests pass); anything else is checked below.
        if type(item) is tuple and len(item) == 2:
            name, value = item
            if type(name) is str and type(value) is str:
                append(
                    (
                        name.encode("utf-8", "surrogateescape").lower(),
                        value.encode("utf-8", "surrogateescape"),
                    )
                )
                continue
        if not isinstance(item, tuple) or len(item) != 2:
            raise TypeError(f"headers must be (name, value) pairs, got {item!r}")
        name, value = item
        if not isinstance(name, (str, bytes)) or not isinstance(value, (str, bytes)):
            raise TypeError(f"header name and value must be str or bytes, got {item!r}")
        append((_b(name).lower(), _b(value)))
    return out


def _config(value: bytes | str | dict[str, Any] | list[Any] | None) -> bytes | None:
    if value is None:
        return None
    if isinstance(value, (dict, list)):
        return json.dumps(value).encode()
    return _b(value)


class HostEmulator(AbiHost):
    """A proxy-wasm host in Python: the "null runtime".

    ``root`` is the plugin's ``RootContext`` subclass (or a factory), or a
    filter module loaded with :func:`proxywasm.testing.load_filter` (its
    registered roots, selected by ``root_id``); ``None`` uses what was
    registered globally with ``proxywasm.set_root_context``.
    Each instance has its own host state (shared data, queues, metrics, logs).

    ``raise_callback_errors=True`` re-raises an exception from a callback after
    logging it, instead of applying the failure policy, so that ``pytest
    --pdb`` stops where it happened (native filters only).

    A long run costs the same per request at the end as at the start, and
    what it keeps is bounded:

    - A finished stream or connection (``complete_http_context`` /
      ``complete_connection``) leaves the live tables. Its record stays
      inspectable (``get_http_stream``, ``get_current_*``,
      ``get_sent_local_response``, ``get_connection`` ...) for the
      ``keep_finished`` most recently finished contexts (default 1000; older
      ones raise ``KeyError``). Its id is no longer a context for the filter:
      ``set_effective_context`` on it fails with BAD_ARGUMENT, as in Envoy.
    - ``get_logs`` / ``get_all_logs`` see the last ``max_log_entries``
      entries (default 10,000; ``None`` keeps every one).
    - ``get_histogram`` returns the last ``max_histogram_samples`` samples of
      a histogram (default 10,000; ``None`` keeps every one).

    A compiled module can trap (see :class:`~proxywasm.testing.wasm.WasmTrapError`,
    raised by the call that trapped). The VM is then gone and
    ``failure_policy`` decides, as Envoy's does, what every later callback
    gets: ``"closed"`` (the default, Envoy's too) answers each HTTP stream
    with a local ``503`` and closes each TCP connection without calling the
    module, until :meth:`reload_vm`; ``"open"`` lets streams and connections
    pass without the filter; ``"reload"`` starts a fresh VM (``on_vm_start``
    and ``on_configure`` again, host state such as shared data kept) when
    the next stream or connection begins. Envoy waits a backoff (1 s)
    before that reload and answers 503 meanwhile; the harness reloads at
    once. Streams begun on the dead VM keep failing.
    """

    def __init__(
        self,
        root: RootFactory | ModuleType | None = None,
        *,
        plugin_configuration: bytes | str | dict[str, Any] | list[Any] | None = None,
        vm_configuration: bytes | str | dict[str, Any] | list[Any] | None = None,
        root_id: str = "",
        vm_id: str = "",
        log_level: LogLevel = LogLevel.TRACE,
        properties: dict[str, PropertyValue] | None = None,
        upstreams: list[str] | None = None,
        raise_callback_errors: bool = False,
        keep_finished: int = KEEP_FINISHED,
        max_log_entries: int | None = MAX_LOG_ENTRIES,
        max_histogram_samples: int | None = MAX_HISTOGRAM_SAMPLES,
        failure_policy: str = "closed",
        _callbacks: Any = None,
    ) -> None:
        super().__init__(
            vm_configuration=_config(vm_configuration),
            root_id=root_id,
            vm_id=vm_id,
            log_level=log_level,
            properties=properties,
            upstreams=upstreams,
            keep_finished=keep_finished,
            max_log_entries=max_log_entries,
            max_histogram_samples=max_histogram_samples,
        )
        if failure_policy not in FAILURE_POLICIES:
            raise ValueError(
                f"failure_policy must be one of {', '.join(FAILURE_POLICIES)}, not {failure_policy!r}"
            )
        self.failure_policy = failure_policy
        #: The trap that killed the VM, until a reload (``None`` while it lives).
        self.vm_failure: WasmTrapError | None = None
        #: Streams and connections begun on a VM that has since been replaced.
        self._stale_contexts: set[int] = set()
        self._vm_broken = False  # vm_failure or stale contexts: the one check on the hot path
        roots = _roots_of(root)

        def native() -> Any:
            vm = Dispatcher(roots)
            # Debugging aid: after the error log, let the exception reach the test
            # (so `pytest --pdb` stops in the callback). Off by default: Envoy and
            # the compiled module apply the failure policy instead.
            vm.reraise = raise_callback_errors
            return vm

        self._new_vm: Callable[[], Any] = (lambda: _callbacks) if _callbacks is not None else native
        self._vm: Any = self._new_vm()
        self._plugin_configuration = _config(plugin_configuration)
        self._root_context_id = 0
        self._depth = 0
        self._vm_started = False

    @classmethod
    def for_http_context(
        cls, http_context: Callable[[int, RootContext], HttpContext], **kwargs: Any
    ) -> Self:
        """A started host whose root context makes ``http_context(context_id, root)``
        streams: the shortest way to test one ``HttpContext`` class.

        ``kwargs`` go to the constructor (``plugin_configuration=`` ...).
        """

        class _Root(RootContext):
            def create_http_context(self, context_id: int) -> HttpContext:
                return http_context(context_id, self)

        _Root.__qualname__ = f"RootOf{getattr(http_context, '__name__', 'HttpContext')}"
        host = cls(_Root, **kwargs)
        host.start_vm()
        host.start_plugin()
        return host

    @classmethod
    def from_wasm(
        cls,
        path: str | os.PathLike[str],
        *,
        plugin_configuration: bytes | str | dict[str, Any] | list[Any] | None = None,
        memory_limit: int = DEFAULT_MEMORY_LIMIT,
        **kwargs: Any,
    ) -> Self:
        """Run a compiled proxy-wasm module (ours or another SDK's) under wasmtime.

        ``memory_limit`` caps the VM's linear memory in bytes (default 1 GiB,
        proxy-wasm-cpp-host's default in Envoy); other ``kwargs`` go to the
        constructor (``failure_policy=`` ...).
        """
        from .wasm import WasmCallbacks

        host = cls(plugin_configuration=plugin_configuration, **kwargs)
        host._new_vm = lambda: WasmCallbacks(path, host, memory_limit=memory_limit)
        host._vm = host._new_vm()
        return host

    # -- calling the module ---------------------------------------------------------------

    def _invoke(self, name: str, context_id: int, *args: int) -> Any:
        # Unrolled save / restore: this runs for every callback of every stream.
        previous_active = _nullhost.active
        previous_context = self.effective_context_id
        previous_callback = self.callback
        _nullhost.active = self
        self.effective_context_id = context_id
        self.callback = name
        self._depth += 1
        try:
            if self._vm_broken and (
                self.vm_failure is not None or context_id in self._stale_contexts
            ):
                result = self._on_failed_vm(name, context_id)
            else:
                result = getattr(self._vm, name)(context_id, *args)
        except WasmTrapError as exc:
            self._trapped(name, context_id, exc)
            raise
        finally:
            self._depth -= 1
            _nullhost.active = previous_active
            self.effective_context_id = previous_context
            self.callback = previous_callback
        if self._depth == 0 and (
            self.ready_streams or self.pending_delete or self.pending_queue_ready
        ):
            self._deliver()
        return result

    def _trapped(self, name: str, context_id: int, exc: WasmTrapError) -> None:
        """The VM died in ``name``: log it as Envoy does and fail that callback's stream."""
        if self.vm_failure is None:
            self.vm_failure = exc
            self._vm_broken = True
            self.logs.append((LogLevel.CRITICAL, f"Function: {name} failed: {exc}"))
        self._on_failed_vm(name, context_id)
        if self._depth == 1 and self.ready_streams:
            self._depth = 0  # the local reply goes out before the error reaches the test
            try:
                self._deliver()
            finally:
                self._depth = 1

    def _on_failed_vm(self, name: str, context_id: int) -> int:
        """What a callback gets once its VM is gone (proxy-wasm-cpp-host's CHECK_FAIL).

        The module is not called. Under ``"open"`` streams and connections
        continue; otherwise an HTTP stream gets a local 503 (details
        ``wasm_fail_stream``) and a connection is closed, both paused.
        """
        if name in _STREAM_CALLBACKS:
            if self.failure_policy == "open":
                return int(Action.CONTINUE)
            stream = self.http_streams.get(context_id)
            if stream is not None:
                stream.action = Action.PAUSE  # also for the call that trapped and returned nothing
            if (
                stream is not None
                and stream.local_response is None
                and stream.pending_local_response is None
            ):
                stream.pending_local_response = LocalResponse(503, [], b"", "wasm_fail_stream", 14)
                self.ready_streams.append(context_id)
            return int(Action.PAUSE)
        if name in _CONNECTION_CALLBACKS:
            if self.failure_policy == "open":
                return int(Action.CONTINUE)
            conn = self.tcp_connections.get(context_id)
            if conn is not None:
                conn.downstream_closed = conn.upstream_closed = True
            return int(Action.PAUSE)
        return 1 if name == "proxy_on_done" else 0  # on_done: nothing left to wait for

    def reload_vm(self) -> None:
        """Replace the VM with a fresh one, as Envoy does on a reload.

        Every plugin's root context is created again and gets
        ``on_vm_start`` / ``on_configure`` with its configuration; host state
        (shared data, queues, metrics, logs) is kept. Streams and connections
        begun on the old VM stay failed. Called by the host itself under
        ``failure_policy="reload"`` when a stream or connection begins after a trap.
        """
        self._stale_contexts.update(self.http_streams)
        self._stale_contexts.update(self.tcp_connections)
        self.vm_failure = None
        self._vm_broken = bool(self._stale_contexts)
        self._vm = self._new_vm()
        self.tick_periods.clear()
        for root in list(self.root_contexts):
            self._invoke("proxy_on_context_create", root, 0)
            if root == self._root_context_id:
                self._vm_started = bool(
                    self._invoke("proxy_on_vm_start", root, len(self.vm_configuration or b""))
                )
            config = self.plugin_configurations.get(root)
            self._invoke("proxy_on_configure", root, len(config or b""))

    def _reload_if_due(self) -> None:
        if self.vm_failure is not None and self.failure_policy == "reload":
            self.reload_vm()

    def _deliver(self) -> None:
        """What the host does once a callback returns: local replies, queue wake-ups.

        Only streams marked in ``ready_streams`` (a local reply was sent, a
        direction was resumed) are visited, so the cost does not grow with the
        number of streams open or served.
        """
        ready, deletes, queue = self.ready_streams, self.pending_delete, self.pending_queue_ready
        if not (ready or deletes or queue):
            return
        for _ in range(1000):
            progressed = False
            if ready:
                # Stream order (creation order), as Envoy's per-stream work is independent.
                batch = sorted(set(ready))
                ready.clear()
                for context_id in batch:
                    stream = self.http_streams.get(context_id)
                    if stream is None:
                        continue
                    if stream.pending_local_response is not None:
                        self._send_local_reply(stream)
                    elif not self._release_held(stream):
                        continue
                    progressed = True
                    ready.append(
                        context_id
                    )  # look again next round: the other direction may go too
            if deletes:
                self._delete_root(deletes.popleft())
                progressed = True
            if queue:
                owner, queue_id = queue.popleft()
                self._invoke("proxy_on_queue_ready", owner, queue_id)
                progressed = True
            if not progressed:
                return
        raise RuntimeError(
            "the filter keeps waking itself up (1000 rounds of local replies / queue events)"
        )

    def _release_held(self, stream: HttpStream) -> bool:
        """Deliver body / trailers that waited while a headers callback held the stream paused."""
        if not stream.request_headers_paused and (
            stream.held_request_body is not None or stream.held_request_trailers is not None
        ):
            body, trailers = stream.held_request_body, stream.held_request_trailers
            stream.held_request_body = stream.held_request_trailers = None
            if body is not None:
                self.call_on_request_body(stream.context_id, bytes(body), stream.held_request_end)
            if trailers is not None:
                self.call_on_request_trailers(stream.context_id, trailers)
            return True
        if not stream.response_headers_paused and (
            stream.held_response_body is not None or stream.held_response_trailers is not None
        ):
            body, trailers = stream.held_response_body, stream.held_response_trailers
            stream.held_response_body = stream.held_response_trailers = None
            if body is not None:
                self.call_on_response_body(stream.context_id, bytes(body), stream.held_response_end)
            if trailers is not None:
                self.call_on_response_trailers(stream.context_id, trailers)
            return True
        return False

    def _send_local_reply(self, stream: HttpStream) -> None:
        reply = stream.pending_local_response
        assert reply is not None
        stream.pending_local_response = None
        stream.local_response = reply
        stream.request_ended = True
        stream.held_request_body = stream.held_request_trailers = None
        stream.held_response_body = stream.held_response_trailers = None
        in_response = stream.response_headers is not None
        headers: Pairs = [(b":status", str(reply.status_code).encode())]
        headers += [(_b(k), _b(v)) for k, v in reply.headers]  # names may be escaped bytes too
        if reply.body:
            if not any(k == b"content-type" for k, _ in headers):
                headers.append((b"content-type", b"text/plain"))
            headers.append((b"content-length", str(len(reply.body)).encode()))
        stream.response_headers = headers
        stream.response_body = bytearray(reply.body)
        if in_response:
            return  # sent from a response callback: the filter does not see it again
        # As Envoy: the local reply passes through this filter's own response callbacks.
        stream.replying = True
        try:
            self._invoke(
                "proxy_on_response_headers", stream.context_id, len(headers), int(not reply.body)
            )
            if reply.body and stream.pending_local_response is None:
                self._invoke(
                    "proxy_on_response_body", stream.context_id, len(stream.response_body), 1
                )
        finally:
            stream.replying = False
        reply.headers = [(k, v) for k, v in _text(stream.response_headers) if k != ":status"]
        reply.body = bytes(stream.response_body)

    # -- VM and plugin ---------------------------------------------------------------------

    def start_vm(self) -> bool:
        """Create the root context and call ``on_vm_start``."""
        self._root_context_id = self._new_id()
        self.root_contexts.append(self._root_context_id)
        self.plugin_configurations[self._root_context_id] = self._plugin_configuration
        self.plugin_root_ids[self._root_context_id] = self.root_id
        self._invoke("proxy_on_context_create", self._root_context_id, 0)
        self._vm_started = bool(
            self._invoke(
                "proxy_on_vm_start", self._root_context_id, len(self.vm_configuration or b"")
            )
        )
        return self._vm_started

    def start_plugin(self) -> bool:
        """Call ``on_configure`` with the plugin configuration."""
        if not self._root_context_id:
            raise RuntimeError("start_vm() first")
        return self.configure(self._plugin_configuration)

    def configure(
        self,
        plugin_configuration: bytes | str | dict[str, Any] | list[Any] | None,
        root_context_id: int | None = None,
    ) -> bool:
        """(Re)configure a plugin, as Envoy does on a config update."""
        ctx = root_context_id or self._root_context_id
        config = _config(plugin_configuration)
        self.plugin_configurations[ctx] = config
        return bool(self._invoke("proxy_on_configure", ctx, len(config or b"")))

    def add_plugin(
        self,
        root_id: str = "",
        plugin_configuration: bytes | str | dict[str, Any] | list[Any] | None = None,
    ) -> int:
        """Add another plugin (root context) to the VM and configure it; returns its id."""
        ctx = self._new_id()
        self.root_contexts.append(ctx)
        self.plugin_root_ids[ctx] = root_id
        self._invoke("proxy_on_context_create", ctx, 0)
        if not self.configure(plugin_configuration, ctx):
            raise RuntimeError(
                f"plugin {root_id!r} rejected its configuration (on_configure returned False)"
            )
        return ctx

    @property
    def root_context_id(self) -> int:
        """Id of the first plugin's root context."""
        return self._root_context_id

    def tick(self, root_context_id: int | None = None) -> None:
        """Fire ``on_tick`` on every root context with a tick period (or just one)."""
        roots = (
            [root_context_id]
            if root_context_id
            else [r for r, p in self.tick_periods.items() if p > 0]
        )
        for ctx in roots:
            self._invoke("proxy_on_tick", ctx)

    def get_tick_period(self, root_context_id: int | None = None) -> int:
        """The tick period (ms) a root context set; 0 if none."""
        return self.tick_periods.get(root_context_id or self._root_context_id, 0)

    # -- HTTP streams --------------------------------------------------------------------------

    def _stream(self, context_id: int) -> HttpStream:
        stream = self.http_streams.get(context_id) or self.finished_http_streams.get(context_id)
        if stream is None:
            raise KeyError(
                f"no HTTP stream with context id {context_id} (use initialize_http_context()); "
                f"finished streams are kept for the last {self.keep_finished} only (keep_finished=)"
            )
        return stream

    def initialize_http_context(self, root_context_id: int | None = None) -> int:
        """Start a new HTTP stream; returns its context id."""
        root = root_context_id or self._root_context_id
        if not root:
            raise RuntimeError("start_vm() and start_plugin() first")
        self._reload_if_due()
        ctx = self._new_id()
        self.http_streams[ctx] = HttpStream(ctx, root)
        self._invoke("proxy_on_context_create", ctx, root)
        return ctx

    _KEEPS: ClassVar[dict[str, MapType]] = {
        "proxy_on_request_headers": MapType.HTTP_REQUEST_HEADERS,
        "proxy_on_request_trailers": MapType.HTTP_REQUEST_TRAILERS,
        "proxy_on_response_headers": MapType.HTTP_RESPONSE_HEADERS,
        "proxy_on_response_trailers": MapType.HTTP_RESPONSE_TRAILERS,
    }

    def _http_callback(self, stream: HttpStream, name: str, *args: int) -> Action:
        result = self._invoke(name, stream.context_id, *args)
        action = _ACTIONS.get(result)
        if action is None:  # not an action: let Action() raise its own error
            action = Action(result)
        stream.action = action
        if action == Action.PAUSE and name in self._KEEPS:
            stream.kept_maps.add(int(self._KEEPS[name]))
        return action

    def call_on_request_headers(
        self, context_id: int, headers: HeadersIn, end_of_stream: bool = False
    ) -> Action:
        """Deliver request headers; returns the filter's action."""
        stream = self._stream(context_id)
        if stream.request_ended:
            return stream.action
        stream.request_headers[:] = _pairs(headers)
        action = self._http_callback(
            stream, "proxy_on_request_headers", len(stream.request_headers), int(end_of_stream)
        )
        stream.request_action = action
        stream.request_headers_paused = action == Action.PAUSE and not stream.request_ended
        return action

    def call_on_request_body(
        self, context_id: int, body: bytes | str, end_of_stream: bool = False
    ) -> Action:
        """Deliver a request body chunk. After a PAUSE the filter sees everything buffered."""
        stream = self._stream(context_id)
        if stream.request_ended:
            return stream.action
        if stream.request_headers_paused:  # waits in the host until the filter resumes
            held = stream.held_request_body if stream.held_request_body is not None else bytearray()
            held += _b(body)
            stream.held_request_body, stream.held_request_end = held, end_of_stream
            return stream.action
        if stream.request_body_paused:
            stream.request_body += _b(body)
        else:
            stream.request_body = bytearray(_b(body))
        action = self._http_callback(
            stream, "proxy_on_request_body", len(stream.request_body), int(end_of_stream)
        )
        stream.request_action = action
        if action == Action.CONTINUE:
            stream.forwarded_request_body += stream.request_body
            stream.request_body_paused = False
        else:
            stream.request_body_paused = True
        return action

    def call_on_request_trailers(self, context_id: int, trailers: HeadersIn) -> Action:
        """Deliver request trailers."""
        stream = self._stream(context_id)
        if stream.request_ended:
            return stream.action
        if stream.request_headers_paused:
            stream.held_request_trailers = _pairs(trailers)
            return stream.action
        stream.request_trailers = _pairs(trailers)
        action = self._http_callback(
            stream, "proxy_on_request_trailers", len(stream.request_trailers)
        )
        stream.request_action = action
        return action

    def call_on_response_headers(
        self, context_id: int, headers: HeadersIn, end_of_stream: bool = False
    ) -> Action:
        """Deliver response headers (from the upstream)."""
        stream = self._stream(context_id)
        if stream.local_response is not None or stream.reset:
            return stream.action
        stream.response_headers = _pairs(headers)
        action = self._http_callback(
            stream, "proxy_on_response_headers", len(stream.response_headers), int(end_of_stream)
        )
        stream.response_action = action
        stream.response_headers_paused = (
            action == Action.PAUSE and stream.local_response is None and not stream.reset
        )
        return action

    def call_on_response_body(
        self, context_id: int, body: bytes | str, end_of_stream: bool = False
    ) -> Action:
        """Deliver a response body chunk."""
        stream = self._stream(context_id)
        if stream.local_response is not None or stream.reset:
            return stream.action
        if stream.response_headers is None:
            stream.response_headers = []
        if stream.response_headers_paused:
            held = (
                stream.held_response_body if stream.held_response_body is not None else bytearray()
            )
            held += _b(body)
            stream.held_response_body, stream.held_response_end = held, end_of_stream
            return stream.action
        if stream.response_body_paused:
            stream.response_body += _b(body)
        else:
            stream.response_body = bytearray(_b(body))
        action = self._http_callback(
            stream, "proxy_on_response_body", len(stream.response_body), int(end_of_stream)
        )
        stream.response_action = action
        if action == Action.CONTINUE:
            stream.forwarded_response_body += stream.response_body
            stream.response_body_paused = False
        else:
            stream.response_body_paused = True
        return action

    def call_on_response_trailers(self, context_id: int, trailers: HeadersIn) -> Action:
        """Deliver response trailers."""
        stream = self._stream(context_id)
        if stream.local_response is not None or stream.reset:
            return stream.action
        if stream.response_headers_paused:
            stream.held_response_trailers = _pairs(trailers)
            return stream.action
        stream.response_trailers = _pairs(trailers)
        action = self._http_callback(
            stream, "proxy_on_response_trailers", len(stream.response_trailers)
        )
        stream.response_action = action
        return action

    def complete_http_context(self, context_id: int) -> None:
        """End the stream: ``on_log``, ``on_done``, ``on_delete`` (as Envoy 1.40 orders them).

        The stream then leaves ``http_streams``; its record stays readable
        among the ``keep_finished`` most recently finished. Completing a
        finished stream again does nothing.
        """
        stream = self._stream(context_id)
        if stream.done:
            return
        self._finish(context_id)
        stream.done = True
        self._retire(self.http_streams, self.finished_http_streams, context_id)

    def _retire(
        self, live: dict[int, Any], finished: OrderedDict[int, Any], context_id: int
    ) -> None:
        """Move a finished context's record from the live table to the bounded finished one."""
        record = live.pop(context_id, None)
        if self._stale_contexts:
            self._stale_contexts.discard(context_id)
            self._vm_broken = bool(self._stale_contexts) or self.vm_failure is not None
        if record is None or self.keep_finished == 0:
            return
        finished[context_id] = record
        if len(finished) > self.keep_finished:
            finished.popitem(
                last=False
            )  # O(1), unlike deleting a plain dict's first key over and over

    def _finish(self, context_id: int) -> None:
        # Envoy ignores what a stream context's on_done returns (only root
        # contexts may delay their end, see shutdown()).
        if context_id in self.http_streams:
            # Envoy writes the access log before it destroys the filters.
            self._invoke("proxy_on_log", context_id)
            self._invoke("proxy_on_done", context_id)
        else:
            self._invoke("proxy_on_done", context_id)
            self._invoke("proxy_on_log", context_id)
        self._invoke("proxy_on_delete", context_id)
        # The context is gone: Envoy cancels the calls it still had in flight.
        for table in (self.http_calls, self.grpc_calls):
            if table:
                for token in [t for t, call in table.items() if call.context_id == context_id]:
                    del table[token]

    def shutdown(self) -> None:
        """Stop the VM, as Envoy does on a drain or a configuration change.

        Each root context gets ``on_done``; if it returns True, ``on_delete``
        follows; if False, ``on_delete`` waits until it calls ``done()``.
        """
        for root in list(self.root_contexts):
            if root in self.pending_done or root in self.pending_delete:
                continue
            if self._invoke("proxy_on_done", root):
                self._delete_root(root)
            else:
                self.pending_done.append(root)

    def _delete_root(self, root_context_id: int) -> None:
        self.tick_periods.pop(root_context_id, None)
        self._invoke("proxy_on_delete", root_context_id)
        if root_context_id in self.root_contexts:
            self.root_contexts.remove(root_context_id)

    def is_root_context_alive(self, root_context_id: int | None = None) -> bool:
        """Whether a root context (default: the first plugin's) has not been deleted yet."""
        return (root_context_id or self._root_context_id) in self.root_contexts

    def get_http_stream(self, context_id: int) -> HttpStream:
        """The raw host-side record of a stream (headers as bytes, flags)."""
        return self._stream(context_id)

    def get_current_request_headers(self, context_id: int) -> list[tuple[str, str]]:
        """Request headers as the filter left them."""
        return _text(self._stream(context_id).request_headers)

    def get_current_response_headers(self, context_id: int) -> list[tuple[str, str]]:
        """Response headers as the filter left them (a local reply's, if it sent one)."""
        return _text(self._stream(context_id).response_headers)

    def get_current_request_trailers(self, context_id: int) -> list[tuple[str, str]]:
        """Request trailers as the filter left them."""
        return _text(self._stream(context_id).request_trailers)

    def get_current_response_trailers(self, context_id: int) -> list[tuple[str, str]]:
        """Response trailers as the filter left them."""
        return _text(self._stream(context_id).response_trailers)

    def get_current_request_body(self, context_id: int) -> bytes:
        """The request body buffer as the filter left it after the last body callback."""
        return bytes(self._stream(context_id).request_body)

    def get_current_response_body(self, context_id: int) -> bytes:
        """The response body buffer as the filter left it after the last body callback."""
        return bytes(self._stream(context_id).response_body)

    def get_forwarded_request_body(self, context_id: int) -> bytes:
        """Every request body byte passed upstream so far."""
        return bytes(self._stream(context_id).forwarded_request_body)

    def get_forwarded_response_body(self, context_id: int) -> bytes:
        """Every response body byte passed downstream so far."""
        return bytes(self._stream(context_id).forwarded_response_body)

    def get_sent_local_response(self, context_id: int) -> LocalResponse | None:
        """The local reply the filter sent on this stream, or ``None``."""
        return self._stream(context_id).local_response

    def get_current_http_stream_action(self, context_id: int) -> Action:
        """The action the stream is in now (the last callback's, updated by resumes)."""
        return self._stream(context_id).action

    # -- TCP connections --------------------------------------------------------------------------

    def _connection(self, context_id: int) -> TcpConnection:
        conn = self.tcp_connections.get(context_id) or self.finished_connections.get(context_id)
        if conn is None:
            raise KeyError(
                f"no TCP connection with context id {context_id} (use initialize_connection()); "
                f"finished connections are kept for the last {self.keep_finished} only (keep_finished=)"
            )
        return conn

    def initialize_connection(self, root_context_id: int | None = None) -> tuple[int, Action]:
        """Accept a TCP connection: creates its context and calls ``on_new_connection``."""
        root = root_context_id or self._root_context_id
        if not root:
            raise RuntimeError("start_vm() and start_plugin() first")
        self._reload_if_due()
        ctx = self._new_id()
        conn = TcpConnection(ctx, root)
        self.tcp_connections[ctx] = conn
        self._invoke("proxy_on_context_create", ctx, root)
        conn.action = Action(self._invoke("proxy_on_new_connection", ctx))
        return ctx, conn.action

    def _data(
        self, context_id: int, data: bytes | str, end_of_stream: bool, downstream: bool
    ) -> Action:
        conn = self._connection(context_id)
        attr = "downstream" if downstream else "upstream"
        buf: bytearray = getattr(conn, f"{attr}_data")
        if getattr(conn, f"{attr}_paused"):
            buf += _b(data)
        else:
            buf[:] = _b(data)
        action = Action(
            self._invoke(f"proxy_on_{attr}_data", context_id, len(buf), int(end_of_stream))
        )
        conn.action = action
        if action == Action.CONTINUE:
            getattr(conn, f"forwarded_{attr}").extend(buf)
            setattr(conn, f"{attr}_paused", False)
        else:
            setattr(conn, f"{attr}_paused", True)
        return action

    def call_on_downstream_data(
        self, context_id: int, data: bytes | str, end_of_stream: bool = False
    ) -> Action:
        """Deliver client bytes."""
        return self._data(context_id, data, end_of_stream, downstream=True)

    def call_on_upstream_data(
        self, context_id: int, data: bytes | str, end_of_stream: bool = False
    ) -> Action:
        """Deliver upstream bytes."""
        return self._data(context_id, data, end_of_stream, downstream=False)

    def call_on_downstream_close(self, context_id: int, peer: PeerType = PeerType.REMOTE) -> None:
        """The client side closed."""
        self._connection(context_id).downstream_closed = True
        self._invoke("proxy_on_downstream_connection_close", context_id, int(peer))

    def call_on_upstream_close(self, context_id: int, peer: PeerType = PeerType.REMOTE) -> None:
        """The upstream side closed."""
        self._connection(context_id).upstream_closed = True
        self._invoke("proxy_on_upstream_connection_close", context_id, int(peer))

    def complete_connection(self, context_id: int) -> None:
        """End the connection: ``on_done``, ``on_log``, ``on_delete``."""
        conn = self._connection(context_id)
        if conn.done:
            return
        self._finish(context_id)
        conn.done = True
        self._retire(self.tcp_connections, self.finished_connections, context_id)

    def get_connection(self, context_id: int) -> TcpConnection:
        """The host-side record of a connection (buffers, forwarded bytes, closes)."""
        return self._connection(context_id)

    def get_current_connection_action(self, context_id: int) -> Action:
        """The action the connection is in now."""
        return self._connection(context_id).action

    # -- the test client ---------------------------------------------------------------------------

    def http(
        self,
        request_headers: HeadersIn,
        request_body: Body = b"",
        request_trailers: HeadersIn | None = None,
        response_headers: HeadersIn = ((":status", "200"),),
        response_body: Body = b"",
        response_trailers: HeadersIn | None = None,
        *,
        root_context_id: int | None = None,
        complete: bool = True,
        body_end: BodyEnd = "empty_chunk",
    ) -> HttpExchange:
        """Run one whole HTTP stream through the filter and return what each side got.

        See :func:`proxywasm.testing.client.http`: callbacks in Envoy's order
        (a body ends with an empty ``end_of_stream`` chunk, as Envoy does over
        HTTP/1.1, unless ``body_end="last_chunk"``), callouts answered by
        :meth:`answer_http_calls` handlers, then ``complete_http_context``
        unless ``complete=False``.
        """
        return http(
            self,
            request_headers,
            request_body,
            request_trailers,
            response_headers,
            response_body,
            response_trailers,
            root_context_id=root_context_id,
            complete=complete,
            body_end=body_end,
        )

    def answer_http_calls(self, cluster: str, handler: HttpCallHandler | None) -> None:
        """Let ``handler(call)`` answer the callouts to ``cluster`` during :meth:`http`.

        It returns ``(headers, body)``, ``(headers, body, trailers)``, an object
        with ``.status`` / ``.headers`` / ``.body``, or ``None`` (a reset).
        """
        answer_http_calls(self, cluster, handler)

    # -- HTTP callouts -----------------------------------------------------------------------------

    def get_http_call_attributes(self) -> list[HttpCallAttributes]:
        """Callouts dispatched and not answered yet."""
        return list(self.http_calls.values())

    def call_on_http_call_response(
        self,
        token: int,
        headers: HeadersIn | None = None,
        body: bytes | str = b"",
        trailers: HeadersIn | None = None,
    ) -> None:
        """Answer a callout; ``headers=None`` is a reset (the call got no answer).

        As Envoy 1.40 does (measured): a reset delivers no headers, no body
        buffer, and ``proxy_get_status`` answers ``(11, "reset")`` (BROKEN_CONNECTION).
        A timeout or an unreachable cluster is not a reset: Envoy answers it
        with ``504`` / ``503`` headers and a short body, so pass those to test
        it. An answer leaves the status code of the VM's last failed call in
        place and clears the message (so ``get_status()`` is not a success
        test; the headers are).
        """
        call = self.http_calls.pop(token, None)
        if call is None:
            raise KeyError(
                f"no pending HTTP callout with token {token}; pending: {sorted(self.http_calls)}"
            )
        h, t = _pairs(headers), _pairs(trailers)
        if headers is None:
            self.call_response = (h, None, t)
            self.last_status = (CALLOUT_RESET_STATUS, b"reset")
        else:
            self.call_response = (h, _b(body), t)
            self.last_status = (self.last_status[0], b"")
        try:
            self._invoke(
                "proxy_on_http_call_response",
                call.root_context_id,
                token,
                len(h),
                0 if headers is None else len(_b(body)),
                len(t),
            )
        finally:
            self.call_response = None

    # -- gRPC ----------------------------------------------------------------------------------------

    def get_grpc_call_attributes(self) -> list[GrpcCallAttributes]:
        """gRPC calls and streams open now."""
        return list(self.grpc_calls.values())

    def _grpc(self, token: int) -> GrpcCallAttributes:
        call = self.grpc_calls.get(token)
        if call is None:
            raise KeyError(f"no open gRPC call with token {token}; open: {sorted(self.grpc_calls)}")
        return call

    def call_on_grpc_receive_initial_metadata(self, token: int, metadata: HeadersIn) -> None:
        """Deliver initial metadata on a gRPC stream."""
        call = self._grpc(token)
        self.grpc_initial_metadata = _pairs(metadata)
        try:
            self._invoke(
                "proxy_on_grpc_receive_initial_metadata",
                call.root_context_id,
                token,
                len(self.grpc_initial_metadata),
            )
        finally:
            self.grpc_initial_metadata = None

    def call_on_grpc_receive(self, token: int, message: bytes) -> None:
        """Deliver a gRPC message (a unary reply ends the call)."""
        call = self._grpc(token)
        if not call.is_stream:
            del self.grpc_calls[token]
        self.grpc_message = bytes(message)
        self.last_status = (0, b"")
        try:
            self._invoke("proxy_on_grpc_receive", call.root_context_id, token, len(message))
        finally:
            self.grpc_message = None

    def call_on_grpc_receive_trailing_metadata(self, token: int, metadata: HeadersIn) -> None:
        """Deliver trailing metadata on a gRPC stream."""
        call = self._grpc(token)
        self.grpc_trailing_metadata = _pairs(metadata)
        try:
            self._invoke(
                "proxy_on_grpc_receive_trailing_metadata",
                call.root_context_id,
                token,
                len(self.grpc_trailing_metadata),
            )
        finally:
            self.grpc_trailing_metadata = None

    def call_on_grpc_close(self, token: int, status_code: int = 0, message: str = "") -> None:
        """End a gRPC call or stream with a gRPC status."""
        call = self._grpc(token)
        del self.grpc_calls[token]
        self.last_status = (status_code, message.encode())
        self._invoke("proxy_on_grpc_close", call.root_context_id, token, status_code)

    # -- shared data, queues, metrics, logs ------------------------------------------------------

    def get_shared_data(self, key: str) -> tuple[bytes | None, int | None]:
        """``(value, cas)`` of a shared key as the host holds it."""
        entry = self.shared_data.get(key.encode())
        return (None, None) if entry is None else entry

    def set_shared_data(self, key: str, value: bytes | str) -> None:
        """Seed shared data from a test."""
        self.proxy_set_shared_data(key.encode(), _b(value), 0)

    def get_queue_items(self, name: str, vm_id: str | None = None) -> list[bytes]:
        """Items waiting in a shared queue."""
        vm = self.vm_id if vm_id is None else vm_id
        for q in self.queues.values():
            if q.name == name and q.vm_id == vm:
                return list(q.items)
        raise KeyError(f"no shared queue {name!r} (vm {vm!r})")

    def enqueue_shared_queue(self, name: str, value: bytes | str, vm_id: str | None = None) -> None:
        """Enqueue from outside (another VM); the owner's ``on_queue_ready`` runs."""
        vm = self.vm_id if vm_id is None else vm_id
        for q in self.queues.values():
            if q.name == name and q.vm_id == vm:
                self.proxy_enqueue_shared_queue(q.queue_id, _b(value))
                if self._depth == 0:
                    self._deliver()
                return
        raise KeyError(f"no shared queue {name!r} (vm {vm!r})")

    def get_metric(self, name: str) -> int:
        """Value of a counter or gauge the filter defined."""
        for m in self.metrics.values():
            if m.name == name and m.metric_type != MetricType.HISTOGRAM:
                return m.value
        raise KeyError(
            f"no counter or gauge named {name!r}; defined: {sorted(m.name for m in self.metrics.values())}"
        )

    def get_histogram(self, name: str) -> list[int]:
        """Samples recorded in a histogram."""
        for m in self.metrics.values():
            if m.name == name and m.metric_type == MetricType.HISTOGRAM:
                return list(m.samples)
        raise KeyError(f"no histogram named {name!r}")

    def get_logs(self, level: LogLevel) -> list[str]:
        """Messages logged at exactly ``level``."""
        return [msg for lvl, msg in self.logs if lvl == level]

    def get_all_logs(self) -> list[tuple[LogLevel, str]]:
        """Every ``(level, message)`` in order."""
        return list(self.logs)

    def clear_logs(self) -> None:
        """Forget the logs so far."""
        self.logs.clear()

    # -- properties, foreign functions ----------------------------------------------------------

    def set_property(self, path: str, value: PropertyValue) -> None:
        """Set a host property the filter can read (``"node.id"``)."""
        self.properties[tuple(path.split("."))] = encode_property(value)

    def register_foreign_function(self, name: str, fn: ForeignFunction) -> None:
        """Make ``fn(arguments) -> result`` callable with ``call_foreign_function(name, ...)``."""
        self.foreign_functions[name] = fn

    def call_on_foreign_function(
        self, function_id: int, arguments: bytes = b"", root_context_id: int | None = None
    ) -> None:
        """The host calls into the plugin's ``on_foreign_function``."""
        self.foreign_arguments = bytes(arguments)
        try:
            self._invoke(
                "proxy_on_foreign_function",
                root_context_id or self._root_context_id,
                function_id,
                len(arguments),
            )
        finally:
            self.foreign_arguments = None

    @contextmanager
    def in_context(self, context_id: int | None = None) -> Iterator[None]:
        """Run host calls from a test as if inside a callback of ``context_id``.

        For poking at SDK helpers directly; filters are normally driven with ``call_on_*``.
        """
        previous = (_nullhost.active, self.effective_context_id, self.callback)
        _nullhost.active = self
        self.effective_context_id = context_id or self._root_context_id
        vm = self._vm
        if isinstance(vm, Dispatcher):
            vm.activate()
            _state.effective_context_id = self.effective_context_id
        try:
            yield
        finally:
            _nullhost.active, self.effective_context_id, self.callback = previous
