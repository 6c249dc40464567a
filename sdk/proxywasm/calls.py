"""Awaitable HTTP callouts: ``answer = await self.http_call(...)``.

A callback may be ``async def``. When it awaits a callout the dispatcher
answers the host at once (the stream pauses), keeps the coroutine, and
sends it on when the callout's answer arrives; when the coroutine returns
``Action.CONTINUE`` (or ``None``) the paused direction resumes by itself.
There is no event loop: the only things a filter coroutine can await are
the callouts of this module (and :func:`gather` of several).
"""

from __future__ import annotations

from .views import FrozenHeaders

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Generator

__all__ = ["HttpCall", "HttpResponse", "gather"]


class HttpResponse:
    """The answer to a callout.

    ``status`` is the ``:status`` the upstream (or Envoy) answered: Envoy
    answers a timeout with ``504`` and a cluster with no healthy upstream
    with ``503`` itself. ``0`` means the call was reset with no response
    at all. ``headers`` and ``trailers`` are read-only, case-insensitive
    mappings (:class:`~proxywasm.views.FrozenHeaders`); ``body`` is bytes.
    """

    __slots__ = ("body", "headers", "status", "trailers")

    def __init__(
        self,
        headers: list[tuple[str, str]],
        body: bytes,
        trailers: list[tuple[str, str]],
    ) -> None:
        self.headers = FrozenHeaders(headers)
        self.body = body
        self.trailers = FrozenHeaders(trailers)
        status = self.headers.get(":status", "")
        self.status = int(status) if status.isdigit() else 0

    def text(self, encoding: str = "utf-8") -> str:
        """The body decoded (``errors="replace"``)."""
        return self.body.decode(encoding, "replace")

    def json(self) -> object:
        """The body parsed as JSON (``ValueError`` if it is not)."""
        import json

        return json.loads(self.body)

    def __repr__(self) -> str:
        return f"HttpResponse(status={self.status}, body={len(self.body)} bytes)"


class HttpCall:
    """A callout in flight; ``await`` it for its :class:`HttpResponse`.

    Made by :meth:`~proxywasm.BaseContext.http_call`, which has already sent
    the request: a refused dispatch raises there, not at the ``await``.
    """

    __slots__ = ("cluster", "response", "token")

    def __init__(self, token: int, cluster: str) -> None:
        self.token = token
        self.cluster = cluster
        #: Set by the dispatcher when the answer arrives.
        self.response: HttpResponse | None = None

    def __await__(self) -> Generator[HttpCall | _Gather, None, HttpResponse]:
        if self.response is None:
            yield self  # to the dispatcher, which resumes us once the answer is in
        if self.response is None:
            raise RuntimeError(f"callout {self.token} to {self.cluster!r} resumed with no answer")
        return self.response

    def __repr__(self) -> str:
        state = "answered" if self.response is not None else "pending"
        return f"HttpCall({self.cluster!r}, token={self.token}, {state})"


class _Gather:
    __slots__ = ("calls",)

    def __init__(self, calls: tuple[HttpCall, ...]) -> None:
        self.calls = calls

    def __await__(self) -> Generator[HttpCall | _Gather, None, list[HttpResponse]]:
        if any(c.response is None for c in self.calls):
            yield self
        out: list[HttpResponse] = []
        for c in self.calls:
            if c.response is None:
                raise RuntimeError(f"callout {c.token} to {c.cluster!r} resumed with no answer")
            out.append(c.response)
        return out


def gather(*calls: HttpCall) -> _Gather:
    """Await several callouts sent at once: ``a, b = await gather(call_a, call_b)``.

    The answers come back in the order of ``calls``, after the last one arrived.
    """
    for c in calls:
        if not isinstance(c, HttpCall):
            raise TypeError(
                f"gather() takes the HttpCall objects of self.http_call(...), not {type(c).__name__}"
            )
    return _Gather(calls)
