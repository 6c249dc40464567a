"""Pythonic views of an HTTP stream: ``self.request`` and ``self.response``.

``self.request.headers`` is a live, case-insensitive mapping of the request
headers: reading one name is one host call (as ``get_http_request_header``),
reading the whole map (iteration, ``len``, ``get_all``) fetches it once per
callback and later reads come from that copy; writing goes to the host at
once. The Rust-named methods reach the same host map, so the two spellings
can be mixed in one callback.

Bodies follow the host's buffering rules, made explicit on :class:`Body`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, MutableMapping

from . import _state
from . import hostcalls as hc
from ._serde import to_bytes, to_str
from .types import BufferType, MapType

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, TypeVar, overload

    import _proxywasm as _abi

    from .hostcalls import HeaderValue

    _T = TypeVar("_T")
else:
    # The host module hostcalls bound (the C glue compiled, the null runtime natively),
    # for the one-frame reads and adds below, as contexts.py's Rust-named fast paths.
    _abi = hc._abi

__all__ = ["Body", "FrozenHeaders", "HeaderMap", "Request", "Response", "header_map"]


def _enter(context_id: int) -> None:
    if _state.effective_context_id != context_id:
        hc.set_effective_context(context_id)
        _state.effective_context_id = context_id


def _name(name: str) -> str:
    # HTTP header names are lower case in Envoy's maps (HTTP/2 rules, HTTP/1 normalised).
    return name.lower()


class _Lookup:
    """Reads shared by the live map and the frozen one: first value, every value."""

    def _items(self) -> list[tuple[str, str]]:
        raise NotImplementedError

    def get_all(self, name: str) -> list[str]:
        """Every value of ``name``, in order (``[]`` if absent)."""
        key = _name(name)
        return [v for k, v in self._items() if k == key]

    def multi_items(self) -> list[tuple[str, str]]:
        """Every ``(name, value)`` pair, repeated names included, in order."""
        return list(self._items())

    def _first(self, name: str) -> str | None:
        key = _name(name)
        for k, v in self._items():
            if k == key:
                return v
        return None

    def _names(self) -> list[str]:
        seen: dict[str, None] = {}
        for k, _ in self._items():
            seen[k] = None
        return list(seen)


class HeaderMap(_Lookup, MutableMapping[str, str]):
    """A live header or trailer map of the current stream, as a ``MutableMapping[str, str]``.

    Names are case-insensitive. ``m[name]`` and ``m.get(name)`` give the
    first value; ``m[name] = v`` replaces every value with one; ``del
    m[name]`` / ``m.pop(name, None)`` remove every value; :meth:`add`
    appends one more value and :meth:`get_all` returns them all.
    Iterating yields each name once. Values are ``str`` (UTF-8; bytes
    that are not UTF-8 round-trip as lone surrogates); :meth:`get_bytes`
    and :meth:`get_all_bytes` give the raw bytes.

    The SDK makes these maps (``self.request.headers``, ``self.response.trailers``;
    :func:`proxywasm.views.header_map` for any map of the ABI).

    Reading one name (``m[name]``, ``get``, ``in``) asks the host for that
    name only: one host call, as the Rust-named getters. Reading the whole
    map (iteration, ``len``, :meth:`get_all`, :meth:`multi_items`) fetches
    it once and keeps it for the rest of the callback, and single reads
    then come from that copy. (Measured in Envoy 1.40: a whole-map fetch
    costs more than two single reads, so single reads never fetch it.) A
    write through this map, or any other host call that changes a map, is
    seen by the next read.
    """

    __slots__ = ("_context_id", "_epoch", "_map_type", "_pairs")

    #: The copy of the whole map, valid while ``_epoch`` is the current map epoch (it is
    #: only read then, so a new map leaves it unset).
    _pairs: list[tuple[str, str]]

    _context_id: int
    _map_type: int
    _epoch: int | None  # None: nothing fetched yet (no epoch is None)

    # No __init__: a view is made by header_map() or by the contexts' ``request`` /
    # ``response`` properties in their own frame (calling a class with no Python
    # __init__ is the cheapest way CPython makes an object: measured in wasm
    # instructions per request, as every step of a stream's first use of a view).

    def _items(self) -> list[tuple[str, str]]:
        if self._epoch != _state.map_epoch:
            _enter(self._context_id)
            self._pairs = hc.get_map(self._map_type)
            self._epoch = _state.map_epoch
        return self._pairs

    def _first(self, name: str) -> str | None:
        if self._epoch == _state.map_epoch:  # the whole map is here already
            return _Lookup._first(self, name)
        _enter(self._context_id)
        return hc.find_map_value(self._map_type, _name(name))

    def _wrote(self, valid: bool) -> None:
        # The host call bumped the epoch; the cache stays valid if it was before the write
        # and has been updated to match it.
        self._epoch = _state.map_epoch if valid else None

    # -- reads -----------------------------------------------------------------------

    def __getitem__(self, name: str) -> str:
        value = self._first(name)
        if value is None:
            raise KeyError(name)
        return value

    if TYPE_CHECKING:  # typing is not imported at run time (it would be frozen in)

        @overload
        def get(self, name: str) -> str | None: ...
        @overload
        def get(self, name: str, default: str | _T) -> str | _T: ...

    def get(self, name: str, default: Any = None) -> Any:
        """The first value of ``name``, or ``default``."""
        if (
            self._epoch != _state.map_epoch
            and type(name) is str
            and _state.effective_context_id == self._context_id
        ):
            # The common single read in this one frame (hostcalls.find_map_value's rules):
            # as cheap as get_http_request_header.
            status, raw = _abi.proxy_get_header_map_value(
                self._map_type, name.encode("utf-8", "surrogateescape")
            )  # the host matches names case-insensitively (Envoy: LowerCaseString)
            if status == 0:  # OK
                return raw.decode("utf-8", "surrogateescape")
            if status == 1 or status == 2:  # NOT_FOUND; BAD_ARGUMENT: the host let go of it
                return default
            hc._map_check("proxy_get_header_map_value", status, self._map_type)
        value = self._first(name)
        return default if value is None else value

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._first(name) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())

    def get_bytes(self, name: str) -> bytes | None:
        """The first value of ``name`` as the host's raw bytes, or ``None``."""
        _enter(self._context_id)
        return hc.get_map_value_bytes(self._map_type, name)

    def get_all_bytes(self, name: str) -> list[bytes]:
        """Every value of ``name`` as raw bytes."""
        _enter(self._context_id)
        key = _name(name).encode("utf-8", "surrogateescape")
        return [v for k, v in hc.get_map_bytes(self._map_type) if k == key]

    # -- writes ----------------------------------------------------------------------

    def __setitem__(self, name: str, value: HeaderValue) -> None:
        valid = self._epoch == _state.map_epoch
        _enter(self._context_id)
        hc.replace_map_value(self._map_type, name, value)
        if valid:
            # As Envoy 1.40 (measured): every value goes, the new one is appended at the end.
            key = _name(name)
            text = value if isinstance(value, str) else to_str(bytes(value))
            self._pairs = [*((k, v) for k, v in self._pairs if k != key), (key, text)]
        self._wrote(valid)

    def add(self, name: str, value: HeaderValue) -> None:
        """Append one more value of ``name``, keeping those already there."""
        valid = self._epoch == _state.map_epoch
        if (
            type(name) is str
            and type(value) is str
            and _state.effective_context_id == self._context_id
        ):
            # The common case in this one frame, as add_http_response_header.
            _state.map_epoch += 1
            status = _abi.proxy_add_header_map_value(
                self._map_type,
                name.encode("utf-8", "surrogateescape"),
                value.encode("utf-8", "surrogateescape"),
            )
            if status != 0:  # hostcalls' error for it, without adding again
                hc._map_check("proxy_add_header_map_value", status, self._map_type)
            text = value
        else:
            _enter(self._context_id)
            hc.add_map_value(self._map_type, name, value)
            text = value if isinstance(value, str) else to_str(bytes(value))
        if valid:
            self._pairs = [*self._pairs, (_name(name), text)]
        self._epoch = _state.map_epoch if valid else None  # _wrote, inlined

    def __delitem__(self, name: str) -> None:
        if name not in self:
            raise KeyError(name)
        self._remove(name)

    def _remove(self, name: str) -> None:
        valid = self._epoch == _state.map_epoch
        _enter(self._context_id)
        hc.remove_map_value(self._map_type, name)
        if valid:
            key = _name(name)
            self._pairs = [(k, v) for k, v in self._pairs if k != key]
        self._wrote(valid)

    def pop(self, name: str, *default: Any) -> Any:
        """Remove every value of ``name``; return the first (or ``default``; ``KeyError`` without one)."""
        value = self._first(name)
        if value is None:
            if default:
                return default[0]
            raise KeyError(name)
        self._remove(name)
        return value

    def replace_all(self, headers: Mapping[str, str] | list[tuple[str, str]]) -> None:
        """Replace the whole map (pairs, or a mapping) in one host call."""
        _enter(self._context_id)
        hc.set_map(self._map_type, headers)
        self._epoch = None

    def __repr__(self) -> str:
        return f"HeaderMap({self.multi_items()!r})"


class FrozenHeaders(_Lookup, Mapping[str, str]):
    """A read-only snapshot of headers (a callout's answer): ``Mapping[str, str]``
    with :meth:`get_all`, case-insensitive like :class:`HeaderMap`."""

    __slots__ = ("_pairs",)

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self._pairs = [(_name(k), v) for k, v in pairs]

    def _items(self) -> list[tuple[str, str]]:
        return self._pairs

    def __getitem__(self, name: str) -> str:
        value = self._first(name)
        if value is None:
            raise KeyError(name)
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())

    def __repr__(self) -> str:
        return f"FrozenHeaders({self._pairs!r})"


class Body:
    """The body buffer of one direction of the stream, as the host holds it now.

    The buffering rules are the host's (Envoy's):

    - In ``on_http_request_body(body_size, end_of_stream)`` the buffer holds
      the chunk that just arrived, ``body_size`` bytes, **unless** the
      earlier body callbacks returned ``Action.PAUSE``: then it holds every
      chunk since, and ``body_size`` is their total. So to see a whole body,
      return PAUSE until ``end_of_stream`` is true and read it then.
    - What the buffer holds when the callback returns CONTINUE is what goes
      on (upstream for a request, to the client for a response).
      :meth:`replace`, :meth:`append` and :meth:`prepend` change it.
    - Outside the body callbacks there is no body buffer: :meth:`read`
      returns ``b""``.
    - Envoy forwards ``content-length`` as the client sent it. A filter
      that changes the body's length removes that header in the headers
      callback (``self.request.headers.pop("content-length", None)``), or
      the upstream reads a truncated body.
    """

    __slots__ = ("_buffer", "_context_id")

    def __init__(self, context_id: int, buffer: BufferType) -> None:
        self._context_id = context_id
        self._buffer = buffer

    def read(self) -> bytes:
        """Every byte the buffer holds now (``b""`` if none)."""
        _enter(self._context_id)
        return hc.get_buffer_bytes(self._buffer) or b""

    def __bytes__(self) -> bytes:
        return self.read()

    def __len__(self) -> int:
        _enter(self._context_id)
        status = hc.get_buffer_status(self._buffer)
        return status[0] if status else 0

    def text(self, encoding: str = "utf-8") -> str:
        """The buffer decoded (``errors="replace"``: never raises on bad bytes)."""
        return self.read().decode(encoding, "replace")

    def json(self) -> Any:
        """The buffer parsed as JSON (``ValueError`` if it is not)."""
        import json

        return json.loads(self.read())

    def replace(self, data: bytes | str) -> None:
        """Replace everything the buffer holds with ``data``."""
        _enter(self._context_id)
        hc.set_buffer_bytes(self._buffer, to_bytes(data, "body"), 0, None)

    def append(self, data: bytes | str) -> None:
        """Add ``data`` after what the buffer holds."""
        _enter(self._context_id)
        hc.set_buffer_bytes(self._buffer, to_bytes(data, "body"), len(self), 0)

    def prepend(self, data: bytes | str) -> None:
        """Add ``data`` before what the buffer holds."""
        _enter(self._context_id)
        hc.set_buffer_bytes(self._buffer, to_bytes(data, "body"), 0, 0)

    def __repr__(self) -> str:
        return f"Body({self._buffer.name})"


def header_map(context_id: int, map_type: MapType | int) -> HeaderMap:
    """A live view of the map ``map_type`` of the context ``context_id`` (a stream's own
    maps are ``self.request.headers`` and the like; this is for any other)."""
    view = HeaderMap()
    view._context_id = context_id
    view._map_type = int(map_type)
    view._epoch = None
    return view


class _Direction:
    """Headers, trailers and body of one direction; trailers and body are made on first use."""

    __slots__ = {
        "_body": None,
        "_context_id": None,
        "_trailers": None,
        "headers": "The live header map (see :class:`HeaderMap`).",
    }

    headers: HeaderMap
    _body: Body | None
    _context_id: int
    _trailers: HeaderMap | None

    #: The direction's header map, trailer map and body buffer (set by each subclass).
    _kinds: tuple[MapType, MapType, BufferType]

    @property
    def trailers(self) -> HeaderMap:
        """The live trailer map (empty until trailers arrive)."""
        view = self._trailers
        if view is None:
            view = self._trailers = header_map(self._context_id, self._kinds[1])
        return view

    @property
    def body(self) -> Body:
        """The body buffer (see :class:`Body` for what it holds when)."""
        view = self._body
        if view is None:
            view = self._body = Body(self._context_id, self._kinds[2])
        return view


class Request(_Direction):
    """The request side of a stream: ``headers``, ``trailers``, ``body`` and shortcuts."""

    __slots__ = ()
    _kinds = (
        MapType.HTTP_REQUEST_HEADERS,
        MapType.HTTP_REQUEST_TRAILERS,
        BufferType.HTTP_REQUEST_BODY,
    )

    @property
    def method(self) -> str:
        """``:method`` (``""`` if absent)."""
        return str(self.headers.get(":method", ""))

    @property
    def path(self) -> str:
        """``:path`` with its query string (``""`` if absent)."""
        return str(self.headers.get(":path", ""))

    @property
    def authority(self) -> str:
        """``:authority``, the host the client asked for (``""`` if absent)."""
        return str(self.headers.get(":authority", ""))

    @property
    def scheme(self) -> str:
        """``:scheme`` (``""`` if absent)."""
        return str(self.headers.get(":scheme", ""))


class Response(_Direction):
    """The response side of a stream: ``headers``, ``trailers``, ``body``, ``status``."""

    __slots__ = ()
    _kinds = (
        MapType.HTTP_RESPONSE_HEADERS,
        MapType.HTTP_RESPONSE_TRAILERS,
        BufferType.HTTP_RESPONSE_BODY,
    )

    @property
    def status(self) -> int | None:
        """``:status`` as an int, or ``None`` before response headers (or if not a number)."""
        value = self.headers.get(":status")
        return int(value) if isinstance(value, str) and value.isdigit() else None
