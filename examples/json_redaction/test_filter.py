"""Tests of the json_redaction example, run natively and compiled.

As in ``examples/add_header``: every test takes its host from ``make_host`` /
``host``, parametrised over ``BACKENDS``.
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

ENVOY_CONFIG = {
    "fields": ["password", "ssn", "card.number", "accounts.*.iban"],
    "replacement": "[REDACTED]",
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


def respond(
    host: HostEmulator,
    chunks: list[bytes],
    content_type: str | None = "application/json",
    extra: list[tuple[str, str]] | None = None,
) -> tuple[list[tuple[str, str]], bytes, list[Action]]:
    """Send a response in ``chunks``; returns (headers sent on, body sent on, body actions)."""
    ctx = host.initialize_http_context()
    host.call_on_request_headers(ctx, [(":method", "GET"), (":path", "/user")], end_of_stream=True)
    headers = [(":status", "200"), ("content-length", str(sum(map(len, chunks))))]
    if content_type is not None:
        headers.append(("content-type", content_type))
    headers += extra or []
    assert host.call_on_response_headers(ctx, headers, end_of_stream=not chunks) == Action.CONTINUE
    actions = [
        host.call_on_response_body(ctx, chunk, end_of_stream=i == len(chunks) - 1)
        for i, chunk in enumerate(chunks)
    ]
    sent_headers = host.get_current_response_headers(ctx)
    body = host.get_forwarded_response_body(ctx)
    host.complete_http_context(ctx)
    assert host.get_logs(LogLevel.ERROR) == []
    return sent_headers, body, actions


def split(data: bytes, n: int) -> list[bytes]:
    size = -(-len(data) // n)
    return [data[i : i + size] for i in range(0, len(data), size)]


DOCUMENT = {
    "id": 7,
    "name": "Ann",
    "password": "hunter2",
    "profile": {"ssn": "078-05-1120", "tags": ["a", {"password": "x"}]},
    "card": {"number": "4111111111111111", "expiry": "12/30"},
    "accounts": [{"bank": {"iban": "DE02"}}, {"bank": {"iban": "FR76"}, "note": "ü"}],
    "number": "not a card",
}
REDACTED = {
    "id": 7,
    "name": "Ann",
    "password": "[REDACTED]",
    "profile": {"ssn": "[REDACTED]", "tags": ["a", {"password": "[REDACTED]"}]},
    "card": {"number": "[REDACTED]", "expiry": "12/30"},
    "accounts": [{"bank": {"iban": "[REDACTED]"}}, {"bank": {"iban": "[REDACTED]"}, "note": "ü"}],
    "number": "not a card",
}


def test_envoy_yaml_configuration() -> None:
    assert envoy_yaml_configuration() == ENVOY_CONFIG


@pytest.mark.parametrize("pieces", [1, 3, 10])
def test_fields_are_redacted_in_a_buffered_body(host: HostEmulator, pieces: int) -> None:
    raw = json.dumps(DOCUMENT, ensure_ascii=False).encode()
    chunks = split(raw, pieces)
    assert len(chunks) == pieces
    headers, body, actions = respond(host, chunks, "application/json; charset=utf-8")
    assert actions == [Action.PAUSE] * (pieces - 1) + [Action.CONTINUE]
    assert json.loads(body) == REDACTED
    assert "content-length" not in dict(headers)  # Envoy re-frames the new body
    assert host.get_metric("json_redaction.responses") == 1
    assert host.get_metric("json_redaction.fields") == 6


def test_compact_output(host: HostEmulator) -> None:
    _, body, _ = respond(host, [b'{ "a" : [1, 2],\n  "password" : "p", "t": "\\u00e9" }'])
    assert body == '{"a":[1,2],"password":"[REDACTED]","t":"é"}'.encode()


def test_json_without_sensitive_fields_is_forwarded_byte_for_byte(host: HostEmulator) -> None:
    raw = b'{ "id": 1,   "name": "x" }'
    headers, body, _ = respond(host, split(raw, 2))
    assert body == raw
    assert "content-length" not in dict(headers)  # removed before the body was seen
    assert host.get_metric("json_redaction.responses") == 0
    assert host.get_metric("json_redaction.fields") == 0


def test_top_level_list(host: HostEmulator) -> None:
    _, body, _ = respond(host, [b'[{"ssn": 1}, {"ssn": null}, 3, "ssn"]'])
    assert json.loads(body) == [{"ssn": "[REDACTED]"}, {"ssn": "[REDACTED]"}, 3, "ssn"]


@pytest.mark.parametrize(
    "content_type", ["text/html", "application/octet-stream", "application/jsonx", None]
)
def test_non_json_content_type_passes_through(host: HostEmulator, content_type: str | None) -> None:
    raw = b'{"password": "visible"}'
    headers, body, actions = respond(host, [raw[:5], raw[5:]], content_type)
    assert body == raw
    assert actions == [Action.CONTINUE, Action.CONTINUE]  # streamed, never buffered
    assert ("content-length", str(len(raw))) in headers


@pytest.mark.parametrize(
    "content_type", ["application/problem+json", "text/json", "Application/JSON"]
)
def test_json_media_types(host: HostEmulator, content_type: str) -> None:
    _, body, _ = respond(host, [b'{"password": "p"}'], content_type)
    assert json.loads(body) == {"password": "[REDACTED]"}


def test_compressed_json_passes_through(host: HostEmulator) -> None:
    raw = b"\x1f\x8b\x08\x00 pretend gzip"
    headers, body, actions = respond(host, [raw], extra=[("content-encoding", "gzip")])
    assert body == raw and actions == [Action.CONTINUE]
    assert ("content-length", str(len(raw))) in headers


@pytest.mark.parametrize(
    "raw", [b'{"password": "p"', b"<html>oops</html>", b"\xff\xfe\x00garbage", b'{"a": NaN']
)
def test_unparsable_json_passes_through_untouched(host: HostEmulator, raw: bytes) -> None:
    headers, body, actions = respond(host, split(raw, 2))
    assert body == raw
    assert actions == [Action.PAUSE, Action.CONTINUE]
    assert "content-length" not in dict(headers)  # already gone when the body turned out bad
    assert host.get_metric("json_redaction.unparsable") == 1
    assert host.get_metric("json_redaction.responses") == 0


def test_too_deep_json_passes_through(host: HostEmulator) -> None:
    raw = b"[" * 5000 + b"]" * 5000
    _, body, _ = respond(host, [raw])
    assert body == raw
    assert host.get_metric("json_redaction.unparsable") == 1


def test_empty_body_and_no_body(host: HostEmulator) -> None:
    headers, body, _ = respond(host, [b""])
    assert body == b""
    headers, body, _ = respond(host, [])
    assert ("content-length", "0") in headers


def test_default_configuration(make_host: MakeHost) -> None:
    host = make_host()
    _, body, _ = respond(host, [json.dumps(DOCUMENT).encode()])
    redacted = json.loads(body)
    assert redacted["password"] == redacted["profile"]["ssn"] == "[REDACTED]"
    assert redacted["card"]["number"] == "4111111111111111"


def test_paths_match_from_the_top_only(make_host: MakeHost) -> None:
    host = make_host(
        plugin_configuration={"fields": ["user.token", "*.secret"], "replacement": None}
    )
    doc = {
        "user": {"token": "t", "name": "n"},
        "other": {"user": {"token": "kept"}, "secret": "s"},
        "secret": "top",
    }
    _, body, _ = respond(host, [json.dumps(doc).encode()])
    assert json.loads(body) == {
        "user": {"token": None, "name": "n"},
        "other": {"user": {"token": "kept"}, "secret": None},
        "secret": "top",
    }


FIELDS_RULE = "json_redaction: fields must be a list of names or dotted paths"


@pytest.mark.parametrize(
    ("configuration", "message"),
    [
        (b"nope", "plugin configuration is not valid JSON: Expecting value (line 1, column 1)"),
        (b'"x"', "json_redaction: the configuration must be a JSON object"),
        ({"field": []}, "json_redaction: unknown keys ['field']"),
        ({"fields": "password"}, FIELDS_RULE),
        ({"fields": [""]}, FIELDS_RULE),
        ({"fields": ["a..b"]}, FIELDS_RULE),
        ({"fields": [1]}, FIELDS_RULE),
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
