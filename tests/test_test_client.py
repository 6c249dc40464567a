"""``host.http(...)``: one whole stream in one call, natively and compiled.

The subject is tests/pythonic/filter.py (see tests/test_pythonic.py), driven
through the test client instead of callback by callback.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from proxywasm import LogLevel
from proxywasm.testing import HostEmulator, HttpCallAttributes

PROXYWASM_FILTER = Path(__file__).parent / "pythonic" / "filter.py"

MakeHost = Callable[..., HostEmulator]


@pytest.fixture
def host(proxywasm_filter_host: MakeHost) -> HostEmulator:
    return proxywasm_filter_host(plugin_configuration={"tag": "blue"})


def req(case: str, *extra: tuple[str, str]) -> list[tuple[str, str]]:
    return [(":method", "POST"), (":path", "/p"), (":authority", "x"), ("x-case", case), *extra]


def auth(call: HttpCallAttributes) -> tuple[list[tuple[str, str]], bytes]:
    token = dict(call.headers).get("authorization")
    if token == "Bearer good":
        return [(":status", "200"), ("x-user", "ann")], b""
    return [(":status", "401")], b"bad token"


def test_a_plain_exchange_reaches_both_sides(host: HostEmulator) -> None:
    ex = host.http(req("none"), response_headers=[(":status", "201"), ("server", "up")])
    assert ex.upstream_headers is not None and ex.upstream_header("x-case") == "none"
    assert ex.status == 201
    assert ex.header("x-status-seen") == "201" and ex.header("server") is None
    assert ex.local_response is None and ex.stalled is None


def test_awaited_callouts_are_answered_by_handlers(host: HostEmulator) -> None:
    host.answer_http_calls("auth", auth)
    ok = host.http(req("auth", ("authorization", "Bearer good")))
    assert ok.upstream_header("x-user") == "ann" and ok.status == 200
    assert [c.upstream for c in ok.http_calls] == ["auth"]
    denied = host.http(req("auth", ("authorization", "Bearer no")))
    assert denied.upstream_headers is None
    assert (denied.status, denied.response_body) == (403, b"denied: bad token")


def test_gather_and_sequences_settle(host: HostEmulator) -> None:
    host.answer_http_calls("a", lambda call: ([(":status", "200")], call.body or b"A"))
    host.answer_http_calls("b", lambda call: ([(":status", "503")], b"B" + call.body))
    assert host.http(req("gather")).upstream_header("x-answers") == "200:A,503:B"
    assert (
        host.http(req("sequence")).upstream_header("x-answers") == "ABA"
    )  # the second call got the first answer as its body


def test_body_chunks_and_buffering(host: HostEmulator) -> None:
    ex = host.http(req("body"), request_body=[b"hello ", b"world"])
    assert ex.upstream_body == b"<HELLO WORLD!"


def test_a_callout_without_a_handler_names_the_cluster(host: HostEmulator) -> None:
    with pytest.raises(LookupError, match=r"cluster 'auth'.*host.answer_http_calls\('auth'"):
        host.http(req("auth"))


def test_a_handler_returning_none_is_a_reset_callout(host: HostEmulator) -> None:
    host.answer_http_calls("auth", lambda call: None)
    ex = host.http(req("auth"))
    assert (ex.status, ex.response_body) == (403, b"denied: ")  # answer.status was 0
    assert all(level != LogLevel.ERROR for level, _ in ex.logs)
