"""The header-map codec at its edges, found unchecked by mutation testing (scripts/mutation.py).

Byte strings here are written by hand from the ABI layout (a little-endian
u32 count, u32 key/value sizes, each string followed by NUL), not produced
by the encoder under test. Error messages are checked because they are what
a filter author reads when a host hands over a broken map.
"""

from __future__ import annotations

from typing import Any

import pytest
from proxywasm._serde import (
    MapSerializationError,
    deserialize_map,
    serialize_map,
    to_bytes,
    to_str,
)


def _u32(n: int) -> bytes:
    return n.to_bytes(4, "little")


def test_to_bytes_encodes_text_and_copies_byte_like_values() -> None:
    assert to_bytes("é", "x") == b"\xc3\xa9"
    assert to_bytes("\udcff", "x") == b"\xff"  # a lone surrogate is the byte it came from
    assert to_bytes(b"ab", "x") == b"ab"
    value = to_bytes(bytearray(b"cd"), "x")  # type: ignore[arg-type]
    assert value == b"cd" and type(value) is bytes
    view: Any = memoryview(b"ef")
    assert to_bytes(view, "x") == b"ef"


def test_to_bytes_names_what_it_refused() -> None:
    with pytest.raises(TypeError) as info:
        to_bytes(12, "header name")  # type: ignore[arg-type]
    assert str(info.value) == "header name must be str or bytes, not int"


def test_to_str_keeps_bytes_that_are_not_utf8() -> None:
    assert to_str(b"\xc3\xa9") == "é"
    assert to_str(b"a\xff") == "a\udcff"
    assert to_bytes(to_str(b"a\xff"), "x") == b"a\xff"


def test_serialize_map_of_bytes_names_and_values() -> None:
    assert serialize_map([(b"k", b"vv")]) == _u32(1) + _u32(1) + _u32(2) + b"k\x00vv\x00"


def test_serialize_map_says_what_is_not_a_pair() -> None:
    with pytest.raises(TypeError) as info:
        serialize_map("ab")  # type: ignore[arg-type]
    assert str(info.value) == "headers must be (name, value) pairs or a mapping, not str"
    with pytest.raises(TypeError) as info:
        serialize_map([("a", "b", "c")])  # type: ignore[list-item]
    assert str(info.value) == "a header must be a (name, value) pair, not ('a', 'b', 'c')"
    with pytest.raises(TypeError, match="header name must be str or bytes, not int"):
        serialize_map([(1, "v")])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="header value must be str or bytes, not NoneType"):
        serialize_map([("k", None)])  # type: ignore[list-item]


def test_serialize_map_refuses_every_byte_like_container() -> None:
    for bad in (b"ab", bytearray(b"ab"), memoryview(b"ab")):
        with pytest.raises(TypeError, match="pairs or a mapping"):
            serialize_map(bad)  # type: ignore[arg-type]


def test_deserialize_two_pairs_with_empty_strings() -> None:
    data = _u32(2) + _u32(0) + _u32(1) + _u32(2) + _u32(0) + b"\x00a\x00" + b"bc\x00\x00"
    assert deserialize_map(data) == [(b"", b"a"), (b"bc", b"")]


def test_a_map_with_no_pairs() -> None:
    assert deserialize_map(_u32(0)) == []


def test_a_one_byte_map_must_be_a_nul() -> None:
    with pytest.raises(MapSerializationError) as info:
        deserialize_map(b"\x01")
    assert str(info.value) == "a one-byte map must be b'\\x00'"


@pytest.mark.parametrize("size", [2, 3])
def test_a_map_too_short_for_its_count(size: int) -> None:
    with pytest.raises(MapSerializationError) as info:
        deserialize_map(b"\x00" * size)
    assert str(info.value) == f"map of {size} bytes is too short for its count"


def test_a_map_whose_sizes_do_not_fit() -> None:
    data = _u32(2) + _u32(1) + _u32(1)  # declares 2 pairs, holds 1 pair's sizes
    with pytest.raises(MapSerializationError) as info:
        deserialize_map(data)
    assert str(info.value) == "map declares 2 pairs but holds only 12 bytes"
    # Sizes that fit exactly but no strings: the first pair runs past the end.
    with pytest.raises(MapSerializationError) as info:
        deserialize_map(data + _u32(1) + _u32(1))
    assert str(info.value) == "pair 0 runs past the end of the map (20 bytes)"


def test_a_pair_one_byte_short_runs_past_the_end() -> None:
    whole = _u32(1) + _u32(1) + _u32(1) + b"k\x00v\x00"
    assert deserialize_map(whole) == [(b"k", b"v")]
    with pytest.raises(MapSerializationError, match="pair 0 runs past the end of the map"):
        deserialize_map(whole[:-1])


def test_the_second_pair_is_checked_too() -> None:
    data = _u32(2) + _u32(1) + _u32(1) + _u32(1) + _u32(5) + b"a\x00b\x00" + b"c\x00d\x00"
    with pytest.raises(MapSerializationError) as info:
        deserialize_map(data)
    assert str(info.value) == f"pair 1 runs past the end of the map ({len(data)} bytes)"


@pytest.mark.parametrize(
    "strings",
    [b"kXv\x00", b"k\x00vX"],  # the key's NUL, then the value's, replaced
    ids=["key", "value"],
)
def test_each_string_must_end_with_a_nul(strings: bytes) -> None:
    with pytest.raises(MapSerializationError) as info:
        deserialize_map(_u32(1) + _u32(1) + _u32(1) + strings)
    assert str(info.value) == "pair 0 is not NUL-terminated"


def test_the_second_pairs_nul_is_checked_and_named() -> None:
    data = _u32(2) + _u32(1) + _u32(1) + _u32(1) + _u32(1) + b"a\x00b\x00" + b"c\x00dX"
    with pytest.raises(MapSerializationError) as info:
        deserialize_map(data)
    assert str(info.value) == "pair 1 is not NUL-terminated"
