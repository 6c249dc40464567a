"""``host.http(...)``: one whole stream in one call (the test client of the null runtime).

Three groups:

- small filters defined here, run natively: the order and flags of the
  callbacks, local replies, buffering, callouts, stalls, trailers, logs;
- tests/pythonic/filter.py, natively: awaited callouts (``async def``) settle;
- examples/auth_callout/filter.py through ``proxywasm_filter_host``: the same
  tests natively and compiled (cpython and compact backends, slow tier).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from proxywasm import Action, HttpContext, LogLevel
from proxywasm.testing import HostEmulator, HttpCallAttributes, HttpExchange, load_filter

ROOT = Path(__file__).resolve().parent.parent
#: What ``proxywasm_filter_host`` runs, natively and compiled.
PROXYWASM_FILTER = ROOT / "examples" / "auth_callout" / "filter.py"
PROXYWASM_BACKENDS = ("cpython", "compact")

MakeHost = Callable[..., HostEmulator]
Pairs = list[tuple[str, str]]

GET = [(":method", "GET"), (":path", "/x"), (":authority", "shop")]


# -- small filters ----------------------------------------------------------------------------


class Recorder(HttpContext):
    """Passes everything on and records each callback with its flags."""

    seen: list[tuple[str, object]]

    def __init__(self, context_id: int, root: object) -> None:
        super().__init__(context_id, root)  # type: ignore[arg-type]
        self.seen = []
        SEEN.append(self.seen)

    def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
        self.seen.append(("request_headers", end_of_stream))
        return Action.CONTINUE

    def on_http_request_body(self, body_size: int, end_of_stream: bool) -> Action:
        self.seen.append(("request_body", (self.get_http_request_body(), end_of_stream)))
        return Action.CONTINUE

    def on_http_request_trailers(self, num_trailers: int) -> Action:
        self.seen.append(("request_trailers", num_trailers))
        return Action.CONTINUE

    def on_http_response_headers(self, num_headers: int, end_of_stream: bool) -> Action:
        self.seen.append(
            ("response_headers", (self.get_http_response_header(":status"), end_of_stream))
        )
        return Action.CONTINUE

    def on_http_response_body(self, body_size: int, end_of_stream: bool) -> Action:
        self.seen.append(("response_body", (self.get_http_response_body(), end_of_stream)))
        return Action.CONTINUE

    def on_http_response_trailers(self, num_trailers: int) -> Action:
        self.seen.append(("response_trailers", num_trailers))
        return Action.CONTINUE

    def on_log(self) -> None:
        self.log(LogLevel.INFO, f"access {self.get_http_request_header(':path')}")


#: The callbacks each Recorder-based stream saw, in creation order.
SEEN: list[list[tuple[str, object]]] = []


class LocalReply(Recorder):
    def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
        super().on_http_request_headers(num_headers, end_of_stream)
        self.send_http_response(403, [("x-why", "no")], b"denied")
        return Action.PAUSE

    def on_http_response_headers(self, num_headers: int, end_of_stream: bool) -> Action:
        super().on_http_response_headers(num_headers, end_of_stream)
        self.set_http_response_header("x-filtered", "yes")
        return Action.CONTINUE


class ReplyOnResponse(Recorder):
    def on_http_response_headers(self, num_headers: int, end_of_stream: bool) -> Action:
        super().on_http_response_headers(num_headers, end_of_stream)
        if self.get_http_response_header(":status") == "500":
            self.send_http_response(502, body=b"upstream broke")
            return Action.PAUSE
        return Action.CONTINUE


class Upper(Recorder):
    """Buffers each body until its end, then forwards it upper-cased."""

    def on_http_request_body(self, body_size: int, end_of_stream: bool) -> Action:
        super().on_http_request_body(body_size, end_of_stream)
        if not end_of_stream:
            return Action.PAUSE
        self.set_http_request_body((self.get_http_request_body() or b"").upper())
        return Action.CONTINUE

    def on_http_response_headers(self, num_headers: int, end_of_stream: bool) -> Action:
        super().on_http_response_headers(num_headers, end_of_stream)
        self.set_http_response_header("x-upper", "1")
        self.remove_http_response_header("server")
        return Action.CONTINUE

    def on_http_response_body(self, body_size: int, end_of_stream: bool) -> Action:
        super().on_http_response_body(body_size, end_of_stream)
        if not end_of_stream:
            return Action.PAUSE
        body = self.get_http_response_body() or b""
        self.set_http_response_body(body.upper() + b"!")
        return Action.CONTINUE


class Callout(Recorder):
    """Asks cluster ``auth`` and copies its answer onto the request, then resumes."""

    def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
        super().on_http_request_headers(num_headers, end_of_stream)
        self.dispatch_http_call(
            "auth",
            [(":method", "POST"), (":path", "/check"), (":authority", "auth")],
            body=b"who?",
            timeout_ms=250,
        )
        return Action.PAUSE

    def on_http_call_response(
        self, token_id: int, num_headers: int, body_size: int, num_trailers: int
    ) -> None:
        status = self.get_http_call_response_header(":status") if num_headers else None
        self.set_http_request_header("x-auth-status", status or "none")
        self.set_http_request_header(
            "x-auth-body", (self.get_http_call_response_body() or b"").decode()
        )
        trailers = self.get_http_call_response_trailers()
        if trailers:
            self.set_http_request_header(
                "x-auth-trailers", ",".join(f"{k}={v}" for k, v in trailers)
            )
        self.resume_http_request()


class Chatty(Callout):
    """Sends a new callout from every answer: never settles."""

    def on_http_call_response(
        self, token_id: int, num_headers: int, body_size: int, num_trailers: int
    ) -> None:
        self.dispatch_http_call(
            "auth", [(":method", "GET"), (":path", "/again"), (":authority", "auth")]
        )


class PauseHeaders(Recorder):
    def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
        super().on_http_request_headers(num_headers, end_of_stream)
        return Action.PAUSE


class PauseBody(Recorder):
    def on_http_request_body(self, body_size: int, end_of_stream: bool) -> Action:
        super().on_http_request_body(body_size, end_of_stream)
        return Action.PAUSE


class PauseResponse(Recorder):
    def on_http_response_headers(self, num_headers: int, end_of_stream: bool) -> Action:
        super().on_http_response_headers(num_headers, end_of_stream)
        return Action.PAUSE


class Trailers(Recorder):
    def on_http_request_trailers(self, num_trailers: int) -> Action:
        super().on_http_request_trailers(num_trailers)
        self.add_http_request_trailer("x-req-trailer", "added")
        return Action.CONTINUE

    def on_http_response_trailers(self, num_trailers: int) -> Action:
        super().on_http_response_trailers(num_trailers)
        self.set_http_response_trailer("grpc-status", "7")
        return Action.CONTINUE


class Reset(Recorder):
    def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
        super().on_http_request_headers(num_headers, end_of_stream)
        self.reset_http_request()
        return Action.PAUSE


class Noisy(Recorder):
    def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
        for i in range(5):
            self.log(LogLevel.DEBUG, f"line {i}")
        return Action.CONTINUE


def make(cls: type[Recorder], **kwargs: object) -> HostEmulator:
    SEEN.clear()
    return HostEmulator.for_http_context(cls, **kwargs)


def seen(index: int = -1) -> list[tuple[str, object]]:
    return SEEN[index]


# -- pass-through, flags and order ---------------------------------------------------------------


def test_pass_through_without_a_body_ends_the_stream_on_the_headers() -> None:
    host = make(Recorder)
    ex = host.http(GET + [("X-Mixed", "Case")], response_headers={":status": "204"})
    assert isinstance(ex, HttpExchange)
    assert ex.upstream_headers == GET + [("x-mixed", "Case")]
    assert (ex.upstream_body, ex.upstream_trailers) == (b"", None)
    assert (ex.status, ex.response_headers, ex.response_body) == (204, [(":status", "204")], b"")
    assert ex.response_trailers is None and ex.local_response is None
    assert ex.stalled is None and not ex.reset
    assert seen() == [("request_headers", True), ("response_headers", ("204", True))]
    assert ex.upstream_header("X-MIXED") == "Case" and ex.header(":status") == "204"
    assert ex.header("nope", "d") == "d"


def test_bodies_as_chunks_are_one_callback_each_then_an_empty_chunk_ends_the_stream() -> None:
    # As Envoy 1.40 delivers HTTP/1.1 bodies (tests/test_envoy_host_rules.py measures it).
    host = make(Recorder)
    ex = host.http(
        GET,
        request_body=[b"ab", "cd"],
        response_body=b"hello",
        response_headers=[(":status", "200")],
    )
    assert ex.upstream_body == b"abcd" and ex.response_body == b"hello"
    assert seen() == [
        ("request_headers", False),
        ("request_body", (b"ab", False)),
        ("request_body", (b"cd", False)),
        ("request_body", (None, True)),  # no bytes: the SDK reads None
        ("response_headers", ("200", False)),
        ("response_body", (b"hello", False)),
        ("response_body", (None, True)),
    ]


def test_bodies_as_chunks_are_one_callback_each_and_the_last_ends_the_stream() -> None:
    host = make(Recorder)
    ex = host.http(
        GET,
        request_body=[b"ab", "cd"],
        response_body=b"hello",
        response_headers=[(":status", "200")],
        body_end="last_chunk",
    )
    assert ex.upstream_body == b"abcd" and ex.response_body == b"hello"
    assert seen() == [
        ("request_headers", False),
        ("request_body", (b"ab", False)),
        ("request_body", (b"cd", True)),
        ("response_headers", ("200", False)),
        ("response_body", (b"hello", True)),
    ]


def test_no_empty_chunk_when_trailers_end_the_body() -> None:
    host = make(Recorder)
    host.http(GET, request_body=[b"ab"], request_trailers=[("t", "1")])
    assert [e for e in seen() if e[0].startswith("request")] == [
        ("request_headers", False),
        ("request_body", (b"ab", False)),
        ("request_trailers", 1),
    ]


def test_the_default_response_is_a_200_without_a_body() -> None:
    ex = make(Recorder).http(GET)
    assert (ex.status, ex.response_headers, ex.response_body) == (200, [(":status", "200")], b"")


def test_on_log_ran_and_its_logs_belong_to_the_exchange() -> None:
    host = make(Recorder)
    host.http(GET + [(":path", "/first")])
    ex = host.http([(":method", "GET"), (":path", "/second"), (":authority", "a")])
    assert ex.messages(LogLevel.INFO) == ["access /second"]  # not the first exchange's
    assert (LogLevel.INFO, "access /second") in ex.logs
    assert ex.context_id not in host.http_streams  # completed: on_delete ran


def test_complete_false_leaves_the_stream_open() -> None:
    host = make(Recorder)
    ex = host.http(GET, complete=False)
    assert ex.messages(LogLevel.INFO) == []
    assert ex.context_id in host.http_streams
    host.complete_http_context(ex.context_id)
    assert host.get_logs(LogLevel.INFO) == ["access /x"]


def test_logs_of_a_bounded_log_are_the_ones_kept() -> None:
    host = make(Noisy, max_log_entries=3)
    ex = host.http(GET)
    assert [m for _, m in ex.logs] == ["line 3", "line 4", "access /x"]


def test_the_exchange_runs_on_the_given_root_context() -> None:
    host = make(Recorder)
    ex = host.http(GET, root_context_id=host.root_context_id)
    assert host.get_http_stream(ex.context_id).root_context_id == host.root_context_id


# -- local replies -------------------------------------------------------------------------------


def test_local_reply_in_request_headers_ends_the_request() -> None:
    host = make(LocalReply)
    ex = host.http(GET, request_body=b"never read", request_trailers=[("t", "1")])
    assert ex.upstream_headers is None and ex.upstream_body is None
    assert ex.upstream_trailers is None
    assert ex.local_response is not None and ex.local_response.status_code == 403
    assert (ex.status, ex.response_body) == (403, b"denied")
    # The local reply went through the filter's response callbacks, as in Envoy.
    assert ex.header("x-filtered") == "yes" and ex.header("x-why") == "no"
    # Neither the request body nor the upstream's response reached the filter: the reply did.
    assert seen() == [
        ("request_headers", False),
        ("response_headers", ("403", False)),
        ("response_body", (b"denied", True)),
    ]
    assert ex.messages(LogLevel.INFO) == ["access /x"]


def test_local_reply_in_response_headers_replaces_the_upstream_response() -> None:
    host = make(ReplyOnResponse)
    ex = host.http(GET, response_headers=[(":status", "500")], response_body=b"stack trace")
    assert ex.upstream_headers == GET  # the request did reach the upstream
    assert (ex.status, ex.response_body) == (502, b"upstream broke")
    assert ex.local_response is not None and ex.local_response.status_code == 502
    assert [name for name, _ in seen()] == ["request_headers", "response_headers"]


def test_a_reset_stream_reaches_neither_side() -> None:
    ex = make(Reset).http(GET)
    assert ex.reset and ex.upstream_headers is None
    assert (ex.status, ex.response_headers) == (0, [])


# -- buffering and modification ------------------------------------------------------------------


def test_body_buffered_until_end_of_stream_then_rewritten() -> None:
    host = make(Upper)
    for body_end, calls in (
        ("last_chunk", [(b"ab", False), (b"abcd", False), (b"abcdef", True)]),
        ("empty_chunk", [(b"ab", False), (b"abcd", False), (b"abcdef", False), (b"abcdef", True)]),
    ):
        ex = host.http(
            GET,
            request_body=[b"ab", b"cd", b"ef"],
            response_headers=[(":status", "200"), ("server", "up")],
            response_body=[b"x", b"y"],
            body_end=body_end,  # type: ignore[arg-type]
        )
        assert ex.upstream_body == b"ABCDEF"
        bodies = [arg for name, arg in seen() if name == "request_body"]
        assert bodies == calls  # all buffered: the buffer holds every chunk so far
        assert ex.response_headers == [(":status", "200"), ("x-upper", "1")]
        assert ex.response_body == b"XY!" and ex.stalled is None


# -- callouts ----------------------------------------------------------------------------------


def test_callout_answered_by_a_handler_then_resumed() -> None:
    host = make(Callout)
    calls: list[HttpCallAttributes] = []

    def auth(call: HttpCallAttributes) -> tuple[Pairs, bytes]:
        calls.append(call)
        return [(":status", "200")], b"ann"

    host.answer_http_calls("auth", auth)
    ex = host.http(GET, request_body=b"payload")
    [call] = calls
    assert (call.upstream, call.body, call.timeout_ms) == ("auth", b"who?", 250)
    assert ex.http_calls == calls
    assert ex.upstream_header("x-auth-status") == "200"
    assert ex.upstream_header("x-auth-body") == "ann"
    assert ex.upstream_body == b"payload" and ex.status == 200 and ex.stalled is None
    assert host.get_http_call_attributes() == []


def test_handlers_may_return_trailers_none_or_an_object() -> None:
    host = make(Callout)
    host.answer_http_calls("auth", lambda call: ([(":status", "201")], "b", [("t", "1")]))
    ex = host.http(GET)
    assert ex.upstream_header("x-auth-status") == "201"
    assert ex.upstream_header("x-auth-trailers") == "t=1"

    host.answer_http_calls("auth", lambda call: None)  # failed without an answer
    assert host.http(GET).upstream_header("x-auth-status") == "none"

    @dataclass
    class Answer:
        status: int
        headers: Pairs = field(default_factory=list)
        body: bytes = b""

    host.answer_http_calls("auth", lambda call: Answer(418, [("x", "y")], b"tea"))
    ex = host.http(GET)
    assert (ex.upstream_header("x-auth-status"), ex.upstream_header("x-auth-body")) == (
        "418",
        "tea",
    )


def test_a_handler_returning_something_else_is_a_clear_error() -> None:
    host = make(Callout)
    host.answer_http_calls("auth", lambda call: 200)  # type: ignore[arg-type,return-value]
    with pytest.raises(TypeError, match=r"cluster 'auth' returned 200; expected \(headers, body\)"):
        host.http(GET)


def test_a_callout_without_a_handler_names_the_cluster_and_the_fix() -> None:
    host = make(Callout)
    host.answer_http_calls("other", lambda call: ([(":status", "200")], b""))
    with pytest.raises(LookupError) as info:
        host.http(GET)
    message = str(info.value)
    assert "cluster 'auth' (POST /check)" in message
    assert "handlers: 'other'" in message
    assert "host.answer_http_calls('auth', " in message


def test_removing_a_handler() -> None:
    host = make(Callout)
    host.answer_http_calls("auth", lambda call: ([(":status", "200")], b""))
    host.answer_http_calls("auth", None)
    with pytest.raises(LookupError, match="cluster 'auth'"):
        host.http(GET)


def test_callouts_that_never_settle_are_an_error() -> None:
    host = make(Chatty)
    host.answer_http_calls("auth", lambda call: ([(":status", "200")], b""))
    with pytest.raises(RuntimeError, match=r"never settle.*clusters \['auth'\]"):
        host.http(GET)


def test_callouts_from_before_the_exchange_are_left_alone() -> None:
    host = make(Callout)
    ctx = host.initialize_http_context()
    host.call_on_request_headers(ctx, GET, end_of_stream=True)
    [earlier] = host.get_http_call_attributes()
    host.answer_http_calls("auth", lambda call: ([(":status", "200")], b""))
    ex = host.http(GET)
    [answered] = ex.http_calls
    assert answered.token != earlier.token
    assert host.get_http_call_attributes() == [earlier]  # still the test's to answer


# -- stalls ---------------------------------------------------------------------------------------


def test_paused_request_headers_with_nothing_to_resume_them_stall() -> None:
    host = make(PauseHeaders)
    ex = host.http(GET, request_body=b"held")
    assert ex.stalled == "request"
    assert ex.upstream_headers is None and ex.upstream_body is None
    assert (ex.status, ex.response_headers, ex.response_body) == (0, [], b"")
    assert [name for name, _ in seen()] == ["request_headers"]  # body held, no response
    assert ex.messages(LogLevel.INFO) == ["access /x"]  # completed all the same


def test_a_paused_last_body_chunk_stalls_the_request() -> None:
    ex = make(PauseBody).http(GET, request_body=b"abc")
    assert ex.stalled == "request"
    assert ex.upstream_headers == GET and ex.upstream_body == b""  # headers went, body did not
    assert ex.status == 0


def test_paused_response_headers_stall_the_response() -> None:
    ex = make(PauseResponse).http(GET, response_body=b"body")
    assert ex.stalled == "response"
    assert ex.upstream_headers == GET
    assert (ex.status, ex.response_headers, ex.response_body) == (0, [], b"")


# -- trailers ------------------------------------------------------------------------------------


def test_trailers_both_ways() -> None:
    host = make(Trailers)
    ex = host.http(
        GET,
        request_body=b"q",
        request_trailers={"x-sum": "1"},
        response_body=[b"a"],
        response_trailers=[("grpc-status", "0")],
    )
    assert ex.upstream_body == b"q"
    assert ex.upstream_trailers == [("x-sum", "1"), ("x-req-trailer", "added")]
    assert ex.response_trailers == [("grpc-status", "7")]
    assert seen() == [
        ("request_headers", False),
        ("request_body", (b"q", False)),  # trailers follow: not the end
        ("request_trailers", 1),
        ("response_headers", ("200", False)),
        ("response_body", (b"a", False)),
        ("response_trailers", 1),
    ]


def test_trailers_without_a_body() -> None:
    ex = make(Trailers).http(GET, request_trailers=[("x-a", "1")])
    assert seen()[:2] == [("request_headers", False), ("request_trailers", 1)]
    assert ex.upstream_body == b""


# -- async callouts (tests/pythonic/filter.py, natively) -------------------------------------------


@pytest.fixture
def pythonic() -> HostEmulator:
    host = HostEmulator(
        load_filter(ROOT / "tests" / "pythonic" / "filter.py"),
        plugin_configuration={"tag": "blue"},
    )
    assert host.start_vm() and host.start_plugin()
    return host


def req(case: str, *extra: tuple[str, str]) -> Pairs:
    return [(":method", "POST"), (":path", "/p"), (":authority", "x"), ("x-case", case), *extra]


def test_awaited_callouts_are_answered_by_handlers(pythonic: HostEmulator) -> None:
    def auth(call: HttpCallAttributes) -> tuple[Pairs, bytes]:
        if dict(call.headers).get("authorization") == "Bearer good":
            return [(":status", "200"), ("x-user", "ann")], b""
        return [(":status", "401")], b"bad token"

    pythonic.answer_http_calls("auth", auth)
    ok = pythonic.http(req("auth", ("authorization", "Bearer good")))
    assert ok.upstream_header("x-user") == "ann" and ok.status == 200
    assert [c.upstream for c in ok.http_calls] == ["auth"]
    denied = pythonic.http(req("auth", ("authorization", "Bearer no")))
    assert denied.upstream_headers is None
    assert (denied.status, denied.response_body) == (403, b"denied: bad token")


def test_gathered_and_sequential_awaits_settle(pythonic: HostEmulator) -> None:
    pythonic.answer_http_calls("a", lambda call: ([(":status", "200")], call.body or b"A"))
    pythonic.answer_http_calls("b", lambda call: ([(":status", "503")], b"B" + call.body))
    assert pythonic.http(req("gather")).upstream_header("x-answers") == "200:A,503:B"
    # The second call carries the first answer as its body.
    assert pythonic.http(req("sequence")).upstream_header("x-answers") == "ABA"


# -- examples/auth_callout, natively and compiled --------------------------------------------------

AUTH_CONFIG = {"cluster": "auth", "path": "/check", "authority": "auth", "user_header": "x-user"}


@pytest.fixture
def auth_host(proxywasm_filter_host: MakeHost) -> HostEmulator:
    return proxywasm_filter_host(plugin_configuration=AUTH_CONFIG)


def service(call: HttpCallAttributes) -> tuple[Pairs, bytes]:
    """The auth service: ``Bearer good`` is alice, ``Bearer down`` breaks, the rest is refused."""
    token = dict(call.headers).get("authorization")
    if token == "Bearer good":
        return [(":status", "200"), ("x-user", "alice")], b"ok"
    if token == "Bearer down":
        return [(":status", "503")], b"upstream connect error"
    return [(":status", "403")], b"no"


def auth_metrics(host: HostEmulator) -> tuple[int, ...]:
    return tuple(host.get_metric(f"auth_callout.{n}") for n in ("allowed", "denied", "failed"))


def test_auth_allowed_reaches_the_upstream_with_the_user(auth_host: HostEmulator) -> None:
    auth_host.answer_http_calls("auth", service)
    ex = auth_host.http(
        GET + [("authorization", "Bearer good"), ("x-user", "mallory")],
        request_body=[b"pay", b"load"],
        request_trailers=[("x-t", "1")],
        response_headers=[(":status", "200"), ("content-type", "text/plain")],
        response_body=b"orders",
        response_trailers=[("x-rt", "2")],
    )
    assert ex.upstream_headers == GET + [("authorization", "Bearer good"), ("x-user", "alice")]
    assert ex.upstream_body == b"payload" and ex.upstream_trailers == [("x-t", "1")]
    assert (ex.status, ex.response_body, ex.response_trailers) == (200, b"orders", [("x-rt", "2")])
    assert ex.header("content-type") == "text/plain"
    [call] = ex.http_calls
    assert call.headers[:3] == [(":method", "GET"), (":path", "/check"), (":authority", "auth")]
    assert ex.local_response is None and ex.stalled is None
    assert auth_metrics(auth_host) == (1, 0, 0)
    assert all(level < LogLevel.ERROR for level, _ in ex.logs)


def test_auth_without_a_token_is_a_401_without_a_callout(auth_host: HostEmulator) -> None:
    ex = auth_host.http(GET)  # no handler needed: no callout is sent
    assert ex.upstream_headers is None and ex.http_calls == []
    assert (ex.status, ex.response_body) == (401, b"missing credentials\n")
    assert ex.header("www-authenticate") == "Bearer"
    assert ex.local_response is not None and ex.local_response.details == "auth_callout_denied"


def test_auth_refused_and_failed(auth_host: HostEmulator) -> None:
    auth_host.answer_http_calls("auth", service)
    refused = auth_host.http(GET + [("authorization", "Bearer bad")], request_body=b"x")
    assert (refused.status, refused.response_body) == (403, b"forbidden\n")
    assert refused.upstream_headers is None
    down = auth_host.http(GET + [("authorization", "Bearer down")])
    assert (down.status, down.response_body) == (503, b"auth service unavailable\n")
    assert down.messages(LogLevel.WARN) == ["auth_callout: 'auth' failed (503)"]
    assert auth_metrics(auth_host) == (0, 1, 1)


def test_auth_reset_callout_is_a_503(auth_host: HostEmulator) -> None:
    auth_host.answer_http_calls("auth", lambda call: None)
    ex = auth_host.http(GET + [("authorization", "t")])
    assert ex.status == 503
    assert ex.messages(LogLevel.WARN) == ["auth_callout: 'auth' failed (no answer)"]


def test_auth_callout_without_a_handler_is_an_error(auth_host: HostEmulator) -> None:
    with pytest.raises(LookupError, match=r"cluster 'auth' \(GET /check\)"):
        auth_host.http(GET + [("authorization", "t")])
