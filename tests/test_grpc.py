"""gRPC calls and streams."""

from __future__ import annotations

import pytest
from proxywasm import HostCallError, RootContext
from proxywasm.testing import HostEmulator


class Root(RootContext):
    def __init__(self, context_id: int) -> None:
        super().__init__(context_id)
        self.events: list[tuple[object, ...]] = []

    def on_grpc_call_response(self, token_id: int, status_code: int, response_size: int) -> None:
        msg = self.get_grpc_receive_message() if status_code == 0 else None
        self.events.append(
            ("response", token_id, status_code, response_size, msg, self.get_grpc_status())
        )

    def on_grpc_stream_initial_metadata(self, token_id: int, num_elements: int) -> None:
        self.events.append(("initial", token_id, num_elements, self.get_grpc_initial_metadata()))

    def on_grpc_stream_message(self, token_id: int, message_size: int) -> None:
        self.events.append(("message", token_id, message_size, self.get_grpc_receive_message()))

    def on_grpc_stream_trailing_metadata(self, token_id: int, num_elements: int) -> None:
        self.events.append(("trailing", token_id, num_elements, self.get_grpc_trailing_metadata()))

    def on_grpc_stream_close(self, token_id: int, status_code: int) -> None:
        self.events.append(("close", token_id, status_code, self.get_grpc_status()))


def start(**kwargs: object) -> tuple[HostEmulator, Root]:
    roots: list[Root] = []

    def factory(context_id: int) -> Root:
        roots.append(Root(context_id))
        return roots[-1]

    host = HostEmulator(factory, **kwargs)  # type: ignore[arg-type]
    assert host.start_vm() and host.start_plugin()
    return host, roots[0]


def test_unary_call_attributes_and_answer() -> None:
    host, root = start()
    with host.in_context():
        token = root.dispatch_grpc_call(
            "grpc", "pkg.Svc", "Get", [("x-md", "1")], b"\x08\x01", timeout_ms=300
        )
    (call,) = host.get_grpc_call_attributes()
    assert (call.token, call.upstream, call.service, call.method) == (
        token,
        "grpc",
        "pkg.Svc",
        "Get",
    )
    assert call.initial_metadata == [("x-md", "1")] and call.messages == [b"\x08\x01"]
    assert call.timeout_ms == 300 and not call.is_stream
    host.call_on_grpc_receive(token, b"reply")
    assert root.events == [("response", token, 0, 5, b"reply", (0, ""))]
    assert host.get_grpc_call_attributes() == []


def test_unary_call_failure() -> None:
    host, root = start()
    with host.in_context():
        token = root.dispatch_grpc_call("grpc", "pkg.Svc", "Get", None, b"")
    host.call_on_grpc_close(token, 14, "unavailable")
    assert root.events == [("response", token, 14, 0, None, (14, "unavailable"))]
    assert host.get_grpc_call_attributes() == []


def test_unknown_upstream_is_refused() -> None:
    host, root = start(upstreams=["grpc"])
    with host.in_context(), pytest.raises(HostCallError, match="proxy_grpc_call"):
        root.dispatch_grpc_call("nope", "pkg.Svc", "Get", None, b"")
    assert host.get_grpc_call_attributes() == []


def test_stream_metadata_messages_and_close() -> None:
    host, root = start()
    with host.in_context():
        token = root.open_grpc_stream("grpc", "pkg.Svc", "Watch", [("x-md", "a")])
        root.send_grpc_stream_message(token, b"m1")
        root.send_grpc_stream_message(token, b"m2")
    (call,) = host.get_grpc_call_attributes()
    assert (
        call.is_stream
        and call.messages == [b"m1", b"m2"]
        and call.initial_metadata == [("x-md", "a")]
    )
    host.call_on_grpc_receive_initial_metadata(token, [("server", "s")])
    host.call_on_grpc_receive(token, b"r1")
    host.call_on_grpc_receive(token, b"r22")
    host.call_on_grpc_receive_trailing_metadata(token, [("grpc-status", "0")])
    host.call_on_grpc_close(token, 0)
    assert root.events == [
        ("initial", token, 1, [("server", "s")]),
        ("message", token, 2, b"r1"),
        ("message", token, 3, b"r22"),
        ("trailing", token, 1, [("grpc-status", "0")]),
        ("close", token, 0, (0, "")),
    ]
    assert host.get_grpc_call_attributes() == []


def test_send_with_end_of_stream_then_send_again_fails() -> None:
    host, root = start()
    with host.in_context():
        token = root.open_grpc_stream("grpc", "pkg.Svc", "Upload")
        root.send_grpc_stream_message(token, b"last", end_of_stream=True)
        with pytest.raises(HostCallError):
            root.send_grpc_stream_message(token, b"more")
    (call,) = host.get_grpc_call_attributes()
    assert call.messages == [b"last"] and call.closed_by_filter


def test_close_from_the_filter_keeps_receiving_until_the_remote_closes() -> None:
    host, root = start()
    with host.in_context():
        token = root.open_grpc_stream("grpc", "pkg.Svc", "Watch")
        root.close_grpc_stream(token)
    assert host.get_grpc_call_attributes()[0].closed_by_filter
    host.call_on_grpc_receive(token, b"late")
    host.call_on_grpc_close(token, 0)
    assert [e[0] for e in root.events] == ["message", "close"]


def test_cancel_removes_the_call_and_no_callback_follows() -> None:
    host, root = start()
    with host.in_context():
        token = root.open_grpc_stream("grpc", "pkg.Svc", "Watch")
        root.cancel_grpc_call(token)
        with pytest.raises(HostCallError):
            root.cancel_grpc_call(token)  # already gone: NOT_FOUND
    assert host.get_grpc_call_attributes() == []
    with pytest.raises(KeyError):
        host.call_on_grpc_receive(token, b"x")
    assert root.events == []


def test_stream_from_an_http_context_reaches_that_context() -> None:
    from proxywasm import Action, HttpContext

    got: list[tuple[int, bytes | None]] = []

    class F(HttpContext):
        def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
            self.open_grpc_stream("grpc", "pkg.Svc", "Watch")
            return Action.PAUSE

        def on_grpc_stream_message(self, token_id: int, message_size: int) -> None:
            got.append((self.context_id, self.get_grpc_receive_message()))
            self.resume_http_request()

    host = HostEmulator.for_http_context(F)
    ctx = host.initialize_http_context()
    host.call_on_request_headers(ctx, [(":path", "/")])
    (call,) = host.get_grpc_call_attributes()
    assert call.context_id == ctx
    host.call_on_grpc_receive(call.token, b"go")
    assert got == [(ctx, b"go")]
    assert host.get_current_http_stream_action(ctx) == Action.CONTINUE
