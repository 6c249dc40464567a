"""Tests of the auth_callout example, run natively and compiled.

As in ``examples/add_header``: every test takes its host from ``make_host`` /
``host``, parametrised over ``BACKENDS``. The test plays the auth service:
``get_http_call_attributes()`` shows the callout the filter sent and
``call_on_http_call_response()`` answers it (no headers: the call failed).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from proxywasm import Action, LogLevel
from proxywasm.testing import HostEmulator, load_filter

HERE = Path(__file__).resolve().parent
#: The filter the plugin's proxywasm_filter_host runs, natively and compiled.
PROXYWASM_FILTER = HERE / "filter.py"
PROXYWASM_BACKENDS = ("cpython", "compact", "componentize-py")


filter_module = load_filter(PROXYWASM_FILTER)
MakeHost = Callable[..., HostEmulator]

ENVOY_CONFIG = {
    "cluster": "auth",
    "path": "/check",
    "authority": "auth",
    "timeout_ms": 1000,
    "user_header": "x-user",
}
REQUEST = [
    (":method", "GET"),
    (":path", "/orders"),
    (":authority", "shop.example"),
    ("x-request-id", "r-1"),
]


@pytest.fixture
def make_host(proxywasm_filter_host: MakeHost) -> MakeHost:
    """Hosts running the filter natively and compiled (the plugin's proxywasm_filter_host)."""
    return proxywasm_filter_host


@pytest.fixture
def host(make_host: MakeHost) -> HostEmulator:
    return make_host(plugin_configuration=ENVOY_CONFIG)


def envoy_yaml_configuration() -> Any:
    """The plugin configuration envoy.yaml passes (its one-line ``value: '...'``)."""
    match = re.search(r"^\s*value: '(.*)'\s*$", (HERE / "envoy.yaml").read_text(), re.MULTILINE)
    assert match, "no plugin configuration in envoy.yaml"
    return json.loads(match.group(1))


def start(
    host: HostEmulator, headers: list[tuple[str, str]], end_of_stream: bool = True
) -> tuple[int, Action]:
    ctx = host.initialize_http_context()
    return ctx, host.call_on_request_headers(ctx, headers, end_of_stream=end_of_stream)


def reply_status(host: HostEmulator, ctx: int) -> int:
    reply = host.get_sent_local_response(ctx)
    assert reply is not None, "no local reply"
    return reply.status_code


def metrics(host: HostEmulator) -> tuple[int, int, int]:
    return tuple(host.get_metric(f"auth_callout.{n}") for n in ("allowed", "denied", "failed"))  # type: ignore[return-value]


def test_envoy_yaml_configuration() -> None:
    assert envoy_yaml_configuration() == ENVOY_CONFIG


def test_no_token_is_refused_without_a_callout(host: HostEmulator) -> None:
    ctx, action = start(host, REQUEST)
    assert action == Action.PAUSE
    assert host.get_http_call_attributes() == []
    reply = host.get_sent_local_response(ctx)
    assert reply is not None and reply.status_code == 401
    assert ("www-authenticate", "Bearer") in reply.headers
    assert reply.body == b"missing credentials\n"
    assert metrics(host) == (0, 1, 0)


def test_empty_token_is_refused(host: HostEmulator) -> None:
    ctx, _ = start(host, REQUEST + [("authorization", "")])
    assert reply_status(host, ctx) == 401
    assert host.get_http_call_attributes() == []


def test_callout_carries_the_token(host: HostEmulator) -> None:
    ctx, action = start(host, REQUEST + [("authorization", "Bearer good")])
    assert action == Action.PAUSE
    [call] = host.get_http_call_attributes()
    assert call.upstream == "auth"
    assert call.timeout_ms == 1000
    assert call.headers == [
        (":method", "GET"),
        (":path", "/check"),
        (":authority", "auth"),
        ("authorization", "Bearer good"),
        ("x-request-id", "r-1"),
    ]
    assert call.body == b""
    assert host.get_current_http_stream_action(ctx) == Action.PAUSE
    assert host.get_sent_local_response(ctx) is None


def test_allowed_request_resumes_with_the_user(host: HostEmulator) -> None:
    ctx, _ = start(host, REQUEST + [("authorization", "Bearer good"), ("x-user", "mallory")])
    [call] = host.get_http_call_attributes()
    host.call_on_http_call_response(call.token, [(":status", "200"), ("x-user", "alice")], b"ok")
    assert host.get_current_http_stream_action(ctx) == Action.CONTINUE
    assert host.get_sent_local_response(ctx) is None
    # The client's x-user is gone; the auth service's is there, once.
    assert host.get_current_request_headers(ctx) == REQUEST + [
        ("authorization", "Bearer good"),
        ("x-user", "alice"),
    ]
    assert metrics(host) == (1, 0, 0)
    host.call_on_response_headers(ctx, [(":status", "200")], end_of_stream=True)
    host.complete_http_context(ctx)
    assert host.get_logs(LogLevel.ERROR) == []


def test_allowed_without_user_header_adds_none(host: HostEmulator) -> None:
    ctx, _ = start(host, REQUEST + [("authorization", "t"), ("x-user", "mallory")])
    [call] = host.get_http_call_attributes()
    host.call_on_http_call_response(call.token, [(":status", "200")])
    assert host.get_current_http_stream_action(ctx) == Action.CONTINUE
    assert "x-user" not in dict(host.get_current_request_headers(ctx))


def test_user_copy_can_be_turned_off(make_host: MakeHost) -> None:
    host = make_host(plugin_configuration={"user_header": ""})
    ctx, _ = start(host, REQUEST + [("authorization", "t"), ("x-user", "kept")])
    [call] = host.get_http_call_attributes()
    host.call_on_http_call_response(call.token, [(":status", "200"), ("x-user", "alice")])
    assert ("x-user", "kept") in host.get_current_request_headers(ctx)


def test_request_body_waits_for_the_answer(host: HostEmulator) -> None:
    ctx, action = start(host, REQUEST + [("authorization", "t")], end_of_stream=False)
    assert action == Action.PAUSE
    # Envoy holds the body while the headers callback is paused.
    host.call_on_request_body(ctx, b"payload", end_of_stream=True)
    assert host.get_forwarded_request_body(ctx) == b""
    [call] = host.get_http_call_attributes()
    host.call_on_http_call_response(call.token, [(":status", "200")])
    assert host.get_forwarded_request_body(ctx) == b"payload"


@pytest.mark.parametrize(
    ("answer", "expected"), [("401", 401), ("400", 401), ("302", 401), ("403", 403)]
)
def test_refused_request_gets_a_local_reply(host: HostEmulator, answer: str, expected: int) -> None:
    ctx, _ = start(host, REQUEST + [("authorization", "Bearer bad")])
    [call] = host.get_http_call_attributes()
    host.call_on_http_call_response(call.token, [(":status", answer)], b"nope")
    reply = host.get_sent_local_response(ctx)
    assert reply is not None and reply.status_code == expected
    assert reply.body == (b"forbidden\n" if expected == 403 else b"invalid credentials\n")
    assert metrics(host) == (0, 1, 0)


@pytest.mark.parametrize(
    ("headers", "body", "why"),
    [
        (None, b"", "no answer"),  # a reset: no headers at all
        ([(":status", "504")], b"upstream request timeout", "504"),  # Envoy's answer to a timeout
        ([(":status", "503")], b"upstream connect error", "503"),  # ... to a refused connection
        ([(":status", "500")], b"", "500"),  # the auth service broke
    ],
)
def test_callout_failure_gives_503(
    host: HostEmulator, headers: list[tuple[str, str]] | None, body: bytes, why: str
) -> None:
    ctx, _ = start(host, REQUEST + [("authorization", "t")])
    [call] = host.get_http_call_attributes()
    host.call_on_http_call_response(call.token, headers, body)
    reply = host.get_sent_local_response(ctx)
    assert reply is not None and reply.status_code == 503
    assert reply.body == b"auth service unavailable\n"
    assert metrics(host) == (0, 0, 1)
    assert host.get_logs(LogLevel.WARN) == [f"auth_callout: 'auth' failed ({why})"]


def test_failure_status_and_callout_settings_are_configurable(make_host: MakeHost) -> None:
    host = make_host(
        plugin_configuration={
            "cluster": "authz",
            "path": "/v1/verify",
            "authority": "authz.internal",
            "timeout_ms": 250,
            "token_header": "X-Api-Key",
            "failure_status": 500,
        }
    )
    ctx, _ = start(host, REQUEST + [("x-api-key", "k")])
    [call] = host.get_http_call_attributes()
    assert (call.upstream, call.timeout_ms) == ("authz", 250)
    assert call.headers[:4] == [
        (":method", "GET"),
        (":path", "/v1/verify"),
        (":authority", "authz.internal"),
        ("x-api-key", "k"),
    ]
    host.call_on_http_call_response(call.token, None)
    assert reply_status(host, ctx) == 500


def test_unknown_cluster_fails_at_once(make_host: MakeHost) -> None:
    host = make_host(plugin_configuration=ENVOY_CONFIG, upstreams=["other"])
    ctx, action = start(host, REQUEST + [("authorization", "t")])
    assert action == Action.PAUSE
    assert reply_status(host, ctx) == 503
    assert metrics(host) == (0, 0, 1)
    [error] = host.get_logs(LogLevel.ERROR)
    assert error.startswith("auth_callout: cannot call 'auth': ")


def test_concurrent_requests_get_their_own_answers(host: HostEmulator) -> None:
    a, _ = start(host, REQUEST + [("authorization", "a")])
    b, _ = start(host, REQUEST + [("authorization", "b")])
    calls = {dict(c.headers)["authorization"]: c for c in host.get_http_call_attributes()}
    host.call_on_http_call_response(calls["b"].token, [(":status", "401")])
    host.call_on_http_call_response(calls["a"].token, [(":status", "200"), ("x-user", "ann")])
    assert host.get_sent_local_response(a) is None
    assert ("x-user", "ann") in host.get_current_request_headers(a)
    assert reply_status(host, b) == 401
    assert metrics(host) == (1, 1, 0)


def test_stream_gone_before_the_answer(host: HostEmulator) -> None:
    ctx, _ = start(host, REQUEST + [("authorization", "t")])
    host.complete_http_context(ctx)  # the client went away: Envoy cancels the callout
    assert host.get_http_call_attributes() == []
    assert host.get_logs(LogLevel.ERROR) == []


@pytest.mark.parametrize(
    "configuration",
    [
        b"nope",
        b"3",
        {"clustr": "auth"},
        {"cluster": ""},
        {"timeout_ms": 0},
        {"timeout_ms": "1000"},
        {"failure_status": 99},
        {"failure_status": True},
        {"user_header": None},
    ],
)
def test_invalid_configuration_is_rejected(make_host: MakeHost, configuration: Any) -> None:
    host = make_host(plugin_configuration=configuration, start=False)
    assert host.start_vm()
    assert host.start_plugin() is False
    [error] = host.get_logs(LogLevel.ERROR)
    assert error.startswith("on_configure rejected the configuration: ")
