"""examples/add_header/filter.py, unchanged: natively and compiled by the compact backend.

Every test runs against both hosts and asserts the same host-visible effects
(response headers, the request upstream, local replies, logs, the plugin's
acceptance of its configuration).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from proxywasm import Action, LogLevel
from proxywasm.testing import HostEmulator, load_filter
from proxywasm_compiler.wasmbin import section_sizes

from .conftest import ADD_HEADER

pytestmark = pytest.mark.slow

filter_module = load_filter(ADD_HEADER)
MakeHost = Callable[..., HostEmulator]


@pytest.fixture(params=["native", "compact"])
def make_host(request: pytest.FixtureRequest, add_header_wasm: Path) -> MakeHost:
    """A factory of started hosts running the filter natively or compiled."""

    def make(**kwargs: Any) -> HostEmulator:
        if request.param == "native":
            host = HostEmulator(filter_module.Root, **kwargs)
        else:
            host = HostEmulator.from_wasm(str(add_header_wasm), **kwargs)
        assert host.start_vm()
        return host

    return make


def roundtrip(host: HostEmulator, path: str | None = "/hello") -> tuple[int, list[tuple[str, str]]]:
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


def test_module_is_small(add_header_wasm: Path) -> None:
    sizes = section_sizes(add_header_wasm.read_bytes())
    assert sizes["total"] < 100_000, sizes
    assert sizes["code"] < 80_000, sizes


def test_adds_header_and_logs(make_host: MakeHost) -> None:
    host = make_host()
    assert host.start_plugin()
    ctx, response = roundtrip(host)
    assert response == [(":status", "200"), ("x-hello", "world"), ("x-request-path", "/hello")]
    assert host.get_current_request_headers(ctx) == [
        (":path", "/hello"),
        (":method", "GET"),
        (":authority", "example.com"),
    ]
    assert host.get_sent_local_response(ctx) is None
    host.complete_http_context(ctx)
    assert host.get_logs(LogLevel.DEBUG) == ["add_header: request /hello"]
    assert host.get_logs(LogLevel.ERROR) == []


@pytest.mark.parametrize(
    ("configuration", "expected"),
    [
        (b'{"value": "there"}', "there"),
        ('{"value": "there"}', "there"),
        ({"value": "there"}, "there"),
        (b"{}", "world"),
        (b'{"value": 1.5, "other": [1, {"a": null}]}', "1.5"),
        (
            b' {"value": [true, false, null, -0, 1e300, "q\'s"]} ',
            '[True, False, None, 0, 1e+300, "q\'s"]',
        ),
        (b'{"value": {"k": "\\u00e9\\ud83d\\ude00"}}', "{'k': '\u00e9\U0001f600'}"),
        (b'{"value": "a", "value": "b"}', "b"),
    ],
)
def test_configured_value(make_host: MakeHost, configuration: Any, expected: str) -> None:
    host = make_host(plugin_configuration=configuration)
    assert host.start_plugin()
    _, response = roundtrip(host)
    assert ("x-hello", expected) in response


NOT_AN_OBJECT = 'add_header: expected a JSON object, {"value": "..."}'


@pytest.mark.parametrize(
    ("configuration", "error"),
    [
        (b"not json", "not valid JSON: Expecting value (line 1, column 1)"),
        (b'{"value": }', "not valid JSON: Expecting value (line 1, column 11)"),
        (
            b'{\n "a": 1,\n}',
            "not valid JSON: Expecting property name enclosed in double quotes (line 3, column 1)",
        ),
        (b'{"a" 1}', "not valid JSON: Expecting ':' delimiter (line 1, column 6)"),
        (b"[1 2]", "not valid JSON: Expecting ',' delimiter (line 1, column 4)"),
        (b'{"a": "x', "not valid JSON: Unterminated string starting at (line 1, column 7)"),
        (b"{} x", "not valid JSON: Extra data (line 1, column 4)"),
        (b"[1]", NOT_AN_OBJECT),
        (b'"s"', NOT_AN_OBJECT),
    ],
)
def test_invalid_configuration_is_rejected(
    make_host: MakeHost, configuration: bytes, error: str
) -> None:
    host = make_host(plugin_configuration=configuration)
    assert host.start_plugin() is False
    prefix = "on_configure rejected the configuration: "
    if error.startswith("not valid JSON"):
        prefix += "plugin configuration is "
    assert host.get_logs(LogLevel.ERROR) == [prefix + error]


@pytest.mark.parametrize("path", ["/", "/hello", "/a/b?c=d&e=%20f", None])
def test_request_path_echoed(make_host: MakeHost, path: str | None) -> None:
    host = make_host()
    host.start_plugin()
    _, response = roundtrip(host, path)
    assert ("x-request-path", path or "/") in response


def test_response_without_request_headers(make_host: MakeHost) -> None:
    """getattr(self, "path", "") when on_http_request_headers never ran."""
    host = make_host()
    host.start_plugin()
    ctx = host.initialize_http_context()
    host.call_on_response_headers(ctx, [(":status", "204")], end_of_stream=True)
    assert ("x-request-path", "") in host.get_current_response_headers(ctx)


def test_streams_are_independent(make_host: MakeHost) -> None:
    host = make_host()
    host.start_plugin()
    a, b = host.initialize_http_context(), host.initialize_http_context()
    host.call_on_request_headers(a, [(":path", "/a")], end_of_stream=True)
    host.call_on_request_headers(b, [(":path", "/b")], end_of_stream=True)
    host.call_on_response_headers(b, [(":status", "404")], end_of_stream=True)
    host.call_on_response_headers(a, [(":status", "200")], end_of_stream=True)
    assert ("x-request-path", "/a") in host.get_current_response_headers(a)
    assert ("x-request-path", "/b") in host.get_current_response_headers(b)


def test_memory_stays_bounded_over_many_requests(add_header_wasm: Path) -> None:
    """The collector frees request garbage between callbacks, and keeps what is live."""
    host = HostEmulator.from_wasm(str(add_header_wasm), plugin_configuration=b'{"value": "kept"}')
    host.start_vm()
    host.start_plugin()
    memory = host._vm._exports["memory"]  # the module's linear memory (private to the wasm host)
    sizes = []
    for i in range(3000):
        ctx, response = roundtrip(host, f"/{i}/" + "x" * 200)
        assert response[1] == ("x-hello", "kept")
        assert response[2] == ("x-request-path", f"/{i}/" + "x" * 200)
        host.complete_http_context(ctx)
        if i % 500 == 0:
            sizes.append(memory.data_len(host._vm.store))
    print("linear memory", sizes)
    assert sizes[-1] == sizes[-3], sizes  # no growth after warm-up
    assert sizes[-1] <= 1 << 20, sizes  # a MiB of linear memory, stack and heap together


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(categories=["L", "N", "P", "S", "Zs"]), max_size=12),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.text(st.characters(categories=["L", "N"]), max_size=6), inner, max_size=4
        )
    ),
    max_leaves=12,
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(value=json_values, spaces=st.booleans())
def test_json_configuration_differential(
    add_header_wasm: Path, value: object, spaces: bool
) -> None:
    """Any JSON value as ``value``: the header is ``str(value)``, natively and compiled."""
    text = json.dumps({"value": value}, indent=2 if spaces else None, ensure_ascii=spaces)
    results = []
    for host in (
        HostEmulator(filter_module.Root, plugin_configuration=text),
        HostEmulator.from_wasm(str(add_header_wasm), plugin_configuration=text),
    ):
        host.start_vm()
        assert host.start_plugin()
        _, response = roundtrip(host)
        results.append(response)
    assert results[0] == results[1]
    assert ("x-hello", str(value)) in results[1]


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=st.text(st.sampled_from('{}[]":, \n\\ut0-1.5eE"ab'), max_size=14))
def test_json_errors_differential(add_header_wasm: Path, text: str) -> None:
    """Arbitrary near-JSON: accepted or rejected alike, with the same last traceback line."""
    outcomes = []
    for host in (
        HostEmulator(filter_module.Root, plugin_configuration=text.encode()),
        HostEmulator.from_wasm(str(add_header_wasm), plugin_configuration=text.encode()),
    ):
        host.start_vm()
        ok = host.start_plugin()
        errors = [e.splitlines()[-1] for e in host.get_logs(LogLevel.ERROR)]
        header = roundtrip(host)[1] if ok else None
        outcomes.append((ok, errors, header))
    assert outcomes[0] == outcomes[1]
