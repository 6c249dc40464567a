"""The exception barrier holds for everything a callback can raise.

Issue 10, items 1-3: ``BaseException`` subclasses, a failure while the
traceback is being reported, and tracebacks that would be huge.
"""

from __future__ import annotations

import sys

import pytest
from proxywasm import Action, HttpContext, LogLevel, RootContext
from proxywasm._traceback import MAX_TRACEBACK_CHARS, cap, format_exception
from proxywasm.testing import HostEmulator

REQUEST = [(":method", "GET"), (":path", "/"), (":authority", "example.com")]


class Custom(BaseException):
    """A filter's own BaseException subclass."""


def _raiser(exc: BaseException) -> type[HttpContext]:
    class F(HttpContext):
        def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
            raise exc

    return F


@pytest.mark.parametrize(
    "exc",
    [KeyboardInterrupt(), GeneratorExit(), SystemExit(3), Custom("mine"), MemoryError()],
    ids=lambda e: type(e).__name__,
)
def test_base_exceptions_fail_closed(exc: BaseException) -> None:
    host = HostEmulator.for_http_context(_raiser(exc))
    ctx = host.initialize_http_context()
    action = host.call_on_request_headers(ctx, REQUEST, end_of_stream=True)
    assert action == Action.PAUSE
    reply = host.get_sent_local_response(ctx)
    assert reply is not None and reply.status_code == 500
    errors = host.get_logs(LogLevel.ERROR)
    assert len(errors) == 1
    assert type(exc).__name__ in errors[0]


@pytest.mark.parametrize(
    "exc", [KeyboardInterrupt(), Custom("mine")], ids=lambda e: type(e).__name__
)
def test_base_exceptions_fail_open_continue(exc: BaseException) -> None:
    class OpenRoot(RootContext):
        fail_open = True

        def create_http_context(self, context_id: int) -> HttpContext:
            return _raiser(exc)(context_id, self)

    host = HostEmulator(OpenRoot)
    assert host.start_vm() and host.start_plugin()
    ctx = host.initialize_http_context()
    assert host.call_on_request_headers(ctx, REQUEST, end_of_stream=True) == Action.CONTINUE
    assert host.get_sent_local_response(ctx) is None
    assert len(host.get_logs(LogLevel.ERROR)) == 1


class Unprintable(Exception):
    """Its ``__str__`` fails with a BaseException, as a full heap would make it fail."""

    def __str__(self) -> str:
        raise KeyboardInterrupt


def test_failure_while_reporting_still_fails_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    # The SDK's own formatter (the one inside modules) meets the failing __str__.
    monkeypatch.delitem(sys.modules, "traceback")
    host = HostEmulator.for_http_context(_raiser(Unprintable()))
    ctx = host.initialize_http_context()
    assert host.call_on_request_headers(ctx, REQUEST, end_of_stream=True) == Action.PAUSE
    reply = host.get_sent_local_response(ctx)
    assert reply is not None and reply.status_code == 500
    errors = host.get_logs(LogLevel.ERROR)
    assert len(errors) == 1
    assert "could not be formatted" in errors[0]


def _recurse(n: int) -> int:
    return _recurse(n + 1) + 1


class Recurses(HttpContext):
    def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
        _recurse(0)
        return Action.CONTINUE


def test_unbounded_recursion_logs_one_short_entry() -> None:
    host = HostEmulator.for_http_context(Recurses)
    ctx = host.initialize_http_context()
    assert host.call_on_request_headers(ctx, REQUEST, end_of_stream=True) == Action.PAUSE
    (entry,) = host.get_logs(LogLevel.ERROR)
    assert "RecursionError" in entry
    assert "repeated" in entry
    assert len(entry) <= MAX_TRACEBACK_CHARS + 200


def _deep_error() -> BaseException:
    try:
        _recurse(0)
    except RecursionError as exc:
        return exc
    raise AssertionError("unreachable")


def test_own_formatter_collapses_repeats_and_caps(monkeypatch: pytest.MonkeyPatch) -> None:
    # Inside a module there is no ``traceback``: the SDK's own formatter runs.
    monkeypatch.delitem(sys.modules, "traceback")
    text = format_exception(_deep_error())
    assert text.startswith("Traceback (most recent call last):")
    assert text.rstrip().endswith("RecursionError: maximum recursion depth exceeded")
    assert "[Previous line repeated" in text
    assert text.count("in _recurse") == 3
    assert len(text) <= MAX_TRACEBACK_CHARS


def test_own_formatter_survives_a_broken_str(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "traceback")

    class Bad(Exception):
        def __str__(self) -> str:
            raise ValueError("no")

    assert format_exception(Bad()).endswith("Bad: <exception str() failed>")


def test_cap_keeps_head_and_tail() -> None:
    text = "HEAD" + "x" * 50_000 + "TAIL"
    out = cap(text, 1000)
    assert len(out) == 1000
    assert out.startswith("HEAD") and out.endswith("TAIL")
    assert "characters omitted" in out
    assert cap("short", 1000) == "short"
