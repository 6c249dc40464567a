"""Routes the host's ``proxy_on_*`` callbacks to context objects and owns their lifecycle.

A :class:`Dispatcher` is one VM's view of the plugin: its root contexts, its
stream contexts, the callouts in flight. Its methods are named after the ABI
callbacks and take their parameters (``abi-stubs/abi.toml``); the compiled
glue calls them on :data:`vm`, the null runtime on its own instance.

Every callback runs inside an exception barrier: the traceback is logged as
one error entry, then the root context's failure policy applies (fail closed:
a 500 local reply; ``fail_open = True``: the stream continues). The VM lives on.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

TYPE_CHECKING = False

from . import _state
from . import hostcalls as hc
from ._tasks import COROUTINE, Task, step
from ._traceback import format_exception
from .calls import HttpResponse
from .contexts import BaseContext, HttpContext, RootContext, StreamContext
from .types import Action, BufferType, ConfigError, LogLevel, MapType, PeerType, StreamType

__all__ = ["Dispatcher", "RootFactory", "registered_roots", "set_root_context", "vm"]

#: A ``RootContext`` subclass, or any callable ``(context_id) -> RootContext``.
RootFactory = Callable[[int], RootContext]
if TYPE_CHECKING:
    _Stream = HttpContext | StreamContext

_registry: dict[str | None, RootFactory] = {}

#: What the exception barrier catches: everything a callback can raise.
#: ``BaseException`` and not ``Exception``: a ``KeyboardInterrupt``,
#: ``GeneratorExit`` or ``SystemExit`` raised by a filter must follow the
#: failure policy like any error (caught compiled, so caught natively too,
#: or native tests and Envoy would disagree). Only pdb's ``BdbQuit`` passes.
_CAUGHT = BaseException

#: Made at import so that reporting an error needs no allocation when the
#: heap is full (a MemoryError while formatting the traceback).
_LAST_RESORT = (
    "python exception in a callback; its traceback could not be formatted "
    "(out of memory?). The failure policy was applied."
)
_REPLY_STATUS = 500
_REPLY_HEADERS = [("content-type", "text/plain")]
_REPLY_BODY = b"Internal Server Error\n"
_REPLY_DETAILS = "wasm_python_exception"

_CONTINUE = int(Action.CONTINUE)
_PAUSE = int(Action.PAUSE)
#: What filters return; compared by identity first on the per-request paths.
_ACT_CONTINUE = Action.CONTINUE
_ACT_PAUSE = Action.PAUSE
#: This module's globals: a traceback entry of a dispatcher frame (see _callback_failed).
_GLOBALS = globals()

#: The direction an ``async def`` stream callback pauses, and resumes when it ends.
_DIRECTION = {
    "on_http_request_headers": int(StreamType.HTTP_REQUEST),
    "on_http_request_body": int(StreamType.HTTP_REQUEST),
    "on_http_request_trailers": int(StreamType.HTTP_REQUEST),
    "on_http_response_headers": int(StreamType.HTTP_RESPONSE),
    "on_http_response_body": int(StreamType.HTTP_RESPONSE),
    "on_http_response_trailers": int(StreamType.HTTP_RESPONSE),
    "on_new_connection": int(StreamType.DOWNSTREAM),
    "on_downstream_data": int(StreamType.DOWNSTREAM),
    "on_upstream_data": int(StreamType.UPSTREAM),
}


_REQUEST = int(StreamType.HTTP_REQUEST)
_RESPONSE = int(StreamType.HTTP_RESPONSE)


#: Callbacks the compiled glue may answer itself while no context class overrides
#: the method behind them (one Python call less per request each): ABI name -> method.
_SKIPPABLE = {
    "proxy_on_request_body": "on_http_request_body",
    "proxy_on_request_trailers": "on_http_request_trailers",
    "proxy_on_response_body": "on_http_response_body",
    "proxy_on_response_trailers": "on_http_response_trailers",
    "proxy_on_log": "on_log",
    "proxy_on_done": "on_done",
    "proxy_on_downstream_connection_close": "on_downstream_close",
    "proxy_on_upstream_connection_close": "on_upstream_close",
}
#: The SDK's own classes, whose methods are the defaults.
_SDK_CLASSES = (BaseContext, RootContext, HttpContext, StreamContext)


def _overrides(cls: type, method: str) -> bool:
    """Whether ``cls`` (a context class) has its own ``method`` instead of the SDK's default."""
    for base in cls.__mro__:
        if method in base.__dict__:
            return base.__module__ != "proxywasm.contexts"
    return False


def _not_async(result: object, where: str) -> object:
    """Refuse a coroutine where the host needs the answer now (its truth would say yes)."""
    if type(result) is COROUTINE:
        result.close()
        raise TypeError(f"{where} cannot be async def: the host needs its answer before it returns")
    return result


def set_root_context(factory: RootFactory, root_id: str | None = None) -> None:
    """Register the plugin's root context (a class or a factory).

    ``root_id`` binds it to Envoy's ``config.root_id``; ``None`` (the default)
    serves any root id that has no registration of its own.
    """
    if not callable(factory):
        raise TypeError(
            f"set_root_context expects a RootContext subclass or a factory, got {factory!r}"
        )
    if isinstance(factory, type) and not issubclass(factory, RootContext):
        raise TypeError(
            f"set_root_context: {factory.__qualname__} is not a subclass of proxywasm.RootContext"
        )
    _registry[root_id] = factory


def registered_roots() -> dict[str | None, RootFactory]:
    """A copy of what :func:`set_root_context` registered (root id -> factory)."""
    return dict(_registry)


def _describe(obj: object) -> str:
    return type(obj).__qualname__


class Dispatcher:
    """One VM's contexts and the ABI callbacks that drive them."""

    _next_key = 0

    def __init__(self, roots: dict[str | None, RootFactory] | None = None) -> None:
        #: Root factories by root id; ``None`` uses :func:`set_root_context` registrations.
        self.factories = roots
        self.roots: dict[int, RootContext] = {}
        self.streams: dict[int, _Stream] = {}
        #: Stream contexts announced but not made yet (made on the first callback,
        #: which tells whether the stream is HTTP or TCP): id -> root context id.
        self.pending: dict[int, int] = {}
        #: HTTP callout token -> id of the context that dispatched it.
        self.callouts: dict[int, int] = {}
        #: gRPC token -> (context id, is_stream).
        self.grpc_calls: dict[int, tuple[int, bool]] = {}
        #: Contexts whose creation failed: their streams get the failure policy.
        self.broken: dict[int, int] = {}
        #: Coroutines of async callbacks waiting for callouts, by callout token.
        self.tasks: dict[int, Task] = {}
        #: HTTP streams a local reply was sent on: Envoy accepts a second reply and
        #: drops it (measured), so the failure policy resets such a stream instead.
        self.replied: set[int] = set()
        #: Callbacks the compiled glue answers itself (see :meth:`glue_skips`), and the
        #: context classes already checked against them.
        self.skipped: set[str] = set()
        self._checked: set[type] = set()
        #: Context classes by whether their ``on_delete`` is the SDK's (not called then).
        #: The compiled glue reads this and the tables above (``pending``, ``streams``,
        #: ``roots``, ``broken``, ``replied``, ``callouts``, ``grpc_calls``, ``tasks``;
        #: glue.py, ``pw_record_pending`` / ``pw_delete_quietly``) through references
        #: taken at start-up: mutate them in place, never rebind them.
        self._plain_delete: dict[type, bool] = {}
        #: Re-raise callback exceptions after logging them (natively, for
        #: ``pytest --pdb``); the policy of a real host is to log and go on.
        self.reraise = False
        Dispatcher._next_key += 1
        self.key = Dispatcher._next_key

    # -- activation ---------------------------------------------------------------------

    def activate(self) -> None:
        """Make this the current VM (the null runtime calls this per callback)."""
        previous = _state.vm
        if isinstance(previous, Dispatcher) and previous is not self:
            previous._note_reply()  # a reply sent in its last callback is its own
        _state.replied_context = 0
        _state.vm = self
        _state.vm_key = self.key

    def _note_reply(self) -> None:
        """Move the stream a local reply was sent on (by ``hostcalls``) into :attr:`replied`."""
        if _state.replied_context:
            self.replied.add(_state.replied_context)
            _state.replied_context = 0

    def _enter(self, context_id: int) -> None:
        if _state.vm is not self:
            self.activate()
        else:
            self._note_reply()
        _state.effective_context_id = context_id
        _state.map_epoch += 1  # a new callback: header views fetch their map afresh

    # -- callbacks nobody overrides ------------------------------------------------------

    def glue_skips(self) -> tuple[str, ...]:
        """The callbacks no context class defined so far overrides (the compiled glue
        then answers their default without calling Python). Called once, at build time."""
        classes: list[type] = []
        stack: list[type] = [BaseContext]
        while stack:
            subs: list[type] = stack.pop().__subclasses__()
            for sub in subs:
                if sub not in classes:
                    classes.append(sub)
                    stack.append(sub)
        skips = tuple(
            name
            for name, method in _SKIPPABLE.items()
            if not any(_overrides(c, method) for c in classes if c not in _SDK_CLASSES)
        )
        self.skipped = set(skips)
        return skips

    def _check_skips(self, ctx: BaseContext) -> None:
        """A class made after start-up overrides a skipped callback: call Python for it again."""
        cls = type(ctx)
        self._checked.add(cls)
        for name in [n for n in self.skipped if _overrides(cls, _SKIPPABLE[n])]:
            self.skipped.discard(name)
            hc.unskip_callback(name)

    # -- errors -------------------------------------------------------------------------

    def _report(self, where: str, context_id: int, exc: BaseException) -> None:
        """Log ``exc`` as one error entry. Never raises (but for pdb and ``reraise``)."""
        if type(exc).__name__ == "BdbQuit":  # quitting pdb natively must not be swallowed
            raise exc
        try:
            text = format_exception(exc)
            message = f"python exception in {where} (context {context_id}):\n{text}"
        except BaseException:  # e.g. MemoryError while formatting: a fixed message
            message = _LAST_RESORT
        try:
            hc.log(LogLevel.ERROR, message)
        except BaseException:  # the host refused even the log: last resort is stderr
            try:
                print(message, file=sys.stderr)
            except BaseException:
                pass
        if self.reraise:
            raise exc

    def _config_error(self, where: str, exc: ConfigError) -> None:
        """A rejected configuration: one line with the message, no traceback."""
        try:
            hc.log(LogLevel.ERROR, f"{where} rejected the configuration: {exc}")
        except BaseException:
            pass
        if self.reraise:
            raise exc

    def _root_of(self, context_id: int) -> RootContext | None:
        ctx = self.streams.get(context_id)
        if ctx is not None:
            return ctx.root
        root_id = self.broken.get(context_id, self.pending.get(context_id))
        if root_id is not None:
            return self.roots.get(root_id)
        return self.roots.get(context_id)

    def _fail_open(self, context_id: int) -> bool:
        """The root's ``fail_open``; closed when even that cannot be read."""
        try:
            root = self._root_of(context_id)
            return bool(getattr(root, "fail_open", False))
        except BaseException:
            return False

    def _fail_http(self, context_id: int) -> int:
        """Apply the failure policy to an HTTP stream; returns the action.

        Fail closed must hold whatever happens here: if the 500 cannot be
        sent (one reply went out already, or the heap is full) the stream is
        reset, and the answer is PAUSE either way. A stream the filter
        already answered is reset: Envoy would drop a second reply.
        """
        if self._fail_open(context_id):
            return _CONTINUE
        self._note_reply()
        if context_id in self.replied:
            try:  # the client has its answer (or it is on its way): stop the stream
                hc.close_stream(StreamType.HTTP_RESPONSE)
            except BaseException:
                pass
            return _PAUSE
        try:
            _state.effective_context_id = -1
            hc.set_effective_context(context_id)
            _state.effective_context_id = context_id
            hc.send_local_response(_REPLY_STATUS, _REPLY_HEADERS, _REPLY_BODY, _REPLY_DETAILS)
        except BaseException:
            try:  # a reply is no longer possible (one was sent already): reset instead
                hc.close_stream(StreamType.HTTP_RESPONSE)
            except BaseException:
                pass
        return _PAUSE

    def _fail_tcp(self, context_id: int) -> int:
        if self._fail_open(context_id):
            return _CONTINUE
        try:
            hc.close_stream(StreamType.DOWNSTREAM)
        except BaseException:
            pass
        return _PAUSE

    # -- context creation ---------------------------------------------------------------

    def _factory(self) -> RootFactory:
        table = self.factories if self.factories is not None else _registry
        if not table:
            raise LookupError(
                "no root context registered: call proxywasm.set_root_context(YourRoot) "
                "at the end of the filter module"
            )
        if len(table) == 1:
            return next(iter(table.values()))
        root_id = hc.get_property("plugin_root_id")
        name = root_id.decode("utf-8", "replace") if root_id else ""
        if name in table:
            return table[name]
        if None in table:
            return table[None]
        raise LookupError(
            f"no root context registered for root_id {name!r} (registered: {sorted(str(k) for k in table)})"
        )

    def proxy_on_context_create(self, context_id: int, parent_context_id: int) -> None:
        """A root context (``parent_context_id == 0``) or a stream context is born.

        A compiled module's glue records a stream context in :attr:`pending` itself,
        without calling this (no Python runs, so there is nothing to enter)."""
        if parent_context_id:
            # Inlined _enter (per request).
            if _state.vm is not self:
                self.activate()
            elif _state.replied_context:
                self._note_reply()
            _state.effective_context_id = context_id
            _state.map_epoch += 1
            self.pending[context_id] = parent_context_id
            return
        self._enter(context_id)
        try:
            root = self._factory()(context_id)
            if not isinstance(root, RootContext):
                raise TypeError(
                    f"the root context factory returned {_describe(root)}, expected a proxywasm.RootContext"
                )
        except _CAUGHT as exc:
            self._report("root context creation", context_id, exc)
            return
        if self.skipped and type(root) not in self._checked:
            self._check_skips(root)
        self.roots[context_id] = root

    def _make(self, context_id: int, http: bool) -> _Stream | None:
        root_id = self.pending.pop(context_id, None)
        if root_id is None:
            return None
        root = self.roots.get(root_id)
        try:
            if root is None:
                raise LookupError(
                    f"stream context {context_id} belongs to root context {root_id}, which failed to start"
                )
            if http:
                ctx: _Stream = root.create_http_context(context_id)
                if not isinstance(ctx, HttpContext):
                    raise TypeError(
                        f"{_describe(root)}.create_http_context returned {_describe(ctx)}, expected a proxywasm.HttpContext"
                    )
            else:
                ctx = root.create_stream_context(context_id)
                if not isinstance(ctx, StreamContext):
                    raise TypeError(
                        f"{_describe(root)}.create_stream_context returned {_describe(ctx)}, "
                        "expected a proxywasm.StreamContext"
                    )
        except _CAUGHT as exc:
            self.broken[context_id] = root_id
            self._report("context creation", context_id, exc)
            return None
        if self.skipped and type(ctx) not in self._checked:
            self._check_skips(ctx)
        self.streams[context_id] = ctx
        return ctx

    def _http(self, context_id: int) -> HttpContext | None:
        ctx = self.streams.get(context_id)
        if ctx is None:
            ctx = self._make(context_id, http=True)
        return ctx if isinstance(ctx, HttpContext) else None

    def _tcp(self, context_id: int) -> StreamContext | None:
        ctx = self.streams.get(context_id)
        if ctx is None:
            ctx = self._make(context_id, http=False)
        return ctx if isinstance(ctx, StreamContext) else None

    # -- VM and plugin ------------------------------------------------------------------

    def proxy_on_vm_start(self, root_context_id: int, vm_configuration_size: int) -> bool:
        """The VM started; asks the root context."""
        self._enter(root_context_id)
        root = self.roots.get(root_context_id)
        if root is None:
            return False
        try:
            return bool(_not_async(root.on_vm_start(vm_configuration_size), "on_vm_start"))
        except ConfigError as exc:
            self._config_error("on_vm_start", exc)
            return False
        except _CAUGHT as exc:
            self._report("on_vm_start", root_context_id, exc)
            return False

    def proxy_on_configure(self, root_context_id: int, plugin_configuration_size: int) -> bool:
        """The plugin is configured; asks the root context."""
        self._enter(root_context_id)
        root = self.roots.get(root_context_id)
        if root is None:
            return False
        try:
            return bool(_not_async(root.on_configure(plugin_configuration_size), "on_configure"))
        except ConfigError as exc:
            self._config_error("on_configure", exc)
            return False
        except _CAUGHT as exc:
            self._report("on_configure", root_context_id, exc)
            return False

    def proxy_on_tick(self, root_context_id: int) -> None:
        """Timer tick for a root context."""
        self._enter(root_context_id)
        root = self.roots.get(root_context_id)
        if root is None:
            return
        try:
            result = root.on_tick()
            if type(result) is COROUTINE:
                self._start(Task(root_context_id, result, "on_tick", -1))
        except _CAUGHT as exc:
            self._report("on_tick", root_context_id, exc)

    def proxy_on_queue_ready(self, root_context_id: int, queue_id: int) -> None:
        """An item waits in a queue the root registered."""
        self._enter(root_context_id)
        root = self.roots.get(root_context_id)
        if root is None:
            return
        try:
            result = root.on_queue_ready(queue_id)
            if type(result) is COROUTINE:
                self._start(Task(root_context_id, result, "on_queue_ready", -1))
        except _CAUGHT as exc:
            self._report("on_queue_ready", root_context_id, exc)

    def proxy_on_foreign_function(
        self, root_context_id: int, function_id: int, arguments_size: int
    ) -> None:
        """The host calls into the plugin."""
        self._enter(root_context_id)
        root = self.roots.get(root_context_id)
        if root is None:
            return
        try:
            root.on_foreign_function(function_id, arguments_size)
        except _CAUGHT as exc:
            self._report("on_foreign_function", root_context_id, exc)

    # -- HTTP streams -------------------------------------------------------------------

    def _unmade(self, context_id: int) -> int:
        """An HTTP callback for a stream with no context: it failed to be made (the
        failure policy), or it is not known (continue)."""
        if context_id in self.broken:
            return self._fail_http(context_id)
        return _CONTINUE

    def _http_action(
        self, context_id: int, ctx: HttpContext | None, name: str, *args: int | bool
    ) -> int:
        if ctx is None:
            return self._unmade(context_id)
        try:
            result = getattr(ctx, name)(*args)
        except _CAUGHT as exc:
            return self._callback_failed(name, context_id, exc)
        if result is None or result is _ACT_CONTINUE:
            return _CONTINUE
        if result is _ACT_PAUSE:
            return _PAUSE
        return self._callback_result(ctx, context_id, name, result)

    def _callback_failed(self, name: str, context_id: int, exc: BaseException) -> int:
        """An HTTP stream callback raised ``exc``: one error entry, then the failure policy.

        The compiled glue calls this (and :meth:`_callback_result`) when it ran the
        callback itself (see ``glue.py``, ``pw_http_fast``); the traceback then starts at
        the filter's frame, so the dispatcher's own frame, where the exception was caught
        here, is left out of it too: the same entry natively and compiled."""
        tb = exc.__traceback__
        if tb is not None and tb.tb_frame.f_globals is _GLOBALS:
            exc.__traceback__ = tb.tb_next
        self._report(name, context_id, exc)
        return self._fail_http(context_id)

    def _callback_result(self, ctx: HttpContext, context_id: int, name: str, result: object) -> int:
        """The rest of an HTTP stream callback the glue ran (see :meth:`_callback_failed`):
        its result was not ``None`` nor an :class:`Action`."""
        try:
            return self._action(ctx, context_id, name, result, _DIRECTION[name])
        except _CAUGHT as exc:
            return self._callback_failed(name, context_id, exc)

    def _action(
        self, ctx: BaseContext, context_id: int, name: str, result: object, direction: int
    ) -> int:
        """A stream callback's result other than ``None`` / ``Action``: an int action,
        a coroutine to start, or a TypeError (raised inside the caller's barrier)."""
        if result == _CONTINUE or result == _PAUSE:
            return int(result)
        if type(result) is COROUTINE:
            return self._start(Task(context_id, result, name, direction))
        raise TypeError(
            f"{_describe(ctx)}.{name} returned {result!r}; return Action.CONTINUE or Action.PAUSE"
        )

    # The two headers callbacks of every request: see _headers_callback below the class.
    proxy_on_request_headers: Callable[[Dispatcher, int, int, int], int]
    proxy_on_response_headers: Callable[[Dispatcher, int, int, int], int]

    def proxy_on_request_body(self, context_id: int, body_size: int, end_of_stream: int) -> int:
        """A request body chunk arrived."""
        self._enter(context_id)
        return self._http_action(
            context_id,
            self._http(context_id),
            "on_http_request_body",
            body_size,
            bool(end_of_stream),
        )

    def proxy_on_request_trailers(self, context_id: int, num_trailers: int) -> int:
        """Request trailers arrived."""
        self._enter(context_id)
        return self._http_action(
            context_id, self._http(context_id), "on_http_request_trailers", num_trailers
        )

    def proxy_on_response_body(self, context_id: int, body_size: int, end_of_stream: int) -> int:
        """A response body chunk arrived."""
        self._enter(context_id)
        return self._http_action(
            context_id,
            self._http(context_id),
            "on_http_response_body",
            body_size,
            bool(end_of_stream),
        )

    def proxy_on_response_trailers(self, context_id: int, num_trailers: int) -> int:
        """Response trailers arrived."""
        self._enter(context_id)
        return self._http_action(
            context_id, self._http(context_id), "on_http_response_trailers", num_trailers
        )

    # -- TCP streams --------------------------------------------------------------------

    def _tcp_action(self, context_id: int, name: str, *args: int | bool) -> int:
        ctx = self._tcp(context_id)
        if ctx is None:
            if context_id in self.broken:
                return self._fail_tcp(context_id)
            return _CONTINUE
        try:
            result = getattr(ctx, name)(*args)
            if result is None:
                return _CONTINUE
            if result == _CONTINUE or result == _PAUSE:
                return int(result)
            if type(result) is COROUTINE:
                return self._start(Task(context_id, result, name, _DIRECTION[name]))
            raise TypeError(
                f"{_describe(ctx)}.{name} returned {result!r}; return Action.CONTINUE or Action.PAUSE"
            )
        except _CAUGHT as exc:
            self._report(name, context_id, exc)
            return self._fail_tcp(context_id)

    def proxy_on_new_connection(self, context_id: int) -> int:
        """A TCP connection was accepted."""
        self._enter(context_id)
        return self._tcp_action(context_id, "on_new_connection")

    def proxy_on_downstream_data(self, context_id: int, data_size: int, end_of_stream: int) -> int:
        """Client bytes arrived."""
        self._enter(context_id)
        return self._tcp_action(context_id, "on_downstream_data", data_size, bool(end_of_stream))

    def proxy_on_upstream_data(self, context_id: int, data_size: int, end_of_stream: int) -> int:
        """Upstream bytes arrived."""
        self._enter(context_id)
        return self._tcp_action(context_id, "on_upstream_data", data_size, bool(end_of_stream))

    def _tcp_close(self, context_id: int, name: str, peer_type: int) -> None:
        self._enter(context_id)
        ctx = self._tcp(context_id)
        if ctx is None:
            return
        try:
            getattr(ctx, name)(PeerType(peer_type) if peer_type in (0, 1, 2) else PeerType.UNKNOWN)
        except _CAUGHT as exc:
            self._report(name, context_id, exc)

    def proxy_on_downstream_connection_close(self, context_id: int, peer_type: int) -> None:
        """The client side closed."""
        self._tcp_close(context_id, "on_downstream_close", peer_type)

    def proxy_on_upstream_connection_close(self, context_id: int, peer_type: int) -> None:
        """The upstream side closed."""
        self._tcp_close(context_id, "on_upstream_close", peer_type)

    # -- coroutines of async callbacks --------------------------------------------------

    def _start(self, task: Task) -> int:
        """First step of a callback's coroutine: its action, or PAUSE while it awaits."""
        action = self._step(task)
        return _PAUSE if action is None else action

    def _step(self, task: Task) -> int | None:
        self._note_reply()
        try:
            action = step(task)
        finally:
            self._note_reply()
            if task.context_id in self.replied:
                task.replied = True
        if action is None:
            for token in task.calls:
                self.tasks[token] = task
        return action

    def _answer(
        self, task: Task, token: int, num_headers: int, body_size: int, num_trailers: int
    ) -> None:
        """A callout a coroutine awaits answered: keep the answer; step it once all are in."""
        context_id = task.context_id
        if context_id != _state.effective_context_id:
            hc.set_effective_context(context_id)
            _state.effective_context_id = context_id
        call = task.calls.pop(token)
        try:
            call.response = HttpResponse(
                hc.get_map(MapType.HTTP_CALL_RESPONSE_HEADERS) if num_headers else [],
                (hc.get_buffer_bytes(BufferType.HTTP_CALL_RESPONSE_BODY, 0, body_size) or b"")
                if body_size
                else b"",
                hc.get_map(MapType.HTTP_CALL_RESPONSE_TRAILERS) if num_trailers else [],
            )
            if task.calls:  # a gather still waiting for others
                return
            action = self._step(task)
        except _CAUGHT as exc:
            self._drop(task)
            self._report(task.name, context_id, exc)
            self._fail_task(task)
            return
        if action is None:  # awaiting the next callout
            return
        if action == _CONTINUE and task.stream >= 0 and not task.replied:
            try:
                hc.continue_stream(task.stream)
            except _CAUGHT as exc:
                self._report(task.name, context_id, exc)

    def _fail_task(self, task: Task) -> None:
        """The failure policy for a coroutine that raised after it had paused its stream."""
        if task.stream < 0:
            return  # a root context's: logged, nothing to stop
        tcp = task.stream in (int(StreamType.DOWNSTREAM), int(StreamType.UPSTREAM))
        if tcp and not self._fail_open(task.context_id):
            self._fail_tcp(task.context_id)
            return
        if self._fail_open(task.context_id):
            try:
                hc.continue_stream(task.stream)
            except BaseException:
                pass
        else:
            self._fail_http(task.context_id)

    def _drop(self, task: Task) -> None:
        for token in [t for t, other in self.tasks.items() if other is task]:
            del self.tasks[token]

    def _cancel_tasks(self, context_id: int) -> None:
        """The context ended while coroutines waited: close them (their ``finally`` runs)."""
        for task in {id(t): t for t in self.tasks.values() if t.context_id == context_id}.values():
            self._drop(task)
            try:
                task.coro.close()
            except _CAUGHT as exc:
                self._report(task.name, context_id, exc)

    # -- callouts -----------------------------------------------------------------------

    def _owner(self, context_id: int) -> BaseContext | None:
        return self.streams.get(context_id) or self.roots.get(context_id)

    def proxy_on_http_call_response(
        self, root_context_id: int, token: int, num_headers: int, body_size: int, num_trailers: int
    ) -> None:
        """An HTTP callout answered; delivered to the context that dispatched it
        (or to the coroutine that awaits it)."""
        owner_id = self.callouts.pop(token, root_context_id)
        ctx = self._owner(owner_id)
        self._enter(root_context_id)
        if ctx is None:
            return
        if self.tasks:
            task = self.tasks.pop(token, None)
            if task is not None:
                self._answer(task, token, num_headers, body_size, num_trailers)
                return
        try:
            if owner_id != root_context_id:
                hc.set_effective_context(owner_id)
                _state.effective_context_id = owner_id
            ctx.on_http_call_response(token, num_headers, body_size, num_trailers)
        except _CAUGHT as exc:
            self._report("on_http_call_response", owner_id, exc)
            if isinstance(ctx, HttpContext):
                if self._fail_open(owner_id):
                    try:
                        hc.continue_stream(StreamType.HTTP_REQUEST)
                    except BaseException:
                        pass
                else:
                    self._fail_http(owner_id)

    def _grpc(
        self, root_context_id: int, token: int, final: bool
    ) -> tuple[BaseContext | None, bool]:
        owner_id, is_stream = self.grpc_calls.get(token, (root_context_id, False))
        if final:
            self.grpc_calls.pop(token, None)
        ctx = self._owner(owner_id)
        self._enter(root_context_id)
        if ctx is not None and owner_id != root_context_id:
            hc.set_effective_context(owner_id)
            _state.effective_context_id = owner_id
        return ctx, is_stream

    def proxy_on_grpc_receive_initial_metadata(
        self, root_context_id: int, token: int, num_elements: int
    ) -> None:
        """Initial metadata of a gRPC stream arrived."""
        try:
            ctx, _ = self._grpc(root_context_id, token, False)
            if ctx is not None:
                ctx.on_grpc_stream_initial_metadata(token, num_elements)
        except _CAUGHT as exc:
            self._report("on_grpc_stream_initial_metadata", root_context_id, exc)

    def proxy_on_grpc_receive(self, root_context_id: int, token: int, message_size: int) -> None:
        """A gRPC message arrived: a unary reply, or a stream message."""
        try:
            ctx, is_stream = self._grpc(root_context_id, token, False)
            if ctx is None:
                return
            if is_stream:
                ctx.on_grpc_stream_message(token, message_size)
            else:
                self.grpc_calls.pop(token, None)
                ctx.on_grpc_call_response(token, 0, message_size)
        except _CAUGHT as exc:
            self._report("on_grpc_receive", root_context_id, exc)

    def proxy_on_grpc_receive_trailing_metadata(
        self, root_context_id: int, token: int, num_elements: int
    ) -> None:
        """Trailing metadata of a gRPC stream arrived."""
        try:
            ctx, _ = self._grpc(root_context_id, token, False)
            if ctx is not None:
                ctx.on_grpc_stream_trailing_metadata(token, num_elements)
        except _CAUGHT as exc:
            self._report("on_grpc_stream_trailing_metadata", root_context_id, exc)

    def proxy_on_grpc_close(self, root_context_id: int, token: int, status_code: int) -> None:
        """A gRPC call or stream ended."""
        if token not in self.grpc_calls:  # a unary call already answered by proxy_on_grpc_receive
            return
        try:
            ctx, is_stream = self._grpc(root_context_id, token, True)
            if ctx is None:
                return
            if is_stream:
                ctx.on_grpc_stream_close(token, status_code)
            else:
                ctx.on_grpc_call_response(token, status_code, 0)
        except _CAUGHT as exc:
            self._report("on_grpc_close", root_context_id, exc)

    # -- lifecycle ----------------------------------------------------------------------

    def proxy_on_done(self, context_id: int) -> bool:
        """The host is finishing a context; ``False`` delays until ``done()``."""
        self._enter(context_id)
        ctx = self._owner(context_id)
        if ctx is None:
            return True
        try:
            return bool(_not_async(ctx.on_done(), "on_done"))
        except _CAUGHT as exc:
            self._report("on_done", context_id, exc)
            return True

    def proxy_on_log(self, context_id: int) -> None:
        """Access-log time for a context."""
        self._enter(context_id)
        ctx = self._owner(context_id)
        if ctx is None:
            return
        try:
            ctx.on_log()
        except _CAUGHT as exc:
            self._report("on_log", context_id, exc)

    def proxy_on_delete(self, context_id: int) -> None:
        """The context is gone: forget it."""
        # Inlined _enter (per request); it moves a reply noted by the last callback.
        if _state.vm is not self:
            self.activate()
        elif _state.replied_context:
            self._note_reply()
        _state.effective_context_id = context_id
        _state.map_epoch += 1
        ctx = self.streams.pop(context_id, None) or self.roots.pop(context_id, None)
        # Guarded: the tables are empty but for streams that failed or await something.
        if self.pending:
            self.pending.pop(context_id, None)
        if self.broken:
            self.broken.pop(context_id, None)
        if self.replied:
            self.replied.discard(context_id)
        # Guarded: scanning even an empty table is measurable at tens of thousands of streams/s.
        if self.callouts:
            for token in [t for t, owner in self.callouts.items() if owner == context_id]:
                del self.callouts[token]
        if self.grpc_calls:
            for token in [t for t, (owner, _) in self.grpc_calls.items() if owner == context_id]:
                del self.grpc_calls[token]
        if self.tasks:
            self._cancel_tasks(context_id)
        if ctx is None:
            return
        cls = type(ctx)
        plain = self._plain_delete.get(cls)
        if plain is None:  # once per class: the SDK's empty on_delete needs no call
            plain = self._plain_delete[cls] = not _overrides(cls, "on_delete")
        if plain:
            return
        try:
            ctx.on_delete()
        except _CAUGHT as exc:
            self._report("on_delete", context_id, exc)


#: The dispatcher of this interpreter. In a compiled module there is exactly one
#: VM per interpreter and the glue calls this object's methods.
vm = Dispatcher()


def _headers_callback(name: str, doc: str) -> Callable[[Dispatcher, int, int, int], int]:
    """``proxy_on_request_headers`` / ``proxy_on_response_headers``: the steps of the other
    stream callbacks (``_enter``, ``_http``, ``_http_action``) written out in one frame, as
    these two run for every request. (Compiled, the glue runs them in C for a made
    context: ``pw_http_fast`` in ``glue.py``, which keeps to these steps.)"""

    def callback(self: Dispatcher, context_id: int, num_headers: int, end_of_stream: int) -> int:
        if _state.vm is not self:
            self.activate()
        elif _state.replied_context:
            self._note_reply()
        _state.effective_context_id = context_id
        _state.map_epoch += 1
        ctx = self.streams.get(context_id)
        if ctx is None:
            ctx = self._make(context_id, http=True)
        if not isinstance(ctx, HttpContext):
            return self._unmade(context_id)
        try:
            result = getattr(ctx, name)(num_headers, bool(end_of_stream))
        except _CAUGHT as exc:
            return self._callback_failed(name, context_id, exc)
        if result is None or result is _ACT_CONTINUE:
            return _CONTINUE
        if result is _ACT_PAUSE:
            return _PAUSE
        return self._callback_result(ctx, context_id, name, result)

    callback.__name__ = callback.__qualname__ = "proxy_" + name.replace("http_", "")
    callback.__doc__ = doc
    return callback


Dispatcher.proxy_on_request_headers = _headers_callback(
    "on_http_request_headers", "Request headers arrived."
)
Dispatcher.proxy_on_response_headers = _headers_callback(
    "on_http_response_headers", "Response headers arrived."
)
