"""Tests of the add_header example, run natively and compiled.

Every test gets its host from the ``make_host`` / ``host`` fixtures, which are
parametrised over ``BACKENDS``: ``"native"`` (the filter's Python classes run in
this process, so pdb and coverage work) and ``"wasm"`` (``filter.py`` compiled
once per session by ``proxywasm build``, run under wasmtime by
``HostEmulator.from_wasm``). The test bodies are the same for both.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from proxywasm import Action, LogLevel
from proxywasm.testing import HostEmulator

HERE = Path(__file__).resolve().parent
#: The filter the plugin's proxywasm_filter_host runs, natively and compiled.
PROXYWASM_FILTER = HERE / "filter.py"
#: The backends that build this filter; each runs every test below.
PROXYWASM_BACKENDS = ("cpython", "compact", "componentize-py")


MakeHost = Callable[..., HostEmulator]


@pytest.fixture
def make_host(proxywasm_filter_host: MakeHost) -> MakeHost:
    """Hosts running the filter natively and compiled (the plugin's proxywasm_filter_host)."""
    return proxywasm_filter_host


@pytest.fixture
def host(make_host: MakeHost) -> HostEmulator:
    """A host running the filter with no plugin configuration."""
    return make_host()


def roundtrip(host: HostEmulator, path: str | None = "/hello") -> tuple[int, list[tuple[str, str]]]:
    """One request/response through the filter; returns (context id, response headers)."""
    ctx = host.initialize_http_context()
    request = [(":method", "GET"), (":authority", "example.com")]
    if path is not None:
        request.insert(0, (":path", path))
    assert host.call_on_request_headers(ctx, request, end_of_stream=True) == Action.CONTINUE
    assert (
        host.call_on_response_headers(ctx, [(":status", "200")], end_of_stream=True)
        == Action.CONTINUE
    )
    return ctx, host.get_current_response_headers(ctx)


def test_adds_header_to_the_response(host: HostEmulator) -> None:
    ctx, response = roundtrip(host)
    assert ("x-hello", "world") in response
    assert response[0] == (":status", "200")
    # The request goes upstream untouched.
    assert host.get_current_request_headers(ctx) == [
        (":path", "/hello"),
        (":method", "GET"),
        (":authority", "example.com"),
    ]
    assert host.get_sent_local_response(ctx) is None
    host.complete_http_context(ctx)
    assert host.get_logs(LogLevel.ERROR) == []


@pytest.mark.parametrize(
    "configuration",
    [
        b'{"value": "there"}',  # bytes, as Envoy's StringValue delivers them
        '{"value": "there"}',
        {"value": "there"},  # the emulator serialises dicts to JSON
    ],
)
def test_configured_value(make_host: MakeHost, configuration: Any) -> None:
    host = make_host(plugin_configuration=configuration)
    _, response = roundtrip(host)
    assert ("x-hello", "there") in response
    assert ("x-hello", "world") not in response


def test_configuration_of_envoy_yaml(make_host: MakeHost) -> None:
    host = make_host(plugin_configuration=b'{"value": "world"}')
    _, response = roundtrip(host)
    assert ("x-hello", "world") in response


def test_configuration_without_value_keeps_the_default(make_host: MakeHost) -> None:
    host = make_host(plugin_configuration=b"{}")
    _, response = roundtrip(host)
    assert ("x-hello", "world") in response


def test_invalid_configuration_is_rejected(make_host: MakeHost) -> None:
    host = make_host(plugin_configuration=b"not json", start=False)
    assert host.start_vm()
    assert host.start_plugin() is False  # Envoy would refuse the plugin
    # A ConfigError from get_plugin_configuration_json: one line, no traceback.
    assert host.get_logs(LogLevel.ERROR) == [
        (
            "on_configure rejected the configuration: plugin configuration is not valid JSON:"
            " Expecting value (line 1, column 1)"
        )
    ]


def test_configuration_that_is_not_an_object_is_rejected(make_host: MakeHost) -> None:
    host = make_host(plugin_configuration=b'["there"]', start=False)
    assert host.start_vm()
    assert host.start_plugin() is False
    assert host.get_logs(LogLevel.ERROR) == [
        'on_configure rejected the configuration: add_header: expected a JSON object, {"value": "..."}'
    ]


@pytest.mark.parametrize("path", ["/", "/hello", "/a/b?c=d&e=%20f"])
def test_request_path_echoed(host: HostEmulator, path: str) -> None:
    _, response = roundtrip(host, path)
    assert ("x-request-path", path) in response


def test_missing_path_echoes_slash(host: HostEmulator) -> None:
    _, response = roundtrip(host, path=None)
    assert ("x-request-path", "/") in response


def test_streams_are_independent(host: HostEmulator) -> None:
    a, b = host.initialize_http_context(), host.initialize_http_context()
    host.call_on_request_headers(a, [(":path", "/a")], end_of_stream=True)
    host.call_on_request_headers(b, [(":path", "/b")], end_of_stream=True)
    host.call_on_response_headers(b, [(":status", "404")], end_of_stream=True)
    host.call_on_response_headers(a, [(":status", "200")], end_of_stream=True)
    assert ("x-request-path", "/a") in host.get_current_response_headers(a)
    assert ("x-request-path", "/b") in host.get_current_response_headers(b)


def test_debug_log_written(host: HostEmulator) -> None:
    roundtrip(host, "/logged")
    assert host.get_logs(LogLevel.DEBUG) == ["add_header: request /logged"]
    assert host.get_logs(LogLevel.INFO) == []
    assert host.get_logs(LogLevel.ERROR) == []
