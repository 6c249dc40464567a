"""Hypothesis strategies for HTTP traffic, to property-test filters in the null runtime.

>>> from hypothesis import given                                  # doctest: +SKIP
>>> from proxywasm.testing import strategies as pst               # doctest: +SKIP
>>> @given(pst.http_requests())                                   # doctest: +SKIP
... def test_never_crashes(request):
...     host = HostEmulator(Root); host.start_vm(); host.start_plugin()
...     ctx = host.initialize_http_context()
...     host.call_on_request_headers(ctx, request.headers, end_of_stream=request.end_of_headers)

Names are lower-case RFC 7230 tokens, values are visible ASCII with inner
spaces and tabs, as Envoy passes them to a filter (HTTP/2 and HTTP/3 lower-case
names; Envoy normalises HTTP/1 names). Importing this module imports
``hypothesis``; nothing else in ``proxywasm`` does.
"""

from __future__ import annotations

import itertools
import string
from typing import NamedTuple

from hypothesis import strategies as st

__all__ = [
    "TCHAR",
    "Header",
    "HttpMessage",
    "authorities",
    "bodies",
    "body_chunks",
    "chunk",
    "header_names",
    "header_values",
    "headers",
    "http_requests",
    "http_responses",
    "methods",
    "paths",
    "pseudo_headers",
    "request_pseudo_headers",
    "response_pseudo_headers",
    "schemes",
    "status_codes",
    "trailers",
]

#: RFC 7230 ``tchar`` in lower case: what a header name is made of.
TCHAR = "!#$%&'*+-.^_`|~" + string.digits + string.ascii_lowercase
#: Visible ASCII (``VCHAR``): what a header value starts and ends with.
_VCHAR = "".join(chr(c) for c in range(0x21, 0x7F))
#: Characters of a URL path segment (RFC 3986 ``pchar`` without ``%``-escapes).
_PCHAR = string.ascii_letters + string.digits + "-._~!$&'()*+,;=:@"
_QUERY = _PCHAR + "/?"

#: One header as filters and the emulator see it: ``(name, value)``.
Header = tuple[str, str]


class HttpMessage(NamedTuple):
    """A generated request or response: headers, body chunks, trailers.

    ``headers`` starts with the pseudo-headers; ``body_chunks`` is the body as
    the host delivers it (possibly empty: no body); ``trailers`` is ``None``
    when the message has none.
    """

    headers: list[Header]
    body_chunks: list[bytes]
    trailers: list[Header] | None

    @property
    def body(self) -> bytes:
        """The whole body: the chunks joined."""
        return b"".join(self.body_chunks)

    @property
    def end_of_headers(self) -> bool:
        """``end_of_stream`` for the headers callback: no body and no trailers follow."""
        return not self.body_chunks and self.trailers is None


def header_names(min_size: int = 1, max_size: int = 24) -> st.SearchStrategy[str]:
    """Lower-case RFC 7230 tokens (``tchar``), e.g. ``x-b3-traceid`` or ``a!~``."""
    return st.text(alphabet=TCHAR, min_size=max(1, min_size), max_size=max_size)


def header_values(min_size: int = 0, max_size: int = 48) -> st.SearchStrategy[str]:
    """Visible ASCII with spaces and tabs inside, never leading or trailing whitespace."""
    if not 0 <= min_size <= max_size:
        raise ValueError(f"need 0 <= min_size <= max_size, got {min_size}, {max_size}")
    options: list[st.SearchStrategy[str]] = []
    if min_size <= 1:
        options.append(st.text(alphabet=_VCHAR, min_size=min_size, max_size=min(max_size, 1)))
    if max_size >= 2:
        inner = st.text(
            alphabet=_VCHAR + " \t", min_size=max(0, min_size - 2), max_size=max_size - 2
        )
        edge = st.sampled_from(_VCHAR)
        options.append(st.builds(lambda a, mid, b: a + mid + b, edge, inner, edge))
    return st.one_of(options)


def headers(
    min_size: int = 0,
    max_size: int = 10,
    names: st.SearchStrategy[str] | None = None,
    values: st.SearchStrategy[str] | None = None,
    unique: bool = False,
) -> st.SearchStrategy[list[Header]]:
    """Lists of ``(name, value)`` regular headers (no pseudo-headers).

    Names repeat unless ``unique``: a map may hold one name several times, as
    HTTP allows. ``names`` / ``values`` override the element strategies.
    """
    pair = st.tuples(
        names if names is not None else header_names(),
        values if values is not None else header_values(),
    )
    return st.lists(
        pair, min_size=min_size, max_size=max_size, unique_by=(lambda h: h[0]) if unique else None
    )


def trailers(min_size: int = 1, max_size: int = 4) -> st.SearchStrategy[list[Header]]:
    """Trailers: a short non-empty list of regular headers."""
    return headers(min_size=min_size, max_size=max_size)


def methods() -> st.SearchStrategy[str]:
    """HTTP methods: the common ones, and now and then an extension token."""
    common = st.sampled_from(
        ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE"]
    )
    return common | st.text(alphabet=string.ascii_uppercase, min_size=1, max_size=10)


def schemes() -> st.SearchStrategy[str]:
    """``http`` or ``https``."""
    return st.sampled_from(["http", "https"])


def authorities() -> st.SearchStrategy[str]:
    """``host`` or ``host:port``: DNS names, ``localhost`` and IPv4 addresses."""
    label = st.text(alphabet=string.ascii_lowercase + string.digits, min_size=1, max_size=12)
    dns = st.lists(label, min_size=1, max_size=4).map(".".join)
    ipv4 = st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t)))
    host = dns | ipv4 | st.just("localhost")
    port = st.none() | st.integers(1, 65535)
    return st.builds(lambda h, p: h if p is None else f"{h}:{p}", host, port)


def paths(query: bool = True) -> st.SearchStrategy[str]:
    """Origin-form request targets: ``/``, ``/a/b``, ``/a?x=1&y`` (``query``: allow a query)."""
    segment = st.text(alphabet=_PCHAR, max_size=12)
    path = st.lists(segment, max_size=5).map(lambda segs: "/" + "/".join(segs))
    if not query:
        return path
    q = st.none() | st.text(alphabet=_QUERY, max_size=24)
    return st.builds(lambda p, qs: p if qs is None else f"{p}?{qs}", path, q)


def status_codes(min_value: int = 200, max_value: int = 599) -> st.SearchStrategy[int]:
    """Final HTTP status codes (200..599 by default)."""
    return st.integers(min_value, max_value)


def request_pseudo_headers() -> st.SearchStrategy[list[Header]]:
    """``:method``, ``:path``, ``:authority``, ``:scheme`` in this order (as Envoy passes them)."""
    return st.builds(
        lambda m, p, a, s: [(":method", m), (":path", p), (":authority", a), (":scheme", s)],
        methods(),
        paths(),
        authorities(),
        schemes(),
    )


def response_pseudo_headers() -> st.SearchStrategy[list[Header]]:
    """``[(":status", "NNN")]``."""
    return status_codes().map(lambda code: [(":status", str(code))])


def pseudo_headers(kind: str = "request") -> st.SearchStrategy[list[Header]]:
    """Pseudo-headers of a ``"request"`` or a ``"response"``."""
    if kind == "request":
        return request_pseudo_headers()
    if kind == "response":
        return response_pseudo_headers()
    raise ValueError(f"kind must be 'request' or 'response', not {kind!r}")


def bodies(min_size: int = 0, max_size: int = 256) -> st.SearchStrategy[bytes]:
    """Arbitrary body bytes."""
    return st.binary(min_size=min_size, max_size=max_size)


def chunk(body: bytes, cuts: list[int]) -> list[bytes]:
    """Split ``body`` at the offsets in ``cuts`` (sorted and clamped; empty pieces dropped)."""
    points = sorted({min(max(c, 0), len(body)) for c in cuts} | {0, len(body)})
    return [body[a:b] for a, b in itertools.pairwise(points) if b > a]


def body_chunks(
    min_size: int = 0, max_size: int = 256, max_chunks: int = 5
) -> st.SearchStrategy[list[bytes]]:
    """A body as the host delivers it: a list of non-empty chunks (``[]``: no body)."""

    @st.composite
    def _chunks(draw: st.DrawFn) -> list[bytes]:
        body = draw(bodies(min_size, max_size))
        if not body:
            return []
        cuts = draw(st.lists(st.integers(1, len(body)), max_size=max(0, max_chunks - 1)))
        return chunk(body, cuts)

    return _chunks()


def http_requests(
    extra_headers: st.SearchStrategy[list[Header]] | None = None,
    body: st.SearchStrategy[list[bytes]] | None = None,
    with_trailers: bool = True,
) -> st.SearchStrategy[HttpMessage]:
    """Requests: pseudo-headers then regular headers, body chunks, maybe trailers.

    ``extra_headers`` and ``body`` override the regular headers and the body
    chunks; ``with_trailers=False`` never generates trailers.
    """
    tr: st.SearchStrategy[list[Header] | None] = (
        (st.none() | trailers()) if with_trailers else st.none()
    )
    return st.builds(
        lambda pseudo, extra, chunks, t: HttpMessage(pseudo + extra, chunks, t),
        request_pseudo_headers(),
        extra_headers if extra_headers is not None else headers(max_size=6),
        body if body is not None else body_chunks(),
        tr,
    )


def http_responses(
    extra_headers: st.SearchStrategy[list[Header]] | None = None,
    body: st.SearchStrategy[list[bytes]] | None = None,
    with_trailers: bool = True,
) -> st.SearchStrategy[HttpMessage]:
    """Responses: ``:status`` then regular headers, body chunks, maybe trailers.

    Same overrides as :func:`http_requests`.
    """
    tr: st.SearchStrategy[list[Header] | None] = (
        (st.none() | trailers()) if with_trailers else st.none()
    )
    return st.builds(
        lambda pseudo, extra, chunks, t: HttpMessage(pseudo + extra, chunks, t),
        response_pseudo_headers(),
        extra_headers if extra_headers is not None else headers(max_size=6),
        body if body is not None else body_chunks(),
        tr,
    )
