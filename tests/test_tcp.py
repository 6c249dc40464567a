"""TCP (network filter) streams: StreamContext."""

from __future__ import annotations

from proxywasm import Action, HostCallError, LogLevel, PeerType, RootContext, Status, StreamContext
from proxywasm.testing import HostEmulator


class Proxy(StreamContext):
    def __init__(self, context_id: int, root: RootContext) -> None:
        super().__init__(context_id, root)
        self.events: list[object] = root.events  # type: ignore[attr-defined]

    def on_new_connection(self) -> Action:
        self.events.append("new")
        return Action.CONTINUE

    def on_downstream_data(self, data_size: int, end_of_stream: bool) -> Action:
        data = self.get_downstream_data()
        self.events.append(("down", data_size, end_of_stream, data))
        if data is not None and not data.endswith(b"\n"):
            return Action.PAUSE  # wait for a whole line
        self.set_downstream_data((data or b"").upper())
        return Action.CONTINUE

    def on_upstream_data(self, data_size: int, end_of_stream: bool) -> Action:
        self.events.append(("up", data_size, self.get_upstream_data(0, 2)))
        self.set_upstream_data(b"<", 0, 0)
        return Action.CONTINUE

    def on_downstream_close(self, peer_type: PeerType) -> None:
        self.events.append(("down_close", peer_type))

    def on_upstream_close(self, peer_type: PeerType) -> None:
        self.events.append(("up_close", peer_type))

    def on_done(self) -> bool:
        self.events.append("done")
        return True

    def on_log(self) -> None:
        self.events.append("log")

    def on_delete(self) -> None:
        self.events.append("delete")


class Root(RootContext):
    def __init__(self, context_id: int) -> None:
        super().__init__(context_id)
        self.events: list[object] = []

    def create_stream_context(self, context_id: int) -> StreamContext:
        return Proxy(context_id, self)


def start() -> tuple[HostEmulator, Root]:
    roots: list[Root] = []

    def factory(context_id: int) -> Root:
        roots.append(Root(context_id))
        return roots[-1]

    host = HostEmulator(factory)
    assert host.start_vm() and host.start_plugin()
    return host, roots[0]


def test_new_connection_and_data_both_ways() -> None:
    host, root = start()
    ctx, action = host.initialize_connection()
    assert action == Action.CONTINUE
    assert host.call_on_downstream_data(ctx, b"hello\n") == Action.CONTINUE
    assert host.call_on_upstream_data(ctx, b"world") == Action.CONTINUE
    assert root.events == ["new", ("down", 6, False, b"hello\n"), ("up", 5, b"wo")]
    conn = host.get_connection(ctx)
    assert bytes(conn.forwarded_downstream) == b"HELLO\n"
    assert bytes(conn.forwarded_upstream) == b"<world"


def test_pause_buffers_until_the_filter_continues() -> None:
    host, root = start()
    ctx, _ = host.initialize_connection()
    assert host.call_on_downstream_data(ctx, b"par") == Action.PAUSE
    assert host.get_current_connection_action(ctx) == Action.PAUSE
    assert bytes(host.get_connection(ctx).forwarded_downstream) == b""
    assert host.call_on_downstream_data(ctx, b"tial\n", end_of_stream=True) == Action.CONTINUE
    assert root.events[-1] == ("down", 8, True, b"partial\n")
    assert bytes(host.get_connection(ctx).forwarded_downstream) == b"PARTIAL\n"


def test_resume_downstream_from_another_callback() -> None:
    held: list[StreamContext] = []

    class Holder(StreamContext):
        def on_downstream_data(self, data_size: int, end_of_stream: bool) -> Action:
            held.append(self)
            return Action.PAUSE

    class R(RootContext):
        def on_tick(self) -> None:
            for conn in held:
                # Envoy keeps the paused bytes reachable until they are resumed.
                conn.set_downstream_data(b"[", 0, 0)
                conn.resume_downstream()

        def create_stream_context(self, context_id: int) -> StreamContext:
            return Holder(context_id, self)

    host = HostEmulator(R)
    host.start_vm()
    host.start_plugin()
    ctx, _ = host.initialize_connection()
    host.call_on_downstream_data(ctx, b"data")
    host.tick(host.root_context_id)
    assert bytes(host.get_connection(ctx).forwarded_downstream) == b"[data"
    assert host.get_current_connection_action(ctx) == Action.CONTINUE


def test_resume_upstream_is_unimplemented_as_in_envoy() -> None:
    errors: list[HostCallError] = []

    class Up(StreamContext):
        def on_upstream_data(self, data_size: int, end_of_stream: bool) -> Action:
            try:
                self.resume_upstream()
            except HostCallError as exc:
                errors.append(exc)
            return Action.CONTINUE

    class R(RootContext):
        def create_stream_context(self, context_id: int) -> StreamContext:
            return Up(context_id, self)

    host = HostEmulator(R)
    host.start_vm()
    host.start_plugin()
    ctx, _ = host.initialize_connection()
    host.call_on_upstream_data(ctx, b"x")
    assert len(errors) == 1 and errors[0].status == Status.UNIMPLEMENTED


def test_close_callbacks_and_lifecycle() -> None:
    host, root = start()
    ctx, _ = host.initialize_connection()
    host.call_on_downstream_close(ctx, PeerType.REMOTE)
    host.call_on_upstream_close(ctx, PeerType.LOCAL)
    host.complete_connection(ctx)
    assert root.events == [
        "new",
        ("down_close", PeerType.REMOTE),
        ("up_close", PeerType.LOCAL),
        "done",
        "log",
        "delete",
    ]
    conn = host.get_connection(ctx)
    assert conn.downstream_closed and conn.upstream_closed and conn.done


def test_filter_closes_the_connection() -> None:
    class Closer(StreamContext):
        def on_downstream_data(self, data_size: int, end_of_stream: bool) -> Action:
            if self.get_downstream_data() == b"QUIT":
                self.close_downstream()
                self.close_upstream()
            return Action.CONTINUE

    class R(RootContext):
        def create_stream_context(self, context_id: int) -> StreamContext:
            return Closer(context_id, self)

    host = HostEmulator(R)
    host.start_vm()
    host.start_plugin()
    ctx, _ = host.initialize_connection()
    host.call_on_downstream_data(ctx, b"hi")
    assert not host.get_connection(ctx).downstream_closed
    host.call_on_downstream_data(ctx, b"QUIT")
    conn = host.get_connection(ctx)
    assert conn.downstream_closed and conn.upstream_closed


def test_data_is_not_readable_outside_its_callback() -> None:
    seen: list[object] = []

    class Peek(StreamContext):
        def on_new_connection(self) -> Action:
            seen.append(self.get_downstream_data())
            return Action.CONTINUE

        def on_upstream_data(self, data_size: int, end_of_stream: bool) -> Action:
            seen.append(self.get_downstream_data())
            return Action.CONTINUE

    class R(RootContext):
        def create_stream_context(self, context_id: int) -> StreamContext:
            return Peek(context_id, self)

    host = HostEmulator(R)
    host.start_vm()
    host.start_plugin()
    ctx, _ = host.initialize_connection()
    host.call_on_downstream_data(ctx, b"down")
    host.call_on_upstream_data(ctx, b"up")
    assert seen == [None, None]


def test_default_stream_context_lets_bytes_through() -> None:
    class R(RootContext):
        pass

    host = HostEmulator(R)
    host.start_vm()
    host.start_plugin()
    ctx, action = host.initialize_connection()
    assert action == Action.CONTINUE
    assert host.call_on_downstream_data(ctx, b"abc") == Action.CONTINUE
    assert bytes(host.get_connection(ctx).forwarded_downstream) == b"abc"
    assert host.get_logs(LogLevel.ERROR) == []


def test_exception_in_a_tcp_callback_closes_the_connection() -> None:
    class Boom(StreamContext):
        def on_downstream_data(self, data_size: int, end_of_stream: bool) -> Action:
            raise RuntimeError("tcp boom")

    class R(RootContext):
        def create_stream_context(self, context_id: int) -> StreamContext:
            return Boom(context_id, self)

    host = HostEmulator(R)
    host.start_vm()
    host.start_plugin()
    ctx, _ = host.initialize_connection()
    assert host.call_on_downstream_data(ctx, b"x") == Action.PAUSE
    assert host.get_connection(ctx).downstream_closed
    (log,) = host.get_logs(LogLevel.ERROR)
    assert "tcp boom" in log
