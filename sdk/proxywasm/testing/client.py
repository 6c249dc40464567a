"""The test client: one HTTP exchange through the filter in one call, as Envoy runs it.

>>> host.answer_http_calls("auth", lambda call: ([(":status", "200")], b"ok"))  # doctest: +SKIP
>>> ex = host.http([(":method", "GET"), (":path", "/x")])                      # doctest: +SKIP
>>> ex.status, ex.upstream_headers, ex.local_response                          # doctest: +SKIP

:func:`http` drives the callbacks ``host.call_on_*`` drive one by one, in
Envoy's order, answers the callouts the filter dispatches with the handlers
registered by :func:`answer_http_calls`, and returns an :class:`HttpExchange`:
what the upstream received and what the client received. It works the same
on a native host and on a :meth:`~proxywasm.testing.HostEmulator.from_wasm`
one, since it only uses the host's test API.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol, TypeAlias

from ..types import Action, LogLevel
from .state import HttpCallAttributes, HttpStream, LocalResponse, _text

if TYPE_CHECKING:
    from .emulator import HeadersIn, HostEmulator

__all__ = [
    "MAX_CALLOUT_ROUNDS",
    "Body",
    "BodyEnd",
    "HttpCallAnswer",
    "HttpCallHandler",
    "HttpExchange",
    "answer_http_calls",
    "http",
]

#: How many rounds of callout answers one callback may cause before :func:`http`
#: gives up (a filter that dispatches a new callout from every answer never settles).
MAX_CALLOUT_ROUNDS = 100

#: A body as a test passes it: ``bytes`` / ``str`` (one body callback; empty: none),
#: or a list of chunks, each delivered as one body callback.
Body: TypeAlias = "bytes | str | Sequence[bytes | str]"


class _AnswerObject(Protocol):
    """An answer given as an object: ``.status`` (int), ``.headers``, ``.body``."""

    @property
    def status(self) -> int: ...
    @property
    def headers(self) -> HeadersIn: ...
    @property
    def body(self) -> bytes | str: ...


#: How :func:`http` ends a body that no trailers follow (see its docstring).
BodyEnd: TypeAlias = 'Literal["empty_chunk", "last_chunk"]'

#: What a callout handler returns: ``(headers, body)``, ``(headers, body, trailers)``,
#: an object with ``.status`` / ``.headers`` / ``.body`` (and optionally ``.trailers``),
#: or ``None`` for a call that failed without an answer (a reset: no headers at all).
HttpCallAnswer: TypeAlias = (
    "tuple[HeadersIn | None, bytes | str]"
    " | tuple[HeadersIn | None, bytes | str, HeadersIn | None]"
    " | _AnswerObject | None"
)

#: ``handler(call) -> answer``: plays the service behind one cluster.
HttpCallHandler: TypeAlias = "Callable[[HttpCallAttributes], HttpCallAnswer]"

#: Handlers by host, then by cluster name. A weak table, so that a host's
#: handlers go with it and the emulator's own state stays untouched.
_HANDLERS: weakref.WeakKeyDictionary[HostEmulator, dict[str, HttpCallHandler]] = (
    weakref.WeakKeyDictionary()
)


def _first(pairs: Sequence[tuple[str, str]] | None, name: str) -> str | None:
    name = name.lower()
    for k, v in pairs or []:
        if k.lower() == name:
            return v
    return None


@dataclass
class HttpExchange:
    """One request and its response through the filter, as :func:`http` ran them.

    Upstream side (what the service behind Envoy received): ``upstream_headers``,
    ``upstream_body``, ``upstream_trailers``. ``upstream_headers`` is ``None``
    when the request never reached the upstream: a local reply (or a reset)
    ended it in a request callback, or the filter paused the request headers
    and nothing resumed them. ``upstream_trailers`` is ``None`` when there were
    none (or the request did not get that far).

    Client side (what the client received): ``status``, ``response_headers``,
    ``response_body``, ``response_trailers``; the local reply's when the filter
    sent one (``local_response``), in a request or a response callback. A
    ``status`` of ``0`` means the client received no response headers (a
    stall, a reset).

    ``stalled`` is ``"request"`` or ``"response"`` when the filter paused that
    direction and nothing (no callout answer) resumed it; Envoy would hold the
    stream until a timeout. ``reset`` is True if the filter reset the stream.
    ``logs`` are the ``(level, message)`` entries logged during the exchange,
    on_log's included.
    """

    context_id: int
    upstream_headers: list[tuple[str, str]] | None
    upstream_body: bytes | None
    upstream_trailers: list[tuple[str, str]] | None
    status: int
    response_headers: list[tuple[str, str]]
    response_body: bytes
    response_trailers: list[tuple[str, str]] | None
    local_response: LocalResponse | None = None
    stalled: Literal["request", "response"] | None = None
    reset: bool = False
    #: The callouts answered during the exchange, in the order they were answered.
    http_calls: list[HttpCallAttributes] = field(default_factory=list)
    logs: list[tuple[LogLevel, str]] = field(default_factory=list)

    def header(self, name: str, default: str | None = None) -> str | None:
        """First value of a response header the client received (case-insensitive)."""
        value = _first(self.response_headers, name)
        return default if value is None else value

    def upstream_header(self, name: str, default: str | None = None) -> str | None:
        """First value of a request header the upstream received (case-insensitive)."""
        value = _first(self.upstream_headers, name)
        return default if value is None else value

    def messages(self, level: LogLevel) -> list[str]:
        """Messages logged during the exchange at exactly ``level``."""
        return [msg for lvl, msg in self.logs if lvl == level]


def answer_http_calls(host: HostEmulator, cluster: str, handler: HttpCallHandler | None) -> None:
    """Answer the callouts to ``cluster`` that :func:`http` meets with ``handler(call)``.

    ``call`` is the :class:`~proxywasm.testing.HttpCallAttributes` the filter
    sent (``.upstream``, ``.headers``, ``.body``, ``.trailers``,
    ``.timeout_ms``). The handler returns ``(headers, body)``,
    ``(headers, body, trailers)``, an object with ``.status`` / ``.headers``
    / ``.body`` (``:status`` is added from ``.status``), or ``None``: the call
    failed with no answer at all (a reset; a timeout in Envoy answers with
    ``504`` headers, so return those to test it). A later registration for the
    same cluster replaces the earlier one; ``handler=None`` removes it.
    """
    handlers = _HANDLERS.setdefault(host, {})
    if handler is None:
        handlers.pop(cluster, None)
    else:
        handlers[cluster] = handler


def _answer_parts(
    call: HttpCallAttributes, answer: object
) -> tuple[HeadersIn | None, bytes | str, HeadersIn | None]:
    if answer is None:
        return None, b"", None
    if isinstance(answer, tuple):
        if len(answer) == 2:
            return answer[0], answer[1], None
        if len(answer) == 3:
            return answer[0], answer[1], answer[2]
    elif hasattr(answer, "status"):
        status = answer.status
        headers = getattr(answer, "headers", None) or []
        pairs = list(headers.items()) if hasattr(headers, "items") else list(headers)
        names = {(k.decode() if isinstance(k, bytes) else str(k)).lower() for k, _ in pairs}
        if ":status" not in names:
            pairs.insert(0, (":status", str(int(status))))
        return pairs, getattr(answer, "body", b"") or b"", getattr(answer, "trailers", None)
    raise TypeError(
        f"the handler for cluster {call.upstream!r} returned {answer!r}; expected "
        "(headers, body), (headers, body, trailers), an object with .status/.headers/.body, "
        "or None (the call failed)"
    )


def _describe(call: HttpCallAttributes) -> str:
    method = _first(call.headers, ":method") or "?"
    path = _first(call.headers, ":path") or "?"
    return f"{method} {path}"


def _settle(host: HostEmulator, before: set[int], answered: list[HttpCallAttributes]) -> None:
    """Answer the callouts dispatched during the exchange until none is pending."""
    handlers = _HANDLERS.get(host, {})
    for _ in range(MAX_CALLOUT_ROUNDS):
        pending = [call for token, call in host.http_calls.items() if token not in before]
        if not pending:
            return
        for call in pending:
            if call.token not in host.http_calls:
                continue  # cancelled by an earlier answer (its stream ended)
            handler = handlers.get(call.upstream)
            if handler is None:
                known = ", ".join(repr(c) for c in sorted(handlers)) or "none"
                raise LookupError(
                    f"the filter sent an HTTP callout to cluster {call.upstream!r} "
                    f"({_describe(call)}) and no handler answers it (handlers: {known}); "
                    f"register one with host.answer_http_calls({call.upstream!r}, "
                    "lambda call: ([(':status', '200')], b''))"
                )
            headers, body, trailers = _answer_parts(call, handler(call))
            answered.append(call)
            host.call_on_http_call_response(call.token, headers, body, trailers)
    still = [c.upstream for t, c in host.http_calls.items() if t not in before]
    raise RuntimeError(
        f"the callouts never settle: after {MAX_CALLOUT_ROUNDS} rounds of answers "
        f"{len(still)} are still pending (clusters {sorted(set(still))}); does the filter "
        "send a new callout from every answer?"
    )


def _chunks(body: Body) -> list[bytes | str]:
    if isinstance(body, (bytes, str)):
        return [body] if body else []
    if isinstance(body, (bytearray, memoryview)):
        return [bytes(body)] if body else []
    return list(body)


def _delivered(
    headers: Sequence[tuple[bytes, bytes]] | None,
    forwarded: bytes | bytearray,
    buffered: bytes | bytearray,
    body_paused: bool,
    trailers: Sequence[tuple[bytes, bytes]] | None,
    settled: bool,
) -> tuple[list[tuple[str, str]], bytes, list[tuple[str, str]] | None]:
    """What one direction delivered: headers, the body that went on, trailers.

    A body still buffered (paused) when the direction settled went on with the
    trailers or the end of the stream, as Envoy sends it; ``settled`` is False
    when the exchange stalled, and then only what went on before counts.
    """
    body = bytes(forwarded)
    if settled and body_paused:
        body += bytes(buffered)
    return (
        _text(headers),
        body,
        _text(trailers) if trailers is not None and settled else None,
    )


def _ended(stream: HttpStream) -> bool:
    return stream.local_response is not None or stream.reset


def _request_stalled(stream: HttpStream) -> bool:
    return not _ended(stream) and (
        stream.request_headers_paused
        or stream.held_request_body is not None
        or stream.held_request_trailers is not None
        or stream.request_action == Action.PAUSE
    )


def _response_stalled(stream: HttpStream) -> bool:
    return not _ended(stream) and (
        stream.response_headers_paused
        or stream.held_response_body is not None
        or stream.held_response_trailers is not None
        or stream.response_action == Action.PAUSE
    )


def _logs_since(
    host: HostEmulator, mark: tuple[LogLevel, str] | None
) -> list[tuple[LogLevel, str]]:
    """Entries appended after ``mark`` (the last entry before the exchange, by identity)."""
    logs = host.logs
    if mark is None:
        return list(logs)
    out: list[tuple[LogLevel, str]] = []
    for entry in reversed(logs):
        if entry is mark:
            break
        out.append(entry)
    # Not found: the bounded log dropped the mark, so every entry kept is new.
    out.reverse()
    return out


def http(
    host: HostEmulator,
    request_headers: HeadersIn,
    request_body: Body = b"",
    request_trailers: HeadersIn | None = None,
    response_headers: HeadersIn = ((":status", "200"),),
    response_body: Body = b"",
    response_trailers: HeadersIn | None = None,
    *,
    root_context_id: int | None = None,
    complete: bool = True,
    body_end: BodyEnd = "empty_chunk",
) -> HttpExchange:
    """Run one whole HTTP stream through the filter, as Envoy does, and return what happened.

    Request headers (``end_of_stream`` when there is no body and no
    trailers), each body chunk, trailers; then, unless a local reply or a reset ended the
    request or it stalled, the upstream's response the same way; then
    ``complete_http_context`` (on_log, on_done, on_delete) unless
    ``complete=False`` (the stream stays open for ``call_on_*``).

    After every callback the callouts dispatched during the exchange are
    answered by the handlers of :func:`answer_http_calls` until none is
    pending; a callout to a cluster without a handler raises ``LookupError``.
    A body is ``bytes`` / ``str`` (one body callback, none when empty) or a
    list of chunks, one body callback each.

    How a body without trailers ends, ``body_end``: ``"empty_chunk"`` (the
    default) is what Envoy 1.40 does with HTTP/1.1 on both sides, measured
    with content-length and chunked bodies, in one packet or in pieces: every
    chunk arrives with ``end_of_stream=False``, then one more body callback
    with no new bytes and ``end_of_stream=True``. ``"last_chunk"``: the last
    chunk carries ``end_of_stream=True`` (as an HTTP/2 DATA frame with
    END_STREAM can). A filter should work with both. A trap in a compiled module
    raises :class:`~proxywasm.testing.wasm.WasmTrapError` as ``call_on_*``
    do; an exception in a handler reaches the test unchanged.
    """
    before = set(host.http_calls)
    mark = host.logs[-1] if host.logs else None
    answered: list[HttpCallAttributes] = []
    ctx = host.initialize_http_context(root_context_id)
    stream = host.get_http_stream(ctx)
    _settle(host, before, answered)

    def side(
        headers: HeadersIn,
        body: Body,
        trailers: HeadersIn | None,
        on_headers: Callable[[int, HeadersIn, bool], Action],
        on_body: Callable[[int, bytes | str, bool], Action],
        on_trailers: Callable[[int, HeadersIn], Action],
    ) -> None:
        chunks = _chunks(body)
        on_headers(ctx, headers, not chunks and trailers is None)
        _settle(host, before, answered)
        ends = [False] * len(chunks)
        if chunks and trailers is None:
            if body_end == "empty_chunk":
                chunks.append(b"")
                ends.append(True)
            else:
                ends[-1] = True
        for chunk, end in zip(chunks, ends, strict=True):
            if _ended(stream):
                return
            on_body(ctx, chunk, end)
            _settle(host, before, answered)
        if trailers is not None and not _ended(stream):
            on_trailers(ctx, trailers)
            _settle(host, before, answered)

    side(
        request_headers,
        request_body,
        request_trailers,
        host.call_on_request_headers,
        host.call_on_request_body,
        host.call_on_request_trailers,
    )
    request_ended = _ended(stream)
    stalled: Literal["request", "response"] | None = None
    if _request_stalled(stream):
        stalled = "request"
    # What went upstream, read now: response callbacks cannot change it.
    if request_ended or stream.request_headers_paused:
        up_headers: list[tuple[str, str]] | None = None
        up_body: bytes | None = None
        up_trailers: list[tuple[str, str]] | None = None
    else:
        up_headers, up_body, up_trailers = _delivered(
            stream.request_headers,
            stream.forwarded_request_body,
            stream.request_body,
            stream.request_body_paused,
            stream.request_trailers,
            stalled is None,
        )

    if not request_ended and stalled is None:
        side(
            response_headers,
            response_body,
            response_trailers,
            host.call_on_response_headers,
            host.call_on_response_body,
            host.call_on_response_trailers,
        )
        if _response_stalled(stream):
            stalled = "response"

    reply = stream.local_response
    if reply is not None:
        client_headers = _text(stream.response_headers)
        client_body = reply.body
        client_trailers: list[tuple[str, str]] | None = None
    elif stream.reset or stalled == "request" or stream.response_headers_paused:
        client_headers, client_body, client_trailers = [], b"", None
    else:
        client_headers, client_body, client_trailers = _delivered(
            stream.response_headers,
            stream.forwarded_response_body,
            stream.response_body,
            stream.response_body_paused,
            stream.response_trailers,
            stalled is None,
        )
    status_text = _first(client_headers, ":status")
    try:
        status = int(status_text) if status_text is not None else 0
    except ValueError:
        status = 0

    if complete:
        host.complete_http_context(ctx)
        _settle(host, before, answered)  # callouts sent from on_log / on_done by other contexts
    return HttpExchange(
        context_id=ctx,
        upstream_headers=up_headers,
        upstream_body=up_body,
        upstream_trailers=up_trailers,
        status=status,
        response_headers=client_headers,
        response_body=client_body,
        response_trailers=client_trailers,
        local_response=reply,
        stalled=stalled,
        reset=stream.reset,
        http_calls=answered,
        logs=_logs_since(host, mark),
    )
