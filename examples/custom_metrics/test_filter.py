"""Tests of the custom_metrics example, run natively and compiled.

As in ``examples/add_header``: every test takes its host from ``make_host`` /
``host``, parametrised over ``BACKENDS``. The clock is the emulator's
(``host.now_ns``), so latencies are exact.
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
PROXYWASM_BACKENDS = ("cpython", "compact")


filter_module = load_filter(PROXYWASM_FILTER)
MakeHost = Callable[..., HostEmulator]

ENVOY_CONFIG = {"prefix": "custom_metrics"}
P = "custom_metrics"
T0 = 1_700_000_000 * 10**9
MS = 10**6


@pytest.fixture
def make_host(proxywasm_filter_host: MakeHost) -> MakeHost:
    """Hosts running the filter natively and compiled (the plugin's proxywasm_filter_host)."""
    return proxywasm_filter_host


@pytest.fixture
def host(make_host: MakeHost) -> HostEmulator:
    host = make_host(plugin_configuration=ENVOY_CONFIG)
    host.now_ns = T0
    return host


def envoy_yaml_configuration() -> Any:
    """The plugin configuration envoy.yaml passes (its one-line ``value: '...'``)."""
    match = re.search(r"^\s*value: '(.*)'\s*$", (HERE / "envoy.yaml").read_text(), re.MULTILINE)
    assert match, "no plugin configuration in envoy.yaml"
    return json.loads(match.group(1))


def exchange(
    host: HostEmulator,
    method: str = "GET",
    status: str = "200",
    body: list[bytes] | None = None,
    latency_ms: int = 0,
) -> int:
    """A whole request/response; returns the context id."""
    ctx = host.initialize_http_context()
    host.call_on_request_headers(ctx, [(":method", method), (":path", "/")], end_of_stream=True)
    host.now_ns = (host.now_ns or T0) + latency_ms * MS
    chunks = body or []
    host.call_on_response_headers(ctx, [(":status", status)], end_of_stream=not chunks)
    for i, chunk in enumerate(chunks):
        assert (
            host.call_on_response_body(ctx, chunk, end_of_stream=i == len(chunks) - 1)
            == Action.CONTINUE
        )
    host.complete_http_context(ctx)
    return ctx


def test_envoy_yaml_configuration() -> None:
    assert envoy_yaml_configuration() == ENVOY_CONFIG


def test_every_counter_and_the_gauge_start_at_zero(host: HostEmulator) -> None:
    for method in (
        "GET",
        "HEAD",
        "POST",
        "PUT",
        "DELETE",
        "PATCH",
        "OPTIONS",
        "CONNECT",
        "TRACE",
        "OTHER",
    ):
        assert host.get_metric(f"{P}.requests.{method}") == 0
    for cls in ("1xx", "2xx", "3xx", "4xx", "5xx", "other"):
        assert host.get_metric(f"{P}.responses.{cls}") == 0
    assert host.get_metric(f"{P}.requests_in_flight") == 0


def test_requests_by_method(host: HostEmulator) -> None:
    for method in ["GET", "GET", "POST", "delete", "PROPFIND", "BREW"]:
        exchange(host, method=method)
    assert host.get_metric(f"{P}.requests.GET") == 2
    assert host.get_metric(f"{P}.requests.POST") == 1
    assert host.get_metric(f"{P}.requests.DELETE") == 1  # methods are case-normalised
    assert host.get_metric(f"{P}.requests.OTHER") == 2
    assert host.get_metric(f"{P}.requests.PUT") == 0


def test_responses_by_status_class(host: HostEmulator) -> None:
    for status in ["200", "204", "301", "404", "429", "503", "101", "600", "abc", "2000"]:
        exchange(host, status=status)
    expected = {"1xx": 1, "2xx": 2, "3xx": 1, "4xx": 2, "5xx": 1, "other": 3}
    assert {cls: host.get_metric(f"{P}.responses.{cls}") for cls in expected} == expected


def test_in_flight_gauge(host: HostEmulator) -> None:
    gauge = f"{P}.requests_in_flight"
    a, b = host.initialize_http_context(), host.initialize_http_context()
    host.call_on_request_headers(a, [(":method", "GET")], end_of_stream=True)
    assert host.get_metric(gauge) == 1
    host.call_on_request_headers(b, [(":method", "PUT")], end_of_stream=False)
    assert host.get_metric(gauge) == 2
    host.call_on_response_headers(a, [(":status", "200")], end_of_stream=True)
    assert host.get_metric(gauge) == 2  # the response alone does not end the stream
    host.complete_http_context(a)
    assert host.get_metric(gauge) == 1
    host.complete_http_context(b)  # e.g. the client went away: no response at all
    assert host.get_metric(gauge) == 0


def test_stream_that_never_got_request_headers_does_not_move_the_gauge(host: HostEmulator) -> None:
    ctx = host.initialize_http_context()
    host.complete_http_context(ctx)
    assert host.get_metric(f"{P}.requests_in_flight") == 0
    with pytest.raises(KeyError):  # never recorded: a histogram is defined on first use
        host.get_histogram(f"{P}.response_body_bytes")


def test_latency_histogram(host: HostEmulator) -> None:
    for latency in (0, 5, 250, 1234):
        exchange(host, latency_ms=latency)
    assert host.get_histogram(f"{P}.response_latency_ms") == [0, 5, 250, 1234]


def test_latency_of_a_clock_going_back_is_zero(host: HostEmulator) -> None:
    ctx = host.initialize_http_context()
    host.call_on_request_headers(ctx, [(":method", "GET")], end_of_stream=True)
    host.now_ns = T0 - 10 * MS
    host.call_on_response_headers(ctx, [(":status", "200")], end_of_stream=True)
    assert host.get_histogram(f"{P}.response_latency_ms") == [0]


def test_body_size_histogram(host: HostEmulator) -> None:
    exchange(host, body=[b"x" * 10, b"y" * 20, b"z"])
    exchange(host)  # no body
    exchange(host, body=[b""])
    exchange(host, status="404", body=[b"not found"])
    assert host.get_histogram(f"{P}.response_body_bytes") == [31, 0, 0, 9]


def test_4xx_response_with_a_body_is_counted(host: HostEmulator) -> None:
    # A 413 with a body, as any filter would see it. This filter sends no local reply
    # of its own, and the emulator cannot make one from another filter: that Envoy's
    # own local replies are counted is checked in tests/test_envoy_http_examples.py.
    ctx = host.initialize_http_context()
    host.call_on_request_headers(ctx, [(":method", "POST")], end_of_stream=False)
    host.call_on_response_headers(ctx, [(":status", "413")], end_of_stream=False)
    host.call_on_response_body(ctx, b"payload too large", end_of_stream=True)
    host.complete_http_context(ctx)
    assert host.get_metric(f"{P}.responses.4xx") == 1
    assert host.get_histogram(f"{P}.response_body_bytes") == [17]
    assert host.get_metric(f"{P}.requests_in_flight") == 0


def test_prefix_is_configurable(make_host: MakeHost) -> None:
    host = make_host(plugin_configuration={"prefix": "shop.api"})
    exchange(host, method="PATCH", status="201", body=[b"{}"])
    assert host.get_metric("shop.api.requests.PATCH") == 1
    assert host.get_metric("shop.api.responses.2xx") == 1
    assert host.get_histogram("shop.api.response_body_bytes") == [2]
    with pytest.raises(KeyError):
        host.get_metric(f"{P}.requests.PATCH")


def test_default_prefix_without_configuration(make_host: MakeHost) -> None:
    host = make_host()
    exchange(host)
    assert host.get_metric(f"{P}.requests.GET") == 1


PREFIX_RULE = "custom_metrics: prefix must be a non-empty string, without a leading or trailing dot"


@pytest.mark.parametrize(
    ("configuration", "message"),
    [
        (
            b"{",
            (
                "plugin configuration is not valid JSON: "
                "Expecting property name enclosed in double quotes (line 1, column 2)"
            ),
        ),
        (b"[]", 'custom_metrics: expected {"prefix": "..."}'),
        ({"prefix": ""}, PREFIX_RULE),
        ({"prefix": 3}, PREFIX_RULE),
        ({"prefix": "a."}, PREFIX_RULE),
        ({"prefix": "x", "more": 1}, 'custom_metrics: expected {"prefix": "..."}'),
    ],
)
def test_invalid_configuration_is_rejected(
    make_host: MakeHost, configuration: Any, message: str
) -> None:
    host = make_host(plugin_configuration=configuration, start=False)
    assert host.start_vm()
    assert host.start_plugin() is False
    # A ConfigError: one error line, no traceback, and no metric defined.
    assert host.get_logs(LogLevel.ERROR) == [f"on_configure rejected the configuration: {message}"]
    with pytest.raises(KeyError):
        host.get_metric(f"{P}.requests.GET")
