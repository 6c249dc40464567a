"""The null runtime's ``HostEmulator`` at its edges, found unchecked by mutation testing.

Each test drives the emulator the way a test of a filter does and checks what
the host holds or answers, as the proxy-wasm ABI and Envoy define it (header
names are lower-case bytes, a trapped VM fails its stream with a local 503,
a deleted root context gets no more ticks). docs/testing.md lists the mutants
these kill.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

import pytest
from proxywasm import Action, HttpContext, RootContext
from proxywasm.dispatcher import Dispatcher
from proxywasm.testing import HostEmulator
from proxywasm.testing.wasm import WasmTrapError

REQUEST = [(":method", "GET"), (":path", "/p"), (":authority", "example.com")]


class _Pass(HttpContext):
    pass


def _stream(host: HostEmulator | None = None) -> tuple[HostEmulator, int]:
    host = host or HostEmulator.for_http_context(_Pass)
    return host, host.initialize_http_context()


def test_headers_of_str_and_bytes_mixed_are_lower_cased_bytes() -> None:
    host, ctx = _stream()
    host.call_on_request_headers(ctx, [("X-A", b"1"), (b"X-B", "2"), ("X-C", "3")])
    assert host.get_http_stream(ctx).request_headers == [
        (b"x-a", b"1"),
        (b"x-b", b"2"),
        (b"x-c", b"3"),
    ]


def test_headers_as_a_mapping_are_its_items() -> None:
    host, ctx = _stream()
    host.call_on_request_headers(ctx, {":path": "/m", "X-K": "v"})
    assert host.get_current_request_headers(ctx) == [(":path", "/m"), ("x-k", "v")]


def test_non_utf8_header_bytes_round_trip_through_str() -> None:
    # Envoy header values are bytes; the emulator's str form is surrogate-escaped UTF-8.
    host, ctx = _stream()
    host.call_on_request_headers(ctx, [("x-\udcff", "v\udcfe")])
    assert host.get_http_stream(ctx).request_headers == [(b"x-\xff", b"v\xfe")]
    assert host.get_current_request_headers(ctx) == [("x-\udcff", "v\udcfe")]


def test_a_str_body_with_escaped_bytes_reaches_the_host_as_those_bytes() -> None:
    host, ctx = _stream()
    host.call_on_request_headers(ctx, REQUEST)
    host.call_on_request_body(ctx, "a\udcff", end_of_stream=True)
    assert host.get_current_request_body(ctx) == b"a\xff"


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ("x: y", "headers must be (name, value) pairs or a mapping, got str"),
        (b"x: y", "headers must be (name, value) pairs or a mapping, got bytes"),
        ([("x", "y", "z")], "headers must be (name, value) pairs, got ('x', 'y', 'z')"),
        ([["x", "y"]], "headers must be (name, value) pairs, got ['x', 'y']"),
        ([("x", 1)], "header name and value must be str or bytes, got ('x', 1)"),
        ([(1, "y")], "header name and value must be str or bytes, got (1, 'y')"),
    ],
)
def test_malformed_headers_are_refused_with_what_was_wrong(headers: Any, message: str) -> None:
    host, ctx = _stream()
    with pytest.raises(TypeError) as info:
        host.call_on_request_headers(ctx, headers)
    assert str(info.value) == message


def test_configurations_given_as_json_values_are_their_json_bytes() -> None:
    seen: dict[str, bytes | None] = {}

    class Root(RootContext):
        def on_vm_start(self, vm_configuration_size: int) -> bool:
            seen["vm"] = self.get_vm_configuration()
            return True

        def on_configure(self, plugin_configuration_size: int) -> bool:
            seen["plugin"] = self.get_plugin_configuration()
            return True

    host = HostEmulator(Root, plugin_configuration={"a": [1]}, vm_configuration=[1, "x"])
    assert host.start_vm() and host.start_plugin()
    assert seen == {"plugin": json.dumps({"a": [1]}).encode(), "vm": json.dumps([1, "x"]).encode()}


def test_unknown_connection_and_grpc_token_name_what_is_missing() -> None:
    host = HostEmulator.for_http_context(_Pass)
    with pytest.raises(KeyError, match="no TCP connection with context id 99"):
        host.get_connection(99)
    with pytest.raises(KeyError, match="no open gRPC call with token 7"):
        host.call_on_grpc_close(7)


def test_a_deleted_root_gets_no_more_ticks() -> None:
    ticks: list[int] = []

    class Root(RootContext):
        def on_configure(self, plugin_configuration_size: int) -> bool:
            self.set_tick_period_ms(10)
            return True

        def on_tick(self) -> None:
            ticks.append(self.context_id)

    host = HostEmulator(Root)
    host.start_vm()
    host.start_plugin()
    host.tick()
    assert ticks == [host.root_context_id]
    host.shutdown()  # on_done returns True: the root is deleted
    assert not host.is_root_context_alive()
    host.tick()
    assert ticks == [host.root_context_id]
    assert host.get_tick_period() == 0


class _TrappingVm(Dispatcher):
    """A VM whose stream callbacks trap, as a compiled module's ``unreachable`` would."""

    def proxy_on_request_headers(self, context_id: int, *args: int) -> int:
        raise WasmTrapError("m.wasm trapped: unreachable")

    def proxy_on_new_connection(self, context_id: int) -> int:
        raise WasmTrapError("m.wasm trapped: unreachable")


def _trapping(policy: str) -> HostEmulator:
    host = HostEmulator(failure_policy=policy, _callbacks=_TrappingVm({None: RootContext}))
    assert host.start_vm() and host.start_plugin()
    return host


def test_a_trapped_stream_gets_envoys_local_503() -> None:
    host = _trapping("closed")
    ctx = host.initialize_http_context()
    with pytest.raises(WasmTrapError):
        host.call_on_request_headers(ctx, REQUEST, end_of_stream=True)
    reply = host.get_sent_local_response(ctx)
    assert reply is not None
    # proxy-wasm-cpp-host's CHECK_FAIL: sendLocalReply(503, "", ..., "wasm_fail_stream"),
    # gRPC status UNAVAILABLE (14)
    assert (reply.status_code, reply.body, reply.details, reply.grpc_status) == (
        503,
        b"",
        "wasm_fail_stream",
        14,
    )
    assert host.get_current_http_stream_action(ctx) == Action.PAUSE
    # later streams: the module is not called, each gets its own 503
    later = host.initialize_http_context()
    assert host.call_on_request_headers(later, REQUEST, end_of_stream=True) == Action.PAUSE
    later_reply = host.get_sent_local_response(later)
    assert later_reply is not None and later_reply.status_code == 503
    host.complete_http_context(later)  # on_log / on_done / on_delete on a dead VM: no error


def test_fail_open_passes_streams_and_connections_after_a_trap() -> None:
    host = _trapping("open")
    ctx = host.initialize_http_context()
    with pytest.raises(WasmTrapError):
        host.call_on_request_headers(ctx, REQUEST)
    assert host.get_sent_local_response(ctx) is None
    later = host.initialize_http_context()
    assert host.call_on_request_headers(later, REQUEST) == Action.CONTINUE
    assert host.get_sent_local_response(later) is None
    conn, action = host.initialize_connection()
    assert action == Action.CONTINUE
    assert not host.get_connection(conn).downstream_closed


def test_fail_closed_closes_a_connection_after_a_trap() -> None:
    host = _trapping("closed")
    with pytest.raises(WasmTrapError):
        host.initialize_connection()
    conn, action = host.initialize_connection()
    assert action == Action.PAUSE
    record = host.get_connection(conn)
    assert record.downstream_closed and record.upstream_closed


def test_a_root_on_done_on_a_dead_vm_lets_the_root_go() -> None:
    host = _trapping("closed")
    ctx = host.initialize_http_context()
    with pytest.raises(WasmTrapError):
        host.call_on_request_headers(ctx, REQUEST)
    host.shutdown()  # proxy_on_done answers "done" without the module: on_delete follows
    assert not host.is_root_context_alive()


def test_defaults_are_an_unnamed_plugin_in_an_unnamed_vm() -> None:
    # Envoy's PluginConfig: root_id and vm_id default to the empty string.
    seen: list[bytes | None] = []

    class Root(RootContext):
        def on_configure(self, plugin_configuration_size: int) -> bool:
            seen.append(self.get_property(["plugin_root_id"]))
            seen.append(self.get_property(["plugin_vm_id"]))
            seen.append(self.get_property(["node", "id"]))
            return True

    host = HostEmulator(Root)
    assert host.start_vm() and host.start_plugin()
    assert seen == [b"", b"", None]
    assert host.vm_configuration is None
    named = HostEmulator(Root, root_id="r", vm_id="v", properties={"node.id": "n"})
    seen.clear()
    assert named.start_vm() and named.start_plugin()
    assert seen == [b"r", b"v", b"n"]


def test_an_unknown_failure_policy_is_refused_with_the_choices() -> None:
    with pytest.raises(ValueError) as info:
        HostEmulator(_Pass, failure_policy="retry")
    assert str(info.value) == "failure_policy must be one of closed, open, reload, not 'retry'"


def test_a_body_held_behind_paused_headers_keeps_its_end_of_stream() -> None:
    seen: list[tuple[str, bytes, bool]] = []

    class Filter(HttpContext):
        def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
            return Action.PAUSE

        def on_http_request_body(self, body_size: int, end_of_stream: bool) -> Action:
            seen.append(("request", self.get_http_request_body(0, body_size), end_of_stream))
            return Action.CONTINUE

        def on_http_response_headers(self, num_headers: int, end_of_stream: bool) -> Action:
            return Action.PAUSE

        def on_http_response_body(self, body_size: int, end_of_stream: bool) -> Action:
            seen.append(("response", self.get_http_response_body(0, body_size), end_of_stream))
            return Action.CONTINUE

    host, ctx = _stream(HostEmulator.for_http_context(Filter))
    assert host.call_on_request_headers(ctx, REQUEST) == Action.PAUSE
    host.call_on_request_body(ctx, b"ab")
    host.call_on_request_body(ctx, b"cd", end_of_stream=True)
    assert seen == []  # StopAllIteration: the body waits in the host
    assert host.call_on_response_headers(ctx, [(":status", "200")]) == Action.PAUSE
    host.call_on_response_body(ctx, b"ef", end_of_stream=True)
    with host.in_context(ctx):
        from proxywasm import hostcalls

        hostcalls.continue_stream(0)  # request side
        hostcalls.continue_stream(1)  # response side
    host._deliver()
    assert seen == [("request", b"abcd", True), ("response", b"ef", True)]
    assert host.get_forwarded_request_body(ctx) == b"abcd"
    assert host.get_forwarded_response_body(ctx) == b"ef"


# -- second mutation run (docs/testing.md, "sdk/proxywasm/testing/") --------------------------


def test_for_http_context_hands_each_stream_its_root() -> None:
    seen: list[tuple[int, RootContext]] = []

    def make(context_id: int, root: RootContext) -> HttpContext:
        seen.append((context_id, root))
        return _Pass(context_id, root)

    host = HostEmulator.for_http_context(make)
    ctx = host.initialize_http_context()
    host.call_on_request_headers(ctx, REQUEST)  # the SDK makes the context on first use
    [(context_id, root)] = seen
    assert context_id == ctx
    assert isinstance(root, RootContext) and root.context_id == host.root_context_id
    # the root's class is named after the factory, so logs and tracebacks say whose it is
    assert type(root).__qualname__ == "RootOfmake"


def test_for_http_context_names_the_root_of_a_nameless_factory() -> None:
    import functools

    roots: list[RootContext] = []

    def make(tag: str, context_id: int, root: RootContext) -> HttpContext:
        roots.append(root)
        return _Pass(context_id, root)

    host = HostEmulator.for_http_context(functools.partial(make, "t"))
    host.call_on_request_headers(host.initialize_http_context(), REQUEST)
    assert type(roots[0]).__qualname__ == "RootOfHttpContext"


def test_before_start_vm_there_is_no_root_context() -> None:
    host = HostEmulator(_Pass)
    assert host.root_context_id == 0
    assert not host.is_root_context_alive()
    with pytest.raises(RuntimeError, match=r"^start_vm\(\) first$"):
        host.start_plugin()
    with pytest.raises(RuntimeError, match=r"^start_vm\(\) and start_plugin\(\) first$"):
        host.initialize_http_context()
    with pytest.raises(RuntimeError, match=r"^start_vm\(\) and start_plugin\(\) first$"):
        host.initialize_connection()


def test_a_callback_run_from_a_foreign_function_delivers_after_the_outer_one_returns() -> None:
    # The host's own work (a local reply, its response callbacks) waits until the
    # callback that is running returns, also when a test's foreign function drives
    # another stream from inside it.
    events: list[str] = []

    class Filter(HttpContext):
        def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
            if self.get_http_request_header(":path") == "/outer":
                events.append("outer: start")
                self.call_foreign_function("drive", b"")
                events.append("outer: end")
                return Action.CONTINUE
            self.send_http_response(403, body=b"no")
            return Action.PAUSE

        def on_http_response_headers(self, num_headers: int, end_of_stream: bool) -> Action:
            events.append(f"reply: {self.get_http_response_header(':status')}")
            return Action.CONTINUE

    host = HostEmulator.for_http_context(Filter)
    inner = host.initialize_http_context()

    def drive(arguments: bytes) -> bytes:
        host.call_on_request_headers(inner, [(":path", "/inner")], end_of_stream=True)
        return b""

    host.register_foreign_function("drive", drive)
    outer = host.initialize_http_context()
    host.call_on_request_headers(outer, [(":path", "/outer")])
    assert events == ["outer: start", "outer: end", "reply: 403"]
    # and the host still delivers after the next callback
    late = host.initialize_http_context()
    host.call_on_request_headers(late, [(":path", "/late")])
    assert events[-1] == "reply: 403" and len(events) == 4


def test_a_callback_leaves_the_host_as_it_found_it() -> None:
    # in_context() makes host calls from a test act for a context; driving another
    # callback meanwhile must not change which host, context and callback they act for.
    import proxywasm._nullhost as nullhost

    other = HostEmulator.for_http_context(_Pass)
    host, ctx = _stream()
    with host.in_context(ctx):
        before = (nullhost.active, host.effective_context_id, host.callback)
        stream = host.initialize_http_context()
        host.call_on_request_headers(stream, REQUEST)
        assert (nullhost.active, host.effective_context_id, host.callback) == before
        other.call_on_request_headers(other.initialize_http_context(), REQUEST)
        assert nullhost.active is host
        assert (host.effective_context_id, host.callback) == before[1:]
    # outside every callback no callback is running
    assert host.callback == "" and other.callback == ""


class _Forbid(HttpContext):
    def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
        self.send_http_response(403, body=b"no")
        return Action.PAUSE


class _ReplyThenTrapVm(Dispatcher):
    """The filter sends its local reply, then the module traps in the same callback."""

    def proxy_on_request_headers(self, context_id: int, *args: int) -> int:
        super().proxy_on_request_headers(context_id, *args)
        raise WasmTrapError("m.wasm trapped: unreachable")


class _ForbidRoot(RootContext):
    def create_http_context(self, context_id: int) -> HttpContext:
        return _Forbid(context_id, self)


def test_a_reply_sent_before_the_trap_is_the_one_the_client_gets() -> None:
    host = HostEmulator(_callbacks=_ReplyThenTrapVm({None: _ForbidRoot}))
    assert host.start_vm() and host.start_plugin()
    ctx = host.initialize_http_context()
    with pytest.raises(WasmTrapError):
        host.call_on_request_headers(ctx, REQUEST)
    reply = host.get_sent_local_response(ctx)
    assert reply is not None and (reply.status_code, reply.body) == (403, b"no")
    assert host.get_current_response_headers(ctx)[0] == (":status", "403")


class _TrapInBodyVm(Dispatcher):
    def proxy_on_request_body(self, context_id: int, *args: int) -> int:
        raise WasmTrapError("m.wasm trapped: unreachable")


class _PassRoot(RootContext):
    def create_http_context(self, context_id: int) -> HttpContext:
        return _Pass(context_id, self)


def test_a_dead_vm_rejects_a_new_configuration() -> None:
    host = HostEmulator(_callbacks=_TrapInBodyVm({None: _PassRoot}))
    assert host.start_vm() and host.start_plugin()
    ctx = host.initialize_http_context()
    host.call_on_request_headers(ctx, REQUEST)
    with pytest.raises(WasmTrapError):
        host.call_on_request_body(ctx, b"x", end_of_stream=True)
    assert host.configure({"new": 1}) is False  # the module is not called: nothing accepts it
    with pytest.raises(RuntimeError, match="rejected its configuration"):
        host.add_plugin("second")
    host.shutdown()  # on_done of a dead VM answers "done"
    assert not host.is_root_context_alive()


def test_under_reload_streams_begun_on_the_dead_vm_keep_failing() -> None:
    host = HostEmulator(failure_policy="reload", _callbacks=_TrapInBodyVm({None: _PassRoot}))
    assert host.start_vm() and host.start_plugin()
    old = host.initialize_http_context()
    assert host.call_on_request_headers(old, REQUEST) == Action.CONTINUE
    trapped = host.initialize_http_context()
    host.call_on_request_headers(trapped, REQUEST)
    with pytest.raises(WasmTrapError):
        host.call_on_request_body(trapped, b"x", end_of_stream=True)
    fresh = host.initialize_http_context()  # the VM is reloaded here
    assert host.vm_failure is None
    assert host.call_on_request_headers(fresh, REQUEST) == Action.CONTINUE
    assert host.call_on_request_trailers(old, [("t", "1")]) == Action.PAUSE
    reply = host.get_sent_local_response(old)
    assert reply is not None and reply.status_code == 503
    assert host.get_sent_local_response(fresh) is None
    # once the old streams are done, nothing is stale any more
    host.complete_http_context(old)
    host.complete_http_context(trapped)
    assert host.call_on_request_trailers(fresh, [("t", "1")]) == Action.CONTINUE


class _TrapOnInnerVm(Dispatcher):
    """Traps in the request headers of the streams listed in ``trap``."""

    trap: ClassVar[set[int]] = set()

    def proxy_on_request_headers(self, context_id: int, *args: int) -> int:
        if context_id in self.trap:
            raise WasmTrapError("m.wasm trapped: unreachable")
        return super().proxy_on_request_headers(context_id, *args)


def test_a_trap_inside_a_running_callback_replies_once_that_callback_returns() -> None:
    seen: list[object] = []

    class Outer(HttpContext):
        def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
            self.call_foreign_function("drive", b"")
            return Action.CONTINUE

    class Root(RootContext):
        def create_http_context(self, context_id: int) -> HttpContext:
            return Outer(context_id, self)

    host = HostEmulator(_callbacks=_TrapOnInnerVm({None: Root}))
    assert host.start_vm() and host.start_plugin()
    inner = host.initialize_http_context()
    _TrapOnInnerVm.trap = {inner}

    def drive(arguments: bytes) -> bytes:
        try:
            host.call_on_request_headers(inner, REQUEST)
        except WasmTrapError:
            seen.append(host.get_sent_local_response(inner))
        return b""

    host.register_foreign_function("drive", drive)
    host.call_on_request_headers(host.initialize_http_context(), REQUEST)
    assert seen == [None]  # not while the outer callback still runs
    reply = host.get_sent_local_response(inner)
    assert reply is not None and reply.status_code == 503


def test_a_reload_configures_every_plugin_again_with_its_own_configuration() -> None:
    calls: list[tuple[str, str, int, bytes | None]] = []

    class Root(RootContext):
        def on_vm_start(self, vm_configuration_size: int) -> bool:
            calls.append(("vm_start", "", vm_configuration_size, self.get_vm_configuration()))
            return True

        def on_configure(self, plugin_configuration_size: int) -> bool:
            root_id = (self.get_property(["plugin_root_id"]) or b"").decode()
            config = self.get_plugin_configuration()
            calls.append(("configure", root_id, plugin_configuration_size, config))
            return True

    host = HostEmulator(Root, plugin_configuration=b"first", vm_configuration=b"vm")
    assert host.start_vm() and host.start_plugin()
    host.add_plugin("second", b"2nd-config")
    calls.clear()
    host.reload_vm()
    assert calls == [
        ("vm_start", "", 2, b"vm"),
        ("configure", "", 5, b"first"),
        ("configure", "second", 10, b"2nd-config"),
    ]


def test_one_callback_can_resume_one_stream_and_answer_another() -> None:
    streams: list[HttpContext] = []

    class Held(HttpContext):
        def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
            streams.append(self)
            return Action.PAUSE

    class Root(RootContext):
        def on_configure(self, plugin_configuration_size: int) -> bool:
            self.set_tick_period_ms(1)
            return True

        def create_http_context(self, context_id: int) -> HttpContext:
            return Held(context_id, self)

        def on_tick(self) -> None:
            first, second = streams
            first.resume_http_request()  # nothing held: the host has nothing to deliver
            second.send_http_response(403, body=b"later")

    host = HostEmulator(Root)
    assert host.start_vm() and host.start_plugin()
    a, b = host.initialize_http_context(), host.initialize_http_context()
    host.call_on_request_headers(a, REQUEST)
    host.call_on_request_headers(b, REQUEST)
    host.tick()
    assert host.get_current_http_stream_action(a) == Action.CONTINUE
    reply = host.get_sent_local_response(b)
    assert reply is not None and (reply.status_code, reply.body) == (403, b"later")


def test_trailers_held_behind_paused_response_headers_reach_the_filter_on_resume() -> None:
    seen: list[object] = []
    held: list[HttpContext] = []

    class Filter(HttpContext):
        def on_http_response_headers(self, num_headers: int, end_of_stream: bool) -> Action:
            held.append(self)
            return Action.PAUSE

        def on_http_response_trailers(self, num_trailers: int) -> Action:
            seen.append(self.get_http_response_trailers())
            return Action.CONTINUE

    class Root(RootContext):
        def create_http_context(self, context_id: int) -> HttpContext:
            return Filter(context_id, self)

        def on_tick(self) -> None:
            held.pop().resume_http_response()

    host = HostEmulator(Root)
    assert host.start_vm() and host.start_plugin()
    ctx = host.initialize_http_context()
    host.call_on_request_headers(ctx, REQUEST, end_of_stream=True)
    assert host.call_on_response_headers(ctx, [(":status", "200")]) == Action.PAUSE
    host.call_on_response_trailers(ctx, [("grpc-status", "0")])
    assert seen == []  # waits in the host
    host.tick(host.root_context_id)
    assert seen == [[("grpc-status", "0")]]
    assert host.get_current_response_trailers(ctx) == [("grpc-status", "0")]


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        # Envoy's local reply with a body and no type: text/plain and its length
        ([], [(b":status", b"418"), (b"content-type", b"text/plain"), (b"content-length", b"2")]),
        (
            [("Content-Type", "application/json")],
            [
                (b":status", b"418"),
                (b"content-type", b"application/json"),
                (b"content-length", b"2"),
            ],
        ),
        # header values are bytes: a non-UTF-8 value the filter sent stays those bytes
        (
            [("x-raw", b"\xff")],
            [
                (b":status", b"418"),
                (b"x-raw", b"\xff"),
                (b"content-type", b"text/plain"),
                (b"content-length", b"2"),
            ],
        ),
    ],
)
def test_a_local_reply_with_a_body_gets_envoys_content_headers(
    headers: list[tuple[str, Any]], expected: list[tuple[bytes, bytes]]
) -> None:
    class Reply(HttpContext):
        def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
            self.send_http_response(418, headers=headers, body=b"hi")
            return Action.PAUSE

    host, ctx = _stream(HostEmulator.for_http_context(Reply))
    host.call_on_request_headers(ctx, REQUEST, end_of_stream=True)
    assert host.get_http_stream(ctx).response_headers == expected
    reply = host.get_sent_local_response(ctx)
    assert reply is not None and reply.body == b"hi"
    # the reply's own headers: what the client got, without the status pseudo-header
    assert reply.headers == [
        (k.decode(), v.decode("utf-8", "surrogateescape")) for k, v in expected[1:]
    ]


def test_a_reply_already_sent_is_not_replaced_later() -> None:
    streams: list[HttpContext] = []

    class Reply(HttpContext):
        def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
            streams.append(self)
            self.send_http_response(403, body=b"first")
            return Action.PAUSE

    class Root(RootContext):
        def create_http_context(self, context_id: int) -> HttpContext:
            return Reply(context_id, self)

        def on_tick(self) -> None:
            streams[0].send_http_response(500, body=b"second")

    host = HostEmulator(Root)
    assert host.start_vm() and host.start_plugin()
    ctx = host.initialize_http_context()
    host.call_on_request_headers(ctx, REQUEST, end_of_stream=True)
    host.tick(host.root_context_id)
    reply = host.get_sent_local_response(ctx)
    assert reply is not None and (reply.status_code, reply.body) == (403, b"first")
    assert host.get_current_response_body(ctx) == b"first"


def test_an_added_plugin_is_a_live_root_with_its_own_configuration() -> None:
    seen: list[tuple[int, bytes, bytes | None]] = []

    class Root(RootContext):
        def on_configure(self, plugin_configuration_size: int) -> bool:
            root_id = self.get_property(["plugin_root_id"]) or b""
            seen.append((self.context_id, root_id, self.get_plugin_configuration()))
            return True

    host = HostEmulator(Root)
    assert host.start_vm() and host.start_plugin()
    unnamed = host.add_plugin(plugin_configuration=b"cfg")
    named = host.add_plugin("auth", {"k": 1})
    assert seen[1:] == [(unnamed, b"", b"cfg"), (named, b"auth", b'{"k": 1}')]
    assert host.is_root_context_alive(unnamed) and host.is_root_context_alive(named)
    host.shutdown()
    assert not host.is_root_context_alive(unnamed) and not host.is_root_context_alive(named)


class _BadActionVm(Dispatcher):
    def proxy_on_request_headers(self, context_id: int, *args: int) -> int:
        return 7  # not a proxy_action_t


def test_a_callback_answering_no_action_is_an_error() -> None:
    host = HostEmulator(_callbacks=_BadActionVm({None: _PassRoot}))
    assert host.start_vm() and host.start_plugin()
    with pytest.raises(ValueError, match="7 is not a valid Action"):
        host.call_on_request_headers(host.initialize_http_context(), REQUEST)


def test_call_on_defaults_are_not_the_end_of_the_stream() -> None:
    from proxywasm import PeerType, StreamContext

    flags: list[tuple[str, object]] = []

    class Filter(HttpContext):
        def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
            flags.append(("request headers", end_of_stream))
            return Action.CONTINUE

        def on_http_request_body(self, body_size: int, end_of_stream: bool) -> Action:
            flags.append(("request body", end_of_stream))
            return Action.CONTINUE

        def on_http_response_headers(self, num_headers: int, end_of_stream: bool) -> Action:
            flags.append(("response headers", end_of_stream))
            return Action.CONTINUE

        def on_http_response_body(self, body_size: int, end_of_stream: bool) -> Action:
            flags.append(("response body", end_of_stream))
            return Action.CONTINUE

    class Tcp(StreamContext):
        def on_downstream_data(self, data_size: int, end_of_stream: bool) -> Action:
            flags.append(("downstream", end_of_stream))
            return Action.CONTINUE

        def on_upstream_data(self, data_size: int, end_of_stream: bool) -> Action:
            flags.append(("upstream", end_of_stream))
            return Action.CONTINUE

        def on_downstream_close(self, peer_type: PeerType) -> None:
            flags.append(("downstream close", peer_type))

        def on_upstream_close(self, peer_type: PeerType) -> None:
            flags.append(("upstream close", peer_type))

    class Root(RootContext):
        def create_http_context(self, context_id: int) -> HttpContext:
            return Filter(context_id, self)

        def create_stream_context(self, context_id: int) -> StreamContext:
            return Tcp(context_id, self)

    host = HostEmulator(Root)
    assert host.start_vm() and host.start_plugin()
    ctx = host.initialize_http_context()
    host.call_on_request_headers(ctx, REQUEST)
    host.call_on_request_body(ctx, b"a")
    host.call_on_response_headers(ctx, [(":status", "200")])
    host.call_on_response_body(ctx, b"b")
    conn, _ = host.initialize_connection()
    record = host.get_connection(conn)
    assert (record.context_id, record.root_context_id) == (conn, host.root_context_id)
    host.call_on_downstream_data(conn, b"c")
    host.call_on_upstream_data(conn, b"d")
    host.call_on_downstream_close(conn)
    host.call_on_upstream_close(conn)
    assert flags == [
        ("request headers", False),
        ("request body", False),
        ("response headers", False),
        ("response body", False),
        ("downstream", False),
        ("upstream", False),
        ("downstream close", PeerType.REMOTE),
        ("upstream close", PeerType.REMOTE),
    ]


def test_the_stream_record_keeps_each_directions_last_action() -> None:
    class Filter(HttpContext):
        def on_http_request_trailers(self, num_trailers: int) -> Action:
            return Action.PAUSE

        def on_http_response_headers(self, num_headers: int, end_of_stream: bool) -> Action:
            return Action.PAUSE

        def on_http_response_trailers(self, num_trailers: int) -> Action:
            return Action.PAUSE

    host, ctx = _stream(HostEmulator.for_http_context(Filter))
    host.call_on_request_headers(ctx, REQUEST)
    assert host.call_on_request_trailers(ctx, [("t", "1")]) == Action.PAUSE
    record = host.get_http_stream(ctx)
    assert (record.request_action, record.response_action) == (Action.PAUSE, Action.CONTINUE)
    assert host.call_on_response_headers(ctx, [(":status", "200")]) == Action.PAUSE
    assert (record.request_action, record.response_action) == (Action.PAUSE, Action.PAUSE)
    later = host.initialize_http_context()
    host.call_on_request_headers(later, REQUEST, end_of_stream=True)
    assert host.call_on_response_trailers(later, [("t", "2")]) == Action.PAUSE
    assert host.get_http_stream(later).response_action == Action.PAUSE
    # the test client reads them: a request paused in its trailers stalls
    exchange = host.http(REQUEST, request_trailers=[("t", "1")])
    assert exchange.stalled == "request" and exchange.upstream_headers is not None


def test_response_chunks_held_behind_paused_headers_arrive_together() -> None:
    seen: list[tuple[bytes, bool]] = []
    held: list[HttpContext] = []

    class Filter(HttpContext):
        def on_http_response_headers(self, num_headers: int, end_of_stream: bool) -> Action:
            held.append(self)
            return Action.PAUSE

        def on_http_response_body(self, body_size: int, end_of_stream: bool) -> Action:
            seen.append((self.get_http_response_body(0, body_size) or b"", end_of_stream))
            return Action.PAUSE

    class Root(RootContext):
        def create_http_context(self, context_id: int) -> HttpContext:
            return Filter(context_id, self)

        def on_tick(self) -> None:
            held.pop().resume_http_response()

    host = HostEmulator(Root)
    assert host.start_vm() and host.start_plugin()
    ctx = host.initialize_http_context()
    host.call_on_request_headers(ctx, REQUEST, end_of_stream=True)
    host.call_on_response_headers(ctx, [(":status", "200")])
    host.call_on_response_body(ctx, b"ab")
    host.call_on_response_body(ctx, b"cd", end_of_stream=True)
    host.tick(host.root_context_id)
    assert seen == [(b"abcd", True)]
    assert host.get_http_stream(ctx).response_action == Action.PAUSE


def test_a_response_body_without_headers_still_has_a_header_map() -> None:
    host, ctx = _stream()
    host.call_on_request_headers(ctx, REQUEST, end_of_stream=True)
    host.call_on_response_body(ctx, b"x", end_of_stream=True)
    assert host.get_http_stream(ctx).response_headers == []


@pytest.mark.parametrize("keep", [0, 1, 2])
def test_keep_finished_keeps_that_many_finished_records(keep: int) -> None:
    host = HostEmulator.for_http_context(_Pass, keep_finished=keep)
    streams = [host.http(REQUEST).context_id for _ in range(3)]
    conns = []
    for _ in range(3):
        conn, _action = host.initialize_connection()
        host.complete_connection(conn)
        conns.append(conn)
    for i, (stream, conn) in enumerate(zip(streams, conns, strict=True)):
        if i >= 3 - keep:
            assert host.get_http_stream(stream).done
            assert host.get_connection(conn).done
        else:
            with pytest.raises(KeyError, match=f"kept for the last {keep} only"):
                host.get_http_stream(stream)
            with pytest.raises(KeyError, match=f"kept for the last {keep} only"):
                host.get_connection(conn)


def test_a_second_shutdown_asks_only_the_roots_not_yet_done() -> None:
    done_calls: list[int] = []

    class Root(RootContext):
        def on_done(self) -> bool:
            done_calls.append(self.context_id)
            return self.context_id != first  # the first plugin finishes later

    host = HostEmulator(Root)
    assert host.start_vm() and host.start_plugin()
    first = host.root_context_id
    host.shutdown()
    assert done_calls == [first] and host.is_root_context_alive(first)
    second = host.add_plugin("second")
    host.shutdown()  # the first is still finishing: only the new plugin is asked
    assert done_calls == [first, second]
    assert host.is_root_context_alive(first) and not host.is_root_context_alive(second)


def test_the_http_client_runs_the_stream_on_the_root_it_names() -> None:
    host = HostEmulator(_PassRoot)
    assert host.start_vm() and host.start_plugin()
    second = host.add_plugin("second")
    exchange = host.http(REQUEST, root_context_id=second)
    assert host.get_http_stream(exchange.context_id).root_context_id == second
    assert (
        host.get_http_stream(host.http(REQUEST).context_id).root_context_id == host.root_context_id
    )


def test_a_callout_answered_with_headers_only_has_an_empty_body() -> None:
    seen: list[tuple[int, int, tuple[int, str]]] = []

    class Filter(HttpContext):
        def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
            self.dispatch_http_call(
                "auth", [(":method", "GET"), (":path", "/a"), (":authority", "a")]
            )
            return Action.PAUSE

        def on_http_call_response(
            self, token_id: int, num_headers: int, body_size: int, num_trailers: int
        ) -> None:
            from proxywasm import hostcalls

            seen.append((num_headers, body_size, hostcalls.get_status()))

    host, ctx = _stream(HostEmulator.for_http_context(Filter))
    host.call_on_request_headers(ctx, REQUEST, end_of_stream=True)
    (call,) = host.get_http_call_attributes()
    host.call_on_http_call_response(call.token, [(":status", "204")])
    # an answer is not a failure: no message (the code of the last failed call stays)
    assert seen == [(1, 0, (0, ""))]


def test_a_reset_callout_has_no_headers_no_body_and_status_reset() -> None:
    import proxywasm
    from proxywasm import hostcalls

    seen: list[object] = []

    class Filter(HttpContext):
        def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
            self.dispatch_http_call(
                "auth", [(":method", "GET"), (":path", "/"), (":authority", "a")]
            )
            return Action.PAUSE

        def on_http_call_response(
            self, token_id: int, num_headers: int, body_size: int, num_trailers: int
        ) -> None:
            seen.append((num_headers, body_size, num_trailers))
            seen.append(hostcalls.get_map_bytes(proxywasm.MapType.HTTP_CALL_RESPONSE_HEADERS))
            seen.append(self.get_http_call_response_body())
            seen.append(hostcalls.get_status())
            # at the ABI: an empty header map (OK), no body buffer (NOT_FOUND)
            seen.append(host.proxy_get_header_map_pairs(headers_map)[0])
            seen.append(host.proxy_get_buffer_status(body_buffer)[0])

    headers_map = int(proxywasm.MapType.HTTP_CALL_RESPONSE_HEADERS)
    body_buffer = int(proxywasm.BufferType.HTTP_CALL_RESPONSE_BODY)
    host, ctx = _stream(HostEmulator.for_http_context(Filter))
    host.call_on_request_headers(ctx, REQUEST, end_of_stream=True)
    (call,) = host.get_http_call_attributes()
    host.call_on_http_call_response(call.token, None, b"a reset has no body")
    assert seen == [(0, 0, 0), [], None, (11, "reset"), 0, int(proxywasm.Status.NOT_FOUND)]
    # and after the callback the answer is gone
    with host.in_context(ctx):
        assert host.proxy_get_buffer_status(body_buffer)[0] == int(proxywasm.Status.NOT_FOUND)
        assert host.proxy_get_header_map_pairs(headers_map)[0] == int(proxywasm.Status.NOT_FOUND)


def test_grpc_answers_are_visible_only_while_their_callback_runs() -> None:
    from proxywasm import BufferType, MapType, Status

    closes: list[int] = []
    roots: list[RootContext] = []

    class Root(RootContext):
        def on_configure(self, plugin_configuration_size: int) -> bool:
            roots.append(self)
            return True

        def on_grpc_stream_close(self, token_id: int, status_code: int) -> None:
            closes.append(status_code)

    host = HostEmulator(Root)
    assert host.start_vm() and host.start_plugin()
    with host.in_context():
        token = roots[0].open_grpc_stream("grpc", "pkg.Svc", "Watch")
    host.call_on_grpc_receive_initial_metadata(token, [("x-md", "1")])
    host.call_on_grpc_receive(token, b"\x08\x01")
    host.call_on_grpc_receive_trailing_metadata(token, [("grpc-status", "0")])
    not_found = int(Status.NOT_FOUND)
    with host.in_context():
        for m in (MapType.GRPC_CALL_INITIAL_METADATA, MapType.GRPC_CALL_TRAILING_METADATA):
            assert host.proxy_get_header_map_pairs(int(m)) == (not_found, b"")
        message = host.proxy_get_buffer_bytes(int(BufferType.GRPC_CALL_MESSAGE), 0, 9)
        assert message == (not_found, b"")
    host.call_on_grpc_close(token)  # default: gRPC status OK
    assert closes == [0]


def test_queues_are_found_by_name_within_a_vm() -> None:
    class Root(RootContext):
        def on_configure(self, plugin_configuration_size: int) -> bool:
            self.register_shared_queue("q")
            return True

    host = HostEmulator(Root, vm_id="v")
    assert host.start_vm() and host.start_plugin()
    host.enqueue_shared_queue("q", b"1")
    host.enqueue_shared_queue("q", b"2", vm_id="v")
    items = [b"1", b"2"]
    assert host.get_queue_items("q") == host.get_queue_items("q", vm_id="v") == items
    for name, vm in (("q", "other"), ("r", None)):
        shown = "v" if vm is None else vm
        with pytest.raises(KeyError) as info:
            host.get_queue_items(name, vm_id=vm)
        assert info.value.args == (f"no shared queue {name!r} (vm {shown!r})",)
        with pytest.raises(KeyError) as info:
            host.enqueue_shared_queue(name, b"x", vm_id=vm)
        assert info.value.args == (f"no shared queue {name!r} (vm {shown!r})",)


def test_an_unknown_histogram_is_named_in_the_error() -> None:
    host = HostEmulator.for_http_context(_Pass)
    with pytest.raises(KeyError) as info:
        host.get_histogram("latency")
    assert info.value.args == ("no histogram named 'latency'",)


def test_foreign_arguments_are_gone_after_their_callback() -> None:
    from proxywasm import BufferType, Status

    seen: list[bytes | None] = []

    class Root(RootContext):
        def on_foreign_function(self, function_id: int, arguments_size: int) -> None:
            seen.append(self.get_foreign_function_arguments())

    host = HostEmulator(Root)
    assert host.start_vm() and host.start_plugin()
    host.call_on_foreign_function(3, b"args")
    assert seen == [b"args"]
    with host.in_context():
        buffer = int(BufferType.FOREIGN_FUNCTION_ARGUMENTS)
        assert host.proxy_get_buffer_bytes(buffer, 0, 9) == (int(Status.NOT_FOUND), b"")
