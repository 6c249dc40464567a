"""Tests of the regex_router example, run natively and compiled (cpython backend).

Every test takes its host from ``make_host`` (the plugin's
``proxywasm_filter_host``: native, then compiled in the slow tier), with the
configuration of ``envoy.yaml`` and the host clock fixed at ``NOW_NS``.
"""

from __future__ import annotations

import json
import re
import urllib.parse
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from proxywasm import LogLevel
from proxywasm.testing import HostEmulator, HttpExchange, load_filter

HERE = Path(__file__).resolve().parent
#: The filter the plugin's proxywasm_filter_host runs, natively and compiled.
PROXYWASM_FILTER = HERE / "filter.py"

filter_module = load_filter(PROXYWASM_FILTER)
MakeHost = Callable[..., HostEmulator]

NOW_NS = 1_800_000_000_123_456_789  # 2027-01-15T08:00:00.123456789Z
NOW_TEXT = "2027-01-15T08:00:00.123+00:00"
CONFIG: dict[str, Any] = {  # envoy.yaml's, and the README's
    "routes": [
        {
            "name": "user",
            "pattern": "/api/v1/users/(?P<id>[0-9]+)",
            "rewrite": "/users/{id}",
            "methods": ["GET", "HEAD"],
            "query": {"remove": ["debug"]},
        },
        {
            "name": "search",
            "pattern": "/s/(?P<term>[^/]+)",
            "rewrite": "/search",
            "query": {"set": {"q": "{term}", "source": "router"}},
        },
        {"name": "legacy", "pattern": "/old(/.*)?", "rewrite": "/v2{1}"},
        {"name": "static", "pattern": "/static/.+"},
    ]
}
ROUTES = ("user", "search", "legacy", "static")


@pytest.fixture
def make_host(proxywasm_filter_host: MakeHost) -> MakeHost:
    """Started hosts (native and compiled) with the clock at ``NOW_NS``."""

    def make(**kwargs: Any) -> HostEmulator:
        kwargs.setdefault("plugin_configuration", CONFIG)
        host = proxywasm_filter_host(**kwargs)
        host.now_ns = NOW_NS
        return host

    return make


@pytest.fixture
def host(make_host: MakeHost) -> HostEmulator:
    return make_host()


def send(
    host: HostEmulator, path: str, *headers: tuple[str, str], method: str = "GET"
) -> HttpExchange:
    ex = host.http([(":method", method), (":path", path), (":authority", "shop"), *headers])
    assert host.get_logs(LogLevel.ERROR) == []
    return ex


def counters(host: HostEmulator) -> dict[str, int]:
    found = {name: host.get_metric(f"regex_router.routes.{name}") for name in ROUTES}
    found["unmatched"] = host.get_metric("regex_router.unmatched")
    return found


def test_envoy_yaml_configuration() -> None:
    text = (HERE / "envoy.yaml").read_text()
    match = re.search(r"^\s*value: '(.*)'\s*$", text, re.MULTILINE)
    assert match, "no plugin configuration in envoy.yaml"
    assert json.loads(match.group(1)) == CONFIG


def test_counters_exist_from_the_start(host: HostEmulator) -> None:
    assert counters(host) == {"user": 0, "search": 0, "legacy": 0, "static": 0, "unmatched": 0}


def test_rewrite_with_a_named_group(host: HostEmulator) -> None:
    ex = send(host, "/api/v1/users/42")
    assert ex.status == 200
    assert ex.upstream_header(":path") == "/users/42"
    assert ex.upstream_header("x-route") == "user"
    assert counters(host)["user"] == 1
    assert ex.messages(LogLevel.DEBUG) == ["regex_router: user: /api/v1/users/42 -> /users/42"]


def test_the_whole_path_must_match(host: HostEmulator) -> None:
    for path in ("/api/v1/users/42/orders", "/api/v1/users/", "/x/api/v1/users/42"):
        ex = send(host, path)
        assert ex.upstream_header(":path") == path
        assert ex.upstream_header("x-route") is None
    assert counters(host)["unmatched"] == 3


def test_query_kept_byte_for_byte_when_no_parameter_changes(host: HostEmulator) -> None:
    ex = send(host, "/api/v1/users/7?b=2&a=1&flag&x=a+b%2f")
    assert ex.upstream_header(":path") == "/users/7?b=2&a=1&flag&x=a+b%2f"


def test_query_remove(host: HostEmulator) -> None:
    ex = send(host, "/api/v1/users/7?debug=1&b=2&debug=&a=x%20y")
    assert ex.upstream_header(":path") == "/users/7?b=2&a=x%20y"
    assert send(host, "/api/v1/users/7?debug=1").upstream_header(":path") == "/users/7"


def test_methods(host: HostEmulator) -> None:
    assert send(host, "/api/v1/users/7", method="HEAD").upstream_header(":path") == "/users/7"
    ex = send(host, "/api/v1/users/7", method="DELETE")
    assert ex.upstream_header(":path") == "/api/v1/users/7"  # no other route matches
    assert counters(host) == {"user": 1, "search": 0, "legacy": 0, "static": 0, "unmatched": 1}


@pytest.mark.parametrize(
    ("path", "upstream"),
    [
        ("/s/shoes", "/search?q=shoes&source=router"),
        ("/s/caf%C3%A9%20au%20lait", "/search?q=caf%C3%A9%20au%20lait&source=router"),
        ("/s/a+b&c=d", "/search?q=a%2Bb%26c%3Dd&source=router"),
        ("/s/x?page=2&q=old&source=me", "/search?page=2&q=x&source=router"),
        ("/s/x?a=1+2&b", "/search?a=1%202&b=&q=x&source=router"),  # re-encoded once changed
    ],
)
def test_query_set_from_a_group(host: HostEmulator, path: str, upstream: str) -> None:
    assert send(host, path).upstream_header(":path") == upstream


@pytest.mark.parametrize(
    ("path", "upstream"),
    [("/old", "/v2"), ("/old/a/b", "/v2/a/b"), ("/old/?x=1", "/v2/?x=1"), ("/older", "/older")],
)
def test_optional_numbered_group(host: HostEmulator, path: str, upstream: str) -> None:
    assert send(host, path).upstream_header(":path") == upstream


def test_route_without_rewrite_tags_and_counts(host: HostEmulator) -> None:
    ex = send(host, "/static/app.js?v=3")
    assert ex.upstream_header(":path") == "/static/app.js?v=3"
    assert ex.upstream_header("x-route") == "static"
    assert counters(host)["static"] == 1


def test_first_matching_route_wins(make_host: MakeHost) -> None:
    config = {
        "routes": [
            {"name": "a", "pattern": "/(x)", "rewrite": "/a/{1}/{0}"},
            {"name": "b", "pattern": "/.*", "rewrite": "/b{{}}"},
        ]
    }
    host = make_host(plugin_configuration=config)
    assert send(host, "/x").upstream_header(":path") == "/a/x//x"
    ex = send(host, "/y")
    assert (ex.upstream_header(":path"), ex.upstream_header("x-route")) == ("/b{}", "b")
    assert host.get_metric("regex_router.routes.a") == 1
    assert host.get_metric("regex_router.routes.b") == 1


def test_unmatched_passes_unchanged_and_a_forged_route_header_goes(host: HostEmulator) -> None:
    ex = send(host, "/elsewhere?q=1", ("x-route", "user"))
    assert ex.status == 200
    assert ex.upstream_header(":path") == "/elsewhere?q=1"
    assert ex.upstream_header("x-route") is None
    assert counters(host)["unmatched"] == 1


def test_a_forged_route_header_is_replaced(host: HostEmulator) -> None:
    ex = send(host, "/static/a", ("x-route", "user"), ("x-route", "search"))
    assert [v for k, v in ex.upstream_headers or [] if k == "x-route"] == ["static"]


def test_unmatched_reject(make_host: MakeHost) -> None:
    host = make_host(plugin_configuration={**CONFIG, "unmatched": "reject"})
    ex = send(host, "/elsewhere")
    assert ex.upstream_headers is None
    assert (ex.status, ex.response_body) == (404, b"no route\n")
    assert ex.header("x-request-id") is not None  # the local reply is a response too
    assert send(host, "/old").status == 200


def test_request_id_added_when_absent(host: HostEmulator) -> None:
    first, second = send(host, "/static/a"), send(host, "/static/a")
    ids = [ex.upstream_header("x-request-id") for ex in (first, second)]
    assert ids[0] is not None and ids[1] is not None and ids[0] != ids[1]
    for ex, request_id in zip((first, second), ids, strict=True):
        parsed = uuid.UUID(request_id)
        assert parsed.version == 4 and str(parsed) == request_id
        assert ex.header("x-request-id") == request_id  # echoed to the client


@pytest.mark.parametrize(("sent", "kept"), [("abc-123", True), ("", False)])
def test_request_id_kept_when_present(host: HostEmulator, sent: str, kept: bool) -> None:
    ex = send(host, "/x", ("x-request-id", sent))
    got = ex.upstream_header("x-request-id")
    assert (got == sent) is kept
    assert ex.header("x-request-id") == got


def test_timestamp_from_the_host_clock(host: HostEmulator) -> None:
    assert send(host, "/x").upstream_header("x-routed-at") == NOW_TEXT
    host.now_ns = 0
    assert send(host, "/x").upstream_header("x-routed-at") == "1970-01-01T00:00:00.000+00:00"


def test_timestamp_replaces_a_client_value(host: HostEmulator) -> None:
    ex = send(host, "/x", ("x-routed-at", "yesterday"))
    assert [v for k, v in ex.upstream_headers or [] if k == "x-routed-at"] == [NOW_TEXT]


def test_header_names_are_configurable(make_host: MakeHost) -> None:
    config = {
        **CONFIG,
        "request_id_header": "X-Correlation-Id",
        "timestamp_header": "x-seen",
        "route_header": "x-matched",
    }
    host = make_host(plugin_configuration=config)
    ex = send(host, "/old/a")
    assert ex.upstream_header("x-matched") == "legacy"
    assert ex.upstream_header("x-seen") == NOW_TEXT
    assert ex.upstream_header("x-request-id") is None
    request_id = ex.upstream_header("x-correlation-id")
    assert request_id is not None and uuid.UUID(request_id).version == 4
    assert ex.header("x-correlation-id") == request_id


@pytest.mark.parametrize(
    ("configuration", "message"),
    [
        (None, 'expected a JSON object with "routes"'),
        ({"routes": []}, "routes must be a non-empty list"),
        ({"route": []}, "unknown keys ['route']"),
        ({"routes": ["x"]}, "routes[0] must be a JSON object"),
        ({"routes": [{"name": "a.b", "pattern": "/"}]}, "routes[0]: name must be letters"),
        ({"routes": [{"name": "a", "pattern": "("}]}, "route a: bad pattern: missing ), "),
        ({"routes": [{"name": "a", "pattern": 1}]}, "route a: pattern must be a string"),
        ({"routes": [{"name": "a", "pattern": "/", "to": "/"}]}, "route a: unknown keys ['to']"),
        (
            {"routes": [{"name": "a", "pattern": "/(x)", "rewrite": "/{2}"}]},
            "route a: rewrite: the pattern has no group '2'",
        ),
        (
            {"routes": [{"name": "a", "pattern": "/(x)", "rewrite": "/{id}"}]},
            "route a: rewrite: the pattern has no group 'id'",
        ),
        (
            {"routes": [{"name": "a", "pattern": "/(x)", "rewrite": "/{1!r}"}]},
            "route a: rewrite: only {name} or {number} in templates",
        ),
        (
            {"routes": [{"name": "a", "pattern": "/(x)", "rewrite": "/{1.real}"}]},
            "route a: rewrite: the pattern has no group '1.real'",
        ),
        (
            {"routes": [{"name": "a", "pattern": "/", "rewrite": "/{"}]},
            "route a: rewrite: Single '{' encountered",
        ),
        (
            {"routes": [{"name": "a", "pattern": "/", "rewrite": "x"}]},
            "route a: rewrite must be a path starting with /",
        ),
        (
            {"routes": [{"name": "a", "pattern": "/", "rewrite": "/?q=1"}]},
            "route a: rewrite must be a path starting with /, no ?",
        ),
        ({"routes": [{"name": "a", "pattern": "/", "methods": "GET"}]}, "route a: methods must"),
        ({"routes": [{"name": "a", "pattern": "/", "query": {"add": {}}}]}, "route a: query take"),
        (
            {"routes": [{"name": "a", "pattern": "/", "query": {"remove": "x"}}]},
            "route a: query.remove must be a list",
        ),
        (
            {"routes": [{"name": "a", "pattern": "/", "query": {"set": {"q": 1}}}]},
            "route a: query.set must map names to strings",
        ),
        (
            {"routes": [{"name": "a", "pattern": "/", "query": {"set": {"q": "{x}"}}}]},
            "route a: query.set.q: the pattern has no group 'x'",
        ),
        (
            {"routes": [{"name": "a", "pattern": "/"}, {"name": "a", "pattern": "/b"}]},
            "route names must be unique: ['a', 'a']",
        ),
        ({**CONFIG, "unmatched": "drop"}, 'unmatched must be "pass" or "reject"'),
        ({**CONFIG, "route_header": ":authority"}, "route_header must be a header name"),
        ({**CONFIG, "timestamp_header": ""}, "timestamp_header must be a header name"),
    ],
)
def test_bad_configuration_is_rejected(
    proxywasm_filter_host: MakeHost, configuration: Any, message: str
) -> None:
    host = proxywasm_filter_host(plugin_configuration=configuration, start=False)
    assert host.start_vm()
    assert host.start_plugin() is False  # Envoy would refuse the plugin
    [error] = host.get_logs(LogLevel.ERROR)
    assert error.startswith(f"on_configure rejected the configuration: {message}")
    assert "Traceback" not in error


# -- drawn paths ---------------------------------------------------------------------------

query_text = st.text(st.sampled_from("abcdebug=&+%20xyz/"), max_size=30)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(user=st.integers(0, 10**12), query=query_text)
def test_drawn_user_paths(user: int, query: str) -> None:
    """The user route: path rewritten, every parameter but ``debug`` kept, in order."""
    host = HostEmulator(filter_module, plugin_configuration=CONFIG)
    assert host.start_vm() and host.start_plugin()
    path = f"/api/v1/users/{user}" + (f"?{query}" if query else "")
    upstream = send(host, path).upstream_header(":path")
    assert upstream is not None
    base, _, new_query = upstream.partition("?")
    assert base == f"/users/{user}"
    sent = urllib.parse.parse_qsl(query, keep_blank_values=True)
    assert urllib.parse.parse_qsl(new_query, keep_blank_values=True) == [
        (k, v) for k, v in sent if k != "debug"
    ]
    if all(k != "debug" for k, _ in sent):
        assert upstream == f"/users/{user}" + (f"?{query}" if query else "")
