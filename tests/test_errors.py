"""Errors: host calls outside callbacks, bad factories, exceptions and the failure policy."""

from __future__ import annotations

import proxywasm
import pytest
from proxywasm import Action, HttpContext, LogLevel, NotInCallbackError, RootContext, StreamContext
from proxywasm.testing import HostEmulator

REQUEST = [(":method", "GET"), (":path", "/"), (":authority", "example.com")]


def test_host_call_outside_a_callback_is_a_clear_error() -> None:
    with pytest.raises(NotInCallbackError) as info:
        proxywasm.get_shared_data("k")
    message = str(info.value)
    assert "proxy_get_shared_data" in message
    assert "outside a callback" in message and "HostEmulator" in message


def test_context_method_outside_a_callback() -> None:
    root = RootContext(1)
    with pytest.raises(NotInCallbackError, match="outside a callback"):
        root.get_property("request.path")


def test_host_calls_work_again_after_the_callback_returns_only_inside_one() -> None:
    kept: list[HttpContext] = []

    class F(HttpContext):
        def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
            kept.append(self)
            return Action.CONTINUE

    host = HostEmulator.for_http_context(F)
    ctx = host.initialize_http_context()
    host.call_on_request_headers(ctx, REQUEST)
    with pytest.raises(NotInCallbackError):
        kept[0].get_http_request_header(":path")  # the callback is over


class Raises(HttpContext):
    def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
        if self.get_http_request_header("x-fail"):
            explode_here(self.context_id)
        return Action.CONTINUE

    def on_http_response_headers(self, num_headers: int, end_of_stream: bool) -> Action:
        self.set_http_response_header("x-seen-by-filter", "1")
        return Action.CONTINUE


def explode_here(context_id: int) -> None:
    raise ValueError(f"broken filter in context {context_id}")


class ClosedRoot(RootContext):
    def create_http_context(self, context_id: int) -> HttpContext:
        return Raises(context_id, self)


class OpenRoot(ClosedRoot):
    fail_open = True


def started(root: type[RootContext]) -> HostEmulator:
    host = HostEmulator(root)
    assert host.start_vm() and host.start_plugin()
    return host


def test_exception_logs_one_error_with_the_whole_traceback() -> None:
    host = started(ClosedRoot)
    ctx = host.initialize_http_context()
    host.call_on_request_headers(ctx, REQUEST + [("x-fail", "1")])
    errors = host.get_logs(LogLevel.ERROR)
    assert len(errors) == 1
    (entry,) = errors
    assert "Traceback (most recent call last)" in entry
    assert "on_http_request_headers" in entry
    assert "explode_here" in entry
    assert 'raise ValueError(f"broken filter in context {context_id}")' in entry
    assert f"ValueError: broken filter in context {ctx}" in entry
    assert [lvl for lvl, _ in host.get_all_logs()].count(LogLevel.ERROR) == 1


def test_fail_closed_sends_500_and_ends_the_stream() -> None:
    host = started(ClosedRoot)
    ctx = host.initialize_http_context()
    assert host.call_on_request_headers(ctx, REQUEST + [("x-fail", "1")]) == Action.PAUSE
    reply = host.get_sent_local_response(ctx)
    assert reply is not None and reply.status_code == 500
    assert host.get_http_stream(ctx).request_ended
    # The local reply passed through the filter's own response callback.
    assert ("x-seen-by-filter", "1") in reply.headers
    host.call_on_request_body(ctx, b"more", end_of_stream=True)
    assert host.get_forwarded_request_body(ctx) == b""


def test_fail_open_continues_without_a_reply() -> None:
    host = started(OpenRoot)
    ctx = host.initialize_http_context()
    assert host.call_on_request_headers(ctx, REQUEST + [("x-fail", "1")]) == Action.CONTINUE
    assert host.get_sent_local_response(ctx) is None
    assert host.get_current_http_stream_action(ctx) == Action.CONTINUE
    assert len(host.get_logs(LogLevel.ERROR)) == 1
    host.call_on_request_body(ctx, b"body", end_of_stream=True)
    assert host.get_forwarded_request_body(ctx) == b"body"


@pytest.mark.parametrize("root", [ClosedRoot, OpenRoot])
def test_vm_keeps_working_for_the_next_stream(root: type[RootContext]) -> None:
    host = started(root)
    bad = host.initialize_http_context()
    host.call_on_request_headers(bad, REQUEST + [("x-fail", "1")])
    good = host.initialize_http_context()
    assert host.call_on_request_headers(good, REQUEST) == Action.CONTINUE
    assert host.get_sent_local_response(good) is None
    host.call_on_response_headers(good, [(":status", "200")])
    assert ("x-seen-by-filter", "1") in host.get_current_response_headers(good)
    assert len(host.get_logs(LogLevel.ERROR)) == 1


def test_wrong_type_from_the_http_context_factory() -> None:
    class NotAContext:
        pass

    class R(RootContext):
        def create_http_context(self, context_id: int) -> HttpContext:
            return NotAContext()  # type: ignore[return-value]

    host = started(R)
    ctx = host.initialize_http_context()
    assert host.call_on_request_headers(ctx, REQUEST) == Action.PAUSE
    (entry,) = host.get_logs(LogLevel.ERROR)
    assert (
        "R.create_http_context returned" in entry
        and "NotAContext" in entry
        and "HttpContext" in entry
    )
    reply = host.get_sent_local_response(ctx)
    assert reply is not None and reply.status_code == 500


def test_wrong_type_from_the_stream_context_factory_closes_the_connection() -> None:
    class R(RootContext):
        def create_stream_context(self, context_id: int) -> StreamContext:
            return HttpContext(context_id, self)  # type: ignore[return-value]

    host = started(R)
    ctx, action = host.initialize_connection()
    assert action == Action.PAUSE
    (entry,) = host.get_logs(LogLevel.ERROR)
    assert "create_stream_context returned HttpContext" in entry
    assert host.get_connection(ctx).downstream_closed


def test_factory_exception_with_fail_open_lets_traffic_through() -> None:
    class R(RootContext):
        fail_open = True

        def create_http_context(self, context_id: int) -> HttpContext:
            raise RuntimeError("factory failed")

    host = started(R)
    ctx = host.initialize_http_context()
    assert host.call_on_request_headers(ctx, REQUEST) == Action.CONTINUE
    assert host.get_sent_local_response(ctx) is None
    (entry,) = host.get_logs(LogLevel.ERROR)
    assert "factory failed" in entry


def test_root_factory_returning_the_wrong_type() -> None:
    host = HostEmulator(lambda context_id: object())  # type: ignore[arg-type,return-value]
    assert host.start_vm() is False
    (entry,) = host.get_logs(LogLevel.ERROR)
    assert "returned object, expected a proxywasm.RootContext" in entry


def test_non_str_header_name_is_a_type_error() -> None:
    errors: list[TypeError] = []

    class F(HttpContext):
        def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
            for call in (
                lambda: self.get_http_request_header(1),  # type: ignore[arg-type]
                lambda: self.set_http_request_header(None, "v"),  # type: ignore[arg-type]
                lambda: self.set_http_request_headers([(1, "v")]),  # type: ignore[list-item]
            ):
                try:
                    call()
                except TypeError as exc:
                    errors.append(exc)
            return Action.CONTINUE

    class R(RootContext):
        def create_http_context(self, context_id: int) -> HttpContext:
            return F(context_id, self)

    host = started(R)
    ctx = host.initialize_http_context()
    host.call_on_request_headers(ctx, REQUEST)
    assert len(errors) == 3
    assert all("header name must be str or bytes" in str(e) for e in errors)


def test_exception_in_on_configure_is_false_and_logged() -> None:
    class R(RootContext):
        def on_configure(self, plugin_configuration_size: int) -> bool:
            raise KeyError("missing_setting")

    host = HostEmulator(R, plugin_configuration=b"{}")
    assert host.start_vm() is True
    assert host.start_plugin() is False
    (entry,) = host.get_logs(LogLevel.ERROR)
    assert "on_configure" in entry and "missing_setting" in entry


def test_exception_in_on_vm_start_is_false() -> None:
    class R(RootContext):
        def on_vm_start(self, vm_configuration_size: int) -> bool:
            raise RuntimeError("no")

    host = HostEmulator(R)
    assert host.start_vm() is False
    assert len(host.get_logs(LogLevel.ERROR)) == 1


def test_callback_returning_a_non_action_value() -> None:
    class F(HttpContext):
        def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
            return "continue"  # type: ignore[return-value]

    class R(RootContext):
        def create_http_context(self, context_id: int) -> HttpContext:
            return F(context_id, self)

    host = started(R)
    ctx = host.initialize_http_context()
    assert host.call_on_request_headers(ctx, REQUEST) == Action.PAUSE
    (entry,) = host.get_logs(LogLevel.ERROR)
    assert "F.on_http_request_headers returned 'continue'" in entry
    assert "Action.CONTINUE or Action.PAUSE" in entry
    reply = host.get_sent_local_response(ctx)
    assert reply is not None and reply.status_code == 500


def test_plain_ints_are_accepted_as_actions() -> None:
    class F(HttpContext):
        def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
            return 1  # type: ignore[return-value]

    class R(RootContext):
        def create_http_context(self, context_id: int) -> HttpContext:
            return F(context_id, self)

    host = started(R)
    ctx = host.initialize_http_context()
    assert host.call_on_request_headers(ctx, REQUEST) == Action.PAUSE
    assert host.get_logs(LogLevel.ERROR) == []


def test_exception_in_a_callout_response_fails_the_stream_closed() -> None:
    class F(HttpContext):
        def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
            self.dispatch_http_call("c", REQUEST)
            return Action.PAUSE

        def on_http_call_response(
            self, token_id: int, num_headers: int, body_size: int, num_trailers: int
        ) -> None:
            raise RuntimeError("bad answer")

    class R(RootContext):
        def create_http_context(self, context_id: int) -> HttpContext:
            return F(context_id, self)

    class O(R):
        fail_open = True

    for root, expect_reply in ((R, True), (O, False)):
        host = started(root)
        ctx = host.initialize_http_context()
        host.call_on_request_headers(ctx, REQUEST)
        (call,) = host.get_http_call_attributes()
        host.call_on_http_call_response(call.token, [(":status", "200")])
        reply = host.get_sent_local_response(ctx)
        assert (reply is not None and reply.status_code == 500) is expect_reply
        if not expect_reply:
            assert host.get_current_http_stream_action(ctx) == Action.CONTINUE
        assert len(host.get_logs(LogLevel.ERROR)) == 1


def test_sys_exit_in_a_callback_does_not_end_the_vm() -> None:
    import sys

    class Exits(HttpContext):
        def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
            if self.get_http_request_header(":path") == "/exit":
                sys.exit(3)
            return Action.CONTINUE

    class Root(RootContext):
        def create_http_context(self, context_id: int) -> HttpContext:
            return Exits(context_id, self)

    host = HostEmulator(Root)
    assert host.start_vm() and host.start_plugin()
    ctx = host.initialize_http_context()
    assert (
        host.call_on_request_headers(ctx, [(":path", "/exit")], end_of_stream=True) == Action.PAUSE
    )
    reply = host.get_sent_local_response(ctx)
    assert reply is not None and reply.status_code == 500
    [error] = host.get_logs(LogLevel.ERROR)
    assert "SystemExit: 3" in error
    ok = host.initialize_http_context()
    assert host.call_on_request_headers(ok, [(":path", "/")], end_of_stream=True) == Action.CONTINUE


def test_raise_callback_errors_lets_the_exception_reach_the_test() -> None:
    class Boom(HttpContext):
        def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
            raise KeyError("missing thing")

    class Root(RootContext):
        def create_http_context(self, context_id: int) -> HttpContext:
            return Boom(context_id, self)

    host = HostEmulator(Root, raise_callback_errors=True)
    assert host.start_vm() and host.start_plugin()
    ctx = host.initialize_http_context()
    with pytest.raises(KeyError, match="missing thing"):
        host.call_on_request_headers(ctx, [(":path", "/")])
    assert len(host.get_logs(LogLevel.ERROR)) == 1  # logged first, as always


def test_module_level_tick_period() -> None:
    class Root(RootContext):
        def on_configure(self, plugin_configuration_size: int) -> bool:
            proxywasm.set_tick_period_ms(250)
            return True

    host = HostEmulator(Root)
    assert host.start_vm() and host.start_plugin()
    assert host.get_tick_period() == 250
