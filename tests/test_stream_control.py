"""Pausing and resuming HTTP streams, the stream's current action, and resets."""

from __future__ import annotations

from proxywasm import Action, HostCallError, HttpContext, LogLevel, RootContext
from proxywasm.testing import HostEmulator

REQUEST = [(":method", "POST"), (":path", "/"), (":authority", "example.com")]
AUTH = [(":method", "GET"), (":path", "/check"), (":authority", "auth")]


class AuthFilter(HttpContext):
    """Pauses the request on a callout and resumes it (or denies) when the answer comes."""

    def __init__(self, context_id: int, root: RootContext) -> None:
        super().__init__(context_id, root)
        self.events: list[object] = []

    def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
        self.events.append("request_headers")
        self.dispatch_http_call("auth", AUTH)
        return Action.PAUSE

    def on_http_request_body(self, body_size: int, end_of_stream: bool) -> Action:
        self.events.append(("request_body", self.get_http_request_body(), end_of_stream))
        return Action.CONTINUE

    def on_http_request_trailers(self, num_trailers: int) -> Action:
        self.events.append(("request_trailers", self.get_http_request_trailers()))
        return Action.CONTINUE

    def on_http_call_response(
        self, token_id: int, num_headers: int, body_size: int, num_trailers: int
    ) -> None:
        status = self.get_http_call_response_header(":status")
        self.events.append(("call_response", status))
        if status == "200":
            self.set_http_request_header("x-auth", "ok")
            self.resume_http_request()
        else:
            self.send_http_response(403)


filters: list[AuthFilter] = []


class Root(RootContext):
    def create_http_context(self, context_id: int) -> HttpContext:
        f = AuthFilter(context_id, self)
        filters.append(f)
        return f


def start() -> tuple[HostEmulator, int]:
    filters.clear()
    host = HostEmulator(Root)
    assert host.start_vm() and host.start_plugin()
    ctx = host.initialize_http_context()
    return host, ctx


def test_pause_then_resume_from_a_callout_response() -> None:
    host, ctx = start()
    assert host.call_on_request_headers(ctx, REQUEST, end_of_stream=True) == Action.PAUSE
    assert host.get_current_http_stream_action(ctx) == Action.PAUSE
    (call,) = host.get_http_call_attributes()
    host.call_on_http_call_response(call.token, [(":status", "200")])
    assert host.get_current_http_stream_action(ctx) == Action.CONTINUE
    assert ("x-auth", "ok") in host.get_current_request_headers(ctx)
    assert host.get_sent_local_response(ctx) is None


def test_pause_then_deny_from_a_callout_response() -> None:
    host, ctx = start()
    host.call_on_request_headers(ctx, REQUEST, end_of_stream=True)
    (call,) = host.get_http_call_attributes()
    host.call_on_http_call_response(call.token, [(":status", "500")])
    assert host.get_current_http_stream_action(ctx) == Action.PAUSE
    reply = host.get_sent_local_response(ctx)
    assert reply is not None and reply.status_code == 403


def test_body_waits_while_headers_are_paused_and_arrives_on_resume() -> None:
    # proxy-wasm-cpp-host turns PAUSE from a headers callback into StopAllIteration:
    # the filter sees no body until it resumes; then the buffered body arrives at once.
    host, ctx = start()
    host.call_on_request_headers(ctx, REQUEST, end_of_stream=False)
    assert host.call_on_request_body(ctx, b"part1-") == Action.PAUSE
    assert host.call_on_request_body(ctx, b"part2", end_of_stream=False) == Action.PAUSE
    host.call_on_request_trailers(ctx, [("x-trailer", "t")])
    f = filters[0]
    assert f.events == ["request_headers"]
    assert host.get_forwarded_request_body(ctx) == b""
    (call,) = host.get_http_call_attributes()
    host.call_on_http_call_response(call.token, [(":status", "200")])
    assert f.events == [
        "request_headers",
        ("call_response", "200"),
        ("request_body", b"part1-part2", False),
        ("request_trailers", [("x-trailer", "t")]),
    ]
    assert host.get_forwarded_request_body(ctx) == b"part1-part2"
    assert host.get_current_http_stream_action(ctx) == Action.CONTINUE


def test_body_held_while_paused_is_dropped_by_a_local_reply() -> None:
    host, ctx = start()
    host.call_on_request_headers(ctx, REQUEST)
    host.call_on_request_body(ctx, b"never seen", end_of_stream=True)
    (call,) = host.get_http_call_attributes()
    host.call_on_http_call_response(call.token, [(":status", "401")])
    assert [e for e in filters[0].events if isinstance(e, tuple) and e[0] == "request_body"] == []
    assert host.get_forwarded_request_body(ctx) == b""


def test_response_pause_and_resume() -> None:
    seen: list[object] = []
    paused: list[HttpContext] = []

    class Slow(HttpContext):
        def on_http_response_headers(self, num_headers: int, end_of_stream: bool) -> Action:
            paused.append(self)
            return Action.PAUSE

        def on_http_response_body(self, body_size: int, end_of_stream: bool) -> Action:
            seen.append(self.get_http_response_body())
            return Action.CONTINUE

    class SlowRoot(RootContext):
        def on_tick(self) -> None:
            while paused:
                paused.pop().resume_http_response()

        def create_http_context(self, context_id: int) -> HttpContext:
            return Slow(context_id, self)

    host = HostEmulator(SlowRoot)
    host.start_vm()
    host.start_plugin()
    ctx = host.initialize_http_context()
    host.call_on_request_headers(ctx, REQUEST, end_of_stream=True)
    assert host.call_on_response_headers(ctx, [(":status", "200")]) == Action.PAUSE
    host.call_on_response_body(ctx, b"abc", end_of_stream=True)
    assert seen == [] and host.get_forwarded_response_body(ctx) == b""
    host.tick(host.root_context_id)
    assert seen == [b"abc"]
    assert host.get_forwarded_response_body(ctx) == b"abc"
    assert host.get_current_http_stream_action(ctx) == Action.CONTINUE


def test_current_action_follows_each_callback() -> None:
    class Alternate(HttpContext):
        def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
            return Action.CONTINUE

        def on_http_request_body(self, body_size: int, end_of_stream: bool) -> Action:
            return Action.CONTINUE if end_of_stream else Action.PAUSE

    host = HostEmulator.for_http_context(Alternate)
    ctx = host.initialize_http_context()
    assert host.get_current_http_stream_action(ctx) == Action.CONTINUE
    host.call_on_request_headers(ctx, REQUEST)
    assert host.get_current_http_stream_action(ctx) == Action.CONTINUE
    host.call_on_request_body(ctx, b"a")
    assert host.get_current_http_stream_action(ctx) == Action.PAUSE
    host.call_on_request_body(ctx, b"b", end_of_stream=True)
    assert host.get_current_http_stream_action(ctx) == Action.CONTINUE


def test_callback_returning_none_continues() -> None:
    class NoReturn(HttpContext):
        def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
            return None  # type: ignore[return-value]

    host = HostEmulator.for_http_context(NoReturn)
    ctx = host.initialize_http_context()
    assert host.call_on_request_headers(ctx, REQUEST) == Action.CONTINUE


def test_reset_stops_the_stream() -> None:
    events: list[str] = []
    errors: list[HostCallError] = []

    class Resetter(HttpContext):
        def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
            events.append("request_headers")
            self.reset_http_request()
            try:
                self.send_http_response(400)  # nothing to answer on a reset stream
            except HostCallError as exc:
                errors.append(exc)
            return Action.CONTINUE

        def on_http_request_body(self, body_size: int, end_of_stream: bool) -> Action:
            events.append("request_body")
            return Action.CONTINUE

        def on_http_response_headers(self, num_headers: int, end_of_stream: bool) -> Action:
            events.append("response_headers")
            return Action.CONTINUE

    host = HostEmulator.for_http_context(Resetter)
    ctx = host.initialize_http_context()
    host.call_on_request_headers(ctx, REQUEST)
    host.call_on_request_body(ctx, b"x", end_of_stream=True)
    host.call_on_response_headers(ctx, [(":status", "200")])
    assert events == ["request_headers"]
    assert host.get_http_stream(ctx).reset
    assert host.get_sent_local_response(ctx) is None
    assert len(errors) == 1
    assert host.get_forwarded_request_body(ctx) == b""


def test_reset_from_the_response_path() -> None:
    class Resetter(HttpContext):
        def on_http_response_headers(self, num_headers: int, end_of_stream: bool) -> Action:
            self.reset_http_response()
            return Action.PAUSE

        def on_http_response_body(self, body_size: int, end_of_stream: bool) -> Action:
            raise AssertionError("no body after a reset")

    host = HostEmulator.for_http_context(Resetter)
    ctx = host.initialize_http_context()
    host.call_on_request_headers(ctx, REQUEST, end_of_stream=True)
    host.call_on_response_headers(ctx, [(":status", "200")])
    host.call_on_response_body(ctx, b"x", end_of_stream=True)
    assert host.get_http_stream(ctx).reset
    assert host.get_forwarded_response_body(ctx) == b""
    assert host.get_logs(LogLevel.ERROR) == []
