"""The failure policy in the corners: late failures, roots that cannot answer, on_done.

``test_barrier.py`` and ``test_faults.py`` cover an exception in each
callback. These pin what happens around them: a failure after a reply went
out resets the stream (a second reply is impossible), a root whose policy
cannot be read is treated as fail closed, and an ``on_done`` that raises
still lets the host finish the context.
"""

from __future__ import annotations

from typing import Any

from proxywasm import Action, HttpContext, LogLevel, RootContext
from proxywasm.testing import HostEmulator

REQUEST = [(":method", "GET"), (":path", "/"), (":authority", "example.com")]


def test_a_failure_after_a_local_reply_resets_the_stream() -> None:
    class Filter(HttpContext):
        def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
            self.send_http_response(403, body=b"no")
            return Action.PAUSE

        def on_http_response_headers(self, num_headers: int, end_of_stream: bool) -> Action:
            raise ValueError("late")

    host = HostEmulator.for_http_context(Filter)
    ctx = host.initialize_http_context()
    assert host.call_on_request_headers(ctx, REQUEST, end_of_stream=True) == Action.PAUSE
    stream = host.get_http_stream(ctx)
    # The 403 went out and passed the filter's response callback, which raised:
    # no second reply is possible, so the stream is reset, and the 403 stands.
    assert stream.reset
    reply = host.get_sent_local_response(ctx)
    assert reply is not None and reply.status_code == 403 and reply.body == b"no"
    errors = host.get_logs(LogLevel.ERROR)
    assert len(errors) == 1 and "on_http_response_headers" in errors[0] and "late" in errors[0]


def test_without_a_late_failure_the_reply_is_not_reset() -> None:
    class Filter(HttpContext):
        def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
            self.send_http_response(403, body=b"no")
            return Action.PAUSE

    host = HostEmulator.for_http_context(Filter)
    ctx = host.initialize_http_context()
    host.call_on_request_headers(ctx, REQUEST, end_of_stream=True)
    assert not host.get_http_stream(ctx).reset


class Failing(HttpContext):
    def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
        raise ValueError("deny")


def _host(root: type[RootContext]) -> HostEmulator:
    host = HostEmulator(root)
    assert host.start_vm() and host.start_plugin()
    return host


def _status_of_a_failing_request(host: HostEmulator) -> int | None:
    ctx = host.initialize_http_context()
    action = host.call_on_request_headers(ctx, REQUEST, end_of_stream=True)
    reply = host.get_sent_local_response(ctx)
    if action == Action.CONTINUE:
        assert reply is None
        return None
    return reply.status_code if reply is not None else -1


def test_fail_closed_is_the_default() -> None:
    class Root(RootContext):
        def create_http_context(self, context_id: int) -> HttpContext:
            return Failing(context_id, self)

    assert _status_of_a_failing_request(_host(Root)) == 500


def test_fail_open_lets_the_request_through() -> None:
    class Root(RootContext):
        fail_open = True

        def create_http_context(self, context_id: int) -> HttpContext:
            return Failing(context_id, self)

    assert _status_of_a_failing_request(_host(Root)) is None


def test_a_root_whose_policy_raises_is_fail_closed() -> None:
    class Root(RootContext):
        @property
        def fail_open(self) -> bool:  # type: ignore[override]
            raise RuntimeError("cannot say")

        def create_http_context(self, context_id: int) -> HttpContext:
            return Failing(context_id, self)

    assert _status_of_a_failing_request(_host(Root)) == 500


def test_a_root_without_a_policy_is_fail_closed() -> None:
    class Root(RootContext):
        def __getattribute__(self, name: str) -> Any:
            if name == "fail_open":
                raise AttributeError(name)
            return super().__getattribute__(name)

        def create_http_context(self, context_id: int) -> HttpContext:
            return Failing(context_id, self)

    assert _status_of_a_failing_request(_host(Root)) == 500


def test_a_stream_whose_context_could_not_be_made_fails_closed() -> None:
    class Root(RootContext):
        def create_http_context(self, context_id: int) -> HttpContext:
            raise ValueError("no context for you")

    host = _host(Root)
    assert _status_of_a_failing_request(host) == 500
    errors = host.get_logs(LogLevel.ERROR)
    assert len(errors) == 1 and "no context for you" in errors[0]


def test_an_on_done_that_raises_still_finishes_the_context() -> None:
    events: list[str] = []

    class Filter(HttpContext):
        def on_done(self) -> bool:
            events.append("done")
            raise ValueError("done failed")

        def on_log(self) -> None:
            events.append("log")

    host = HostEmulator.for_http_context(Filter)
    ctx = host.initialize_http_context()
    host.call_on_request_headers(ctx, REQUEST, end_of_stream=True)
    host.complete_http_context(ctx)
    # on_done answered True for the filter (finished): the context is released.
    assert sorted(events) == ["done", "log"]
    assert host.get_http_stream(ctx).done
    errors = host.get_logs(LogLevel.ERROR)
    assert len(errors) == 1 and "on_done" in errors[0] and "done failed" in errors[0]


def test_a_root_whose_on_done_raises_is_deleted_at_shutdown() -> None:
    """A root's on_done may delay its end (False); one that raises must not hang the drain."""
    deleted: list[int] = []

    class Root(RootContext):
        def on_done(self) -> bool:
            raise ValueError("done failed")

        def on_delete(self) -> None:
            deleted.append(self.context_id)

    host = _host(Root)
    root_id = host.root_context_id
    host.shutdown()
    assert deleted == [root_id]
    assert not host.is_root_context_alive(root_id)
    errors = host.get_logs(LogLevel.ERROR)
    assert len(errors) == 1 and "on_done" in errors[0]


def test_a_root_whose_on_done_returns_false_waits() -> None:
    """The counterpart: False keeps the root until it calls done()."""

    class Root(RootContext):
        def on_done(self) -> bool:
            return False

    host = _host(Root)
    host.shutdown()
    assert host.is_root_context_alive(host.root_context_id)
