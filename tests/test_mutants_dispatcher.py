"""The dispatcher's corners that mutation testing found unchecked (scripts/mutation.py).

Each test drives the real dispatcher through the null runtime and checks what
a filter or the host can see: which callback gets an answer, what the error
log names, whether a stream resumes, closes or gets a 500, and the
dispatcher's own tables once a call is over (a token left there is a leak
that misroutes a later answer). docs/testing.md lists the mutants these kill
and the ones left as equivalent.
"""

from __future__ import annotations

from typing import Any

import pytest
from proxywasm import (
    Action,
    HttpContext,
    LogLevel,
    MapType,
    PeerType,
    RootContext,
    StreamContext,
    hostcalls,
    log_info,
)
from proxywasm.dispatcher import Dispatcher, _overrides
from proxywasm.testing import HostEmulator

REQUEST = [(":method", "GET"), (":path", "/"), (":authority", "example.com")]


def _started(root: Any, **kwargs: Any) -> HostEmulator:
    host = HostEmulator(root, **kwargs)
    assert host.start_vm() and host.start_plugin()
    return host


def _errors(host: HostEmulator) -> list[str]:
    return host.get_logs(LogLevel.ERROR)


def _only_error(host: HostEmulator, where: str, context_id: int, text: str) -> None:
    """Exactly one error entry: the barrier's, naming the callback, the context and the error."""
    (error,) = _errors(host)
    assert error.startswith(f"python exception in {where} (context {context_id}):\n"), error
    assert text in error


# -- which classes override a callback -----------------------------------------------------------


class _LogsOnly(HttpContext):
    def on_log(self) -> None:
        log_info("logged")


class _InheritsLog(_LogsOnly):
    pass


def test_overrides_finds_a_method_of_the_filter_class_or_its_bases() -> None:
    assert _overrides(_LogsOnly, "on_log")
    assert _overrides(_InheritsLog, "on_log")


def test_the_sdk_defaults_are_not_overrides() -> None:
    assert not _overrides(_LogsOnly, "on_done")  # only HttpContext/BaseContext define it
    assert not _overrides(HttpContext, "on_log")
    assert not _overrides(object, "on_log")  # nothing in the MRO defines it


def test_glue_skips_keeps_what_it_answers() -> None:
    vm = Dispatcher()
    skips = vm.glue_skips()
    assert isinstance(skips, tuple) and vm.skipped == set(skips)


def test_a_class_made_after_start_up_turns_its_skipped_callbacks_back_on() -> None:
    host = HostEmulator.for_http_context(_LogsOnly)
    unskipped: list[str] = []
    # What the compiled glue offers; natively nothing is skipped, so stand in for it.
    host.pw_unskip = unskipped.append  # type: ignore[attr-defined]
    vm = host._vm
    vm.skipped = {"proxy_on_log", "proxy_on_done"}
    ctx = host.initialize_http_context()
    host.call_on_request_headers(ctx, REQUEST, end_of_stream=True)
    assert unskipped == ["proxy_on_log"]
    assert vm.skipped == {"proxy_on_done"}
    assert _LogsOnly in vm._checked
    # Checked once per class: a second stream of the same class unskips nothing more.
    host.call_on_request_headers(host.initialize_http_context(), REQUEST, end_of_stream=True)
    assert unskipped == ["proxy_on_log"]


# -- what the barrier logs, callback by callback ------------------------------------------------


class Raising(RootContext):
    """A root whose every non-stream callback raises, naming itself."""

    def on_configure(self, plugin_configuration_size: int) -> bool:
        self.queue = self.register_shared_queue("jobs")
        return True

    def on_tick(self) -> None:
        raise ValueError("tick-boom")

    def on_queue_ready(self, queue_id: int) -> None:
        raise ValueError("queue-boom")

    def on_foreign_function(self, function_id: int, arguments_size: int) -> None:
        raise ValueError("foreign-boom")

    def on_http_call_response(
        self, token_id: int, num_headers: int, body_size: int, num_trailers: int
    ) -> None:
        raise ValueError("callout-boom")

    def on_grpc_call_response(self, token_id: int, status_code: int, response_size: int) -> None:
        raise ValueError("grpc-response-boom")

    def on_grpc_stream_initial_metadata(self, token_id: int, num_elements: int) -> None:
        raise ValueError("grpc-initial-boom")

    def on_grpc_stream_message(self, token_id: int, message_size: int) -> None:
        raise ValueError("grpc-message-boom")

    def on_grpc_stream_trailing_metadata(self, token_id: int, num_elements: int) -> None:
        raise ValueError("grpc-trailing-boom")

    def on_grpc_stream_close(self, token_id: int, status_code: int) -> None:
        raise ValueError("grpc-close-boom")


def _raising() -> tuple[HostEmulator, Raising]:
    roots: list[Raising] = []

    def factory(context_id: int) -> Raising:
        roots.append(Raising(context_id))
        return roots[-1]

    return _started(factory), roots[0]


def test_an_error_in_on_tick_is_logged_with_its_root() -> None:
    host, root = _raising()
    host.tick(host.root_context_id)
    _only_error(host, "on_tick", root.context_id, "ValueError: tick-boom")


def test_an_error_in_on_queue_ready_is_logged_with_its_root() -> None:
    host, root = _raising()
    host.enqueue_shared_queue("jobs", b"x")
    _only_error(host, "on_queue_ready", root.context_id, "ValueError: queue-boom")


def test_an_error_in_on_foreign_function_is_logged_with_its_root() -> None:
    host, root = _raising()
    host.call_on_foreign_function(7, b"args")
    _only_error(host, "on_foreign_function", root.context_id, "ValueError: foreign-boom")


def test_an_error_in_on_http_call_response_is_logged_with_its_root() -> None:
    host, root = _raising()
    with host.in_context():
        token = root.dispatch_http_call("auth", REQUEST, None, None, 100)
    host.call_on_http_call_response(token, [(":status", "200")], b"")
    _only_error(host, "on_http_call_response", root.context_id, "ValueError: callout-boom")


def test_an_error_in_a_grpc_unary_answer_is_logged_with_its_root() -> None:
    host, root = _raising()
    with host.in_context():
        token = root.dispatch_grpc_call("grpc", "pkg.Svc", "Get", None, b"\x01")
    host.call_on_grpc_receive(token, b"\x02")
    _only_error(host, "on_grpc_receive", root.context_id, "ValueError: grpc-response-boom")


@pytest.mark.parametrize(
    ("event", "where", "text"),
    [
        ("initial", "on_grpc_stream_initial_metadata", "grpc-initial-boom"),
        ("message", "on_grpc_receive", "grpc-message-boom"),
        ("trailing", "on_grpc_stream_trailing_metadata", "grpc-trailing-boom"),
        ("close", "on_grpc_close", "grpc-close-boom"),
    ],
)
def test_an_error_in_a_grpc_stream_callback_is_logged_with_its_root(
    event: str, where: str, text: str
) -> None:
    host, root = _raising()
    with host.in_context():
        token = root.open_grpc_stream("grpc", "pkg.Svc", "Watch")
    if event == "initial":
        host.call_on_grpc_receive_initial_metadata(token, [("k", "v")])
    elif event == "message":
        host.call_on_grpc_receive(token, b"\x03")
    elif event == "trailing":
        host.call_on_grpc_receive_trailing_metadata(token, [("k", "v")])
    else:
        host.call_on_grpc_close(token, 0)
    _only_error(host, where, root.context_id, f"ValueError: {text}")


# -- gRPC: who gets the answer, and what the dispatcher forgets ---------------------------------


class GrpcRoot(RootContext):
    def __init__(self, context_id: int) -> None:
        super().__init__(context_id)
        self.events: list[tuple[object, ...]] = []

    def on_grpc_call_response(self, token_id: int, status_code: int, response_size: int) -> None:
        self.events.append(("response", token_id, status_code, response_size))

    def on_grpc_stream_initial_metadata(self, token_id: int, num_elements: int) -> None:
        self.events.append(("initial", token_id, num_elements))

    def on_grpc_stream_message(self, token_id: int, message_size: int) -> None:
        self.events.append(("message", token_id, message_size))

    def on_grpc_stream_trailing_metadata(self, token_id: int, num_elements: int) -> None:
        self.events.append(("trailing", token_id, num_elements))

    def on_grpc_stream_close(self, token_id: int, status_code: int) -> None:
        self.events.append(("close", token_id, status_code))


def _grpc_root() -> tuple[HostEmulator, GrpcRoot]:
    roots: list[GrpcRoot] = []

    def factory(context_id: int) -> GrpcRoot:
        roots.append(GrpcRoot(context_id))
        return roots[-1]

    return _started(factory), roots[0]


def test_a_grpc_call_made_with_hostcalls_directly_answers_the_root_as_unary() -> None:
    # No context bookkeeping for this token: the root gets it, as a unary answer.
    host, root = _grpc_root()
    with host.in_context():
        token = hostcalls.grpc_call("grpc", "pkg.Svc", "Get", None, b"\x01", 100)
    host.call_on_grpc_receive(token, b"\x02\x03")
    assert root.events == [("response", token, 0, 2)]
    assert _errors(host) == []


def test_grpc_stream_events_for_an_unregistered_token_reach_the_root() -> None:
    host, root = _grpc_root()
    with host.in_context():
        token = hostcalls.grpc_stream("grpc", "pkg.Svc", "Watch", None)
    host.call_on_grpc_receive_initial_metadata(token, [("a", "1"), ("b", "2")])
    host.call_on_grpc_receive_trailing_metadata(token, [("c", "3")])
    assert root.events == [("initial", token, 2), ("trailing", token, 1)]
    assert _errors(host) == []


def test_a_unary_answer_and_a_closed_stream_leave_no_token_behind() -> None:
    host, root = _grpc_root()
    with host.in_context():
        unary = root.dispatch_grpc_call("grpc", "pkg.Svc", "Get", None, b"\x01")
        stream = root.open_grpc_stream("grpc", "pkg.Svc", "Watch")
    assert set(host._vm.grpc_calls) == {unary, stream}
    host.call_on_grpc_receive(unary, b"\x05")
    assert set(host._vm.grpc_calls) == {stream}
    host.call_on_grpc_receive(stream, b"\x06\x07")
    assert set(host._vm.grpc_calls) == {stream}  # a stream message does not end the stream
    host.call_on_grpc_close(stream, 4)
    assert host._vm.grpc_calls == {}
    assert root.events == [
        ("response", unary, 0, 1),
        ("message", stream, 2),
        ("close", stream, 4),
    ]


class GrpcFilter(HttpContext):
    """Pauses the request for a gRPC check; the answer resumes it."""

    def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
        self.token = self.open_grpc_stream("grpc", "pkg.Svc", "Check")
        return Action.PAUSE

    def on_grpc_stream_initial_metadata(self, token_id: int, num_elements: int) -> None:
        self.request.headers["x-initial"] = str(num_elements)

    def on_grpc_stream_trailing_metadata(self, token_id: int, num_elements: int) -> None:
        self.request.headers["x-trailing"] = str(num_elements)

    def on_grpc_stream_close(self, token_id: int, status_code: int) -> None:
        # Straight to the host, no view: the dispatcher must have made this stream current.
        path = hostcalls.get_map_value(MapType.HTTP_REQUEST_HEADERS, ":path")
        self.request.headers["x-grpc-status"] = f"{status_code} {path}"
        self.resume_http_request()


def test_grpc_stream_events_reach_the_http_context_that_opened_it() -> None:
    host = HostEmulator.for_http_context(GrpcFilter)
    ctx = host.initialize_http_context()
    assert host.call_on_request_headers(ctx, REQUEST, end_of_stream=True) == Action.PAUSE
    (call,) = host.get_grpc_call_attributes()
    host.call_on_grpc_receive_initial_metadata(call.token, [("a", "1")])
    host.call_on_grpc_receive_trailing_metadata(call.token, [("b", "2"), ("c", "3")])
    host.call_on_grpc_close(call.token, 0)
    assert _errors(host) == []
    headers = host.get_current_request_headers(ctx)
    assert ("x-initial", "1") in headers and ("x-trailing", "2") in headers
    assert ("x-grpc-status", "0 /") in headers
    assert host.get_current_http_stream_action(ctx) == Action.CONTINUE


# -- HTTP callouts that are not awaited -----------------------------------------------------------


class CalloutRoot(RootContext):
    def __init__(self, context_id: int) -> None:
        super().__init__(context_id)
        self.answers: list[tuple[int, int, int, int]] = []

    def on_http_call_response(
        self, token_id: int, num_headers: int, body_size: int, num_trailers: int
    ) -> None:
        self.answers.append((token_id, num_headers, body_size, num_trailers))


def test_a_callout_made_with_hostcalls_directly_answers_the_root() -> None:
    roots: list[CalloutRoot] = []

    def factory(context_id: int) -> CalloutRoot:
        roots.append(CalloutRoot(context_id))
        return roots[-1]

    host = _started(factory)
    with host.in_context():
        token = hostcalls.http_call("auth", REQUEST, None, None, 100)
    host.call_on_http_call_response(token, [(":status", "200")], b"abc", [("t", "1")])
    assert roots[0].answers == [(token, 1, 3, 1)]
    assert _errors(host) == []


# -- TCP -------------------------------------------------------------------------------------------


class Tcp(StreamContext):
    events: list[object]

    def __init__(self, context_id: int, root: RootContext) -> None:
        super().__init__(context_id, root)
        self.events = root.events  # type: ignore[attr-defined]

    def on_downstream_data(self, data_size: int, end_of_stream: bool) -> Any:
        behaviour = self.root.behaviour  # type: ignore[attr-defined]
        if behaviour == "raise":
            raise ValueError("tcp-boom")
        if behaviour == "bad":
            return "yes"
        return Action.CONTINUE

    def on_upstream_data(self, data_size: int, end_of_stream: bool) -> Action:
        self.events.append(("up", data_size, end_of_stream))
        return Action.CONTINUE

    def on_downstream_close(self, peer_type: PeerType) -> None:
        self.events.append(("down_close", peer_type))
        if self.root.behaviour == "raise":  # type: ignore[attr-defined]
            raise ValueError("close-boom")


class TcpRoot(RootContext):
    fail_open = False
    behaviour = "ok"
    broken = False

    def __init__(self, context_id: int) -> None:
        super().__init__(context_id)
        self.events: list[object] = []

    def create_stream_context(self, context_id: int) -> StreamContext:
        if self.broken:
            raise RuntimeError("no stream for you")
        return Tcp(context_id, self)


def _tcp(**attrs: object) -> tuple[HostEmulator, TcpRoot, int]:
    root_cls = type("Root", (TcpRoot,), dict(attrs))
    roots: list[TcpRoot] = []

    def factory(context_id: int) -> TcpRoot:
        roots.append(root_cls(context_id))
        return roots[-1]

    host = _started(factory)
    ctx, _ = host.initialize_connection()
    return host, roots[0], ctx


def test_a_tcp_error_fails_closed_by_default() -> None:
    host, _, ctx = _tcp(behaviour="raise")
    assert host.call_on_downstream_data(ctx, b"x") == Action.PAUSE
    assert host.get_connection(ctx).downstream_closed
    _only_error(host, "on_downstream_data", ctx, "ValueError: tcp-boom")


def test_a_tcp_error_under_fail_open_lets_the_bytes_through() -> None:
    host, _, ctx = _tcp(behaviour="raise", fail_open=True)
    assert host.call_on_downstream_data(ctx, b"x") == Action.CONTINUE
    conn = host.get_connection(ctx)
    assert not conn.downstream_closed and bytes(conn.forwarded_downstream) == b"x"


def test_a_tcp_stream_that_could_not_be_made_follows_fail_open() -> None:
    host, _, ctx = _tcp(broken=True, fail_open=True)
    assert host.call_on_downstream_data(ctx, b"x") == Action.CONTINUE
    assert not host.get_connection(ctx).downstream_closed
    host2, _, ctx2 = _tcp(broken=True)
    assert host2.call_on_downstream_data(ctx2, b"x") == Action.PAUSE
    assert host2.get_connection(ctx2).downstream_closed


def test_a_tcp_callback_returning_something_else_is_an_error() -> None:
    host, _, ctx = _tcp(behaviour="bad")
    assert host.call_on_downstream_data(ctx, b"x") == Action.PAUSE
    assert host.get_connection(ctx).downstream_closed
    _only_error(
        host,
        "on_downstream_data",
        ctx,
        "TypeError: Tcp.on_downstream_data returned 'yes'; return Action.CONTINUE or Action.PAUSE",
    )


def test_upstream_data_passes_its_end_of_stream() -> None:
    host, root, ctx = _tcp()
    host.call_on_upstream_data(ctx, b"ab", end_of_stream=True)
    host.call_on_upstream_data(ctx, b"c", end_of_stream=False)
    assert root.events == [("up", 2, True), ("up", 1, False)]


def test_a_close_names_its_peer_and_an_unknown_peer_is_unknown() -> None:
    host, root, ctx = _tcp()
    host.call_on_downstream_close(ctx, PeerType.LOCAL)
    host._invoke("proxy_on_downstream_connection_close", ctx, 9)  # not a peer type the ABI has
    assert root.events == [("down_close", PeerType.LOCAL), ("down_close", PeerType.UNKNOWN)]
    assert _errors(host) == []


def test_an_error_in_a_close_callback_is_logged_with_its_context() -> None:
    host, _, ctx = _tcp(behaviour="raise")
    host.call_on_downstream_close(ctx, PeerType.REMOTE)
    _only_error(host, "on_downstream_close", ctx, "ValueError: close-boom")


def test_a_tcp_callback_for_an_http_context_is_ignored() -> None:
    class Root(RootContext):
        def create_http_context(self, context_id: int) -> HttpContext:
            return HttpContext(context_id, self)

    host = _started(Root)
    ctx = host.initialize_http_context()
    host.call_on_request_headers(ctx, REQUEST, end_of_stream=False)
    assert host._invoke("proxy_on_downstream_data", ctx, 3, 0) == int(Action.CONTINUE)
    assert _errors(host) == []


class AsyncTcp(StreamContext):
    async def on_downstream_data(self, data_size: int, end_of_stream: bool) -> Action:
        answer = await self.http_call("auth", path="/tcp")
        if answer.status != 200:
            raise PermissionError(f"denied {answer.status}")
        return Action.CONTINUE


class AsyncUpstream(StreamContext):
    async def on_upstream_data(self, data_size: int, end_of_stream: bool) -> Action:
        await self.http_call("auth", path="/up")
        return Action.CONTINUE


def test_an_async_upstream_callback_cannot_resume_and_says_so() -> None:
    # Envoy cannot resume the upstream direction (UNIMPLEMENTED): the failed resume is logged.
    class Root(RootContext):
        def create_stream_context(self, context_id: int) -> StreamContext:
            return AsyncUpstream(context_id, self)

    host = _started(Root)
    ctx, _ = host.initialize_connection()
    assert host.call_on_upstream_data(ctx, b"up") == Action.PAUSE
    (call,) = host.get_http_call_attributes()
    host.call_on_http_call_response(call.token, [(":status", "200")], b"")
    _only_error(host, "on_upstream_data", ctx, "HostCallError")


def _async_tcp(fail_open: bool = False) -> tuple[HostEmulator, int]:
    class Root(RootContext):
        def create_stream_context(self, context_id: int) -> StreamContext:
            return AsyncTcp(context_id, self)

    Root.fail_open = fail_open
    host = _started(Root)
    ctx, _ = host.initialize_connection()
    return host, ctx


def test_an_async_tcp_callback_pauses_until_its_callout_answers() -> None:
    host, ctx = _async_tcp()
    assert host.call_on_downstream_data(ctx, b"hello") == Action.PAUSE
    assert bytes(host.get_connection(ctx).forwarded_downstream) == b""
    (call,) = host.get_http_call_attributes()
    host.call_on_http_call_response(call.token, [(":status", "200")], b"")
    assert _errors(host) == []
    conn = host.get_connection(ctx)
    assert bytes(conn.forwarded_downstream) == b"hello" and not conn.downstream_closed


def test_an_async_tcp_callback_that_raises_after_its_callout_closes_the_connection() -> None:
    host, ctx = _async_tcp()
    host.call_on_downstream_data(ctx, b"hello")
    (call,) = host.get_http_call_attributes()
    host.call_on_http_call_response(call.token, [(":status", "403")], b"")
    _only_error(host, "on_downstream_data", ctx, "PermissionError: denied 403")
    assert host.get_connection(ctx).downstream_closed


def test_an_async_tcp_callback_that_raises_under_fail_open_resumes_the_connection() -> None:
    host, ctx = _async_tcp(fail_open=True)
    host.call_on_downstream_data(ctx, b"hello")
    (call,) = host.get_http_call_attributes()
    host.call_on_http_call_response(call.token, [(":status", "403")], b"")
    assert len(_errors(host)) == 1
    conn = host.get_connection(ctx)
    # Fail open: as if the callback had returned CONTINUE, the held data goes on.
    assert not conn.downstream_closed and bytes(conn.forwarded_downstream) == b"hello"


# -- coroutines of root callbacks -----------------------------------------------------------------


class AsyncRoot(RootContext):
    """Its tick and queue callbacks await a callout, then log what they got."""

    def on_configure(self, plugin_configuration_size: int) -> bool:
        self.queue = self.register_shared_queue("jobs")
        return True

    async def on_tick(self) -> None:
        answer = await self.http_call("auth", path="/tick")
        log_info(f"tick {answer.status} {answer.body!r} {dict(answer.trailers)}")
        if answer.status != 200:
            raise ValueError(f"tick got {answer.status}")

    async def on_queue_ready(self, queue_id: int) -> None:
        item = self.dequeue_shared_queue(queue_id)
        answer = await self.http_call("auth", path="/queue")
        log_info(f"queue {item!r} {answer.status}")
        if answer.status != 200:
            raise ValueError(f"queue got {answer.status}")


def _async_root() -> tuple[HostEmulator, AsyncRoot]:
    roots: list[AsyncRoot] = []

    def factory(context_id: int) -> AsyncRoot:
        roots.append(AsyncRoot(context_id))
        return roots[-1]

    return _started(factory), roots[0]


def test_an_async_on_tick_gets_headers_body_and_trailers() -> None:
    host, _ = _async_root()
    host.tick(host.root_context_id)
    (call,) = host.get_http_call_attributes()
    host.call_on_http_call_response(call.token, [(":status", "200")], b"ok", [("t", "1")])
    assert host.get_logs(LogLevel.INFO) == ["tick 200 b'ok' {'t': '1'}"]
    assert _errors(host) == []  # a root's coroutine resumes no stream when it ends
    assert host._vm.tasks == {}


def test_an_async_on_tick_sees_an_empty_body_and_no_trailers_as_empty() -> None:
    host, _ = _async_root()
    host.tick(host.root_context_id)
    (call,) = host.get_http_call_attributes()
    host.call_on_http_call_response(call.token, [(":status", "200")], b"")
    assert host.get_logs(LogLevel.INFO) == ["tick 200 b'' {}"]


def test_an_async_on_tick_that_raises_after_its_callout_is_logged_as_on_tick() -> None:
    host, root = _async_root()
    host.tick(host.root_context_id)
    (call,) = host.get_http_call_attributes()
    host.call_on_http_call_response(call.token, [(":status", "500")], b"")
    _only_error(host, "on_tick", root.context_id, "ValueError: tick got 500")
    assert host._vm.tasks == {}


def test_an_async_on_queue_ready_awaits_its_callout() -> None:
    host, root = _async_root()
    host.enqueue_shared_queue("jobs", b"job-1")
    (call,) = host.get_http_call_attributes()
    host.call_on_http_call_response(call.token, [(":status", "200")], b"")
    assert host.get_logs(LogLevel.INFO) == ["queue b'job-1' 200"]
    assert _errors(host) == []
    host.enqueue_shared_queue("jobs", b"job-2")
    (call,) = host.get_http_call_attributes()
    host.call_on_http_call_response(call.token, [(":status", "503")], b"")
    _only_error(host, "on_queue_ready", root.context_id, "ValueError: queue got 503")


# -- coroutines of HTTP streams -------------------------------------------------------------------


class AsyncFilter(HttpContext):
    """Awaits a callout; the answer's status says what to do next."""

    closed: list[int]

    async def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
        try:
            answer = await self.http_call("auth", path="/check")
        finally:
            self.closed.append(self.context_id)
        if answer.status == 403:
            self.send_http_response(403, body=b"denied")
            return Action.CONTINUE  # the reply stands: the stream must not resume
        if answer.status == 202:
            return Action.PAUSE  # stays paused: the answer is not the end of the wait
        if answer.status != 200:
            raise ValueError(f"auth said {answer.status}")
        return Action.CONTINUE


def _async_http(fail_open: bool = False) -> tuple[HostEmulator, list[int]]:
    closed: list[int] = []

    class Filter(AsyncFilter):
        pass

    Filter.closed = closed

    class Root(RootContext):
        def create_http_context(self, context_id: int) -> HttpContext:
            return Filter(context_id, self)

    Root.fail_open = fail_open
    return _started(Root), closed


def _pause(host: HostEmulator) -> tuple[int, int]:
    ctx = host.initialize_http_context()
    assert host.call_on_request_headers(ctx, REQUEST, end_of_stream=True) == Action.PAUSE
    token = max(c.token for c in host.get_http_call_attributes())
    return ctx, token


def test_a_coroutine_that_replies_does_not_resume_its_stream() -> None:
    host, _ = _async_http()
    ctx, token = _pause(host)
    host.call_on_http_call_response(token, [(":status", "403")], b"")
    reply = host.get_sent_local_response(ctx)
    assert reply is not None and reply.status_code == 403 and reply.body == b"denied"
    assert host.get_http_stream(ctx).request_action == Action.PAUSE
    assert _errors(host) == []


def test_a_coroutine_that_ends_paused_leaves_its_stream_paused() -> None:
    host, _ = _async_http()
    ctx, token = _pause(host)
    host.call_on_http_call_response(token, [(":status", "202")], b"")
    assert host.get_current_http_stream_action(ctx) == Action.PAUSE
    assert host.get_sent_local_response(ctx) is None


def test_a_coroutine_that_raises_under_fail_open_resumes_its_stream() -> None:
    host, _ = _async_http(fail_open=True)
    ctx, token = _pause(host)
    host.call_on_http_call_response(token, [(":status", "500")], b"")
    _only_error(host, "on_http_request_headers", ctx, "ValueError: auth said 500")
    assert host.get_sent_local_response(ctx) is None
    assert host.get_current_http_stream_action(ctx) == Action.CONTINUE


def test_a_stream_that_ends_while_waiting_cancels_only_its_own_coroutine() -> None:
    host, closed = _async_http()
    first, first_token = _pause(host)
    second, second_token = _pause(host)
    host.complete_http_context(first)
    assert closed == [first]  # its coroutine was closed: the finally ran
    assert set(host._vm.tasks) == {second_token}
    host.call_on_http_call_response(second_token, [(":status", "200")], b"")
    assert closed == [first, second]
    assert host.get_current_http_stream_action(second) == Action.CONTINUE
    assert host._vm.tasks == {}
    assert first_token not in host._vm.callouts
    assert _errors(host) == []


def test_a_plain_callout_answered_while_a_coroutine_waits_reaches_its_callback() -> None:
    roots: list[CalloutRoot] = []

    class Root(CalloutRoot):
        def create_http_context(self, context_id: int) -> HttpContext:
            return AsyncFilter(context_id, self)

    AsyncFilter.closed = []

    def factory(context_id: int) -> CalloutRoot:
        roots.append(Root(context_id))
        return roots[-1]

    host = _started(factory)
    _ctx, awaited = _pause(host)
    with host.in_context():
        plain = roots[0].dispatch_http_call("other", REQUEST, None, None, 100)
    host.call_on_http_call_response(plain, [(":status", "200")], b"xy")
    assert roots[0].answers == [(plain, 1, 2, 0)]
    assert set(host._vm.tasks) == {awaited}  # still waiting
    assert _errors(host) == []


class BadFinally(HttpContext):
    async def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
        try:
            await self.http_call("auth", path="/")
        finally:
            raise RuntimeError("finally-boom")  # a filter may do this
        return Action.CONTINUE


def test_a_coroutine_whose_finally_raises_on_cancel_is_logged() -> None:
    host = HostEmulator.for_http_context(BadFinally)
    ctx, _ = _pause(host)
    host.complete_http_context(ctx)
    _only_error(host, "on_http_request_headers", ctx, "RuntimeError: finally-boom")
    assert host._vm.tasks == {}


def test_a_root_with_two_coroutines_waiting_cancels_both_when_it_goes() -> None:
    finished: list[str] = []

    class Root(RootContext):
        async def on_tick(self) -> None:
            try:
                await self.http_call("auth", path="/")
            finally:
                finished.append("tick")

    host = _started(Root)
    host.tick(host.root_context_id)
    host.tick(host.root_context_id)
    assert len(host.get_http_call_attributes()) == 2
    host.shutdown()
    assert finished == ["tick", "tick"]
    assert host._vm.tasks == {}


# -- the start of a VM and of a plugin, and the end of a context ---------------------------------


def _failing_root(**methods: Any) -> tuple[HostEmulator, list[RootContext]]:
    roots: list[RootContext] = []
    cls = type("Root", (RootContext,), dict(methods))

    def factory(context_id: int) -> RootContext:
        roots.append(cls(context_id))
        return roots[-1]

    return HostEmulator(factory), roots


def _raise(exc: BaseException) -> Any:
    def method(self: Any, *args: Any) -> Any:
        raise exc

    return method


def test_an_error_in_on_vm_start_is_logged_and_refuses_the_vm() -> None:
    host, roots = _failing_root(on_vm_start=_raise(ValueError("vm-boom")))
    assert host.start_vm() is False
    _only_error(host, "on_vm_start", roots[0].context_id, "ValueError: vm-boom")


def test_a_config_error_in_on_vm_start_is_one_line_and_refuses_the_vm() -> None:
    from proxywasm import ConfigError

    host, _ = _failing_root(on_vm_start=_raise(ConfigError("no such mode")))
    assert host.start_vm() is False
    assert _errors(host) == ["on_vm_start rejected the configuration: no such mode"]


def test_an_async_on_vm_start_is_refused_by_name() -> None:
    async def on_vm_start(self: Any, vm_configuration_size: int) -> bool:
        return True

    host, roots = _failing_root(on_vm_start=on_vm_start)
    assert host.start_vm() is False
    _only_error(host, "on_vm_start", roots[0].context_id, "on_vm_start cannot be async def")


def test_an_error_in_on_configure_is_logged_with_its_root() -> None:
    host, roots = _failing_root(on_configure=_raise(ValueError("conf-boom")))
    assert host.start_vm()
    assert host.start_plugin() is False
    _only_error(host, "on_configure", roots[0].context_id, "ValueError: conf-boom")


def test_a_root_that_failed_to_start_answers_false_to_vm_start_and_configure() -> None:
    def factory(context_id: int) -> RootContext:
        raise RuntimeError("no root")

    host = HostEmulator(factory)
    assert host.start_vm() is False
    assert host.start_plugin() is False
    _only_error(host, "root context creation", host.root_context_id, "RuntimeError: no root")


def test_without_any_root_registered_the_error_says_what_to_call() -> None:
    with pytest.raises(LookupError) as info:
        Dispatcher({})._factory()
    assert str(info.value) == (
        "no root context registered: call proxywasm.set_root_context(YourRoot) "
        "at the end of the filter module"
    )


@pytest.mark.parametrize("root_id", ["zzz", ""])
def test_a_root_id_nobody_registered_is_named_with_the_registered_ones(root_id: str) -> None:
    host = HostEmulator(
        root_id=root_id, _callbacks=Dispatcher({"a": RootContext, "b": RootContext})
    )
    assert host.start_vm() is False
    _only_error(
        host,
        "root context creation",
        host.root_context_id,
        f"LookupError: no root context registered for root_id {root_id!r} (registered: ['a', 'b'])",
    )


def test_a_root_id_picks_its_registration_and_others_fall_back_to_none() -> None:
    class A(RootContext):
        pass

    class Other(RootContext):
        pass

    for root_id, expected in (("a", A), ("b", Other)):
        vm = Dispatcher({"a": A, None: Other})
        host = HostEmulator(root_id=root_id, _callbacks=vm)
        assert host.start_vm()
        assert type(vm.roots[host.root_context_id]) is expected


def test_a_dispatcher_applies_the_failure_policy_unless_told_to_reraise() -> None:
    vm = Dispatcher({None: Raising})
    host = HostEmulator(_callbacks=vm)
    assert host.start_vm() and host.start_plugin()
    host.tick(host.root_context_id)  # raises inside; logged, not raised
    assert len(_errors(host)) == 1


def test_a_root_class_that_overrides_a_skipped_callback_turns_it_back_on() -> None:
    class LoggingRoot(RootContext):
        def on_log(self) -> None:
            pass

    host = HostEmulator(LoggingRoot)
    host._vm.skipped = {"proxy_on_log", "proxy_on_request_body"}
    assert host.start_vm()
    assert host._vm.skipped == {"proxy_on_request_body"}
    assert LoggingRoot in host._vm._checked


class Lifecycle(HttpContext):
    behaviour = ""

    def on_http_request_body(self, body_size: int, end_of_stream: bool) -> Action:
        if self.behaviour == "raise":
            raise ValueError("body-boom")
        return Action.CONTINUE

    def on_http_response_headers(self, num_headers: int, end_of_stream: bool) -> Action:
        log_info(f"response headers {num_headers}")
        return Action.CONTINUE

    def on_done(self) -> Any:
        if self.behaviour == "raise":
            raise ValueError("done-boom")
        return self.behaviour != "later"

    def on_delete(self) -> None:
        if self.behaviour == "raise":
            raise ValueError("delete-boom")


def _lifecycle(behaviour: str) -> tuple[HostEmulator, int]:
    cls = type("Filter", (Lifecycle,), {"behaviour": behaviour})
    host = HostEmulator.for_http_context(cls)
    ctx = host.initialize_http_context()
    host.call_on_request_headers(ctx, REQUEST, end_of_stream=False)
    return host, ctx


def test_an_error_in_an_http_callback_is_logged_with_its_name_and_context() -> None:
    host, ctx = _lifecycle("raise")
    host.call_on_request_body(ctx, b"x", end_of_stream=True)
    _only_error(host, "on_http_request_body", ctx, "ValueError: body-boom")


def test_response_headers_get_their_count() -> None:
    host, ctx = _lifecycle("")
    host.call_on_response_headers(ctx, [(":status", "200"), ("a", "1")], end_of_stream=True)
    assert host.get_logs(LogLevel.INFO) == ["response headers 2"]


def test_errors_in_on_done_and_on_delete_are_logged_and_the_context_still_ends() -> None:
    host, ctx = _lifecycle("raise")
    host.clear_logs()
    assert host._invoke("proxy_on_done", ctx) is True
    host._invoke("proxy_on_delete", ctx)
    errors = _errors(host)
    assert len(errors) == 2
    assert errors[0].startswith(f"python exception in on_done (context {ctx}):\n")
    assert "ValueError: done-boom" in errors[0]
    assert errors[1].startswith(f"python exception in on_delete (context {ctx}):\n")
    assert "ValueError: delete-boom" in errors[1]
    assert ctx not in host._vm.streams


def test_on_done_answers_what_the_filter_said_and_true_for_an_unknown_context() -> None:
    host, ctx = _lifecycle("later")
    assert host._invoke("proxy_on_done", ctx) is False
    assert host._invoke("proxy_on_done", 9999) is True


def test_an_async_on_done_is_refused_by_name() -> None:
    class Filter(HttpContext):
        async def on_done(self) -> bool:  # type: ignore[override]
            return False

    host = HostEmulator.for_http_context(Filter)
    ctx = host.initialize_http_context()
    host.call_on_request_headers(ctx, REQUEST, end_of_stream=True)
    assert host._invoke("proxy_on_done", ctx) is True
    _only_error(host, "on_done", ctx, "on_done cannot be async def")


def test_a_stream_whose_root_failed_says_so() -> None:
    class Root(RootContext):
        def create_http_context(self, context_id: int) -> HttpContext:
            return HttpContext(context_id, self)

    vm = Dispatcher({None: Root})
    host = HostEmulator(_callbacks=vm)
    assert host.start_vm()
    vm.roots.clear()  # the root is gone (as after a failed creation)
    ctx = host.initialize_http_context()
    assert host.call_on_request_headers(ctx, REQUEST, end_of_stream=True) == Action.PAUSE
    _only_error(
        host,
        "context creation",
        ctx,
        f"LookupError: stream context {ctx} belongs to root context "
        f"{host.root_context_id}, which failed to start",
    )


def test_a_root_that_makes_the_wrong_stream_context_is_named() -> None:
    class Root(RootContext):
        def create_stream_context(self, context_id: int) -> StreamContext:
            return HttpContext(context_id, self)  # type: ignore[return-value]

    host = _started(Root)
    ctx, _ = host.initialize_connection()
    _only_error(
        host,
        "context creation",
        ctx,
        "Root.create_stream_context returned HttpContext, expected a proxywasm.StreamContext",
    )


def test_an_http_callback_for_a_tcp_context_is_ignored() -> None:
    host, _, ctx = _tcp()
    assert host._invoke("proxy_on_request_headers", ctx, 0, 1) == int(Action.CONTINUE)
    assert _errors(host) == []


def test_each_callback_starts_a_new_map_epoch() -> None:
    # A view cached in one callback must not be trusted in the next, even after a write
    # that moves the epoch once more.
    seen: list[object] = []

    class Paused(HttpContext):
        def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
            seen.append(self.request.headers.get("x-late"))  # cached now
            self.root.waiting.append(self)  # type: ignore[attr-defined]
            return Action.PAUSE  # the request headers stay reachable

    class Root(RootContext):
        def __init__(self, context_id: int) -> None:
            super().__init__(context_id)
            self.waiting: list[HttpContext] = []

        def create_http_context(self, context_id: int) -> HttpContext:
            return Paused(context_id, self)

        def on_tick(self) -> None:
            for stream in self.waiting:
                hostcalls.set_effective_context(stream.context_id)
                hostcalls.add_map_value(MapType.HTTP_REQUEST_HEADERS, "x-late", "1")
                seen.append(stream.request.headers.get("x-late"))

    host = _started(Root)
    ctx = host.initialize_http_context()
    host.call_on_request_headers(ctx, REQUEST, end_of_stream=True)
    host.tick(host.root_context_id)
    assert seen == [None, "1"]
