"""proxywasm.testing.strategies: what each strategy can and cannot generate.

The mutation run of testing/strategies.py found the strategies reached only by the
property tests, which pass with a narrower or wrong distribution. Here each one
is checked directly: ``_can`` (hypothesis finds an example with a property) and
``_always`` (no example breaks an invariant), seeded so the run is repeatable.
"""

from __future__ import annotations

import random
import re
import string
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import Phase, find, settings
from hypothesis import strategies as st
from hypothesis.errors import NoSuchExample
from proxywasm.testing import strategies as pst

# Generation only: the first example found answers; shrinking it would cost time for nothing.
CAN = settings(max_examples=400, database=None, deadline=None, phases=[Phase.generate])
ALWAYS = settings(max_examples=80, database=None, deadline=None, phases=[Phase.generate])

# RFC 7230 tchar (lower case) and VCHAR, spelled out independently of the module.
NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9a-z]+")
VCHAR = {chr(c) for c in range(0x21, 0x7F)}
PCHAR = set(string.ascii_letters + string.digits + "-._~!$&'()*+,;=:@")


def _can(strategy: st.SearchStrategy[Any], condition: Callable[[Any], bool]) -> Any:
    """An example with ``condition``: fails the test when hypothesis finds none."""
    try:
        return find(strategy, condition, settings=CAN, random=random.Random(7))
    except NoSuchExample:  # pragma: no cover - the failure this reports
        pytest.fail(f"{strategy!r} never generates such an example")


def _always(strategy: st.SearchStrategy[Any], invariant: Callable[[Any], bool]) -> None:
    try:
        bad = find(strategy, lambda x: not invariant(x), settings=ALWAYS, random=random.Random(3))
    except NoSuchExample:
        return
    pytest.fail(f"{strategy!r} generated {bad!r}")


def test_header_names() -> None:
    _always(pst.header_names(), lambda s: NAME.fullmatch(s) is not None and 1 <= len(s) <= 24)
    _can(pst.header_names(), lambda s: len(s) == 1)
    _can(pst.header_names(), lambda s: len(s) == 24)
    _can(pst.header_names(), lambda s: "~" in s)
    _always(pst.header_names(min_size=0, max_size=1), lambda s: len(s) == 1)
    _always(pst.header_names(min_size=3, max_size=4), lambda s: 3 <= len(s) <= 4)
    _can(pst.header_names(min_size=3, max_size=4), lambda s: len(s) == 3)
    assert set(pst.TCHAR) == set("!#$%&'*+-.^_`|~" + string.digits + string.ascii_lowercase)


def _value_ok(v: str) -> bool:
    return set(v) <= VCHAR | {" ", "\t"} and v == v.strip(" \t")


@pytest.mark.parametrize(("lo", "hi"), [(0, 48), (0, 1), (1, 1), (2, 2), (1, 3), (5, 9)])
def test_header_values_sizes(lo: int, hi: int) -> None:
    values = pst.header_values(lo, hi)
    _always(values, lambda v: _value_ok(v) and lo <= len(v) <= hi)
    _can(values, lambda v: len(v) == lo)
    if hi < 10:  # hypothesis rarely reaches a large max_size
        _can(values, lambda v: len(v) == hi)


def test_header_values_content() -> None:
    _can(pst.header_values(), lambda v: " " in v)
    _can(pst.header_values(), lambda v: "\t" in v)
    _can(pst.header_values(), lambda v: v.startswith("~") or v.endswith("!"))
    _always(pst.header_values(0, 0), lambda v: v == "")
    _can(pst.header_values(), lambda v: v == "")  # empty values by default


@pytest.mark.parametrize(("lo", "hi"), [(-1, 4), (3, 2)])
def test_header_values_refuse_bad_sizes(lo: int, hi: int) -> None:
    with pytest.raises(ValueError, match=f"need 0 <= min_size <= max_size, got {lo}, {hi}"):
        pst.header_values(lo, hi)


def test_headers() -> None:
    def ok(hs: list[tuple[str, str]]) -> bool:
        return all(NAME.fullmatch(k) and _value_ok(v) for k, v in hs)

    _always(pst.headers(), lambda hs: ok(hs) and len(hs) <= 10)
    _can(pst.headers(), lambda hs: len(hs) == 10)
    _can(pst.headers(), lambda hs: len(hs) == 0)
    _can(pst.headers(), lambda hs: len({k for k, _ in hs}) < len(hs))  # names repeat
    _always(pst.headers(unique=True), lambda hs: len({k for k, _ in hs}) == len(hs))
    _can(pst.headers(unique=True), lambda hs: len(hs) >= 3)
    two = pst.headers(
        names=st.sampled_from(["a", "b"]), values=st.sampled_from("xyz"), min_size=2, unique=True
    )
    _always(two, lambda hs: len({k for k, _ in hs}) == len(hs))
    _always(pst.headers(min_size=2, max_size=3), lambda hs: 2 <= len(hs) <= 3)
    fixed = pst.headers(names=st.just("x-a"), values=st.just("v"), min_size=1)
    _always(fixed, lambda hs: hs and set(hs) == {("x-a", "v")})


def test_trailers() -> None:
    _always(pst.trailers(), lambda t: 1 <= len(t) <= 4)
    _can(pst.trailers(), lambda t: len(t) == 1)
    _can(pst.trailers(), lambda t: len(t) == 4)
    _always(pst.trailers(min_size=2, max_size=2), lambda t: len(t) == 2)


def test_methods_and_schemes() -> None:
    common = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE"]
    for m in common:
        _can(pst.methods(), lambda x, m=m: x == m)
    _always(pst.methods(), lambda x: x.isascii() and x.isupper() and 1 <= len(x) <= 10)
    _can(pst.methods(), lambda x: x not in common and len(x) == 10)
    _can(pst.methods(), lambda x: x not in common and len(x) == 1)
    _always(pst.schemes(), lambda s: s in ("http", "https"))
    _can(pst.schemes(), lambda s: s == "http")
    _can(pst.schemes(), lambda s: s == "https")


def _split_authority(a: str) -> tuple[str, int | None]:
    host, sep, port = a.rpartition(":")
    return (host, int(port)) if sep else (a, None)


def test_authorities() -> None:
    def ok(a: str) -> bool:
        host, port = _split_authority(a)
        labels = host.split(".")
        return (
            (port is None or 1 <= port <= 65535)
            and 1 <= len(labels) <= 4
            and all(
                lab and set(lab) <= set(string.ascii_lowercase + string.digits) for lab in labels
            )
            and all(len(lab) <= 12 for lab in labels)
        )

    auth = pst.authorities()
    _always(auth, ok)
    _can(auth, lambda a: a == "localhost")
    _can(auth, lambda a: _split_authority(a)[1] is None)
    _can(auth, lambda a: _split_authority(a)[1] == 1)
    _can(auth, lambda a: _split_authority(a)[1] == 65535)
    _can(auth, lambda a: len(_split_authority(a)[0].split(".")) == 4)
    _can(auth, lambda a: any(len(x) == 12 for x in _split_authority(a)[0].split(".")))
    _can(
        auth, lambda a: any(len(x) == 1 and x.isalpha() for x in _split_authority(a)[0].split("."))
    )
    _can(auth, lambda a: "." not in a and not a.startswith("localhost"))  # one label

    def ipv4(a: str) -> list[int] | None:
        parts = _split_authority(a)[0].split(".")
        return (
            [int(p) for p in parts] if len(parts) == 4 and all(p.isdigit() for p in parts) else None
        )

    _can(auth, lambda a: (ip := ipv4(a)) is not None and 255 in ip)
    _can(auth, lambda a: (ip := ipv4(a)) is not None and ip[0] == 0)
    _always(auth, lambda a: (ip := ipv4(a)) is None or all(0 <= x <= 255 for x in ip))
    _can(auth, lambda a: "." in a and not a[0].isdigit())  # a DNS name


def test_paths() -> None:
    def ok(p: str, query: bool) -> bool:
        path, sep, q = p.partition("?")
        segs = path[1:].split("/")
        return (
            path.startswith("/")
            and len(segs) <= 5
            and all(set(s) <= PCHAR and len(s) <= 12 for s in segs)
            and (not sep or (query and set(q) <= PCHAR | {"/", "?"} and len(q) <= 24))
        )

    _always(pst.paths(), lambda p: ok(p, True))
    _always(pst.paths(query=False), lambda p: ok(p, False) and "?" not in p)
    _can(pst.paths(), lambda p: p == "/")
    _can(pst.paths(), lambda p: "?" in p)
    _can(pst.paths(), lambda p: p.endswith("?"))
    _can(pst.paths(), lambda p: p.count("/") == 5 and "?" not in p)
    _can(pst.paths(), lambda p: any(len(s) == 12 for s in p.partition("?")[0].split("/")))
    _can(pst.paths(query=False), lambda p: p.count("/") == 3)


def test_status_codes_and_pseudo_headers() -> None:
    _always(pst.status_codes(), lambda c: 200 <= c <= 599)
    _can(pst.status_codes(), lambda c: c == 200)
    _can(pst.status_codes(), lambda c: c == 599)
    _always(pst.status_codes(100, 101), lambda c: c in (100, 101))
    _always(
        pst.response_pseudo_headers(),
        lambda h: len(h) == 1 and h[0][0] == ":status" and 200 <= int(h[0][1]) <= 599,
    )
    _can(pst.pseudo_headers("response"), lambda h: h == [(":status", "599")])
    names = [":method", ":path", ":authority", ":scheme"]
    _always(pst.pseudo_headers(), lambda h: [k for k, _ in h] == names)
    _can(pst.request_pseudo_headers(), lambda h: h[0][1] == "PUT" and h[3][1] == "https")
    _can(pst.request_pseudo_headers(), lambda h: h[1][1] == "/")
    _can(pst.request_pseudo_headers(), lambda h: h[2][1] == "localhost")
    with pytest.raises(ValueError, match="kind must be 'request' or 'response', not 'trailer'"):
        pst.pseudo_headers("trailer")


def test_chunk() -> None:
    assert pst.chunk(b"abcdef", [4, 2, 2, -5, 99]) == [b"ab", b"cd", b"ef"]
    assert pst.chunk(b"abcdef", []) == [b"abcdef"]
    assert pst.chunk(b"abcdef", [0, 6]) == [b"abcdef"]
    assert pst.chunk(b"ab", [1]) == [b"a", b"b"]
    assert pst.chunk(b"", [1, 2]) == []


def test_bodies_and_body_chunks() -> None:
    _always(pst.bodies(), lambda b: isinstance(b, bytes) and len(b) <= 256)
    _can(pst.bodies(max_size=3), lambda b: len(b) == 3)
    _can(pst.bodies(), lambda b: b == b"")
    _always(pst.bodies(3, 4), lambda b: 3 <= len(b) <= 4)
    _always(
        pst.body_chunks(),
        lambda cs: len(cs) <= 5 and all(cs) and len(b"".join(cs)) <= 256,
    )
    _can(pst.body_chunks(), lambda cs: cs == [])
    _can(pst.body_chunks(), lambda cs: len(cs) == 5)
    _can(pst.body_chunks(), lambda cs: len(cs) == 1 and len(cs[0]) > 1)
    _always(pst.body_chunks(max_chunks=2), lambda cs: len(cs) <= 2)
    _can(pst.body_chunks(max_chunks=2), lambda cs: len(cs) == 2)
    _always(pst.body_chunks(max_chunks=0), lambda cs: len(cs) <= 1)
    _always(pst.body_chunks(min_size=2, max_size=3), lambda cs: 2 <= len(b"".join(cs)) <= 3)


@pytest.mark.parametrize("kind", ["request", "response"])
def test_http_messages(kind: str) -> None:
    make = pst.http_requests if kind == "request" else pst.http_responses
    first = ":method" if kind == "request" else ":status"
    npseudo = 4 if kind == "request" else 1

    def ok(m: pst.HttpMessage) -> bool:
        regular = m.headers[npseudo:]
        return (
            m.headers[0][0] == first
            and not any(k.startswith(":") for k, _ in regular)
            and len(regular) <= 6
            and all(m.body_chunks)
            and m.body == b"".join(m.body_chunks)
            and m.end_of_headers == (not m.body_chunks and m.trailers is None)
        )

    _always(make(), ok)
    _can(make(), lambda m: m.trailers is not None and 1 <= len(m.trailers) <= 4)
    _can(make(), lambda m: m.trailers is None and m.body_chunks == [] and m.end_of_headers)
    _can(make(), lambda m: len(m.headers) == npseudo + 6 and len(m.body_chunks) >= 2)
    _always(make(with_trailers=False), lambda m: m.trailers is None)
    custom = make(extra_headers=st.just([("x-a", "1")]), body=st.just([b"x", b"y"]))
    _always(custom, lambda m: m.headers[npseudo:] == [("x-a", "1")] and m.body == b"xy")
    assert not pst.HttpMessage([], [b"x"], None).end_of_headers
    assert not pst.HttpMessage([], [], []).end_of_headers
    assert pst.HttpMessage([], [], None).end_of_headers
