"""The proxy-wasm serialisation of header maps and property paths.

A map is: u32 count, then (u32 key length, u32 value length) per pair, then
each key and value followed by a NUL byte. Integers are little-endian. An empty
map may arrive as ``b""`` or ``b"\\x00"``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from struct import Struct

__all__ = ["MapSerializationError", "deserialize_map", "serialize_map", "to_bytes", "to_str"]

_U32 = Struct("<I")
_U32_PAIR = Struct("<II")


class MapSerializationError(ValueError):
    """Bytes that claim to be a serialised map are malformed."""


def to_bytes(value: str | bytes, what: str) -> bytes:
    """UTF-8 encode a ``str`` (lone surrogates from undecodable input round-trip)."""
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"{what} must be str or bytes, not {type(value).__name__}")


def to_str(value: bytes) -> str:
    """Decode host bytes as UTF-8; bytes that are not UTF-8 become lone surrogates
    (``surrogateescape``) so nothing is lost and they encode back unchanged."""
    return value.decode("utf-8", "surrogateescape")


#: What is not a (name, value) pair although it unpacks into two (``k, v = "ab"``).
_NOT_A_PAIR = (str, bytes, bytearray, memoryview)


def serialize_map(
    pairs: Iterable[tuple[str | bytes, str | bytes]]
    | Mapping[str, str | bytes]
    | Mapping[bytes, str | bytes],
) -> bytes:
    """Serialise headers: ``(name, value)`` pairs, or a mapping ``{name: value}`` (``str`` or ``bytes``).

    A mapping is serialised by its items (iterating a dict yields only its
    keys, and ``"ab"`` would unpack into the header ``a: b``). Anything that
    is not a pair, a bare string included, raises :class:`TypeError`.
    """
    if isinstance(pairs, Mapping):
        source: Iterable[object] = pairs.items()
    elif isinstance(pairs, _NOT_A_PAIR):
        raise TypeError(
            f"headers must be (name, value) pairs or a mapping, not {type(pairs).__name__}"
        )
    else:
        source = pairs
    items: list[tuple[bytes, bytes]] = []
    for item in source:
        if (
            isinstance(item, (tuple, list)) and len(item) == 2
        ):  # a list too: [name, value] from JSON
            k, v = item
        else:
            raise TypeError(f"a header must be a (name, value) pair, not {item!r}")
        items.append((to_bytes(k, "header name"), to_bytes(v, "header value")))
    sizes = b"".join(_U32_PAIR.pack(len(k), len(v)) for k, v in items)
    data = b"".join(k + b"\x00" + v + b"\x00" for k, v in items)
    return _U32.pack(len(items)) + sizes + data


def serialize_pairs(pairs: list[tuple[bytes, bytes]]) -> bytes:
    """:func:`serialize_map` for pairs that are already ``bytes`` (a host's own maps): no checks."""
    n = len(pairs)
    if not n:
        return b"\x00\x00\x00\x00"
    sizes = b"".join([_U32_PAIR.pack(len(k), len(v)) for k, v in pairs])
    return _U32.pack(n) + sizes + b"".join([k + b"\x00" + v + b"\x00" for k, v in pairs])


def deserialize_map(data: bytes) -> list[tuple[bytes, bytes]]:
    """Parse a serialised map into ``(name, value)`` byte pairs.

    Raises :class:`MapSerializationError` naming the problem if the bytes are
    truncated or inconsistent.
    """
    n = len(data)
    if n <= 1:
        if n == 1 and data != b"\x00":
            raise MapSerializationError("a one-byte map must be b'\\x00'")
        return []
    if n < 4:
        raise MapSerializationError(f"map of {n} bytes is too short for its count")
    (count,) = _U32.unpack_from(data, 0)
    header_end = 4 + 8 * count
    if header_end > n:
        raise MapSerializationError(f"map declares {count} pairs but holds only {n} bytes")
    out: list[tuple[bytes, bytes]] = []
    pos = header_end
    for i in range(count):
        klen, vlen = _U32_PAIR.unpack_from(data, 4 + 8 * i)
        kend = pos + klen
        vstart = kend + 1
        vend = vstart + vlen
        if vend + 1 > n:
            raise MapSerializationError(f"pair {i} runs past the end of the map ({n} bytes)")
        if data[kend] != 0 or data[vend] != 0:
            raise MapSerializationError(f"pair {i} is not NUL-terminated")
        out.append((data[pos:kend], data[vstart:vend]))
        pos = vend + 1
    return out
