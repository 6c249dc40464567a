"""The Pythonic layer, natively and compiled: views, awaited callouts, JSON configuration.

The subject is tests/pythonic/filter.py, written with only the names of
DESIGN.md's "Pythonic layer"; ``proxywasm_filter_host`` runs each test
natively and against the module ``proxywasm build`` makes of it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from proxywasm import Action, LogLevel
from proxywasm.testing import HostEmulator

PROXYWASM_FILTER = Path(__file__).parent / "pythonic" / "filter.py"
CONFIG = {"tag": "blue"}

MakeHost = Callable[..., HostEmulator]


@pytest.fixture
def host(proxywasm_filter_host: MakeHost) -> HostEmulator:
    return proxywasm_filter_host(plugin_configuration=CONFIG)


def request(case: str, *extra: tuple[str, str]) -> list[tuple[str, str]]:
    return [
        (":method", "POST"),
        (":path", "/some/path"),
        (":authority", "x"),
        ("x-case", case),
        *extra,
    ]


def answer(
    host: HostEmulator, upstream: str, status: int, body: bytes = b"", **headers: str
) -> None:
    (call,) = [c for c in host.get_http_call_attributes() if c.upstream == upstream]
    extra = [(k.replace("_", "-"), v) for k, v in headers.items()]
    host.call_on_http_call_response(call.token, [(":status", str(status)), *extra], body)


def test_header_views_read_and_write_the_live_map(host: HostEmulator) -> None:
    ctx = host.initialize_http_context()
    headers = request("views", ("x-secret", "s3"), ("x-drop", "1"), ("x-tag", "0"))
    assert host.call_on_request_headers(ctx, headers, end_of_stream=True) == Action.CONTINUE
    got = host.get_current_request_headers(ctx)
    values = dict(got)
    assert values["x-path-len"] == "10"
    assert values["x-tags"] == "0,a,b"  # every value, in order, names case-insensitive
    assert [v for k, v in got if k == "x-tag"] == ["0", "a", "b"]
    assert values["x-seen-rust"] == "1"  # a write by the Rust-named method is seen by the view
    assert values["x-seen-upper"] == "1"  # a single read of a name in another case
    assert values["x-method"] == "POST"
    assert (values["x-has-secret"], values["x-popped"]) == ("True", "s3")
    assert "x-secret" not in values and "x-drop" not in values
    distinct = {k for k, _ in got if k not in ("x-names", "x-root")}  # len(h) came before them
    assert values["x-names"] == str(len(distinct))
    assert values["x-root"] == "blue"  # http_context = Gate, self.root typed and configured


def test_response_view(host: HostEmulator) -> None:
    ctx = host.initialize_http_context()
    host.call_on_request_headers(ctx, request("none"), end_of_stream=True)
    host.call_on_response_headers(ctx, [(":status", "201"), ("server", "up")], end_of_stream=True)
    got = dict(host.get_current_response_headers(ctx))
    assert got["x-status-seen"] == "201"
    assert "server" not in got


def test_body_view_buffers_then_rewrites(host: HostEmulator) -> None:
    ctx = host.initialize_http_context()
    host.call_on_request_headers(ctx, request("body"), end_of_stream=False)
    assert host.call_on_request_body(ctx, b"hello ", end_of_stream=False) == Action.PAUSE
    assert host.call_on_request_body(ctx, b"world", end_of_stream=True) == Action.CONTINUE
    assert host.get_forwarded_request_body(ctx) == b"<HELLO WORLD!"


def test_awaited_callout_pauses_then_resumes_by_itself(host: HostEmulator) -> None:
    ctx = host.initialize_http_context()
    headers = request("auth", ("authorization", "Bearer t"))
    assert host.call_on_request_headers(ctx, headers, end_of_stream=True) == Action.PAUSE
    (call,) = host.get_http_call_attributes()
    sent = dict(call.headers)
    assert (sent[":method"], sent[":path"], sent[":authority"]) == ("GET", "/check", "auth")
    assert sent["authorization"] == "Bearer t"
    answer(host, "auth", 200, x_user="ann")
    assert host.get_current_http_stream_action(ctx) == Action.CONTINUE
    assert ("x-user", "ann") in host.get_current_request_headers(ctx)
    assert host.get_sent_local_response(ctx) is None


def test_awaited_callout_denied_sends_the_local_reply_and_does_not_resume(
    host: HostEmulator,
) -> None:
    ctx = host.initialize_http_context()
    host.call_on_request_headers(ctx, request("auth"), end_of_stream=True)
    answer(host, "auth", 401, b"bad token")
    reply = host.get_sent_local_response(ctx)
    assert reply is not None and (reply.status_code, reply.body) == (403, b"denied: bad token")
    assert host.get_logs(LogLevel.ERROR) == []


def test_envoys_timeout_answer_reaches_the_coroutine(host: HostEmulator) -> None:
    ctx = host.initialize_http_context()
    host.call_on_request_headers(ctx, request("auth"), end_of_stream=True)
    answer(host, "auth", 504, b"upstream request timeout")
    reply = host.get_sent_local_response(ctx)
    assert reply is not None and reply.body == b"denied: upstream request timeout"


def test_awaits_in_sequence(host: HostEmulator) -> None:
    ctx = host.initialize_http_context()
    host.call_on_request_headers(ctx, request("sequence"), end_of_stream=True)
    answer(host, "a", 200, b"one")
    (second,) = host.get_http_call_attributes()
    assert (second.upstream, second.body) == ("b", b"one")
    assert host.get_current_http_stream_action(ctx) == Action.PAUSE
    answer(host, "b", 200, b"two")
    assert ("x-answers", "onetwo") in host.get_current_request_headers(ctx)
    assert host.get_current_http_stream_action(ctx) == Action.CONTINUE


def test_gather_waits_for_every_answer_in_any_order(host: HostEmulator) -> None:
    ctx = host.initialize_http_context()
    host.call_on_request_headers(ctx, request("gather"), end_of_stream=True)
    assert sorted(c.upstream for c in host.get_http_call_attributes()) == ["a", "b"]
    answer(host, "b", 503, b"B")
    assert host.get_current_http_stream_action(ctx) == Action.PAUSE
    answer(host, "a", 200, b"A")
    assert ("x-answers", "200:A,503:B") in host.get_current_request_headers(ctx)
    assert host.get_current_http_stream_action(ctx) == Action.CONTINUE


def test_an_exception_after_an_await_fails_closed(host: HostEmulator) -> None:
    ctx = host.initialize_http_context()
    host.call_on_request_headers(ctx, request("raise-after-await"), end_of_stream=True)
    answer(host, "a", 200)
    reply = host.get_sent_local_response(ctx)
    assert reply is not None and reply.status_code == 500
    (error,) = host.get_logs(LogLevel.ERROR)
    assert "on_http_request_headers" in error and "after the callout" in error


def test_a_refused_dispatch_raises_host_call_error(proxywasm_filter_host: MakeHost) -> None:
    host = proxywasm_filter_host(plugin_configuration=CONFIG, upstreams=["auth"])
    ctx = host.initialize_http_context()
    host.call_on_request_headers(ctx, request("refused"), end_of_stream=True)
    reply = host.get_sent_local_response(ctx)
    assert reply is not None and reply.body == b"refused: proxy_http_call"


def test_a_stream_that_ends_while_waiting_closes_its_coroutine(host: HostEmulator) -> None:
    for _ in range(3):
        ctx = host.initialize_http_context()
        host.call_on_request_headers(ctx, request("cancel"), end_of_stream=True)
        host.complete_http_context(ctx)  # the client went away
    assert host.get_http_call_attributes() == []
    assert host.get_logs(LogLevel.ERROR) == []
    # the coroutines' finally blocks ran: the next stream's view of the root shows it
    ctx = host.initialize_http_context()
    host.call_on_request_headers(ctx, request("cancel"), end_of_stream=True)
    answer(host, "slow", 200)
    assert host.get_current_http_stream_action(ctx) == Action.CONTINUE


def test_root_context_awaits_in_on_tick(host: HostEmulator) -> None:
    host.tick()
    answer(host, "stats", 200, b"fine")
    assert host.get_logs(LogLevel.INFO)[-1] == "tick answered 200 fine"


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ('{"tag": ', "plugin configuration is not valid JSON: Expecting value (line 1, column 9)"),
        ("[1, 2]", "expected a JSON object, got list"),
        ('{"tag": 3}', "tag must be a string"),
    ],
)
def test_config_errors_are_one_line(
    proxywasm_filter_host: MakeHost, config: str, message: str
) -> None:
    host = proxywasm_filter_host(plugin_configuration=config, start=False)
    assert host.start_vm()
    assert host.start_plugin() is False
    assert host.get_logs(LogLevel.ERROR) == [f"on_configure rejected the configuration: {message}"]
