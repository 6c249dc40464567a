"""Awaitable callouts (``proxywasm.calls``) at their edges, found unchecked by mutation testing.

``HttpResponse`` is what a filter reads after ``await self.http_call(...)``;
``HttpCall`` / ``gather`` are what it awaits. The dispatcher drives them
(tests/test_mutants_dispatcher.py); here they are driven by hand, the way
the dispatcher steps a coroutine, to pin what a filter sees when the
protocol is broken.
"""

from __future__ import annotations

from typing import Any

import pytest
from proxywasm.calls import HttpCall, HttpResponse, gather


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ([(":status", "204")], 204),
        ([(":STATUS", "503")], 503),  # names are case-insensitive
        ([], 0),  # a reset: no headers at all
        ([(":status", "bad")], 0),
    ],
)
def test_the_status_of_an_answer(headers: list[tuple[str, str]], status: int) -> None:
    assert HttpResponse(headers, b"", []).status == status


def test_an_answer_decodes_its_body() -> None:
    answer = HttpResponse([(":status", "200")], b'{"a": "\xc3\xa9"}\xff', [("t", "1")])
    assert answer.text() == '{"a": "é"}\ufffd'
    assert HttpResponse([], b'{"a": [1]}', []).json() == {"a": [1]}
    assert answer.trailers["T"] == "1"
    assert repr(answer) == f"HttpResponse(status=200, body={len(answer.body)} bytes)"


def test_a_call_says_whether_it_was_answered() -> None:
    call = HttpCall(3, "auth")
    assert call.cluster == "auth"
    assert repr(call) == "HttpCall('auth', token=3, pending)"
    call.response = HttpResponse([(":status", "200")], b"", [])
    assert repr(call) == "HttpCall('auth', token=3, answered)"


def test_a_call_resumed_without_its_answer_says_which() -> None:
    steps: Any = HttpCall(3, "auth").__await__()
    assert isinstance(next(steps), HttpCall)  # handed to the dispatcher
    with pytest.raises(RuntimeError) as info:
        steps.send(None)  # resumed, but nobody set the response
    assert str(info.value) == "callout 3 to 'auth' resumed with no answer"


def test_an_answered_call_does_not_wait() -> None:
    call = HttpCall(3, "auth")
    call.response = HttpResponse([(":status", "200")], b"x", [])
    steps: Any = call.__await__()
    with pytest.raises(StopIteration) as info:
        next(steps)
    assert info.value.value is call.response


def test_a_gather_resumed_without_every_answer_says_which() -> None:
    first, second = HttpCall(1, "a"), HttpCall(2, "b")
    first.response = HttpResponse([], b"", [])
    steps: Any = gather(first, second).__await__()
    next(steps)
    with pytest.raises(RuntimeError) as info:
        steps.send(None)
    assert str(info.value) == "callout 2 to 'b' resumed with no answer"


def test_gather_takes_only_calls() -> None:
    with pytest.raises(TypeError) as info:
        gather(HttpCall(1, "a"), 7)  # type: ignore[arg-type]
    assert str(info.value) == (
        "gather() takes the HttpCall objects of self.http_call(...), not int"
    )
