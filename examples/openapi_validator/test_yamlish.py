"""Tests of ``yamlish.py``, the YAML subset parser of the openapi_validator example.

Unit tests of each construct and of each refusal (with its line number), and
hypothesis round trips: JSON-able data written as YAML by a small emitter here
(block and flow styles, plain and quoted scalars) parses back equal; and, when
PyYAML is installed, whatever ``yaml.safe_dump`` writes of such data too.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # the helper module next to filter.py, imported by name
try:
    import yamlish
finally:
    sys.path.remove(str(HERE))

YamlError, loads, resolve_plain = yamlish.YamlError, yamlish.loads, yamlish.resolve_plain

# -- constructs -------------------------------------------------------------------------------------

CASES: list[tuple[str, Any]] = [
    ("", None),
    ("# only a comment\n", None),
    ("---\na: 1\n...\n", {"a": 1}),
    ("a: 1\nb: two\n", {"a": 1, "b": "two"}),
    ("a:\n  b:\n    c: d\n", {"a": {"b": {"c": "d"}}}),
    ("- a\n- b\n", ["a", "b"]),
    ("a:\n- 1\n- 2\nb: 3\n", {"a": [1, 2], "b": 3}),  # a sequence at its key's indentation
    ("a:\n  - 1\n  - 2\n", {"a": [1, 2]}),
    ("- name: x\n  in: query\n- name: y\n", [{"name": "x", "in": "query"}, {"name": "y"}]),
    ("- - a\n  - b\n- - c\n", [["a", "b"], ["c"]]),
    ("-\n  a: 1\n- \n", [{"a": 1}, None]),
    ("a:\nb: ~\nc: null\nd: Null\n", {"a": None, "b": None, "c": None, "d": None}),
    (
        "t: true\nf: False\ny: yes\nn: no\non: on\n",
        {"t": True, "f": False, "y": "yes", "n": "no", "on": "on"},
    ),
    (
        "i: -12\nh: 0x1F\no: 0o17\nf: 1.5\ne: 1e3\ng: -.5\ninf: .inf\nninf: -.Inf\n",
        {
            "i": -12,
            "h": 31,
            "o": 15,
            "f": 1.5,
            "e": 1000.0,
            "g": -0.5,
            "inf": math.inf,
            "ninf": -math.inf,
        },
    ),
    ("v: 1.0.0\nd: 2024-01-01\nz: 010\n", {"v": "1.0.0", "d": "2024-01-01", "z": 10}),
    ("200: ok\n4XX: client\ntrue: t\n", {200: "ok", "4XX": "client", True: "t"}),
    (
        "a: x # comment\nb: 'x # not a comment'\nc: x#y\n",
        {"a": "x", "b": "x # not a comment", "c": "x#y"},
    ),
    ("url: http://x.example.com:8080/a\n", {"url": "http://x.example.com:8080/a"}),
    ("s: 'it''s'\n", {"s": "it's"}),
    ('d: "a\\tb\\n\\"c\\" \\u00e9 \\U0001F600 \\x41 \\/"\n', {"d": 'a\tb\n"c" é \U0001f600 A /'}),
    ('d: "\\ud83d\\ude00"\n', {"d": "\U0001f600"}),  # JSON-style surrogate pair
    ("\"quoted key\": 1\n'single': 2\n", {"quoted key": 1, "single": 2}),
    ('k: "a\n  b\n\n  c"\n', {"k": "a b\nc"}),
    ("k: 'a\n  b'\n", {"k": "a b"}),
    ('k: "a \\\n  b"\n', {"k": "a b"}),
    ("k: plain\n  continued\n\n  here\nnext: 1\n", {"k": "plain continued\nhere", "next": 1}),
    ("k: |\n  line 1\n    indented\n  line 3\n", {"k": "line 1\n  indented\nline 3\n"}),
    ("k: |-\n  a\n\nn: 1\n", {"k": "a", "n": 1}),
    ("k: |+\n  a\n\nn: 1\n", {"k": "a\n\n", "n": 1}),
    (
        "k: >\n  folded\n  text\n\n  para\n    more\n  end\n",
        {"k": "folded text\npara\n  more\nend\n"},
    ),
    ("k: >-\n  a\n  b\n", {"k": "a b"}),
    ("k: |2\n    two extra\n  base\n", {"k": "  two extra\nbase\n"}),
    ("- |\n  in a list\n- x\n", ["in a list\n", "x"]),
    ("k: |\nn: 1\n", {"k": "", "n": 1}),
    (
        "f: [a, 'b c', \"d\", 1, true, null, [x], {k: v}]\n",
        {"f": ["a", "b c", "d", 1, True, None, ["x"], {"k": "v"}]},
    ),
    ("f: {a: 1, 'b': [2, 3], c: , d}\n", {"f": {"a": 1, "b": [2, 3], "c": None, "d": None}}),
    ("f: []\ng: {}\nh: [ ]\n", {"f": [], "g": {}, "h": []}),
    ("f: [a,\n  b, # comment\n  c]\nn: 1\n", {"f": ["a", "b", "c"], "n": 1}),
    ("f: {url: http://a/b, t: x:y}\n", {"f": {"url": "http://a/b", "t": "x:y"}}),
    ("[1, 2]\n", [1, 2]),
    ("just text\n", "just text"),
    ("a: 1\r\nb: 2\r\n", {"a": 1, "b": 2}),
    ("\ufeffa: 1\n", {"a": 1}),
    ("k:    spaced   \n", {"k": "spaced"}),
    ("a:\n  # comment between\n  b: 1\n", {"a": {"b": 1}}),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_construct(text: str, expected: Any) -> None:
    assert loads(text) == expected


def test_bytes_input() -> None:
    assert loads("a: é\n".encode()) == {"a": "é"}
    with pytest.raises(YamlError, match="not UTF-8"):
        loads(b"a: \xff\n")


#: Scalars that YAML 1.1 (PyYAML) and YAML 1.2 (this parser) resolve differently.
_YAML_11_DIFFERS = ("yes", "on", "0o17", "1e3", "010", "\\/", "\\ud83d")


@pytest.mark.parametrize(
    "text", [case[0] for case in CASES if not any(token in case[0] for token in _YAML_11_DIFFERS)]
)
def test_agrees_with_pyyaml_where_12_and_11_agree(text: str) -> None:
    import yaml  # type: ignore[import-untyped]  # PyYAML (dev dependency): the reference parser

    assert loads(text) == yaml.safe_load(text)


# -- refusals --------------------------------------------------------------------------------------

ERRORS = [
    ("a: &x 1\n", 1, "anchors (&name) are not supported"),
    ("a: 1\nb: *x\n", 2, "aliases (*name) are not supported"),
    ("a: !!str 1\n", 1, "tags (!tag) are not supported"),
    ("a:\n  <<: {b: 1}\n", 2, "merge keys (<<) are not supported"),
    ("? a\n: b\n", 1, "complex keys ('? ') are not supported"),
    ("%YAML 1.2\n---\na: 1\n", 1, "directives (%YAML, %TAG) are not supported"),
    ("a: 1\n---\nb: 2\n", 2, "several documents are not supported"),
    ("a:\n\tb: 1\n", 2, "tab in indentation"),
    ("a: 1\na: 2\n", 2, "duplicate key 'a'"),
    ("a: 1\n  b: 2\n", 2, "a mapping value is not allowed in a multi-line plain scalar"),
    ("a: b: c\n", 1, "a mapping value is not allowed here"),
    ("a:\n  b: 1\n c: 2\n", 3, "bad indentation of a mapping entry"),
    ("- a\nb: 1\n", 2, "unexpected content"),
    ("a: 1\n- b\n", 2, "a sequence entry where a mapping key was expected"),
    ("a: [1, 2\nb: 3\n", 2, "single-pair mappings inside a flow sequence are not supported"),
    ("a: [1, 2\n", 2, "expected ']' in a flow collection, got 'end of text'"),
    ("a: [b: 1]\n", 1, "single-pair mappings inside a flow sequence are not supported"),
    ("a: {b: 1} x\n", 1, "unexpected text after a flow collection"),
    ('a: "unterminated\n', 1, "unterminated quoted scalar"),
    ('a: "x" y\n', 1, "unexpected text after a quoted scalar"),
    ('a: "\\q"\n', 1, "unknown escape \\q"),
    ("a: |x\n  b\n", 1, "bad block scalar header"),
    ("a: - b\n", 1, "a block sequence cannot start on the line of its key"),
]


@pytest.mark.parametrize(("text", "line", "message"), ERRORS)
def test_refusal_names_the_line(text: str, line: int, message: str) -> None:
    with pytest.raises(YamlError) as info:
        loads(text)
    assert info.value.line == line, str(info.value)
    assert message in str(info.value)
    assert str(info.value).startswith(f"YAML line {line}: ")


# -- round trips ----------------------------------------------------------------------------------

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**64), 2**64),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(st.characters(codec="utf-8"), max_size=30),
    st.sampled_from(
        [
            "true",
            "null",
            "~",
            "1.5",
            "-",
            "- x",
            "a: b",
            "#x",
            "x #y",
            "'q'",
            '"q"',
            "[x]",
            "{x}",
            " lead",
            "trail ",
            "",
            "a\nb",
            "@x",
            "&a",
            "*a",
            "!t",
            "%p",
            "? x",
            "|",
            ">",
            "0x1F",
            ".inf",
        ]
    ),
)
keys = st.one_of(
    st.text(st.characters(codec="utf-8"), max_size=10),
    st.sampled_from(["200", "4XX", "$ref", "x-y", "a b"]),
)
json_data = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(keys, children, max_size=4)
    ),
    max_leaves=25,
)

_PLAIN_SAFE = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./$ -")


def scalar_text(value: Any) -> str:
    """A scalar as YAML: plain where that reads back the same, else double-quoted (JSON)."""
    if isinstance(value, str):
        plain = (
            value
            and set(value) <= _PLAIN_SAFE
            and value[0] not in " -"
            and value[-1] != " "
            and "  " not in value
            and loads(f"k: {value}\n") == {"k": value}
        )
        return value if plain else json.dumps(value, ensure_ascii=bool(len(value) % 2))
    return json.dumps(value)


def emit(value: Any, indent: int = 0, flow: bool = False) -> str:
    """YAML text of JSON-able data: block mappings/sequences, compact nested forms, flow leaves."""
    pad = " " * indent
    if isinstance(value, dict):
        if not value:
            return pad + "{}\n"
        if flow:
            return (
                pad
                + "{"
                + ", ".join(f"{json.dumps(k)}: {flow_text(v)}" for k, v in value.items())
                + "}\n"
            )
        out = ""
        for k, v in value.items():
            key = scalar_text(k)
            if isinstance(v, (dict, list)) and v:
                out += f"{pad}{key}:\n" + emit(v, indent + 2, flow=len(k) % 3 == 0)
            else:
                out += f"{pad}{key}: {flow_text(v)}\n"
        return out
    if isinstance(value, list):
        if not value:
            return pad + "[]\n"
        if flow:
            return pad + flow_text(value) + "\n"
        out = ""
        for item in value:
            if isinstance(item, (dict, list)) and item:
                nested = emit(item, indent + 2)
                out += f"{pad}- " + nested[indent + 2 :]  # compact: the first line follows the dash
            else:
                out += f"{pad}- {flow_text(item)}\n"
        return out
    return pad + scalar_text(value) + "\n"


def flow_text(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(flow_text(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)}: {flow_text(v)}" for k, v in value.items()) + "}"
    if isinstance(value, str):
        return json.dumps(value)
    return json.dumps(value)


@settings(max_examples=300, deadline=None)
@given(json_data)
def test_round_trip_of_emitted_yaml(data: Any) -> None:
    text = emit(data)
    assert loads(text) == data, text


def ambiguous_under_yaml_11(data: Any) -> bool:
    """Whether some string of ``data`` reads as a non-string under YAML 1.2 (and maybe not 1.1)."""
    if isinstance(data, str):
        return not isinstance(resolve_plain(data.strip()), str)
    if isinstance(data, list):
        return any(ambiguous_under_yaml_11(v) for v in data)
    if isinstance(data, dict):
        return any(
            ambiguous_under_yaml_11(k) or ambiguous_under_yaml_11(v) for k, v in data.items()
        )
    return False


def has_merge_key(data: Any) -> bool:
    if isinstance(data, list):
        return any(has_merge_key(v) for v in data)
    if isinstance(data, dict):
        return any(k == "<<" or has_merge_key(v) for k, v in data.items())
    return False


@settings(max_examples=300, deadline=None)
@given(
    json_data,
    st.sampled_from([None, False, True]),
    st.sampled_from([20, 80]),
    st.booleans(),
    st.sampled_from([2, 4]),
)
def test_round_trip_of_pyyaml_output(
    data: Any, flow_style: Any, width: int, unicode: bool, indent: int
) -> None:
    import yaml  # PyYAML, a dev dependency

    text = yaml.safe_dump(
        data,
        default_flow_style=flow_style,
        width=width,
        allow_unicode=unicode,
        indent=indent,
        sort_keys=False,
    )
    # PyYAML writes e.g. "0E0" plain: a string in YAML 1.1, a float in 1.2.
    assume(not ambiguous_under_yaml_11(data))
    # PyYAML writes some keys (the empty string) as complex keys, which yamlish refuses.
    assume("? " not in text)
    # A "<<" key is a YAML 1.1 merge key, refused by design (test_merge_keys_are_refused).
    assume(not has_merge_key(data))
    # PyYAML (YAML 1.1) does not always read its own output back the same (ints as sexagesimal).
    assume(yaml.safe_load(text) == data)
    assert loads(text) == data, text


def test_merge_keys_are_refused() -> None:
    """PyYAML's output for a "<<" key (once drawn by CI) is refused, naming the line and why."""
    import yaml  # PyYAML, a dev dependency

    with pytest.raises(YamlError, match=r"YAML line 1: merge keys \(<<\) are not supported"):
        loads(yaml.safe_dump({"<<": None}))
