"""Tests of the dataclass_redactor example, run natively and compiled (cpython backend).

Every test takes its host from ``make_host`` (the plugin's
``proxywasm_filter_host``: native, then compiled in the slow tier). Bodies go
through ``host.http``, which delivers them as Envoy 1.40 does over HTTP/1.1:
each chunk with ``end_of_stream=False``, then an empty one that ends the body.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from proxywasm import Action, LogLevel
from proxywasm.testing import HostEmulator, HttpExchange, load_filter

HERE = Path(__file__).resolve().parent
#: The filter the plugin's proxywasm_filter_host runs, natively and compiled.
PROXYWASM_FILTER = HERE / "filter.py"

filter_module = load_filter(PROXYWASM_FILTER)
MakeHost = Callable[..., HostEmulator]

CONFIG: dict[str, Any] = {  # envoy.yaml's, and the README's
    "fields": ["password", "ssn", "api_key"],
    "replacement": "[REDACTED]",
    "directions": ["request", "response"],
}
DOCUMENT = {
    "user": "ann",
    "Password": "hunter2",
    "profile": {"ssn": "078-05-1120", "keys": [{"API_KEY": "k1"}, {"note": "ü"}]},
    "ssn_note": "kept",
}
REDACTED = {
    "user": "ann",
    "Password": "[REDACTED]",
    "profile": {"ssn": "[REDACTED]", "keys": [{"API_KEY": "[REDACTED]"}, {"note": "ü"}]},
    "ssn_note": "kept",
}
COMPACT = json.dumps(REDACTED, ensure_ascii=False, separators=(",", ":")).encode()


@pytest.fixture
def make_host(proxywasm_filter_host: MakeHost) -> MakeHost:
    return proxywasm_filter_host


@pytest.fixture
def host(make_host: MakeHost) -> HostEmulator:
    return make_host(plugin_configuration=CONFIG)


def split(data: bytes, n: int) -> list[bytes]:
    size = -(-len(data) // n)
    return [data[i : i + size] for i in range(0, len(data), size)]


def exchange(
    host: HostEmulator,
    request: bytes | list[bytes] = b"",
    response: bytes | list[bytes] = b"",
    request_type: str | None = "application/json",
    response_type: str | None = "application/json",
    **kwargs: Any,
) -> HttpExchange:
    """A POST with ``request`` as its body, answered with ``response``; both with a length."""

    def headers(
        first: list[tuple[str, str]], body: bytes | list[bytes], content_type: str | None
    ) -> list[tuple[str, str]]:
        size = len(body) if isinstance(body, bytes) else sum(map(len, body))
        out = [*first, ("content-length", str(size))]
        return out + ([("content-type", content_type)] if content_type else [])

    ex = host.http(
        headers([(":method", "POST"), (":path", "/users")], request, request_type),
        request_body=request,
        response_headers=headers([(":status", "200")], response, response_type),
        response_body=response,
        **kwargs,
    )
    assert host.get_logs(LogLevel.ERROR) == []
    return ex


def counters(host: HostEmulator) -> tuple[int, int, int]:
    bodies, fields, unparsable = (
        host.get_metric(f"dataclass_redactor.{n}") for n in ("bodies", "fields", "unparsable")
    )
    return bodies, fields, unparsable


def test_envoy_yaml_configuration() -> None:
    text = (HERE / "envoy.yaml").read_text()
    match = re.search(r"^\s*value: '(.*)'\s*$", text, re.MULTILINE)
    assert match, "no plugin configuration in envoy.yaml"
    assert json.loads(match.group(1)) == CONFIG


def test_the_configuration_is_a_dataclass() -> None:
    config = filter_module.RedactorConfig.from_json(CONFIG)
    assert config == filter_module.RedactorConfig(
        fields=("password", "ssn", "api_key"), directions=("request", "response")
    )
    assert config.names() == {"password", "ssn", "api_key"}
    with pytest.raises(AttributeError):  # frozen
        config.fields = ()
    assert filter_module.RedactorConfig.from_json(None) == filter_module.RedactorConfig()


@pytest.mark.parametrize("pieces", [1, 3, 10])
def test_response_body_is_redacted(host: HostEmulator, pieces: int) -> None:
    raw = json.dumps(DOCUMENT, ensure_ascii=False, indent=2).encode()
    ex = exchange(host, response=split(raw, pieces))
    assert ex.status == 200
    assert ex.response_body == COMPACT
    assert ex.header("content-length") is None  # removed in the headers callback
    assert counters(host) == (1, 3, 0)
    assert ex.messages(LogLevel.DEBUG) == ["dataclass_redactor: 3 fields in the response body"]


@pytest.mark.parametrize("pieces", [1, 4])
def test_request_body_is_redacted_before_the_upstream(host: HostEmulator, pieces: int) -> None:
    raw = json.dumps(DOCUMENT).encode()
    ex = exchange(host, request=split(raw, pieces))
    assert ex.upstream_body == COMPACT
    assert ex.upstream_header("content-length") is None
    assert ex.upstream_header(":path") == "/users"


@pytest.mark.parametrize("body_end", ["empty_chunk", "last_chunk"])
def test_body_callbacks_pause_until_end_of_stream(host: HostEmulator, body_end: str) -> None:
    raw = json.dumps(DOCUMENT).encode()
    ex = exchange(host, response=split(raw, 3), body_end=body_end)
    assert ex.response_body == COMPACT


def test_callback_by_callback(host: HostEmulator) -> None:
    ctx = host.initialize_http_context()
    headers = [(":path", "/"), ("content-type", "application/json"), ("content-length", "30")]
    assert host.call_on_request_headers(ctx, headers, end_of_stream=False) == Action.CONTINUE
    assert ("content-length", "30") not in host.get_current_request_headers(ctx)
    assert host.call_on_request_body(ctx, b'{"token": "a",', end_of_stream=False) == Action.PAUSE
    assert host.call_on_request_body(ctx, b' "n": 1}', end_of_stream=False) == Action.PAUSE
    assert host.call_on_request_body(ctx, b"", end_of_stream=True) == Action.CONTINUE
    # The default configuration is not in force here (CONFIG has no "token"): passed as sent.
    assert host.get_forwarded_request_body(ctx) == b'{"token": "a", "n": 1}'
    host.complete_http_context(ctx)


def test_defaults(make_host: MakeHost) -> None:
    host = make_host()
    ex = exchange(host, request=b'{"token": "t", "password": "p"}', response=b'{"password": 1}')
    assert json.loads(ex.upstream_body or b"") == {"token": "[REDACTED]", "password": "[REDACTED]"}
    assert json.loads(ex.response_body) == {"password": "[REDACTED]"}


def test_only_the_configured_direction(make_host: MakeHost) -> None:
    host = make_host(plugin_configuration={"fields": ["secret"], "directions": ["response"]})
    sent = b'{"secret": "up"}'
    ex = exchange(host, request=sent, response=b'{"secret": "down"}')
    assert ex.upstream_body == sent
    assert ex.upstream_header("content-length") == str(len(sent))  # never touched
    assert json.loads(ex.response_body) == {"secret": "[REDACTED]"}


def test_case_sensitive_and_null_replacement(make_host: MakeHost) -> None:
    config = {"fields": ["Secret"], "case_sensitive": True, "replacement": None}
    host = make_host(plugin_configuration=config)
    ex = exchange(host, response=b'{"Secret": 1, "secret": 2, "x": [{"Secret": [3]}]}')
    assert json.loads(ex.response_body) == {"Secret": None, "secret": 2, "x": [{"Secret": None}]}


def test_nothing_to_redact_is_forwarded_byte_for_byte(host: HostEmulator) -> None:
    raw = b'{ "user" : "ann",\n  "tags": [1, 2.50, "\\u00e9"] }'
    ex = exchange(host, request=raw, response=split(raw, 2))
    assert ex.upstream_body == raw and ex.response_body == raw
    assert ex.header("content-length") is None  # gone before the body was seen
    assert counters(host) == (0, 0, 0)


@pytest.mark.parametrize(
    "content_type",
    ["application/problem+json", "application/json; charset=utf-8", "Application/JSON"],
)
def test_json_media_types(host: HostEmulator, content_type: str) -> None:
    ex = exchange(host, response=b'{"ssn": "1"}', response_type=content_type)
    assert json.loads(ex.response_body) == {"ssn": "[REDACTED]"}


@pytest.mark.parametrize("content_type", ["text/plain", "application/jsonx", "text/json", None])
def test_other_bodies_stream_untouched(host: HostEmulator, content_type: str | None) -> None:
    raw = b'{"password": "visible: not labelled as JSON"}'
    ex = exchange(
        host,
        request=split(raw, 2),
        response=raw,
        request_type=content_type,
        response_type=content_type,
    )
    assert ex.upstream_body == raw and ex.response_body == raw
    assert ex.upstream_header("content-length") == str(len(raw))
    assert ex.header("content-length") == str(len(raw))


def test_compressed_json_passes(host: HostEmulator) -> None:
    raw = b'{"password": "as if gzipped"}'
    ex = host.http(
        [(":path", "/")],
        response_headers=[
            (":status", "200"),
            ("content-type", "application/json"),
            ("content-encoding", "gzip"),
            ("content-length", str(len(raw))),
        ],
        response_body=raw,
    )
    assert ex.response_body == raw and ex.header("content-length") == str(len(raw))


@pytest.mark.parametrize("raw", [b'{"password": "p"', b"<html/>", b"\xff\xfe", b"[1, 2,]"])
def test_unparsable_json_passes_untouched(host: HostEmulator, raw: bytes) -> None:
    ex = exchange(host, response=split(raw, 2))
    assert ex.response_body == raw
    assert counters(host) == (0, 0, 1)


def test_too_deep_json_passes(host: HostEmulator) -> None:
    raw = b"[" * 5000 + b"]" * 5000
    assert exchange(host, response=raw).response_body == raw
    assert counters(host)[2] == 1


def test_deep_but_parsable_json_is_walked(host: HostEmulator) -> None:
    doc: Any = {"password": "p"}
    for _ in range(300):
        doc = [doc]
    ex = exchange(host, response=json.dumps(doc).encode())
    inner = json.loads(ex.response_body)
    for _ in range(300):
        inner = inner[0]
    assert inner == {"password": "[REDACTED]"}


def test_empty_body_and_no_body(host: HostEmulator) -> None:
    ex = exchange(host, response=b"")
    assert ex.response_body == b"" and ex.header("content-length") == "0"
    assert counters(host) == (0, 0, 0)


def test_body_that_ends_with_trailers(host: HostEmulator) -> None:
    raw = json.dumps({"password": "p", "ok": True}).encode()
    ex = host.http(
        [(":method", "POST"), (":path", "/"), ("content-type", "application/json")],
        request_body=split(raw, 2),
        request_trailers=[("x-checksum", "abc")],
        response_headers=[(":status", "200"), ("content-type", "application/json")],
        response_body=[raw],
        response_trailers=[("grpc-status", "0")],
    )
    assert json.loads(ex.upstream_body or b"") == {"password": "[REDACTED]", "ok": True}
    assert json.loads(ex.response_body) == {"password": "[REDACTED]", "ok": True}
    assert ex.upstream_trailers == [("x-checksum", "abc")]


def test_streams_are_independent(host: HostEmulator) -> None:
    a, b = host.initialize_http_context(), host.initialize_http_context()
    json_headers = [(":status", "200"), ("content-type", "application/json")]
    host.call_on_response_headers(a, json_headers, end_of_stream=False)
    host.call_on_response_headers(b, [(":status", "200")], end_of_stream=False)
    assert host.call_on_response_body(b, b'{"ssn": 1}', end_of_stream=False) == Action.CONTINUE
    assert host.call_on_response_body(a, b'{"ssn": 1}', end_of_stream=False) == Action.PAUSE
    assert host.call_on_response_body(a, b"", end_of_stream=True) == Action.CONTINUE
    assert host.get_forwarded_response_body(a) == b'{"ssn":"[REDACTED]"}'
    assert host.get_forwarded_response_body(b) == b'{"ssn": 1}'


@pytest.mark.parametrize(
    ("configuration", "message"),
    [
        (b"[1]", "expected a JSON object"),
        ({"field": ["x"]}, "unknown keys ['field'] (known: ['case_sensitive', 'directions',"),
        ({"fields": "password"}, "fields: a list"),
        ({"fields": []}, "fields: a non-empty list of non-empty key names"),
        ({"fields": ["a", ""]}, "fields: a non-empty list of non-empty key names"),
        ({"fields": [1]}, "fields: a non-empty list of non-empty key names"),
        ({"replacement": 0}, "replacement: a string or null"),
        ({"directions": ["both"]}, 'directions: a non-empty list of "request" and "response"'),
        ({"directions": []}, 'directions: a non-empty list of "request" and "response"'),
        ({"directions": "request"}, "directions: a list"),
        ({"case_sensitive": "yes"}, "case_sensitive: true or false"),
    ],
)
def test_bad_configuration_is_rejected(
    make_host: MakeHost, configuration: Any, message: str
) -> None:
    host = make_host(plugin_configuration=configuration, start=False)
    assert host.start_vm()
    assert host.start_plugin() is False  # Envoy would refuse the plugin
    [error] = host.get_logs(LogLevel.ERROR)
    assert error.startswith(f"on_configure rejected the configuration: {message}")
    assert "Traceback" not in error
