"""Unit and property tests of ``openapi.py`` (natively: it is plain Python).

The schema keywords one by one, formats, parameter styles and coercion,
request matching, load-time checks, and hypothesis properties: values
generated to satisfy a generated schema validate; values pushed out of a
bound do not; parameter strings coerce back to the values they print.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # the helper modules next to filter.py, imported by name
try:
    import openapi
    from openapi import SchemaValidator, Spec, SpecError
finally:
    sys.path.remove(str(HERE))

V30 = SchemaValidator({}, version31=False)
V31 = SchemaValidator({}, version31=True)


def errors(schema: Any, value: Any, v31: bool = False) -> list[str]:
    return [f"{p}: {m}" for p, m in (V31 if v31 else V30).validate(schema, value)]


# -- keywords -----------------------------------------------------------------------------------

KEYWORD_CASES: list[tuple[Any, Any, list[str]]] = [
    ({"type": "string"}, "a", []),
    ({"type": "string"}, 1, ["#: expected string, got integer"]),
    ({"type": "integer"}, 1.0, []),
    ({"type": "integer"}, 1.5, ["#: expected integer, got number"]),
    ({"type": "integer"}, True, ["#: expected integer, got boolean"]),
    ({"type": "number"}, 3, []),
    ({"type": "boolean"}, 0, ["#: expected boolean, got integer"]),
    ({"type": "array"}, {}, ["#: expected array, got object"]),
    ({"type": "object"}, None, ["#: expected object, got null"]),
    ({"type": "string", "nullable": True}, None, []),
    ({"enum": ["a", 1, None]}, None, []),
    ({"enum": [1, 2]}, True, ["#: true is not one of [1, 2]"]),
    ({"enum": [1, 2]}, 2.0, []),
    ({"minimum": 2}, 2, []),
    ({"minimum": 2}, 1, ["#: 1 is less than the minimum 2"]),
    ({"maximum": 2}, 3, ["#: 3 is greater than the maximum 2"]),
    (
        {"minimum": 2, "exclusiveMinimum": True},
        2,
        ["#: 2 is not greater than the exclusive minimum 2"],
    ),
    (
        {"maximum": 2, "exclusiveMaximum": True},
        2,
        ["#: 2 is not less than the exclusive maximum 2"],
    ),
    ({"maximum": 2, "exclusiveMaximum": False}, 2, []),
    ({"exclusiveMinimum": 2}, 2.5, []),
    ({"exclusiveMinimum": 2}, 2, ["#: 2 is not greater than the exclusive minimum 2"]),
    ({"exclusiveMaximum": 2}, 2, ["#: 2 is not less than the exclusive maximum 2"]),
    ({"multipleOf": 3}, 9, []),
    ({"multipleOf": 0.1}, 0.3, []),
    ({"multipleOf": 3}, 10, ["#: 10 is not a multiple of 3"]),
    ({"minimum": 1}, "0", []),  # numeric keywords ignore strings
    ({"minLength": 2}, "é", ['#: "é" is shorter than the minimum length 2']),
    ({"maxLength": 2}, "abc", ['#: "abc" is longer than the maximum length 2']),
    ({"pattern": "^a+$"}, "aa", []),
    ({"pattern": "b"}, "abc", []),  # unanchored, as in ECMA-262
    ({"pattern": "^a+$"}, "ab", ["#: \"ab\" does not match the pattern '^a+$'"]),
    ({"minItems": 1}, [], ["#: has 0 items, fewer than 1"]),
    ({"maxItems": 1}, [1, 2], ["#: has 2 items, more than 1"]),
    ({"uniqueItems": True}, [1, "1", True], []),
    (
        {"uniqueItems": True},
        [{"a": 1}, {"a": 1.0}],
        ['#/1: {"a": 1.0} is a duplicate (uniqueItems)'],
    ),
    (
        {"items": {"type": "integer"}},
        [1, "x", 3, None],
        ["#/1: expected integer, got string", "#/3: expected integer, got null"],
    ),
    ({"required": ["a", "b"]}, {"a": 1}, ['#: required property "b" is missing']),
    (
        {"properties": {"a": {"type": "string"}}},
        {"a": 1, "b": 2},
        ["#/a: expected string, got integer"],
    ),
    (
        {"properties": {"a/b~c": {"type": "string"}}},
        {"a/b~c": 1},
        ["#/a~1b~0c: expected string, got integer"],
    ),
    (
        {"properties": {"a": {}}, "additionalProperties": False},
        {"a": 1, "b": 2},
        ['#/b: property "b" is not allowed (additionalProperties: false)'],
    ),
    (
        {"additionalProperties": {"type": "integer"}},
        {"a": 1, "b": "2"},
        ["#/b: expected integer, got string"],
    ),
    ({"minProperties": 1}, {}, ["#: has 0 properties, fewer than 1"]),
    ({"maxProperties": 1}, {"a": 1, "b": 2}, ["#: has 2 properties, more than 1"]),
    (
        {"patternProperties": {"^x-": {"type": "string"}}, "additionalProperties": False},
        {"x-a": "1"},
        [],
    ),
    ({"allOf": [{"minimum": 1}, {"maximum": 3}]}, 5, ["#: 5 is greater than the maximum 3"]),
    ({"anyOf": [{"type": "string"}, {"type": "integer"}]}, 1, []),
    (
        {"anyOf": [{"type": "string"}, {"minimum": 3}]},
        1,
        ["#: matches none of the 2 anyOf alternatives (closest: #: expected string, got integer)"],
    ),
    ({"oneOf": [{"type": "integer"}, {"type": "number"}]}, 1.5, []),
    (
        {"oneOf": [{"type": "integer"}, {"type": "number"}]},
        1,
        ["#: matches 2 of the oneOf alternatives, exactly one is required"],
    ),
    ({"not": {"type": "string"}}, "a", ["#: matches the schema under 'not'"]),
    ({"not": {"type": "string"}}, 1, []),
    ({"format": "int32"}, 2**31, ["#: 2147483648 is out of the int32 range"]),
    ({"format": "int32"}, -(2**31), []),
    ({"format": "int64"}, 2**63, ["#: 9223372036854775808 is out of the int64 range"]),
    ({"format": "unknown-format"}, "x", []),
    ({"readOnly": True, "type": "string"}, "x", []),
]


@pytest.mark.parametrize(("schema", "value", "expected"), KEYWORD_CASES)
def test_keyword(schema: Any, value: Any, expected: list[str]) -> None:
    assert errors(schema, value) == expected


def test_nullable_is_30_only_and_type_null_is_31() -> None:
    assert errors({"type": "string", "nullable": True}, None, v31=True) == [
        "#: expected string, got null"
    ]
    assert errors({"type": ["string", "null"]}, None, v31=True) == []
    assert errors({"type": ["string", "null"]}, 1, v31=True) == [
        "#: expected string or null, got integer"
    ]
    assert errors({"type": "string"}, None) == ["#: expected string, got null"]


def test_ref_siblings_ignored_in_30_applied_in_31() -> None:
    doc = {"components": {"schemas": {"S": {"type": "string"}}}}
    schema = {"$ref": "#/components/schemas/S", "maxLength": 1}
    assert SchemaValidator(doc).validate(schema, "abc") == []
    assert SchemaValidator(doc, version31=True).validate(schema, "abc") == [
        ("#", '"abc" is longer than the maximum length 1')
    ]


def test_31_keywords() -> None:
    assert errors({"const": 3}, 3, v31=True) == []
    assert errors({"const": 3}, 4, v31=True) == ["#: 4 is not 3"]
    assert errors(
        {"prefixItems": [{"type": "string"}], "items": {"type": "integer"}}, ["a", 1, "b"], v31=True
    ) == ["#/2: expected integer, got string"]
    assert errors(False, 1, v31=True) == ["#: no value is allowed here"]
    assert errors(True, 1, v31=True) == []


def test_read_only_not_required_in_requests_write_only_in_responses() -> None:
    schema = {
        "required": ["id", "secret"],
        "properties": {"id": {"readOnly": True}, "secret": {"writeOnly": True}},
    }
    assert V30.validate(schema, {"secret": "x"}, request=True) == []
    assert V30.validate(schema, {"id": 1}, request=False) == []
    assert V30.validate(schema, {}, request=True) == [
        ("#", 'required property "secret" is missing')
    ]


def test_recursive_schema_and_self_referencing_allof() -> None:
    doc = {
        "components": {
            "schemas": {
                "Node": {
                    "type": "object",
                    "properties": {
                        "next": {"$ref": "#/components/schemas/Node"},
                        "v": {"type": "integer"},
                    },
                },
                "Loop": {"allOf": [{"$ref": "#/components/schemas/Loop"}, {"type": "integer"}]},
            }
        }
    }
    v = SchemaValidator(doc)
    deep: dict[str, Any] = {"v": 1}
    for _ in range(30):
        deep = {"next": deep, "v": 2}
    assert v.validate({"$ref": "#/components/schemas/Node"}, deep) == []
    bad = {"next": {"next": {"v": "x"}}}
    assert v.validate({"$ref": "#/components/schemas/Node"}, bad) == [
        ("#/next/next/v", "expected integer, got string")
    ]
    # A schema that includes itself on the same value terminates.
    assert v.validate({"$ref": "#/components/schemas/Loop"}, 3) == []
    assert v.validate({"$ref": "#/components/schemas/Loop"}, "x") == [
        ("#", "expected integer, got string")
    ]


def test_nesting_deeper_than_the_limit_is_reported() -> None:
    value: Any = 1
    for _ in range(openapi.MAX_DEPTH + 5):
        value = [value]
    v = SchemaValidator(
        {"components": {"schemas": {"L": {"items": {"$ref": "#/components/schemas/L"}}}}}
    )
    [(_, message)] = v.validate({"$ref": "#/components/schemas/L"}, value)
    assert message.startswith("nested deeper than")


def test_errors_are_capped() -> None:
    assert len(V30.validate({"items": {"type": "string"}}, list(range(100)))) == openapi.MAX_ERRORS


# -- formats -------------------------------------------------------------------------------------

FORMATS = {
    "date": (
        ["2024-02-29", "2000-02-29", "1999-12-31"],
        ["2023-02-29", "1900-02-29", "2024-1-01", "2024-04-31", "2024-00-10", "x"],
    ),
    "date-time": (
        ["2024-01-31T23:59:60Z", "2024-01-31t10:00:00.123+05:30", "2024-01-31T10:00:00-00:00"],
        [
            "2024-01-31 10:00:00Z",
            "2024-01-31T10:00:00",
            "2024-01-31T24:00:00Z",
            "2024-01-31T10:00:00+25:00",
        ],
    ),
    "time": (["10:00:00Z", "23:59:59.9+01:00"], ["10:00", "10:00:00"]),
    "email": (
        ["a@b.c", "first.last+tag@example.co.uk", "x@localhost"],
        ["a", "a@", "@b.c", "a b@c.d", "a@b..c", "a@-b.c"],
    ),
    "uuid": (
        ["123e4567-e89b-12d3-a456-426614174000", "123E4567-E89B-12D3-A456-426614174000"],
        ["123e4567e89b12d3a456426614174000", "123e4567-e89b-12d3-a456-42661417400g"],
    ),
    "ipv4": (
        ["0.0.0.0", "255.255.255.255", "10.1.2.3"],
        ["256.1.1.1", "01.1.1.1", "1.1.1", "1.1.1.1.1", "a.b.c.d", "١.1.1.1"],
    ),
    "ipv6": (
        [
            "::",
            "::1",
            "2001:db8::1",
            "fe80::1:2:3:4",
            "1:2:3:4:5:6:7:8",
            "::ffff:192.0.2.1",
            "1:2:3:4:5:6:1.2.3.4",
        ],
        [
            "1:2:3:4:5:6:7:8:9",
            "1::2::3",
            "12345::",
            "g::1",
            ":1",
            "1:2:3:4:5:6:7",
            "::1.2.3.256",
            "1.2.3.4",
        ],
    ),
    "uri": (
        ["https://example.com/a?b#c", "urn:isbn:0451450523", "mailto:a@b.c"],
        ["/relative", "no scheme", "http://a b"],
    ),
    "uri-reference": (["/relative", "https://x"], ["has space"]),
    "hostname": (["example.com", "a-b.c"], ["-a.com", "a_b.com", "a" * 64 + ".com"]),
    "byte": (["", "YQ==", "YWI=", "YWJj"], ["YQ", "Y===", "!!!!"]),
    "regex": (["^a+$"], ["(unclosed"]),
}


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_format(fmt: str) -> None:
    valid, invalid = FORMATS[fmt]
    for text in valid:
        assert errors({"type": "string", "format": fmt}, text) == [], text
    for text in invalid:
        [message] = errors({"type": "string", "format": fmt}, text)
        assert message.endswith(f" is not a valid {fmt}"), text


# -- loading and matching ---------------------------------------------------------------------------


def spec(paths: dict[str, Any], **extra: Any) -> Spec:
    return Spec(
        {"openapi": "3.0.3", "info": {"title": "t", "version": "1"}, "paths": paths, **extra}
    )


OK = {"responses": {"200": {"description": "ok"}}}


def test_load_document_forms() -> None:
    doc = {"openapi": "3.1.0", "paths": {}}
    assert openapi.load_document(doc) is doc
    assert openapi.load_document(json.dumps(doc)) == doc
    assert openapi.load_document(json.dumps(doc).encode()) == doc
    assert openapi.load_document("openapi: 3.1.0\npaths: {}\n") == doc
    assert openapi.load_document(
        "paths:\n  /a:\n    get:\n      responses:\n        200: {}\n"
    ) == {"paths": {"/a": {"get": {"responses": {"200": {}}}}}}
    with pytest.raises(SpecError, match=r"spec is not valid JSON: Expecting .* \(line 1, column"):
        openapi.load_document('{"openapi": ')
    with pytest.raises(SpecError, match=r"YAML line 2: "):
        openapi.load_document("openapi: 3.0.0\n\tpaths: {}\n")
    with pytest.raises(SpecError, match="not UTF-8"):
        openapi.load_document(b"\xff")


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([], "spec must be an object"),
        ({"openapi": "2.0", "paths": {}}, "openapi '2.0' is not supported"),
        ({"openapi": "3.0.0", "paths": []}, "'paths' must be an object"),
        ({"openapi": "3.0.0", "paths": {"a": {}}}, "paths 'a': a path must start with '/'"),
        (
            {
                "openapi": "3.0.0",
                "paths": {"/a": {"get": {"parameters": [{"name": "x", "in": "body"}]}}},
            },
            "a parameter needs a 'name' and 'in'",
        ),
        (
            {
                "openapi": "3.0.0",
                "paths": {"/a": {"get": {"requestBody": {"$ref": "#/components/requestBodies/X"}}}},
            },
            "dangling $ref '#/components/requestBodies/X': no 'components' there (at #/paths/~1a/get/requestBody)",
        ),
        (
            {
                "openapi": "3.0.0",
                "paths": {},
                "components": {"schemas": {"A": {"$ref": "#/components/schemas/A"}}},
            },
            "$ref cycle at #/components/schemas/A: #/components/schemas/A -> #/components/schemas/A",
        ),
        ({"openapi": "3.0.0", "paths": {}, "x": {"$ref": 3}}, "$ref at #/x must be a string"),
    ],
)
def test_spec_errors(document: Any, message: str) -> None:
    with pytest.raises(SpecError) as info:
        Spec(document)
    assert message in str(info.value)


def test_refs_in_examples_enum_and_default_are_values_not_references() -> None:
    s = spec(
        {
            "/a": {
                "get": {
                    **OK,
                    "parameters": [
                        {
                            "name": "x",
                            "in": "query",
                            "schema": {
                                "type": "object",
                                "example": {"$ref": "nowhere"},
                                "default": {"$ref": "nowhere"},
                            },
                        }
                    ],
                }
            }
        }
    )
    assert len(s.operations) == 1


def test_matching_precedence_and_methods() -> None:
    s = spec(
        {
            "/a/{x}/c": {"get": OK},
            "/a/b/{y}": {"get": OK},
            "/a/b/c": {"post": OK},
            "/{any}": {"get": OK},
        }
    )
    assert repr(s.match("GET", "/a/b/z")[0]) == "Operation(GET /a/b/{y})"
    assert repr(s.match("GET", "/a/q/c")[0]) == "Operation(GET /a/{x}/c)"
    assert (
        s.match("GET", "/a/b/c")[2][0].kind == "unknown_method"
    )  # the concrete path wins, without GET
    assert s.match("GET", "/top")[1] == {"any": "top"}
    assert s.match("GET", "/a/b/c/d")[2][0].kind == "unknown_path"
    assert s.match("get", "/top")[0] is not None  # methods are case-insensitive


def test_server_base_paths() -> None:
    s = spec(
        {"/p": {"get": OK}},
        servers=[{"url": "https://h.example.com/api/v1/"}, {"url": "/internal"}],
    )
    assert s.match("GET", "/api/v1/p")[0] is not None
    assert s.match("GET", "/internal/p")[0] is not None
    assert s.match("GET", "/p")[2][0].kind == "unknown_path"
    assert s.match("GET", "/api/v1p")[2][0].kind == "unknown_path"
    s = spec({"/p": {"get": OK}}, servers=[{"url": "https://h.example.com"}, {"url": "/v1"}])
    assert s.match("GET", "/p")[0] is not None and s.match("GET", "/v1/p")[0] is not None


def test_documented_statuses() -> None:
    op = spec({"/a": {"get": {"responses": {"200": {}, "4xx": {}}}}}).operations[0]
    assert (
        op.documents_status("200") and op.documents_status(404) and not op.documents_status("500")
    )
    op = spec({"/a": {"get": {"responses": {"default": {}}}}}).operations[0]
    assert op.documents_status("599")
    op = spec({"/a": {"get": {}}}).operations[0]
    assert op.documents_status("500")  # no responses object: nothing to check against


# -- parameters -----------------------------------------------------------------------------------


def check(
    parameter: dict[str, Any],
    query: str = "",
    headers: dict[str, list[str]] | None = None,
    path: str = "/a",
) -> list[str]:
    template = "/a/{p}" if parameter["in"] == "path" else "/a"
    s = spec({template: {"get": {**OK, "parameters": [parameter]}}})
    op, values, found = s.match("GET", path)
    assert op is not None, found
    return [
        f"{v.where()}: {v.detail}" for v in s.check_parameters(op, values, query, headers or {})
    ]


def test_parse_query_and_unquote() -> None:
    assert openapi.parse_query("a=1&b=x+y&a=%E2%82%AC&c&&d=") == {
        "a": ["1", "€"],
        "b": ["x y"],
        "c": [""],
        "d": [""],
    }
    assert openapi.unquote("a%2Fb+c") == "a/b+c"
    assert openapi.unquote("%ff") == "\ufffd"


def test_array_styles() -> None:
    form = {
        "name": "n",
        "in": "query",
        "schema": {"type": "array", "items": {"type": "integer", "maximum": 5}},
    }
    assert check(form, "n=1&n=2") == []
    assert check(form, "n=1&n=9") == ["query parameter 'n' #/1: 9 is greater than the maximum 5"]
    assert check({**form, "explode": False}, "n=1,9") == [
        "query parameter 'n' #/1: 9 is greater than the maximum 5"
    ]
    assert check({**form, "style": "spaceDelimited", "explode": False}, "n=1%209") == [
        "query parameter 'n' #/1: 9 is greater than the maximum 5"
    ]
    assert check({**form, "style": "pipeDelimited", "explode": False}, "n=1|9") == [
        "query parameter 'n' #/1: 9 is greater than the maximum 5"
    ]
    header = {"name": "X-N", "in": "header", "schema": form["schema"]}
    assert check(header, headers={"x-n": ["1, 2", "9"]}) == [
        "header parameter 'X-N' #/2: 9 is greater than the maximum 5"
    ]
    path = {"name": "p", "in": "path", "required": True, "schema": form["schema"]}
    assert check(path, path="/a/1,2,9") == [
        "path parameter 'p' #/2: 9 is greater than the maximum 5"
    ]
    assert check({**path, "style": "label", "explode": True}, path="/a/.1.9") == [
        "path parameter 'p' #/1: 9 is greater than the maximum 5"
    ]
    assert check({**path, "style": "matrix"}, path="/a/;p=1,9") == [
        "path parameter 'p' #/1: 9 is greater than the maximum 5"
    ]


def test_object_styles() -> None:
    schema = {
        "type": "object",
        "properties": {"a": {"type": "integer"}, "b": {"type": "boolean"}},
        "additionalProperties": False,
    }
    deep = {"name": "f", "in": "query", "style": "deepObject", "explode": True, "schema": schema}
    assert check(deep, "f[a]=1&f[b]=true") == []
    assert check(deep, "f[a]=x&f[c]=1") == [
        "query parameter 'f' #/a: expected integer, got string",
        "query parameter 'f' #/c: property \"c\" is not allowed (additionalProperties: false)",
    ]
    form = {"name": "f", "in": "query", "schema": schema}
    assert check(form, "a=1&b=maybe&other=1") == [
        "query parameter 'f' #/b: expected boolean, got string"
    ]
    assert check({**form, "explode": False}, "f=a,1,b,true") == []
    header = {"name": "X-O", "in": "header", "schema": schema}
    assert check(header, headers={"x-o": ["a,1,b,yes"]}) == [
        "header parameter 'X-O' #/b: expected boolean, got string"
    ]
    assert check({**header, "explode": True}, headers={"x-o": ["a=1, b=true"]}) == []


def test_json_content_parameter() -> None:
    param = {
        "name": "filter",
        "in": "query",
        "content": {"application/json": {"schema": {"type": "object", "required": ["k"]}}},
    }
    assert check(param, "filter=%7B%22k%22%3A1%7D") == []
    assert check(param, "filter=%7B%7D") == [
        "query parameter 'filter': required property \"k\" is missing"
    ]
    assert check(param, "filter=nope")[0].startswith("query parameter 'filter': not valid JSON")


def test_allow_empty_value_and_required() -> None:
    param = {"name": "q", "in": "query", "required": True, "schema": {"type": "integer"}}
    assert check(param, "") == ["query parameter 'q': required query parameter is missing"]
    assert check(param, "q=") == ["query parameter 'q': expected integer, got string"]
    assert check({**param, "allowEmptyValue": True}, "q=") == []


def test_ignored_headers_and_case_insensitive_names() -> None:
    assert (
        check(
            {
                "name": "Content-Type",
                "in": "header",
                "required": True,
                "schema": {"type": "integer"},
            }
        )
        == []
    )
    assert (
        check(
            {"name": "X-Int", "in": "header", "schema": {"type": "integer"}},
            headers={"x-int": [" 5 "]},
        )
        == []
    )


def test_coerce() -> None:
    v = SchemaValidator({"components": {"schemas": {"I": {"type": "integer"}}}})
    assert v.coerce("5", {"$ref": "#/components/schemas/I"}) == 5
    assert v.coerce("-1.5e3", {"type": "number"}) == -1500.0
    assert v.coerce("2", {"type": "number"}) == 2 and isinstance(
        v.coerce("2", {"type": "number"}), int
    )
    assert v.coerce("true", {"type": "boolean"}) is True
    assert v.coerce("5", {"type": "string"}) == "5"
    assert v.coerce("5", {"oneOf": [{"type": "boolean"}, {"type": "integer"}]}) == 5
    assert v.coerce("2", {"enum": [1, 2]}) == 2
    assert (
        v.coerce("05", {"type": "integer"}) == "05"
    )  # not a JSON integer: stays a string, fails the type
    assert v.coerce("5", {}) == "5"


# -- bodies ---------------------------------------------------------------------------------------------


def test_body_plans() -> None:
    body = {
        "content": {"application/json": {"schema": {"type": "object"}}, "text/*": {}},
        "required": True,
    }
    s = spec(
        {
            "/a": {"post": {**OK, "requestBody": body}},
            "/b": {"post": {**OK, "requestBody": {"content": {"*/*": {}}}}},
        }
    )
    op_a, op_b = s.operations
    assert s.body_plan(op_a, "application/json", True)[1]["schema"] == {"type": "object"}
    assert s.body_plan(op_a, "text/plain", True) == (
        [],
        None,
    )  # matched by text/*, not JSON: not parsed
    assert s.body_plan(op_a, "application/xml", True)[0][0].detail.startswith(
        "content-type 'application/xml' is not accepted"
    )
    assert s.body_plan(op_a, None, False)[0][0].detail == "required, but the request has none"
    assert s.body_plan(op_b, None, False) == ([], None)
    plan = s.body_plan(op_b, "application/problem+json", True)[1]
    assert plan == {"schema": True, "required": False}
    assert (
        s.check_body(plan, b"{")
        and s.check_body(plan, b"{}") == []
        and s.check_body(plan, b"  ") == []
    )


def test_violation_rendering() -> None:
    v = openapi.Violation("bad_body", "body", "oops", pointer="#/a")
    assert v.where() == "body #/a"
    assert v.as_problem() == {"kind": "bad_body", "in": "body", "pointer": "#/a", "detail": "oops"}
    assert openapi.Violation("bad_parameter", "query", "x", "q").where() == "query parameter 'q'"


# -- properties ------------------------------------------------------------------------------------


@st.composite
def schemas(draw: st.DrawFn, depth: int = 0) -> tuple[dict[str, Any], st.SearchStrategy[Any]]:
    """A schema built from the keywords the validator knows, and a strategy of values satisfying it."""
    kinds = ["integer", "number", "string", "format", "boolean", "null", "enum"]
    if depth < 3:
        kinds += ["array", "object", "allOf", "anyOf", "oneOf"]
    kind = draw(st.sampled_from(kinds))
    if kind == "integer":
        lo = draw(st.integers(-(2**31), 2**31 - 1001))
        hi = draw(st.integers(lo, lo + 1000))
        return {"type": "integer", "minimum": lo, "maximum": hi, "format": "int32"}, st.integers(
            lo, hi
        )
    if kind == "number":
        low = draw(st.floats(-1e6, 1e6))
        return {"type": "number", "minimum": low, "exclusiveMinimum": True}, st.floats(
            low, low + 1e6, exclude_min=True
        )
    if kind == "string":
        lo = draw(st.integers(0, 5))
        hi = draw(st.integers(lo, 12))
        schema = {"type": "string", "minLength": lo, "maxLength": hi, "pattern": "^[\\s\\S]*$"}
        return schema, st.text(st.characters(codec="utf-8"), min_size=lo, max_size=hi)
    if kind == "format":
        fmt = draw(st.sampled_from(["uuid", "date", "date-time", "ipv4", "ipv6", "email"]))
        values = {
            "uuid": st.uuids().map(str),
            "date": st.dates().map(lambda d: d.isoformat()),
            "date-time": st.datetimes(timezones=st.sampled_from(OFFSETS)).map(
                lambda d: d.isoformat()
            ),
            "ipv4": st.ip_addresses(v=4).map(str),
            "ipv6": st.ip_addresses(v=6).map(str),
            "email": st.emails(),
        }[fmt]
        return {"type": "string", "format": fmt}, values
    if kind == "boolean":
        return {"type": "boolean"}, st.booleans()
    if kind == "null":
        return {"type": "string", "nullable": True}, st.none()
    if kind == "enum":
        options = draw(
            st.lists(
                st.one_of(st.integers(), st.text(max_size=3), st.none()), min_size=1, max_size=4
            )
        )
        return {"enum": options}, st.sampled_from(options)
    if kind == "array":
        item_schema, items = draw(schemas(depth + 1))
        unique = draw(st.booleans())
        schema = {"type": "array", "items": item_schema, "maxItems": 4}
        if unique:
            schema["uniqueItems"] = True
            return schema, st.lists(
                items, max_size=4, unique_by=lambda v: json.dumps(v, sort_keys=True)
            ).filter(
                lambda vs: all(not openapi._equal(a, b) for i, a in enumerate(vs) for b in vs[:i])
            )
        return schema, st.lists(items, max_size=4)
    if kind == "object":
        names = draw(
            st.lists(
                st.text(st.characters(codec="ascii"), min_size=1, max_size=5),
                unique=True,
                max_size=4,
            )
        )
        props: dict[str, Any] = {}
        required: dict[str, Any] = {}
        optional: dict[str, Any] = {}
        for name in names:
            sub, sub_values = draw(schemas(depth + 1))
            props[name] = sub
            (required if draw(st.booleans()) else optional)[name] = sub_values
        schema = {
            "type": "object",
            "properties": props,
            "required": sorted(required),
            "additionalProperties": False,
        }
        return schema, st.fixed_dictionaries(required, optional=optional)
    sub, values = draw(schemas(depth + 1))
    if kind == "allOf":
        return {"allOf": [sub, {}]}, values
    if kind == "anyOf":
        return {"anyOf": [{"not": {}}, sub]}, values
    return {"oneOf": [sub, {"not": {}}]}, values


OFFSETS = [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8))]
schema_and_value = schemas().flatmap(lambda pair: pair[1].map(lambda value: (pair[0], value)))


@settings(max_examples=200, deadline=None)
@given(schema_and_value)
def test_generated_values_validate(pair: tuple[dict[str, Any], Any]) -> None:
    schema, value = pair
    assert V30.validate(schema, value) == []
    # And through JSON, as a body arrives.
    assert V30.validate(json.loads(json.dumps(schema)), json.loads(json.dumps(value))) == []


@settings(max_examples=200, deadline=None)
@given(st.integers(-(10**6), 10**6), st.integers(0, 1000), st.integers(1, 1000))
def test_integer_bounds(lo: int, width: int, outside: int) -> None:
    schema = {"type": "integer", "minimum": lo, "maximum": lo + width}
    assert V30.is_valid(schema, lo) and V30.is_valid(schema, lo + width)
    assert V30.validate(schema, lo - outside) == [
        ("#", f"{lo - outside} is less than the minimum {lo}")
    ]
    assert V30.validate(schema, lo + width + outside) == [
        ("#", f"{lo + width + outside} is greater than the maximum {lo + width}")
    ]


@settings(max_examples=200, deadline=None)
@given(
    st.one_of(
        st.integers(-(2**70), 2**70),
        st.floats(allow_nan=False, allow_infinity=False),
        st.booleans(),
    )
)
def test_parameter_strings_coerce_back(value: Any) -> None:
    text = json.dumps(value)
    t = "boolean" if isinstance(value, bool) else "integer" if isinstance(value, int) else "number"
    coerced = V30.coerce(text, {"type": t})
    assert coerced == value and type(coerced) in ((bool,) if t == "boolean" else (int, float))
    assert V30.is_valid({"type": t}, coerced)


@settings(max_examples=100, deadline=None)
@given(st.text(st.characters(codec="utf-8"), max_size=20))
def test_unquote_inverts_percent_encoding(text: str) -> None:
    encoded = "".join(f"%{b:02X}" for b in text.encode())
    assert openapi.unquote(encoded) == text
    assert openapi.parse_query(f"k={encoded}") == {"k": [text]}
