"""Tests of the header_rewrite example, run natively and compiled.

As in ``examples/add_header``: every test takes its host from ``make_host`` /
``host``, parametrised over ``BACKENDS`` (``"native"``: the classes of
``filter.py`` in this process; ``"wasm"``: ``filter.py`` compiled once per
session, run under wasmtime).
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

#: The configuration of envoy.yaml (kept in sync by test_envoy_yaml_configuration).
ENVOY_CONFIG = {
    "request": {
        "rename": {"x-api-token": "authorization"},
        "remove": ["x-internal-debug"],
        "set": {"x-forwarded-by": "header_rewrite"},
    },
    "response": {
        "remove": ["server", "x-powered-by"],
        "set": {"x-frame-options": "DENY", "x-content-type-options": "nosniff"},
        "add": [["cache-control", "no-store"]],
    },
}


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


def roundtrip(
    host: HostEmulator,
    request: list[tuple[str, str]],
    response: list[tuple[str, str]],
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """One request/response; returns (request headers upstream sees, response headers client sees)."""
    ctx = host.initialize_http_context()
    assert host.call_on_request_headers(ctx, request, end_of_stream=True) == Action.CONTINUE
    assert host.call_on_response_headers(ctx, response, end_of_stream=True) == Action.CONTINUE
    sent_up, sent_down = (
        host.get_current_request_headers(ctx),
        host.get_current_response_headers(ctx),
    )
    host.complete_http_context(ctx)
    assert host.get_logs(LogLevel.ERROR) == []
    return sent_up, sent_down


REQUEST = [(":method", "GET"), (":path", "/"), (":authority", "example.com")]


def test_envoy_yaml_configuration(host: HostEmulator) -> None:
    up, down = roundtrip(
        host,
        REQUEST + [("x-api-token", "Bearer t"), ("x-internal-debug", "1"), ("accept", "*/*")],
        [
            (":status", "200"),
            ("server", "gunicorn"),
            ("x-powered-by", "php"),
            ("content-type", "text/html"),
        ],
    )
    assert up == REQUEST + [
        ("accept", "*/*"),
        ("authorization", "Bearer t"),
        ("x-forwarded-by", "header_rewrite"),
    ]
    assert down == [
        (":status", "200"),
        ("content-type", "text/html"),
        ("x-frame-options", "DENY"),
        ("x-content-type-options", "nosniff"),
        ("cache-control", "no-store"),
    ]
    assert envoy_yaml_configuration() == ENVOY_CONFIG


def test_no_configuration_passes_everything_through(make_host: MakeHost) -> None:
    host = make_host()
    request = REQUEST + [("x-a", "1")]
    response = [(":status", "404"), ("server", "s")]
    assert roundtrip(host, request, response) == (request, response)


def test_set_replaces_every_value_and_add_keeps_them(make_host: MakeHost) -> None:
    host = make_host(
        plugin_configuration={
            "response": {"set": {"vary": "accept"}, "add": [["link", "</a>"], ["link", "</b>"]]}
        }
    )
    _, down = roundtrip(
        host,
        REQUEST,
        [(":status", "200"), ("vary", "origin"), ("vary", "cookie"), ("link", "</z>")],
    )
    assert [v for k, v in down if k == "vary"] == ["accept"]
    assert [v for k, v in down if k == "link"] == ["</z>", "</a>", "</b>"]


def test_rename_moves_every_value_and_replaces_the_target(make_host: MakeHost) -> None:
    host = make_host(plugin_configuration={"request": {"rename": [["x-old", "X-New"]]}})
    up, _ = roundtrip(
        host,
        REQUEST + [("x-old", "1"), ("x-new", "stale"), ("x-old", "2")],
        [(":status", "200")],
    )
    assert [v for k, v in up if k == "x-new"] == ["1", "2"]
    assert not [k for k, _ in up if k == "x-old"]


def test_rename_of_a_missing_header_is_a_no_op(make_host: MakeHost) -> None:
    host = make_host(plugin_configuration={"request": {"rename": {"x-old": "x-new"}}})
    up, _ = roundtrip(host, REQUEST + [("x-new", "kept")], [(":status", "200")])
    assert up == REQUEST + [("x-new", "kept")]


def test_names_are_case_insensitive(make_host: MakeHost) -> None:
    host = make_host(
        plugin_configuration={
            "response": {"remove": ["Server"], "set": {"X-Frame-Options": "DENY"}}
        }
    )
    _, down = roundtrip(host, REQUEST, [(":status", "200"), ("server", "envoy")])
    assert down == [(":status", "200"), ("x-frame-options", "DENY")]


def test_pseudo_header_can_be_set(make_host: MakeHost) -> None:
    host = make_host(plugin_configuration={"request": {"set": {":path": "/rewritten"}}})
    up, _ = roundtrip(host, REQUEST, [(":status", "200")])
    assert (":path", "/rewritten") in up and (":path", "/") not in up


def test_order_rename_remove_set_add(make_host: MakeHost) -> None:
    # rename a -> b, then remove b: nothing of a survives; set c, then add c: two values.
    host = make_host(
        plugin_configuration={
            "request": {
                "rename": {"x-a": "x-b"},
                "remove": ["x-b"],
                "set": {"x-c": "1"},
                "add": [["x-c", "2"]],
            }
        }
    )
    up, _ = roundtrip(host, REQUEST + [("x-a", "a")], [(":status", "200")])
    assert up == REQUEST + [("x-c", "1"), ("x-c", "2")]


def test_error_responses_are_rewritten_too(make_host: MakeHost) -> None:
    # An error response (here as Envoy would make it for a dead upstream) is rewritten as any other.
    host = make_host(plugin_configuration=ENVOY_CONFIG)
    ctx = host.initialize_http_context()
    host.call_on_request_headers(ctx, REQUEST, end_of_stream=True)
    host.call_on_response_headers(
        ctx, [(":status", "503"), ("server", "envoy")], end_of_stream=False
    )
    host.call_on_response_body(ctx, b"no healthy upstream", end_of_stream=True)
    down = host.get_current_response_headers(ctx)
    assert ("server", "envoy") not in down and ("x-frame-options", "DENY") in down
    assert host.get_current_response_body(ctx) == b"no healthy upstream"


@pytest.mark.parametrize(
    ("configuration", "message"),
    [
        (b"not json", "plugin configuration is not valid JSON: Expecting value (line 1, column 1)"),
        (b"[]", "header_rewrite: the configuration must be a JSON object"),
        (
            {"requests": {}},
            "header_rewrite: unknown keys ['requests'] (allowed: request, response)",
        ),
        (
            {"request": {"delete": ["x"]}},
            "header_rewrite: request: unknown keys ['delete'] (allowed: rename, remove, set, add)",
        ),
        (
            {"request": {"remove": "x-a"}},
            "header_rewrite: request.remove: expected a list of header names",
        ),
        (
            {"request": {"set": [["x-a"]]}},
            "header_rewrite: request.set: expected [name, value] pairs, got ['x-a']",
        ),
        (
            {"request": {"set": {"x-a": 1}}},
            "header_rewrite: request.set: names and values must be non-empty strings, got 'x-a': 1",
        ),
        (
            {"request": {"set": "x-a"}},
            "header_rewrite: request.set: expected an object or a list of pairs, got str",
        ),
        (
            {"response": {"remove": [":status"]}},
            "header_rewrite: response: pseudo-header ':status' can only be set",
        ),
        (
            {"request": {"rename": {":path": "x-path"}}},
            "header_rewrite: request: pseudo-header ':path' can only be set",
        ),
        (
            {"request": {"add": {"": "v"}}},
            "header_rewrite: request.add: names and values must be non-empty strings, got '': 'v'",
        ),
    ],
)
def test_invalid_configuration_is_rejected(
    make_host: MakeHost, configuration: Any, message: str
) -> None:
    host = make_host(plugin_configuration=configuration, start=False)
    assert host.start_vm()
    assert host.start_plugin() is False
    # A ConfigError: the SDK logs its message as one line, without a traceback.
    assert host.get_logs(LogLevel.ERROR) == [f"on_configure rejected the configuration: {message}"]


def test_reconfiguration_replaces_the_rules(make_host: MakeHost) -> None:
    host = make_host(plugin_configuration={"response": {"set": {"x-v": "1"}}})
    assert host.configure({"response": {"set": {"x-v": "2"}}})
    _, down = roundtrip(host, REQUEST, [(":status", "200")])
    assert ("x-v", "2") in down
    # A rejected configuration keeps the previous rules.
    assert host.configure({"response": {"set": "bad"}}) is False
    host.clear_logs()
    _, down = roundtrip(host, REQUEST, [(":status", "200")])
    assert ("x-v", "2") in down
