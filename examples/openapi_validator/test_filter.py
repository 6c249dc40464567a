"""Tests of the openapi_validator filter, run natively and compiled.

As in ``examples/add_header``, every test gets its host from ``make_host``, on
top of the plugin's ``proxywasm_filter_host``: each test runs ``"native"``
(the filter's classes in this process, loaded with
``proxywasm.testing.load_filter``) and ``"wasm"`` (``filter.py`` built once
per session by ``proxywasm build`` and run under wasmtime; the slow tier).

The specification is ``petstore.yaml`` (OpenAPI 3.0), given to the filter as
YAML text, as JSON text, or as a JSON object inside the configuration.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from proxywasm import Action, LogLevel
from proxywasm.testing import HostEmulator, load_filter

HERE = Path(__file__).resolve().parent
#: The filter the plugin's proxywasm_filter_host runs, natively and compiled.
PROXYWASM_FILTER = HERE / "filter.py"
yamlish = load_filter(PROXYWASM_FILTER).openapi.yamlish  # the filter's own helper modules
KINDS = ("unknown_path", "unknown_method", "bad_parameter", "bad_body", "undocumented_status")

SPEC_YAML = (HERE / "petstore.yaml").read_text()
SPEC = yamlish.loads(SPEC_YAML)
SPEC_JSON = json.dumps(SPEC)


MakeHost = Callable[..., HostEmulator]
DEFAULT: Any = object()


@pytest.fixture
def make_host(proxywasm_filter_host: MakeHost) -> MakeHost:
    """``make_host(mode=..., spec=..., **config)`` -> a started host; ``start=False`` to start it yourself.

    Built on the plugin's ``proxywasm_filter_host``, which runs each test
    natively and compiled.
    """

    def make(*, start: bool = True, configuration: Any = DEFAULT, **config: Any) -> HostEmulator:
        if configuration is DEFAULT:
            configuration = {"spec": SPEC_YAML, "mode": "monitor", **config}
        return proxywasm_filter_host(plugin_configuration=configuration, start=start)

    return make


@pytest.fixture
def monitor(make_host: MakeHost) -> HostEmulator:
    return make_host(mode="monitor")


@pytest.fixture
def enforce(make_host: MakeHost) -> HostEmulator:
    return make_host(mode="enforce")


# -- helpers ----------------------------------------------------------------------------------


def counters(host: HostEmulator) -> dict[str, int]:
    out = {kind: host.get_metric(f"openapi_validator.violations.{kind}") for kind in KINDS}
    out["requests"] = host.get_metric("openapi_validator.requests")
    return out


def violations(host: HostEmulator) -> dict[str, int]:
    """Only the non-zero violation counters."""
    return {k: v for k, v in counters(host).items() if v and k != "requests"}


def request(
    host: HostEmulator,
    method: str,
    path: str,
    headers: list[tuple[str, str]] | None = None,
    body: bytes | list[bytes] | None = None,
    status: int | None = 200,
    content_type: str | None = "application/json",
) -> tuple[int, list[Action]]:
    """One exchange; returns (context id, the actions of the request callbacks)."""
    ctx = host.initialize_http_context()
    hdrs = [
        (":method", method),
        (":path", path),
        (":authority", "petstore.example.com"),
        *(headers or []),
    ]
    if body is not None and content_type:
        hdrs.append(("content-type", content_type))
    actions = [host.call_on_request_headers(ctx, hdrs, end_of_stream=body is None)]
    if body is not None:
        chunks = body if isinstance(body, list) else [body]
        for i, chunk in enumerate(chunks):
            actions.append(
                host.call_on_request_body(ctx, chunk, end_of_stream=i == len(chunks) - 1)
            )
    if status is not None and host.get_sent_local_response(ctx) is None:
        host.call_on_response_headers(ctx, [(":status", str(status))], end_of_stream=True)
    host.complete_http_context(ctx)
    return ctx, actions


def warnings(host: HostEmulator) -> list[str]:
    return host.get_logs(LogLevel.WARN)


def problem(host: HostEmulator, ctx: int) -> dict[str, Any]:
    reply = host.get_sent_local_response(ctx)
    assert reply is not None, "no local reply"
    assert reply.status_code == 400
    assert ("content-type", "application/problem+json") in reply.headers
    data: dict[str, Any] = json.loads(reply.body)
    return data


VALID_PET = {
    "name": "Rex",
    "tag": None,
    "status": "available",
    "birthday": "2020-02-29",
    "weight": 12.5,
    "photoUrls": ["https://img.example.com/rex.png"],
    "owner": {
        "email": "ann@example.com",
        "id": "123e4567-e89b-12d3-a456-426614174000",
        "nick": "annie",
    },
    "children": [{"name": "Puppy", "id": 7}],
}

#: (method, path, headers, body, content-type, status the upstream answers)
VALID_REQUESTS: list[tuple[str, str, list[tuple[str, str]], Any, str | None, int]] = [
    ("GET", "/pets", [], None, None, 200),
    (
        "GET",
        "/pets?limit=10&tags=a&tags=b&status=sold",
        [("x-request-id", "123e4567-e89b-12d3-a456-426614174000")],
        None,
        None,
        200,
    ),
    ("GET", "/pets/mine", [], None, None, 200),
    ("GET", "/pets/42", [], None, None, 200),
    ("DELETE", "/pets/42", [("x-api-key", "0123456789")], None, None, 204),
    ("POST", "/pets", [], VALID_PET, "application/json", 201),
    ("POST", "/pets", [], {"name": "Min"}, "application/json; charset=utf-8", 201),
    ("PUT", "/pets/3", [], {"name": "Renamed", "id": 3}, "application/json", 200),
    ("PUT", "/pets/3/photo", [], b"\x89PNG...", "image/png", 204),
    (
        "GET",
        (
            "/search?q=big+dogs&since=2024-01-31&at=2024-01-31T10:00:00.5%2B01:00&ids=1,2,3"
            "&exact=true&score=0.5&client=2001:db8::1"
        ),
        [("cookie", "a=b; session=0badc0de")],
        None,
        None,
        200,
    ),
    ("GET", "/search?q=cats&client=192.168.0.1", [], None, None, 200),
    (
        "POST",
        "/orders",
        [],
        {"petId": 1, "quantity": 2, "card": "4111111111111111"},
        "application/json",
        201,
    ),
    (
        "POST",
        "/orders",
        [],
        {"petId": 1, "quantity": 10, "iban": "DE89370400440532013000", "note": "gift"},
        "application/json",
        201,
    ),
    ("GET", "/status/200", [], None, None, 200),
]


def send_valid(host: HostEmulator) -> None:
    for method, path, headers, body, content_type, status in VALID_REQUESTS:
        data = json.dumps(body).encode() if isinstance(body, dict) else body
        ctx, actions = request(
            host, method, path, headers, data, content_type=content_type, status=status
        )
        assert host.get_sent_local_response(ctx) is None, (
            method,
            path,
            host.get_sent_local_response(ctx),
        )
        assert all(a == Action.CONTINUE for a in actions[:1]), (method, path, actions)
        if data is not None:
            assert host.get_forwarded_request_body(ctx) == data


# -- configuration ------------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["yaml", "json-text", "json-object"])
def test_spec_forms_load(make_host: MakeHost, form: str) -> None:
    spec = {"yaml": SPEC_YAML, "json-text": SPEC_JSON, "json-object": SPEC}[form]
    host = make_host(spec=spec)
    assert host.get_logs(LogLevel.INFO) == [
        "openapi_validator: OpenAPI 3.0.3 'Petstore': 10 operations, mode monitor"
    ]
    assert host.get_logs(LogLevel.ERROR) == []
    # Every counter is defined at configuration, so Envoy's /stats lists them all from the start.
    assert counters(host) == {**{k: 0 for k in KINDS}, "requests": 0}
    send_valid(host)
    assert violations(host) == {}


@pytest.mark.parametrize(
    ("configuration", "message"),
    [
        (None, "no plugin configuration"),
        (b"not json", "plugin configuration is not valid JSON"),
        (b"[1]", "plugin configuration must be a JSON object"),
        ({"mode": "monitor"}, "no 'spec' in the plugin configuration"),
        ({"spec": SPEC_JSON, "mode": "block"}, "bad mode 'block'"),
        ({"spec": SPEC_JSON, "log_limit": -1}, "bad log_limit -1"),
        ({"spec": SPEC_JSON, "spec_url": "x"}, "unknown configuration field(s): spec_url"),
        ({"spec": '{"openapi": "3.0.3", "paths": {'}, "spec is not valid JSON"),
        (
            {"spec": "openapi: 3.0.3\npaths:\n  /a:\n    get: &anchor {}\n"},
            "YAML line 4: anchors (&name) are not supported",
        ),
        ({"spec": "openapi: 3.0.3\npaths:\n  /a: {\n"}, "spec is not valid YAML"),
        ({"spec": {"paths": {}}}, "spec has no 'openapi' field"),
        ({"spec": {"swagger": "2.0", "paths": {}}}, "Swagger 2.0 documents are not supported"),
        ({"spec": {"openapi": "3.0.3"}}, "spec has no 'paths' object"),
        (
            {
                "spec": SPEC_YAML.replace(
                    "'#/components/schemas/Owner'", "'#/components/schemas/Ownr'"
                )
            },
            "dangling $ref '#/components/schemas/Ownr'",
        ),
        (
            {
                "spec": SPEC_YAML.replace(
                    "'#/components/parameters/PetId'", "'#/components/parameters/Pet'"
                )
            },
            "dangling $ref '#/components/parameters/Pet'",
        ),
        (
            {
                "spec": SPEC_YAML.replace(
                    "'#/components/requestBodies/PetBody'", "'other.yaml#/PetBody'"
                )
            },
            "only local references",
        ),
        (
            {
                "spec": {
                    "openapi": "3.0.3",
                    "paths": {},
                    "components": {
                        "schemas": {
                            "A": {"$ref": "#/components/schemas/B"},
                            "B": {"$ref": "#/components/schemas/A"},
                        }
                    },
                }
            },
            "$ref cycle",
        ),
        (
            {
                "spec": {
                    "openapi": "3.0.3",
                    "paths": {
                        "/a": {
                            "get": {
                                "parameters": [
                                    {
                                        "name": "x",
                                        "in": "query",
                                        "schema": {"type": "string", "pattern": "(unclosed"},
                                    }
                                ]
                            }
                        }
                    },
                }
            },
            "bad pattern '(unclosed'",
        ),
    ],
)
def test_broken_configuration_refuses_the_plugin(
    make_host: MakeHost, configuration: Any, message: str
) -> None:
    host = make_host(configuration=configuration, start=False)
    assert host.start_vm()
    assert host.start_plugin() is False
    [error] = host.get_logs(LogLevel.ERROR)
    assert error.startswith("on_configure rejected the configuration: ")
    assert message in error
    assert "\n" not in error  # one line, no traceback


# -- matching -------------------------------------------------------------------------------------


def test_valid_traffic_counts_requests_only(monitor: HostEmulator) -> None:
    send_valid(monitor)
    assert counters(monitor)["requests"] == len(VALID_REQUESTS)
    assert violations(monitor) == {}
    assert warnings(monitor) == []


def test_unknown_path_and_method(monitor: HostEmulator) -> None:
    request(monitor, "GET", "/dogs")
    request(monitor, "GET", "/pets/1/owner")
    request(monitor, "GET", "/pets/")  # trailing slash: a different path
    assert violations(monitor) == {"unknown_path": 3}
    request(monitor, "PATCH", "/pets/1")
    assert violations(monitor) == {"unknown_path": 3, "unknown_method": 1}
    assert (
        warnings(monitor)[0]
        == 'openapi_validator: GET /dogs: unknown_path: path: no path of the specification matches "/dogs"'
    )
    assert warnings(monitor)[3] == (
        "openapi_validator: PATCH /pets/1: unknown_method: request: "
        "method PATCH is not documented for /pets/{petId} (documented: GET, PUT, DELETE)"
    )


def test_concrete_path_wins_over_template(monitor: HostEmulator) -> None:
    request(monitor, "GET", "/pets/mine")  # {petId} would refuse "mine" as an integer
    assert violations(monitor) == {}


# -- parameters -------------------------------------------------------------------------------------

BAD_PARAMETERS = [
    ("GET", "/pets?limit=0", [], "query parameter 'limit': 0 is less than the minimum 1"),
    ("GET", "/pets?limit=ten", [], "query parameter 'limit': expected integer, got string"),
    ("GET", "/pets?limit=2147483648", [], "greater than the maximum 100"),
    (
        "GET",
        "/pets?tags=a&tags=b&tags=c&tags=d",
        [],
        "query parameter 'tags': has 4 items, more than 3",
    ),
    (
        "GET",
        "/pets?tags=",
        [],
        "query parameter 'tags' #/0: \"\" is shorter than the minimum length 1",
    ),
    ("GET", "/pets?status=lost", [], "query parameter 'status': \"lost\" is not one of"),
    (
        "GET",
        "/pets",
        [("x-request-id", "not-a-uuid")],
        "header parameter 'X-Request-Id': \"not-a-uuid\" is not a valid uuid",
    ),
    ("GET", "/pets/0", [], "path parameter 'petId': 0 is less than the minimum 1"),
    ("GET", "/pets/rex", [], "path parameter 'petId': expected integer, got string"),
    ("DELETE", "/pets/1", [], "header parameter 'X-Api-Key': required header parameter is missing"),
    ("DELETE", "/pets/1", [("x-api-key", "short")], "is shorter than the minimum length 8"),
    ("GET", "/search", [], "query parameter 'q': required query parameter is missing"),
    ("GET", "/search?q=Dogs", [], "does not match the pattern '^[a-z ]+$'"),
    (
        "GET",
        "/search?q=ab&since=2023-02-29",
        [],
        "query parameter 'since': \"2023-02-29\" is not a valid date",
    ),
    ("GET", "/search?q=ab&at=2024-01-31T25:00:00Z", [], "is not a valid date-time"),
    ("GET", "/search?q=ab&ids=1,0", [], "query parameter 'ids' #/1: 0 is less than the minimum 1"),
    ("GET", "/search?q=ab&exact=yes", [], "query parameter 'exact': expected boolean, got string"),
    ("GET", "/search?q=ab&score=0", [], "0 is not greater than the exclusive minimum 0"),
    ("GET", "/search?q=ab&score=1.5", [], "1.5 is greater than the maximum 1"),
    ("GET", "/search?q=ab&client=999.1.1.1", [], "matches none of the 2 anyOf alternatives"),
    ("GET", "/search?q=ab", [("cookie", "session=nothex!")], "cookie parameter 'session'"),
    ("GET", "/status/99", [], "path parameter 'code': 99 is less than the minimum 100"),
]


@pytest.mark.parametrize(("method", "path", "headers", "expected"), BAD_PARAMETERS)
def test_bad_parameter(
    monitor: HostEmulator, method: str, path: str, headers: list[tuple[str, str]], expected: str
) -> None:
    ctx, actions = request(monitor, method, path, headers, status=None)
    assert actions == [Action.CONTINUE]  # monitor mode: traffic untouched
    assert monitor.get_sent_local_response(ctx) is None
    assert violations(monitor) == {"bad_parameter": 1}
    [entry, *_] = warnings(monitor)
    assert entry.startswith(f"openapi_validator: {method} {path.split('?')[0]}: bad_parameter: ")
    assert expected in entry, entry


def test_several_bad_parameters_count_the_request_once(monitor: HostEmulator) -> None:
    request(monitor, "GET", "/search?q=ab&since=yesterday&exact=maybe")
    assert violations(monitor) == {"bad_parameter": 1}
    assert len(warnings(monitor)) == 2


# -- bodies ---------------------------------------------------------------------------------------

BAD_PETS = [
    ({}, 'body #: required property "name" is missing'),
    ({"name": ""}, 'body #/name: "" is shorter than the minimum length 1'),
    ({"name": "x" * 33}, "is longer than the maximum length 32"),
    ({"name": 5}, "body #/name: expected string, got integer"),
    (
        {"name": "a", "color": "red"},
        'body #/color: property "color" is not allowed (additionalProperties: false)',
    ),
    (
        {"name": "a", "status": "lost"},
        'body #/status: "lost" is not one of ["available", "pending", "sold"]',
    ),
    ({"name": "a", "birthday": "2021-13-01"}, 'body #/birthday: "2021-13-01" is not a valid date'),
    ({"name": "a", "weight": 0}, "body #/weight: 0 is not greater than the exclusive minimum 0"),
    ({"name": "a", "weight": "heavy"}, "body #/weight: expected number, got string"),
    (
        {"name": "a", "photoUrls": ["a:b", "a:b"]},
        'body #/photoUrls/1: "a:b" is a duplicate (uniqueItems)',
    ),
    (
        {"name": "a", "photoUrls": ["a:1", "a:2", "a:3", "a:4"]},
        "body #/photoUrls: has 4 items, more than 3",
    ),
    (
        {"name": "a", "photoUrls": ["no scheme"]},
        'body #/photoUrls/0: "no scheme" is not a valid uri',
    ),
    (
        {"name": "a", "owner": {"email": "nobody"}},
        'body #/owner/email: "nobody" is not a valid email',
    ),
    ({"name": "a", "owner": {}}, 'body #/owner: required property "email" is missing'),
    (
        {"name": "a", "owner": {"email": "a@b.c", "id": "123"}},
        'body #/owner/id: "123" is not a valid uuid',
    ),
    (
        {"name": "a", "owner": {"email": "a@b.c", "nick": "far too long"}},
        'body #/owner/nick: "far too long" is longer than the maximum length 10',
    ),
    (
        {"name": "a", "children": [{"name": "b", "children": [{"name": ""}]}]},
        "body #/children/0/children/0/name",
    ),
    ({"name": "a", "id": 1.5}, "body #/id: expected integer, got number"),
    ([], "body #: expected object, got array"),
]


@pytest.mark.parametrize(("pet", "expected"), BAD_PETS)
def test_bad_body(monitor: HostEmulator, pet: Any, expected: str) -> None:
    data = json.dumps(pet).encode()
    ctx, actions = request(monitor, "POST", "/pets", body=data, status=201)
    assert actions == [Action.CONTINUE, Action.CONTINUE]
    assert monitor.get_forwarded_request_body(ctx) == data
    assert violations(monitor) == {"bad_body": 1}
    assert expected in warnings(monitor)[0], warnings(monitor)


BAD_ORDERS = [
    ({"petId": 1, "card": "4111111111111111"}, 'body #: required property "quantity" is missing'),
    (
        {"petId": 1, "quantity": 11, "card": "4111111111111111"},
        "body #/quantity: 11 is greater than the maximum 10",
    ),
    ({"petId": 1, "quantity": 1}, "body #: matches none of the 2 oneOf alternatives"),
    (
        {"petId": 1, "quantity": 1, "card": "4111111111111111", "iban": "DE89370400440532013000"},
        "body #: matches 2 of the oneOf alternatives, exactly one is required",
    ),
    (
        {"petId": 1, "quantity": 1, "card": "4111"},
        'closest: #/card: "4111" does not match the pattern',
    ),
]


@pytest.mark.parametrize(("order", "expected"), BAD_ORDERS)
def test_bad_body_composed_schemas(monitor: HostEmulator, order: Any, expected: str) -> None:
    request(monitor, "POST", "/orders", body=json.dumps(order).encode(), status=201)
    assert violations(monitor) == {"bad_body": 1}
    assert expected in warnings(monitor)[0], warnings(monitor)


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        (b'{"name": "a",', "application/json", "body: not valid JSON: "),
        (b'{"name": NaN}', "application/json", "body: not valid JSON: NaN is not JSON"),
        (b"\xff\xfe", "application/json", "body: not UTF-8"),
        (b"", "application/json", "body: required, but the request has none"),
        (
            b"name=a",
            "application/x-www-form-urlencoded",
            "body: content-type 'application/x-www-form-urlencoded' is not accepted (accepted: application/json)",
        ),
        (b'{"name": "a"}', None, "body: no content-type (accepted: application/json)"),
    ],
)
def test_bad_body_encoding(
    monitor: HostEmulator, body: bytes, content_type: str | None, expected: str
) -> None:
    request(monitor, "POST", "/pets", body=body, content_type=content_type, status=201)
    assert violations(monitor) == {"bad_body": 1}
    assert (
        warnings(monitor)[0] == f"openapi_validator: POST /pets: bad_body: {expected}"
        or expected in warnings(monitor)[0]
    )


def test_missing_required_body(monitor: HostEmulator) -> None:
    request(monitor, "POST", "/pets", status=201)  # headers with end_of_stream: no body at all
    request(monitor, "PUT", "/pets/3/photo", status=204)
    assert violations(monitor) == {"bad_body": 2}
    assert (
        warnings(monitor)[0]
        == "openapi_validator: POST /pets: bad_body: body: required, but the request has none"
    )


def test_non_json_media_type_is_not_parsed(monitor: HostEmulator) -> None:
    request(
        monitor,
        "PUT",
        "/pets/3/photo",
        body=b"\x89PNG not json",
        content_type="image/png",
        status=204,
    )
    request(monitor, "PUT", "/pets/3/photo", body=b"GIF89a", content_type="image/gif", status=204)
    assert violations(monitor) == {"bad_body": 1}
    assert (
        "content-type 'image/gif' is not accepted (accepted: image/png, image/jpeg)"
        in warnings(monitor)[0]
    )


def test_compressed_bodies_are_not_validated(make_host: MakeHost) -> None:
    for mode in ("monitor", "enforce"):
        host = make_host(mode=mode)
        ctx, actions = request(
            host,
            "POST",
            "/pets",
            [("content-encoding", "gzip")],
            body=b"\x1f\x8b\x08\x00",
            status=201,
        )
        assert actions == [Action.CONTINUE, Action.CONTINUE]
        assert host.get_sent_local_response(ctx) is None
        assert violations(host) == {}


def test_monitor_never_holds_a_chunked_body(monitor: HostEmulator) -> None:
    pieces = [b'{"name": ', b'"Rex", "col', b'or": "red"}']
    ctx, actions = request(monitor, "POST", "/pets", body=pieces, status=201)
    assert actions == [Action.CONTINUE] * 4
    assert monitor.get_forwarded_request_body(ctx) == b"".join(pieces)
    assert violations(monitor) == {"bad_body": 1}
    assert 'body #/color: property "color" is not allowed' in warnings(monitor)[0]


def test_monitor_counts_parameters_and_body_of_one_request(monitor: HostEmulator) -> None:
    request(monitor, "PUT", "/pets/0", body=b'{"name": 1}', status=200)
    assert violations(monitor) == {"bad_parameter": 1, "bad_body": 1}


def test_max_body_bytes_skips_large_bodies(make_host: MakeHost) -> None:
    for mode in ("monitor", "enforce"):
        host = make_host(mode=mode, max_body_bytes=16)
        ctx, actions = request(
            host,
            "POST",
            "/pets",
            body=[b'{"name": 1, ', b'"padding": "' + b"x" * 32 + b'"}'],
            status=201,
        )
        assert host.get_sent_local_response(ctx) is None
        assert actions[-1] == Action.CONTINUE
        assert violations(host) == {}


# -- responses ------------------------------------------------------------------------------------


def test_undocumented_status(monitor: HostEmulator) -> None:
    request(monitor, "GET", "/pets/1", status=200)
    request(monitor, "GET", "/pets/1", status=404)
    assert violations(monitor) == {}
    request(monitor, "GET", "/pets/1", status=500)
    assert violations(monitor) == {"undocumented_status": 1}
    assert warnings(monitor) == [
        (
            "openapi_validator: GET /pets/1: undocumented_status: response: "
            "status 500 is not documented for GET /pets/{petId} (documented: 200, 404)"
        )
    ]
    # 4XX covers 409; 500 is not covered.
    request(monitor, "POST", "/pets", body=b'{"name": "a"}', status=409)
    assert violations(monitor) == {"undocumented_status": 1}
    request(monitor, "POST", "/pets", body=b'{"name": "a"}', status=500)
    assert violations(monitor) == {"undocumented_status": 2}
    # default covers anything.
    request(monitor, "GET", "/pets", status=503)
    assert violations(monitor) == {"undocumented_status": 2}
    # Unknown operations have no documented statuses to check.
    request(monitor, "GET", "/nowhere", status=500)
    assert violations(monitor) == {"undocumented_status": 2, "unknown_path": 1}


def test_status_of_concurrent_streams_uses_each_operation(monitor: HostEmulator) -> None:
    a, b = monitor.initialize_http_context(), monitor.initialize_http_context()
    monitor.call_on_request_headers(
        a, [(":method", "GET"), (":path", "/pets/1")], end_of_stream=True
    )
    monitor.call_on_request_headers(
        b, [(":method", "GET"), (":path", "/status/201")], end_of_stream=True
    )
    monitor.call_on_response_headers(b, [(":status", "404")], end_of_stream=True)  # 4XX: documented
    monitor.call_on_response_headers(
        a, [(":status", "201")], end_of_stream=True
    )  # not for /pets/{petId}
    assert violations(monitor) == {"undocumented_status": 1}
    assert "GET /pets/1: undocumented_status" in warnings(monitor)[0]


# -- enforce mode ---------------------------------------------------------------------------------


def test_enforce_lets_valid_traffic_through(enforce: HostEmulator) -> None:
    send_valid(enforce)
    assert violations(enforce) == {}


def test_enforce_rejects_bad_parameter_at_headers(enforce: HostEmulator) -> None:
    ctx, actions = request(enforce, "GET", "/pets?limit=0&status=lost")
    assert actions == [Action.PAUSE]
    assert problem(enforce, ctx) == {
        "type": "urn:proxy-wasm-python:openapi-validator:request-violation",
        "title": "Request does not match the API specification",
        "status": 400,
        "detail": "query parameter 'limit': 0 is less than the minimum 1 (and 1 more)",
        "method": "GET",
        "path": "/pets",
        "operation": "listPets",
        "errors": [
            {
                "kind": "bad_parameter",
                "in": "query",
                "name": "limit",
                "detail": "0 is less than the minimum 1",
            },
            {
                "kind": "bad_parameter",
                "in": "query",
                "name": "status",
                "detail": '"lost" is not one of ["available", "pending", "sold"]',
            },
        ],
    }
    # The 400 passes through the filter's response callback: it is not an undocumented status.
    assert violations(enforce) == {"bad_parameter": 1}


def test_enforce_rejects_unknown_path_and_method(enforce: HostEmulator) -> None:
    ctx, _ = request(enforce, "GET", "/admin")
    assert problem(enforce, ctx)["errors"] == [
        {
            "kind": "unknown_path",
            "in": "path",
            "detail": 'no path of the specification matches "/admin"',
        }
    ]
    ctx, _ = request(enforce, "POST", "/pets/1", body=b"{}")
    assert problem(enforce, ctx)["errors"][0]["kind"] == "unknown_method"
    assert "operation" not in problem(enforce, ctx)
    assert violations(enforce) == {"unknown_path": 1, "unknown_method": 1}


def test_enforce_buffers_the_body_then_rejects(enforce: HostEmulator) -> None:
    pieces = [b'{"name": ', b'"Rex", "weight": ', b"-1}"]
    ctx, actions = request(enforce, "POST", "/pets", body=pieces)
    # Headers continue (a PAUSE there would stop the body callbacks in Envoy);
    # the body is held until its last chunk, validated, and refused.
    assert actions == [Action.CONTINUE, Action.PAUSE, Action.PAUSE, Action.PAUSE]
    assert enforce.get_forwarded_request_body(ctx) == b""
    body = problem(enforce, ctx)
    assert body["errors"] == [
        {
            "kind": "bad_body",
            "in": "body",
            "pointer": "#/weight",
            "detail": "-1 is not greater than the exclusive minimum 0",
        }
    ]
    assert body["detail"] == "body #/weight: -1 is not greater than the exclusive minimum 0"
    assert body["operation"] == "createPet"
    assert violations(enforce) == {"bad_body": 1}


def test_enforce_buffers_the_body_then_forwards_it(enforce: HostEmulator) -> None:
    pieces = [b'{"name": ', b'"Rex", "weight": ', b"1}"]
    ctx, actions = request(enforce, "POST", "/pets", body=pieces, status=201)
    assert actions == [Action.CONTINUE, Action.PAUSE, Action.PAUSE, Action.CONTINUE]
    assert enforce.get_forwarded_request_body(ctx) == b"".join(pieces)
    assert enforce.get_sent_local_response(ctx) is None
    assert violations(enforce) == {}


def test_enforce_validates_a_body_ended_by_trailers(enforce: HostEmulator) -> None:
    ctx = enforce.initialize_http_context()
    headers = [(":method", "POST"), (":path", "/orders"), ("content-type", "application/json")]
    assert enforce.call_on_request_headers(ctx, headers, end_of_stream=False) == Action.CONTINUE
    assert (
        enforce.call_on_request_body(
            ctx, b'{"petId": 1, "quantity": 0, "iban": "DE89370400440532013000"}'
        )
        == Action.PAUSE
    )
    assert enforce.call_on_request_trailers(ctx, [("x-checksum", "1")]) == Action.PAUSE
    assert problem(enforce, ctx)["errors"][0]["pointer"] == "#/quantity"


def test_enforce_missing_required_body(enforce: HostEmulator) -> None:
    ctx, actions = request(enforce, "POST", "/pets")
    assert actions == [Action.PAUSE]
    assert problem(enforce, ctx)["errors"] == [
        {"kind": "bad_body", "in": "body", "detail": "required, but the request has none"}
    ]


def test_enforce_does_not_touch_responses(enforce: HostEmulator) -> None:
    ctx, _ = request(enforce, "GET", "/pets/1", status=500)
    assert enforce.get_sent_local_response(ctx) is None
    assert violations(enforce) == {"undocumented_status": 1}


# -- logging --------------------------------------------------------------------------------------


def test_log_limit(make_host: MakeHost) -> None:
    host = make_host(log_limit=2)
    request(host, "GET", "/a")
    request(host, "GET", "/pets?limit=0")
    request(host, "GET", "/b")
    assert warnings(host) == [
        'openapi_validator: GET /a: unknown_path: path: no path of the specification matches "/a"',
        "openapi_validator: GET /pets: bad_parameter: query parameter 'limit': 0 is less than the minimum 1",
        "openapi_validator: log_limit (2) reached: further violations are only counted",
    ]
    assert violations(host) == {"unknown_path": 2, "bad_parameter": 1}


def test_log_limit_zero_logs_nothing(make_host: MakeHost) -> None:
    host = make_host(log_limit=0, mode="enforce")
    ctx, _ = request(host, "GET", "/a")
    assert warnings(host) == []
    assert problem(host, ctx)["errors"][0]["kind"] == "unknown_path"


# -- other specifications ------------------------------------------------------------------------------

SPEC_31 = """
openapi: 3.1.0
info: {title: Things, version: "2"}
servers:
  - url: https://api.example.com/{version}
    variables:
      version: {default: v2, enum: [v1, v2]}
paths:
  /things/{id}:
    get:
      parameters:
        - {name: id, in: path, required: true, schema: {type: string, format: uuid}}
      responses:
        2XX: {description: ok}
    post:
      parameters:
        - {name: id, in: path, required: true, schema: {type: string, format: uuid}}
      requestBody:
        content:
          application/merge-patch+json:
            schema:
              type: object
              properties:
                label: {type: [string, "null"], maxLength: 5}
                size: {type: number, exclusiveMinimum: 0, exclusiveMaximum: 10}
                kind: {const: box}
      responses:
        "204": {description: ok}
"""

UUID = "123e4567-e89b-12d3-a456-426614174000"


def test_openapi_31_with_server_base_path(make_host: MakeHost) -> None:
    host = make_host(spec=SPEC_31)
    assert host.get_logs(LogLevel.INFO) == [
        "openapi_validator: OpenAPI 3.1.0 'Things': 2 operations, mode monitor"
    ]
    request(host, "GET", f"/v2/things/{UUID}", status=201)
    request(host, "GET", f"/v1/things/{UUID}", status=299)
    assert violations(host) == {}
    request(host, "GET", f"/things/{UUID}")  # no base path
    request(host, "GET", f"/v3/things/{UUID}")  # not a server variable value
    assert violations(host) == {"unknown_path": 2}
    request(host, "GET", "/v2/things/nope", status=404)
    assert violations(host) == {"unknown_path": 2, "bad_parameter": 1, "undocumented_status": 1}
    good = json.dumps({"label": None, "size": 9.5, "kind": "box"}).encode()
    request(
        host,
        "POST",
        f"/v2/things/{UUID}",
        body=good,
        content_type="application/merge-patch+json",
        status=204,
    )
    assert violations(host) == {"unknown_path": 2, "bad_parameter": 1, "undocumented_status": 1}
    bad = json.dumps({"label": "toolong", "size": 10, "kind": "bag"}).encode()
    request(
        host,
        "POST",
        f"/v2/things/{UUID}",
        body=bad,
        content_type="application/merge-patch+json",
        status=204,
    )
    assert violations(host)["bad_body"] == 1
    logged = "\n".join(warnings(host))
    assert 'body #/label: "toolong" is longer than the maximum length 5' in logged
    assert "body #/size: 10 is not less than the exclusive maximum 10" in logged
    assert 'body #/kind: "bag" is not "box"' in logged
