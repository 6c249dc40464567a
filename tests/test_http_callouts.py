"""dispatch_http_call and on_http_call_response."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from proxywasm import Action, HostCallError, HttpContext, RootContext, Status
from proxywasm.testing import HostEmulator

REQUEST = [(":method", "GET"), (":path", "/"), (":authority", "example.com")]
CALL = [(":method", "POST"), (":path", "/check"), (":authority", "auth.local")]


def start(
    on_headers: Callable[[HttpContext], object],
    on_response: Callable[[HttpContext, int, int, int, int], object] | None = None,
    **kwargs: object,
) -> tuple[HostEmulator, int]:
    class Filter(HttpContext):
        def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
            on_headers(self)
            return Action.PAUSE

        def on_http_call_response(
            self, token_id: int, num_headers: int, body_size: int, num_trailers: int
        ) -> None:
            if on_response is not None:
                on_response(self, token_id, num_headers, body_size, num_trailers)

    class Root(RootContext):
        def create_http_context(self, context_id: int) -> HttpContext:
            return Filter(context_id, self)

    host = HostEmulator(Root, **kwargs)  # type: ignore[arg-type]
    assert host.start_vm() and host.start_plugin()
    ctx = host.initialize_http_context()
    host.call_on_request_headers(ctx, REQUEST, end_of_stream=True)
    return host, ctx


def test_dispatch_records_the_call_attributes() -> None:
    tokens: list[int] = []

    def on_headers(f: HttpContext) -> None:
        tokens.append(
            f.dispatch_http_call(
                "auth", CALL + [("X-Key", "k")], b'{"q":1}', [("x-trailer", "t")], timeout_ms=250
            )
        )

    host, ctx = start(on_headers)
    (call,) = host.get_http_call_attributes()
    assert call.token == tokens[0]
    assert call.upstream == "auth"
    assert call.headers == CALL + [("X-Key", "k")]
    assert call.body == b'{"q":1}'
    assert call.trailers == [("x-trailer", "t")]
    assert call.timeout_ms == 250
    assert call.context_id == ctx


def test_default_body_trailers_and_timeout() -> None:
    host, _ = start(lambda f: f.dispatch_http_call("auth", CALL))
    (call,) = host.get_http_call_attributes()
    assert call.body == b"" and call.trailers == [] and call.timeout_ms == 1000


def test_each_call_gets_its_own_token() -> None:
    tokens: list[int] = []

    def on_headers(f: HttpContext) -> None:
        tokens.append(f.dispatch_http_call("a", CALL))
        tokens.append(f.dispatch_http_call("b", CALL))

    host, _ = start(on_headers)
    assert len(set(tokens)) == 2
    assert sorted(c.token for c in host.get_http_call_attributes()) == sorted(tokens)


def test_answer_headers_body_and_trailers_in_the_callback() -> None:
    seen: list[object] = []

    def on_response(
        f: HttpContext, token: int, n_headers: int, body_size: int, n_trailers: int
    ) -> None:
        seen.append((n_headers, body_size, n_trailers))
        seen.append(f.get_http_call_response_headers())
        seen.append(f.get_http_call_response_header("X-Answer"))
        seen.append(f.get_http_call_response_header("x-missing"))
        seen.append(f.get_http_call_response_body())
        seen.append(f.get_http_call_response_body(1, 2))
        seen.append(f.get_http_call_response_trailers())

    host, _ = start(lambda f: f.dispatch_http_call("auth", CALL), on_response)
    (call,) = host.get_http_call_attributes()
    host.call_on_http_call_response(
        call.token, [(":status", "200"), ("x-answer", "42")], b"hello", [("t", "1")]
    )
    assert seen == [
        (2, 5, 1),
        [(":status", "200"), ("x-answer", "42")],
        "42",
        None,
        b"hello",
        b"el",
        [("t", "1")],
    ]
    assert host.get_http_call_attributes() == []


def test_answer_arrives_at_the_context_that_dispatched_it() -> None:
    owners: list[tuple[int, int]] = []

    def on_response(f: HttpContext, token: int, *_: int) -> None:
        owners.append((f.context_id, token))

    class Filter(HttpContext):
        def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
            self.dispatch_http_call("auth", CALL)
            return Action.PAUSE

        def on_http_call_response(
            self, token_id: int, num_headers: int, body_size: int, num_trailers: int
        ) -> None:
            on_response(self, token_id)
            self.set_http_request_header("x-answered", str(self.context_id))
            self.resume_http_request()

    host = HostEmulator.for_http_context(Filter)
    a = host.initialize_http_context()
    b = host.initialize_http_context()
    host.call_on_request_headers(a, REQUEST)
    host.call_on_request_headers(b, REQUEST)
    calls = {c.context_id: c.token for c in host.get_http_call_attributes()}
    host.call_on_http_call_response(calls[b], [(":status", "200")])
    host.call_on_http_call_response(calls[a], [(":status", "200")])
    assert owners == [(b, calls[b]), (a, calls[a])]
    assert ("x-answered", str(a)) in host.get_current_request_headers(a)
    assert ("x-answered", str(b)) in host.get_current_request_headers(b)
    assert host.get_current_http_stream_action(a) == Action.CONTINUE


def test_root_context_can_dispatch_and_receive() -> None:
    seen: list[object] = []

    class Root(RootContext):
        def on_tick(self) -> None:
            seen.append(("dispatched", self.dispatch_http_call("config", CALL)))

        def on_http_call_response(
            self, token_id: int, num_headers: int, body_size: int, num_trailers: int
        ) -> None:
            seen.append(("answered", token_id, self.get_http_call_response_body()))

    host = HostEmulator(Root)
    host.start_vm()
    host.start_plugin()
    host.tick(host.root_context_id)
    (call,) = host.get_http_call_attributes()
    assert call.context_id == host.root_context_id
    host.call_on_http_call_response(call.token, [(":status", "200")], b"cfg")
    assert seen == [("dispatched", call.token), ("answered", call.token, b"cfg")]


@pytest.mark.parametrize("missing", [":method", ":path", ":authority"])
def test_missing_pseudo_header_is_bad_argument(missing: str) -> None:
    errors: list[HostCallError] = []

    def on_headers(f: HttpContext) -> None:
        try:
            f.dispatch_http_call("auth", [(k, v) for k, v in CALL if k != missing])
        except HostCallError as exc:
            errors.append(exc)

    host, _ = start(on_headers)
    assert len(errors) == 1
    assert errors[0].status == Status.BAD_ARGUMENT and errors[0].function == "proxy_http_call"
    assert ":authority" in str(errors[0])  # the message names what is required
    assert host.get_http_call_attributes() == []


def test_unknown_upstream_when_upstreams_are_declared() -> None:
    errors: list[HostCallError] = []
    tokens: list[int] = []

    def on_headers(f: HttpContext) -> None:
        tokens.append(f.dispatch_http_call("known", CALL))
        try:
            f.dispatch_http_call("unknown", CALL)
        except HostCallError as exc:
            errors.append(exc)

    host, _ = start(on_headers, upstreams=["known"])
    assert len(tokens) == 1
    assert (
        len(errors) == 1
        and errors[0].status == Status.BAD_ARGUMENT
        and "'unknown'" in str(errors[0])
    )
    assert [c.upstream for c in host.get_http_call_attributes()] == ["known"]


def test_any_upstream_is_accepted_without_a_declared_list() -> None:
    host, _ = start(lambda f: f.dispatch_http_call("whatever-cluster", CALL))
    assert [c.upstream for c in host.get_http_call_attributes()] == ["whatever-cluster"]


def test_callout_failure_arrives_with_no_headers() -> None:
    seen: list[object] = []

    def on_response(
        f: HttpContext, token: int, n_headers: int, body_size: int, n_trailers: int
    ) -> None:
        seen.append((n_headers, body_size, n_trailers))
        seen.append(f.get_http_call_response_headers())
        seen.append(f.get_http_call_response_body())
        f.send_http_response(503, body=b"auth unavailable")

    host, ctx = start(lambda f: f.dispatch_http_call("auth", CALL), on_response)
    (call,) = host.get_http_call_attributes()
    host.call_on_http_call_response(call.token)  # a timeout / reset
    assert seen == [(0, 0, 0), [], None]
    reply = host.get_sent_local_response(ctx)
    assert reply is not None and reply.status_code == 503


def test_answering_an_unknown_token_is_a_test_error() -> None:
    host, _ = start(lambda f: None)
    with pytest.raises(KeyError, match="no pending HTTP callout"):
        host.call_on_http_call_response(12345, [(":status", "200")])


def test_call_response_is_not_readable_outside_the_callback() -> None:
    seen: list[object] = []

    def on_headers(f: HttpContext) -> None:
        f.dispatch_http_call("auth", CALL)
        seen.append(f.get_http_call_response_headers())
        seen.append(f.get_http_call_response_body())

    start(on_headers)
    assert seen == [[], None]


def test_call_response_headers_are_read_only() -> None:
    errors: list[HostCallError] = []

    def on_response(f: HttpContext, *_: int) -> None:
        from proxywasm import MapType, hostcalls

        try:
            hostcalls.add_map_value(MapType.HTTP_CALL_RESPONSE_HEADERS, "x", "y")
        except HostCallError as exc:
            errors.append(exc)

    host, _ = start(lambda f: f.dispatch_http_call("auth", CALL), on_response)
    (call,) = host.get_http_call_attributes()
    host.call_on_http_call_response(call.token, [(":status", "200")])
    assert len(errors) == 1 and errors[0].status == Status.BAD_ARGUMENT


def test_pending_callout_of_a_finished_stream_is_cancelled() -> None:
    # Envoy cancels a context's outstanding calls when the context goes away.
    answered: list[int] = []
    host, ctx = start(
        lambda f: f.dispatch_http_call("auth", CALL), lambda f, token, *_: answered.append(token)
    )
    assert len(host.get_http_call_attributes()) == 1
    host.complete_http_context(ctx)
    assert host.get_http_call_attributes() == []
    assert answered == []
