"""``host.http(...)`` (testing/client.py): cases the mutation run of client.py found untested."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from proxywasm import Action, HttpContext, LogLevel
from proxywasm.hostcalls import set_effective_context
from proxywasm.testing import HostEmulator
from proxywasm.testing.client import answer_http_calls, http

GET = [(":method", "GET"), (":path", "/x"), (":authority", "shop")]
Pairs = list[tuple[str, str]]


class Asks(HttpContext):
    """Asks cluster ``svc`` and copies everything of its answer onto the request headers."""

    def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
        self.dispatch_http_call("svc", [(":method", "GET"), (":path", "/q"), (":authority", "s")])
        return Action.PAUSE

    def on_http_call_response(
        self, token_id: int, num_headers: int, body_size: int, num_trailers: int
    ) -> None:
        got = self.get_http_call_response_headers()
        self.set_http_request_header("x-got", ";".join(f"{k}={v}" for k, v in got))
        self.set_http_request_header("x-sizes", f"{num_headers},{body_size},{num_trailers}")
        body = self.get_http_call_response_body() or b""
        self.set_http_request_header("x-body", body.decode())
        trailers = self.get_http_call_response_trailers()
        self.set_http_request_header("x-trailers", ";".join(f"{k}={v}" for k, v in trailers))
        self.resume_http_request()


def _ask(answer: Any) -> dict[str, str | None]:
    host = HostEmulator.for_http_context(Asks)
    host.answer_http_calls("svc", lambda call: answer)
    ex = host.http(GET)
    return {k: ex.upstream_header(k) for k in ("x-got", "x-sizes", "x-body", "x-trailers")}


@dataclass
class Answer:
    status: int
    headers: Any = field(default_factory=list)
    body: Any = b""


@dataclass
class AnswerWithTrailers(Answer):
    trailers: Any = None


def test_a_failed_call_has_no_headers_no_body_and_no_trailers() -> None:
    assert _ask(None) == {"x-got": "", "x-sizes": "0,0,0", "x-body": "", "x-trailers": ""}


def test_an_object_answer_keeps_its_headers_after_the_status() -> None:
    got = _ask(Answer(201, [("x-k", "v")], b"ok"))
    assert got["x-got"] == ":status=201;x-k=v"
    assert got["x-body"] == "ok"


def test_an_object_answer_with_a_header_dict_bytes_names_and_its_own_status() -> None:
    assert _ask(Answer(201, {"x-k": "v"}))["x-got"] == ":status=201;x-k=v"
    # A :status among the headers (any case, bytes or str) wins over .status.
    assert _ask(Answer(201, [(b":Status", b"204")]))["x-got"] == ":status=204"
    assert _ask(Answer(201, [(":status", "500"), ("a", "b")]))["x-got"] == ":status=500;a=b"


def test_an_object_answer_without_headers_or_body_and_with_trailers() -> None:
    got = _ask(Answer(503, None, None))
    assert (got["x-got"], got["x-sizes"]) == (":status=503", "1,0,0")
    got = _ask(AnswerWithTrailers(200, [], b"b", [("t", "1")]))
    assert (got["x-trailers"], got["x-sizes"]) == ("t=1", "1,1,1")

    class Bare:
        status = 202

    got = _ask(Bare())
    assert (got["x-got"], got["x-body"], got["x-trailers"]) == (":status=202", "", "")


def test_tuple_answers_with_two_and_three_items() -> None:
    got = _ask(([(":status", "200"), ("x", "1")], "text"))
    assert (got["x-got"], got["x-body"], got["x-trailers"]) == (":status=200;x=1", "text", "")
    got = _ask(([(":status", "200")], b"", [("t", "2")]))
    assert got["x-trailers"] == "t=2"
    with pytest.raises(TypeError, match=r"returned \(1, 2, 3, 4\)") as info:
        _ask((1, 2, 3, 4))
    assert str(info.value).endswith(
        "expected (headers, body), (headers, body, trailers), an object with "
        ".status/.headers/.body, or None (the call failed)"
    )


def test_removing_a_handler_that_was_never_registered_is_fine() -> None:
    host = HostEmulator.for_http_context(Asks)
    answer_http_calls(host, "never", None)
    host.answer_http_calls("never", None)
    with pytest.raises(LookupError, match=r"handlers: none"):
        host.http(GET)


class Raw(HttpContext):
    def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
        return Action.CONTINUE


def test_non_utf8_header_bytes_survive_both_ways() -> None:
    host = HostEmulator.for_http_context(Raw)
    ex = host.http(
        [(b":method", b"GET"), (b":path", b"/"), (b"x-\xff", b"v\xfe")],
        response_headers=[(b":status", b"200"), (b"y-\xfd", b"\xfc")],
    )
    assert ex.upstream_headers is not None
    assert ("x-\udcff", "v\udcfe") in ex.upstream_headers
    assert ("y-\udcfd", "\udcfc") in ex.response_headers


def test_header_defaults_and_case() -> None:
    host = HostEmulator.for_http_context(Raw)
    ex = host.http(GET + [("X-Mixed", "1")], response_headers=[(":status", "200"), ("a", "")])
    assert ex.upstream_header("nope", "dflt") == "dflt"
    assert ex.upstream_header("nope") is None
    assert ex.upstream_header("X-MIXED") == "1"
    assert ex.header("A", "dflt") == ""  # present but empty is not the default
    assert ex.header("nope", "dflt") == "dflt"


def test_messages_are_those_at_exactly_the_level() -> None:
    class Logs(HttpContext):
        def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
            self.log(LogLevel.INFO, "i")
            self.log(LogLevel.WARN, "w")
            return Action.CONTINUE

    ex = HostEmulator.for_http_context(Logs).http(GET)
    assert ex.messages(LogLevel.WARN) == ["w"]
    assert ex.messages(LogLevel.INFO) == ["i"]


class AsksBlank(HttpContext):
    def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
        self.dispatch_http_call("svc", [(":method", ""), (":path", ""), (":authority", "s")])
        return Action.PAUSE


def test_a_callout_without_method_or_path_is_described_with_question_marks() -> None:
    host = HostEmulator.for_http_context(AsksBlank)
    with pytest.raises(LookupError, match=r"cluster 'svc' \(\? \?\) and no handler"):
        host.http(GET)


def test_the_no_handler_and_never_settle_messages_in_full() -> None:
    host = HostEmulator.for_http_context(Asks)
    with pytest.raises(LookupError) as info:
        host.http(GET)
    assert str(info.value).endswith(
        "(handlers: none); register one with "
        "host.answer_http_calls('svc', lambda call: ([(':status', '200')], b''))"
    )
    host.answer_http_calls("b", lambda call: None)
    host.answer_http_calls("a", lambda call: None)
    with pytest.raises(LookupError, match=r"\(handlers: 'a', 'b'\)"):
        host.http(GET)


class Again(HttpContext):
    def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
        self.dispatch_http_call("svc", [(":method", "GET"), (":path", "/"), (":authority", "s")])
        return Action.PAUSE

    def on_http_call_response(
        self, token_id: int, num_headers: int, body_size: int, num_trailers: int
    ) -> None:
        self.dispatch_http_call("svc", [(":method", "GET"), (":path", "/"), (":authority", "s")])


def test_callouts_that_never_settle_say_why() -> None:
    host = HostEmulator.for_http_context(Again)
    host.answer_http_calls("svc", lambda call: ([(":status", "200")], b""))
    with pytest.raises(RuntimeError) as info:
        host.http(GET)
    assert str(info.value) == (
        "the callouts never settle: after 100 rounds of answers 1 are still pending "
        "(clusters ['svc']); does the filter send a new callout from every answer?"
    )


class SeesBody(HttpContext):
    def on_http_request_body(self, body_size: int, end_of_stream: bool) -> Action:
        self.log(LogLevel.INFO, f"{self.get_http_request_body()!r} {end_of_stream}")
        return Action.CONTINUE


@pytest.mark.parametrize("kind", [bytearray, memoryview])
def test_bytearray_and_memoryview_bodies_are_one_chunk(kind: type) -> None:
    host = HostEmulator.for_http_context(SeesBody)
    ex = host.http(GET, request_body=kind(b"ab"))
    assert ex.messages(LogLevel.INFO) == ["b'ab' False", "None True"]  # then the empty end
    assert ex.upstream_body == b"ab"
    ex = host.http(GET, request_body=kind(b""))
    assert ex.messages(LogLevel.INFO) == [] and ex.upstream_body == b""


class ContinueThenPause(HttpContext):
    """Passes the first body chunk on, keeps the second: trailers then end the body."""

    def on_http_request_body(self, body_size: int, end_of_stream: bool) -> Action:
        return Action.CONTINUE if self.get_http_request_body() == b"ab" else Action.PAUSE

    def on_http_response_body(self, body_size: int, end_of_stream: bool) -> Action:
        return Action.CONTINUE if self.get_http_response_body() == b"ab" else Action.PAUSE


def test_a_buffered_body_goes_on_after_what_was_forwarded() -> None:
    host = HostEmulator.for_http_context(ContinueThenPause)
    ex = host.http(
        GET,
        request_body=[b"ab", b"cd"],
        request_trailers=[("t", "1")],
        response_body=[b"ab", b"ef"],
        response_trailers=[("u", "2")],
    )
    assert ex.stalled is None
    assert (ex.upstream_body, ex.upstream_trailers) == (b"abcd", [("t", "1")])
    assert (ex.response_body, ex.response_trailers) == (b"abef", [("u", "2")])


class Sees(SeesBody):
    def on_http_response_body(self, body_size: int, end_of_stream: bool) -> Action:
        self.log(LogLevel.WARN, f"{self.get_http_response_body()!r} {end_of_stream}")
        return Action.CONTINUE

    def on_log(self) -> None:
        self.log(LogLevel.ERROR, "on_log")


def test_the_module_function_defaults() -> None:
    # client.http called directly (host.http passes every argument itself).
    host = HostEmulator.for_http_context(Sees)
    ex = http(host, GET)
    assert (ex.upstream_body, ex.response_body, ex.status) == (b"", b"", 200)
    assert ex.messages(LogLevel.INFO) == [] and ex.messages(LogLevel.WARN) == []
    assert ex.messages(LogLevel.ERROR) == ["on_log"]  # complete=True by default
    ex = http(host, GET, request_body=b"ab")
    assert ex.messages(LogLevel.INFO) == ["b'ab' False", "None True"]  # body_end="empty_chunk"


class PausesResponseBody(HttpContext):
    def on_http_response_body(self, body_size: int, end_of_stream: bool) -> Action:
        return Action.PAUSE


def test_a_response_body_paused_to_its_end_stalls_the_response() -> None:
    host = HostEmulator.for_http_context(PausesResponseBody)
    ex = host.http(GET, response_body=b"xy")
    assert ex.stalled == "response"
    assert (ex.status, ex.response_body) == (200, b"")


def test_the_exchange_runs_on_a_second_plugins_root() -> None:
    host = HostEmulator.for_http_context(Raw)
    second = host.add_plugin("second")
    ex = host.http(GET, root_context_id=second)
    assert host.get_http_stream(ex.context_id).root_context_id == second


class AsksEverywhere(HttpContext):
    """One callout from the constructor (the SDK makes it at the first callback), the body
    and the trailers."""

    def __init__(self, context_id: int, root: Any) -> None:
        super().__init__(context_id, root)
        self._ask("/created")

    def _ask(self, path: str) -> None:
        self.dispatch_http_call("svc", [(":method", "GET"), (":path", path), (":authority", "s")])

    def on_http_request_body(self, body_size: int, end_of_stream: bool) -> Action:
        self._ask(f"/body/{end_of_stream}")
        return Action.CONTINUE

    def on_http_request_trailers(self, num_trailers: int) -> Action:
        self._ask("/trailers")
        return Action.CONTINUE


def test_callouts_from_every_kind_of_callback_are_answered_and_listed() -> None:
    host = HostEmulator.for_http_context(AsksEverywhere)
    host.answer_http_calls("svc", lambda call: ([(":status", "200")], b""))
    ex = host.http(GET, request_body=b"a", request_trailers=[("t", "1")])
    paths = [dict(c.headers)[":path"] for c in ex.http_calls]
    assert paths == ["/created", "/body/False", "/trailers"]
    ex = host.http(GET, request_body=b"a")
    paths = [dict(c.headers)[":path"] for c in ex.http_calls]
    assert paths == ["/created", "/body/False", "/body/True"]
    assert host.get_http_call_attributes() == []


class Replies(HttpContext):
    def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
        self.send_http_response(403, [("x-why", "no")], b"denied")
        return Action.PAUSE


def test_a_local_reply_has_no_trailers() -> None:
    ex = HostEmulator.for_http_context(Replies).http(GET, request_trailers=[("t", "1")])
    assert (ex.status, ex.response_body, ex.response_trailers) == (403, b"denied", None)
    assert ex.upstream_headers is None


class ResetsResponse(HttpContext):
    def on_http_response_headers(self, num_headers: int, end_of_stream: bool) -> Action:
        self.reset_http_request()
        return Action.PAUSE


def test_a_reset_in_the_response_reaches_no_client() -> None:
    ex = HostEmulator.for_http_context(ResetsResponse).http(
        GET, response_headers=[(":status", "200"), ("x", "1")], response_body=b"b"
    )
    assert ex.reset
    assert (ex.status, ex.response_headers, ex.response_body) == (0, [], b"")
    assert ex.upstream_headers is not None  # the request had gone on


def test_a_status_that_is_not_a_number_is_0() -> None:
    ex = HostEmulator.for_http_context(Raw).http(GET, response_headers=[(":status", "abc")])
    assert ex.status == 0 and ex.header(":status") == "abc"


class AsksOnLog(HttpContext):
    """on_log sends a callout on behalf of the root: it outlives the stream."""

    def on_log(self) -> None:
        set_effective_context(self.root.context_id)
        self.root.dispatch_http_call(
            "svc", [(":method", "GET"), (":path", "/log"), (":authority", "s")]
        )


def test_callouts_sent_while_the_stream_completes_are_answered() -> None:
    host = HostEmulator.for_http_context(AsksOnLog)
    host.answer_http_calls("svc", lambda call: ([(":status", "200")], b""))
    ex = host.http(GET)
    assert [dict(c.headers)[":path"] for c in ex.http_calls] == ["/log"]
    assert host.get_http_call_attributes() == []
