"""Context methods at their edges, found unchecked by mutation testing (scripts/mutation.py).

Defaults a filter relies on without passing them (``path="/"``, a 1 s
timeout, start 0), the Rust-named response methods, the default contexts a
root makes, and the configuration parser's messages. Driven through the
null runtime; the checks are what the host received or what the filter saw.
"""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
from proxywasm import Action, HttpContext, LogLevel, RootContext, StreamContext
from proxywasm.testing import HostEmulator

REQUEST = [(":method", "GET"), (":path", "/"), (":authority", "example.com")]


def _started(root: Any, **kwargs: Any) -> HostEmulator:
    host = HostEmulator(root, **kwargs)
    assert host.start_vm() and host.start_plugin()
    return host


# -- the contexts a root makes by default ---------------------------------------------------------


def test_a_root_without_an_http_context_class_lets_requests_through() -> None:
    host = _started(RootContext)
    ctx = host.initialize_http_context()
    assert host.call_on_request_headers(ctx, REQUEST, end_of_stream=True) == Action.CONTINUE
    stream = host._vm.streams[ctx]
    assert type(stream) is HttpContext and stream.context_id == ctx
    assert stream.root is host._vm.roots[host.root_context_id]
    assert host.get_logs(LogLevel.ERROR) == []


def test_a_root_without_a_stream_context_class_lets_bytes_through() -> None:
    host = _started(RootContext)
    ctx, action = host.initialize_connection()
    assert action == Action.CONTINUE
    assert host.call_on_downstream_data(ctx, b"x") == Action.CONTINUE
    stream = host._vm.streams[ctx]
    assert type(stream) is StreamContext and stream.context_id == ctx
    assert stream.root is host._vm.roots[host.root_context_id]


def test_stream_context_names_the_class_a_root_makes() -> None:
    class Upper(StreamContext):
        def on_downstream_data(self, data_size: int, end_of_stream: bool) -> Action:
            self.set_downstream_data((self.get_downstream_data() or b"").upper())
            return Action.CONTINUE

    class Root(RootContext):
        stream_context = Upper

    host = _started(Root)
    ctx, _ = host.initialize_connection()
    host.call_on_downstream_data(ctx, b"abc")
    assert bytes(host.get_connection(ctx).forwarded_downstream) == b"ABC"
    stream = host._vm.streams[ctx]
    assert stream.context_id == ctx and stream.root is host._vm.roots[host.root_context_id]


def test_the_default_on_done_lets_the_host_finish() -> None:
    host = _started(RootContext)
    ctx = host.initialize_http_context()
    host.call_on_request_headers(ctx, REQUEST, end_of_stream=True)
    assert host._invoke("proxy_on_done", ctx) is True


# -- callouts: what the host is sent --------------------------------------------------------------


class Caller(HttpContext):
    how: ClassVar[str] = ""
    made: ClassVar[list[Any]] = []

    def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
        if self.how == "defaults":
            self.made.append(self.http_call("auth"))
        elif self.how == "list":
            self.made.append(
                self.http_call(
                    "auth",
                    method="POST",
                    path="/check",
                    headers=[(":method", "PUT"), (":path", "/x"), (":authority", "a"), ("k", "v")],
                    body=b"b",
                    trailers=[("t", "1")],
                    timeout_ms=250,
                    authority="auth.local",
                )
            )
        elif self.how == "dict":
            self.made.append(self.http_call("auth", headers={"k": "v", ":path": "/no"}))
        elif self.how == "grpc":
            self.dispatch_grpc_call("grpc", "pkg.Svc", "Get", None, b"")
        return Action.PAUSE


def _call(how: str) -> tuple[HostEmulator, list[Any]]:
    made: list[Any] = []
    cls = type("Filter", (Caller,), {"how": how, "made": made})
    host = HostEmulator.for_http_context(cls)
    ctx = host.initialize_http_context()
    host.call_on_request_headers(ctx, REQUEST, end_of_stream=True)
    return host, made


def test_http_call_defaults() -> None:
    host, made = _call("defaults")
    (call,) = host.get_http_call_attributes()
    assert call.upstream == "auth" and call.timeout_ms == 1000
    assert call.headers == [(":method", "GET"), (":path", "/"), (":authority", "auth")]
    assert call.trailers == [] and call.body == b""
    assert repr(made[0]) == f"HttpCall('auth', token={call.token}, pending)"


def test_http_call_keywords_win_over_pseudo_headers_in_the_list() -> None:
    host, _ = _call("list")
    (call,) = host.get_http_call_attributes()
    assert call.headers == [
        (":method", "POST"),
        (":path", "/check"),
        (":authority", "auth.local"),
        ("k", "v"),
    ]
    assert call.body == b"b" and call.trailers == [("t", "1")] and call.timeout_ms == 250


def test_http_call_takes_a_mapping_of_headers() -> None:
    host, _ = _call("dict")
    (call,) = host.get_http_call_attributes()
    assert call.headers == [(":method", "GET"), (":path", "/"), (":authority", "auth"), ("k", "v")]


def test_a_grpc_call_times_out_after_a_second_by_default() -> None:
    host, _ = _call("grpc")
    (call,) = host.get_grpc_call_attributes()
    assert call.timeout_ms == 1000


def test_a_foreign_call_without_arguments_sends_none() -> None:
    received: list[bytes] = []

    class Filter(HttpContext):
        def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
            assert self.call_foreign_function("echo") == b"ok"
            return Action.CONTINUE

    host = HostEmulator.for_http_context(Filter)

    def echo(arguments: bytes) -> bytes:
        received.append(arguments)
        return b"ok"

    host.register_foreign_function("echo", echo)
    ctx = host.initialize_http_context()
    host.call_on_request_headers(ctx, REQUEST, end_of_stream=True)
    assert received == [b""]
    assert host.get_logs(LogLevel.ERROR) == []


# -- reads that take a range ------------------------------------------------------------------------


def test_ranges_of_the_response_body_the_grpc_message_and_tcp_data() -> None:
    seen: list[object] = []

    class Filter(HttpContext):
        def on_http_response_body(self, body_size: int, end_of_stream: bool) -> Action:
            seen.append(self.get_http_response_body(1, 2))
            return Action.CONTINUE

    host = HostEmulator.for_http_context(Filter)
    ctx = host.initialize_http_context()
    host.call_on_request_headers(ctx, REQUEST, end_of_stream=True)
    host.call_on_response_headers(ctx, [(":status", "200")], end_of_stream=False)
    host.call_on_response_body(ctx, b"abcdef", end_of_stream=True)

    class Root(RootContext):
        def on_grpc_call_response(self, token_id: int, status_code: int, size: int) -> None:
            seen.append(self.get_grpc_receive_message(1, 2))

    grpc = _started(Root)
    with grpc.in_context():
        token = grpc._vm.roots[grpc.root_context_id].dispatch_grpc_call(
            "grpc", "pkg.Svc", "Get", None, b""
        )
    grpc.call_on_grpc_receive(token, b"\x01\x02\x03\x04")

    class Tcp(StreamContext):
        def on_downstream_data(self, data_size: int, end_of_stream: bool) -> Action:
            seen.append(self.get_downstream_data(1, 2))
            return Action.CONTINUE

        def on_upstream_data(self, data_size: int, end_of_stream: bool) -> Action:
            seen.append(self.get_upstream_data())
            self.set_upstream_data(b"<", size=0)
            return Action.CONTINUE

    class TcpRoot(RootContext):
        stream_context = Tcp

    tcp = _started(TcpRoot)
    conn, _ = tcp.initialize_connection()
    tcp.call_on_downstream_data(conn, b"wxyz")
    tcp.call_on_upstream_data(conn, b"up")
    assert seen == [b"bc", b"\x02\x03", b"xy", b"up"]
    assert bytes(tcp.get_connection(conn).forwarded_upstream) == b"<up"


# -- the Rust-named response methods ----------------------------------------------------------------


def test_the_rust_named_response_methods_reach_the_response_maps() -> None:
    seen: list[object] = []

    class Filter(HttpContext):
        def on_http_response_headers(self, num_headers: int, end_of_stream: bool) -> Action:
            seen.append(self.get_http_response_headers())
            seen.append(self.get_http_response_headers_bytes())
            seen.append(self.get_http_response_header_bytes("x-b"))
            self.set_http_response_headers([(":status", "201"), ("x-set", "1")])
            return Action.CONTINUE

        def on_http_response_trailers(self, num_trailers: int) -> Action:
            seen.append(self.get_http_response_trailers())
            self.set_http_response_trailers({"t2": "2"})
            return Action.CONTINUE

    host = HostEmulator.for_http_context(Filter)
    ctx = host.initialize_http_context()
    host.call_on_request_headers(ctx, REQUEST, end_of_stream=True)
    host.clear_logs()
    host.call_on_response_headers(ctx, [(":status", "200"), ("x-b", "\xe9")], end_of_stream=False)
    host.call_on_response_trailers(ctx, [("t", "1")])
    assert seen == [
        [(":status", "200"), ("x-b", "\xe9")],
        [(b":status", b"200"), (b"x-b", b"\xc3\xa9")],
        b"\xc3\xa9",
        [("t", "1")],
    ]
    assert host.get_current_response_headers(ctx) == [(":status", "201"), ("x-set", "1")]
    assert host.get_current_response_trailers(ctx) == [("t2", "2")]
    assert host.get_logs(LogLevel.ERROR) == []


def test_a_local_reply_without_details_sends_none() -> None:
    class Filter(HttpContext):
        def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
            self.send_http_response(404)
            return Action.PAUSE

    host = HostEmulator.for_http_context(Filter)
    ctx = host.initialize_http_context()
    host.call_on_request_headers(ctx, REQUEST, end_of_stream=True)
    reply = host.get_sent_local_response(ctx)
    assert reply is not None and reply.status_code == 404 and reply.details == ""


# -- properties and configuration -----------------------------------------------------------------


def test_property_helpers_decode_and_miss() -> None:
    seen: list[object] = []

    class Filter(HttpContext):
        def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
            seen.append(self.get_property_str("x.raw"))
            seen.append(self.get_property_str("x.missing"))
            seen.append(self.get_property_int("x.missing"))
            seen.append(self.get_property_int("x.n"))
            return Action.CONTINUE

    host = HostEmulator.for_http_context(Filter)
    host.properties[("x", "raw")] = b"a\xff"
    host.set_property("x.n", -2)
    ctx = host.initialize_http_context()
    host.call_on_request_headers(ctx, REQUEST, end_of_stream=True)
    assert seen == ["a\udcff", None, None, -2]


class Configured(RootContext):
    seen: ClassVar[list[object]] = []

    def on_vm_start(self, vm_configuration_size: int) -> bool:
        self.seen.append(self.get_vm_configuration_json())
        return True

    def on_configure(self, plugin_configuration_size: int) -> bool:
        self.seen.append(self.get_plugin_configuration_json())
        return True


@pytest.mark.parametrize(
    ("vm", "plugin", "expected"),
    [
        (b'{"mode": 1}', b"[2]", [{"mode": 1}, [2]]),
        (None, b"  \n", [None, None]),  # absent, or only whitespace: no configuration
    ],
)
def test_configurations_parse_as_json(vm: bytes | None, plugin: bytes, expected: list[Any]) -> None:
    seen: list[object] = []
    cls = type("Root", (Configured,), {"seen": seen})
    _started(cls, vm_configuration=vm, plugin_configuration=plugin)
    assert seen == expected


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            b"{",
            (
                "VM configuration is not valid JSON: Expecting property name enclosed in "
                "double quotes (line 1, column 2)"
            ),
        ),
        (b"\xff", "VM configuration is not valid JSON: "),
    ],
)
def test_a_bad_vm_configuration_is_one_line_naming_it(raw: bytes, message: str) -> None:
    cls = type("Root", (Configured,), {"seen": []})
    host = HostEmulator(cls, vm_configuration=raw)
    assert host.start_vm() is False
    (error,) = host.get_logs(LogLevel.ERROR)
    assert error.startswith(f"on_vm_start rejected the configuration: {message}")
