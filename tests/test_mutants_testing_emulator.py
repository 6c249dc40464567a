"""The null runtime's ``HostEmulator`` at its edges, found unchecked by mutation testing.

Each test drives the emulator the way a test of a filter does and checks what
the host holds or answers, as the proxy-wasm ABI and Envoy define it (header
names are lower-case bytes, a trapped VM fails its stream with a local 503,
a deleted root context gets no more ticks). docs/testing.md lists the mutants
these kill.
"""

from __future__ import annotations

import json
from typing import Any

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
