"""The null runtime's host functions (``AbiHost``) at their edges, found unchecked by mutation testing.

Each test drives the host as a filter would (through the SDK in a callback, or
the ``proxy_*`` functions with ``in_context``) and checks the ABI answer:
status codes and values as proxy-wasm-cpp-host and Envoy 1.40 give them.
docs/testing.md lists the mutants these kill.
"""

from __future__ import annotations

import pytest
from proxywasm import HttpContext, RootContext, Status
from proxywasm._serde import serialize_map
from proxywasm.testing import HostEmulator
from proxywasm.testing.abi_host import encode_property


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (True, b"\x01"),
        (False, b"\x00"),
        (0, b"\x00" * 8),
        (-2, b"\xfe" + b"\xff" * 7),
        ("é", "é".encode()),
        (b"\x00raw", b"\x00raw"),
        (bytearray(b"ba"), b"ba"),
    ],
)
def test_properties_are_encoded_as_envoy_does(value: object, encoded: bytes) -> None:
    assert encode_property(value) == encoded  # type: ignore[arg-type]
    host = HostEmulator(RootContext, properties={"a.b": value})  # type: ignore[dict-item]
    assert host.start_vm() and host.start_plugin()
    with host.in_context():
        assert host.proxy_get_property(b"a\x00b") == (0, encoded)


def test_a_property_of_another_type_is_refused_with_its_type() -> None:
    with pytest.raises(TypeError) as info:
        encode_property(1.5)  # type: ignore[arg-type]
    assert str(info.value) == "property value must be bytes, str, int or bool, not float"


def test_a_fresh_host_has_nothing_in_flight() -> None:
    from proxywasm import BufferType, MapType, Status

    host = HostEmulator(RootContext)
    assert (host.effective_context_id, host.callback) == (0, "")
    assert host.proxy_get_status() == (0, 0, b"")  # no failed call yet, no message
    assert host.start_vm() and host.start_plugin()
    not_found = int(Status.NOT_FOUND)
    with host.in_context():
        for m in (MapType.GRPC_CALL_INITIAL_METADATA, MapType.GRPC_CALL_TRAILING_METADATA):
            assert host.proxy_get_header_map_pairs(int(m)) == (not_found, b"")
        for b in (BufferType.GRPC_CALL_MESSAGE, BufferType.HTTP_CALL_RESPONSE_BODY):
            assert host.proxy_get_buffer_status(int(b)) == (not_found, 0, 0)


def test_a_tick_period_set_from_a_stream_or_connection_is_its_roots() -> None:
    from proxywasm import Action, HttpContext, StreamContext, hostcalls

    class Http(HttpContext):
        def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
            hostcalls.set_tick_period_milliseconds(25)
            return Action.CONTINUE

    class Tcp(StreamContext):
        def on_new_connection(self) -> Action:
            hostcalls.set_tick_period_milliseconds(40)
            return Action.CONTINUE

    class Root(RootContext):
        def create_http_context(self, context_id: int) -> HttpContext:
            return Http(context_id, self)

        def create_stream_context(self, context_id: int) -> StreamContext:
            return Tcp(context_id, self)

    host = HostEmulator(Root)
    assert host.start_vm() and host.start_plugin()
    second = host.add_plugin("second")
    host.call_on_request_headers(host.initialize_http_context(second), [(":path", "/")])
    assert host.tick_periods == {second: 25}
    conn, _ = host.initialize_connection()
    assert (
        host.tick_periods == {second: 25, host.root_context_id: 40}
        and conn not in host.tick_periods
    )


def test_a_log_message_that_is_not_utf8_is_kept_with_replacement_characters() -> None:
    from proxywasm import LogLevel

    host = HostEmulator(RootContext)
    assert host.proxy_log(int(LogLevel.WARN), b"bad \xff byte") == 0
    assert host.get_logs(LogLevel.WARN) == ["bad \ufffd byte"]


def _started() -> tuple[HostEmulator, int, int]:
    from proxywasm import HttpContext, StreamContext

    class Root(RootContext):
        def create_http_context(self, context_id: int) -> HttpContext:
            return HttpContext(context_id, self)

        def create_stream_context(self, context_id: int) -> StreamContext:
            return StreamContext(context_id, self)

    host = HostEmulator(Root)
    assert host.start_vm() and host.start_plugin()
    stream = host.initialize_http_context()
    host.call_on_request_headers(stream, [(":path", "/")])
    host.call_on_request_body(stream, b"req")
    host.call_on_response_headers(stream, [(":status", "200")])
    host.call_on_response_body(stream, b"resp")
    conn, _ = host.initialize_connection()
    host.call_on_downstream_data(conn, b"down")
    host.call_on_upstream_data(conn, b"up")
    return host, stream, conn


def test_body_and_data_buffers_are_missing_outside_their_callbacks() -> None:
    from proxywasm import BufferType, Status

    host, stream, conn = _started()
    not_found = int(Status.NOT_FOUND)
    buffers = (
        BufferType.HTTP_REQUEST_BODY,
        BufferType.HTTP_RESPONSE_BODY,
        BufferType.DOWNSTREAM_DATA,
        BufferType.UPSTREAM_DATA,
    )
    # from the root, the stream and the connection, after their callbacks passed them on
    for context in (None, stream, conn):
        with host.in_context(context):
            for buffer in map(int, buffers):
                assert host.proxy_get_buffer_bytes(buffer, 0, 10) == (not_found, b"")
                assert host.proxy_get_buffer_status(buffer) == (not_found, 0, 0)
                assert host.proxy_set_buffer_bytes(buffer, 0, 0, b"x") == not_found


def test_an_unknown_buffer_is_a_bad_argument() -> None:
    from proxywasm import Status

    host, _, _ = _started()
    bad = int(Status.BAD_ARGUMENT)
    with host.in_context():
        assert host.proxy_get_buffer_bytes(99, 0, 10) == (bad, b"")
        assert host.proxy_get_buffer_status(99) == (bad, 0, 0)
        assert host.proxy_set_buffer_bytes(99, 0, 0, b"x") == bad


def test_a_buffer_status_is_its_length_and_no_flags() -> None:
    from proxywasm import BufferType

    host = HostEmulator(RootContext, vm_configuration=b"vmconf")
    assert host.start_vm() and host.start_plugin()
    with host.in_context():
        assert host.proxy_get_buffer_status(int(BufferType.VM_CONFIGURATION)) == (0, 6, 0)


def test_the_last_body_chunk_may_add_trailers_and_on_log_sees_none_that_were_not_sent() -> None:
    from proxywasm import Action, HttpContext, MapType, Status

    statuses: list[int] = []

    class Filter(HttpContext):
        def on_http_request_body(self, body_size: int, end_of_stream: bool) -> Action:
            self.add_http_request_trailer("x-req", "1")
            return Action.CONTINUE

        def on_http_response_body(self, body_size: int, end_of_stream: bool) -> Action:
            self.add_http_response_trailer("x-resp", "2")
            return Action.CONTINUE

        def on_log(self) -> None:
            host = self_host[0]
            for m in (MapType.HTTP_RESPONSE_TRAILERS, MapType.HTTP_REQUEST_TRAILERS):
                statuses.append(host.proxy_get_header_map_pairs(int(m))[0])

    class Root(RootContext):
        def create_http_context(self, context_id: int) -> HttpContext:
            return Filter(context_id, self)

    host = HostEmulator(Root)
    self_host = [host]
    assert host.start_vm() and host.start_plugin()
    ctx = host.initialize_http_context()
    host.call_on_request_headers(ctx, [(":path", "/")])
    host.call_on_request_body(ctx, b"a", end_of_stream=True)
    host.call_on_response_headers(ctx, [(":status", "200")])
    host.call_on_response_body(ctx, b"b", end_of_stream=True)
    assert host.get_current_request_trailers(ctx) == [("x-req", "1")]
    assert host.get_current_response_trailers(ctx) == [("x-resp", "2")]
    # a stream that had no trailers: on_log finds no response trailers
    quiet = host.initialize_http_context()
    host.call_on_request_headers(quiet, [(":path", "/")], end_of_stream=True)
    host.call_on_response_headers(quiet, [(":status", "200")], end_of_stream=True)
    statuses.clear()
    host.complete_http_context(quiet)
    assert statuses == [int(Status.NOT_FOUND), int(Status.OK)]  # a map let go of: empty


def test_header_map_answers_in_a_stream_callback() -> None:
    from proxywasm import Action, HttpContext, MapType, Status

    answers: list[object] = []

    class Filter(HttpContext):
        def on_http_response_headers(self, num_headers: int, end_of_stream: bool) -> Action:
            h = self_host[0]
            # the response map: the size of its serialized pairs, as proxy_get_header_map_pairs
            status, data = h.proxy_get_header_map_pairs(int(MapType.HTTP_RESPONSE_HEADERS))
            answers.append(h.proxy_get_header_map_size(int(MapType.HTTP_RESPONSE_HEADERS)))
            answers.append((status, len(data)))
            # the request map, let go of once its callback returned CONTINUE: read-only empty
            answers.append(
                h.proxy_add_header_map_value(int(MapType.HTTP_REQUEST_HEADERS), b"a", b"b")
            )
            answers.append(h.proxy_get_header_map_value(int(MapType.HTTP_REQUEST_HEADERS), b"a"))
            # a map this callback has no such thing as: missing
            call = int(MapType.HTTP_CALL_RESPONSE_HEADERS)
            answers.append(h.proxy_get_header_map_value(call, b"a"))
            answers.append(h.proxy_get_header_map_pairs(int(MapType.HTTP_REQUEST_HEADERS)))
            answers.append(h.proxy_get_header_map_pairs(call))
            answers.append(h.proxy_get_header_map_pairs(99))
            answers.append(h.proxy_get_header_map_value(99, b"x"))
            response = int(MapType.HTTP_RESPONSE_HEADERS)
            answers.append(h.proxy_get_header_map_value(response, b"absent"))
            answers.append(h.proxy_get_header_map_value(response, b"X"))  # names: any case
            return Action.CONTINUE

    class Root(RootContext):
        def create_http_context(self, context_id: int) -> HttpContext:
            return Filter(context_id, self)

    host = HostEmulator(Root)
    self_host = [host]
    assert host.start_vm() and host.start_plugin()
    ctx = host.initialize_http_context()
    host.call_on_request_headers(ctx, [(":path", "/")], end_of_stream=True)
    host.call_on_response_headers(ctx, [(":status", "200"), ("x", "y")])
    ok, bad, missing = int(Status.OK), int(Status.BAD_ARGUMENT), int(Status.NOT_FOUND)
    size = answers[0]
    assert size == (ok, answers[1][1]) and answers[1][0] == ok  # type: ignore[index]
    empty = serialize_map([])
    assert answers[2:] == [
        bad,
        (bad, b""),
        (missing, b""),
        (ok, empty),  # let go of: an empty map, as Envoy answers
        (missing, b""),
        (bad, b""),  # not a map type
        (bad, b""),
        (missing, b""),
        (ok, b"y"),
    ]


def test_resuming_a_paused_body_forwards_it_after_what_went_before() -> None:
    from proxywasm import Action, HttpContext

    held: list[HttpContext] = []

    class Filter(HttpContext):
        def on_http_request_body(self, body_size: int, end_of_stream: bool) -> Action:
            if self.get_http_request_body() == b"cd":
                held.append(self)
                return Action.PAUSE
            return Action.CONTINUE

        def on_http_response_body(self, body_size: int, end_of_stream: bool) -> Action:
            if self.get_http_response_body() == b"gh":
                held.append(self)
                return Action.PAUSE
            return Action.CONTINUE

    class Root(RootContext):
        def create_http_context(self, context_id: int) -> HttpContext:
            return Filter(context_id, self)

        def on_tick(self) -> None:
            stream = held.pop()
            stream.resume_http_request()
            stream.resume_http_response()

    host = HostEmulator(Root)
    assert host.start_vm() and host.start_plugin()
    ctx = host.initialize_http_context()
    host.call_on_request_headers(ctx, [(":path", "/")])
    host.call_on_request_body(ctx, b"ab")
    host.call_on_request_body(ctx, b"cd")
    host.tick(host.root_context_id)
    assert host.get_forwarded_request_body(ctx) == b"abcd"
    host.call_on_request_body(ctx, b"ef", end_of_stream=True)  # a new chunk, not buffered
    assert host.get_current_request_body(ctx) == b"ef"
    assert host.get_forwarded_request_body(ctx) == b"abcdef"
    host.call_on_response_headers(ctx, [(":status", "200")])
    host.call_on_response_body(ctx, b"ef")
    host.call_on_response_body(ctx, b"gh")
    host.tick(host.root_context_id)
    assert host.get_forwarded_response_body(ctx) == b"efgh"
    host.call_on_response_body(ctx, b"ij", end_of_stream=True)
    assert host.get_current_response_body(ctx) == b"ij"
    assert host.get_forwarded_response_body(ctx) == b"efghij"


def test_resuming_paused_client_bytes_forwards_them_after_what_went_before() -> None:
    from proxywasm import Action, StreamContext

    held: list[StreamContext] = []

    class Tcp(StreamContext):
        def on_downstream_data(self, data_size: int, end_of_stream: bool) -> Action:
            if self.get_downstream_data() == b"cd":
                held.append(self)
                return Action.PAUSE
            return Action.CONTINUE

    class Root(RootContext):
        def create_stream_context(self, context_id: int) -> StreamContext:
            return Tcp(context_id, self)

        def on_tick(self) -> None:
            held.pop().resume_downstream()

    host = HostEmulator(Root)
    assert host.start_vm() and host.start_plugin()
    conn, _ = host.initialize_connection()
    host.call_on_downstream_data(conn, b"ab")
    host.call_on_downstream_data(conn, b"cd")
    host.tick(host.root_context_id)
    assert host.get_connection(conn).forwarded_downstream == b"abcd"
    host.call_on_downstream_data(conn, b"ef")
    record = host.get_connection(conn)
    assert (record.downstream_data, record.forwarded_downstream) == (b"ef", b"abcdef")


def test_a_root_context_has_no_stream_to_continue_or_close() -> None:
    from proxywasm import Status, StreamType

    host, _, _ = _started()
    missing = int(Status.NOT_FOUND)
    with host.in_context():
        for stream_type in StreamType:
            assert host.proxy_continue_stream(int(stream_type)) == missing
            assert host.proxy_close_stream(int(stream_type)) == missing
        assert host.proxy_continue_stream(9) == int(Status.BAD_ARGUMENT)
        assert host.proxy_close_stream(9) == int(Status.BAD_ARGUMENT)


def test_an_http_stream_has_no_connection_to_continue() -> None:
    from proxywasm import Status, StreamType

    host, stream, conn = _started()
    missing = int(Status.NOT_FOUND)
    with host.in_context(stream):
        for stream_type in (StreamType.DOWNSTREAM, StreamType.UPSTREAM):
            assert host.proxy_continue_stream(int(stream_type)) == missing
            assert host.proxy_close_stream(int(stream_type)) == missing
    with host.in_context(conn):
        for stream_type in (StreamType.HTTP_REQUEST, StreamType.HTTP_RESPONSE):
            assert host.proxy_continue_stream(int(stream_type)) == missing
            assert host.proxy_close_stream(int(stream_type)) == missing
        # Envoy cannot resume the upstream direction of a connection
        assert host.proxy_continue_stream(int(StreamType.UPSTREAM)) == int(Status.UNIMPLEMENTED)


@pytest.mark.parametrize("grpc_status", [-1, 0, 14, 2**31 - 1, -(2**31)])
def test_a_local_replys_grpc_status_is_a_signed_32_bit_value(grpc_status: int) -> None:
    from proxywasm import Action, HttpContext

    class Reply(HttpContext):
        def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
            self.send_http_response(503, grpc_status=grpc_status)
            return Action.PAUSE

    host = HostEmulator.for_http_context(Reply)
    ctx = host.initialize_http_context()
    host.call_on_request_headers(ctx, [(":path", "/")])
    reply = host.get_sent_local_response(ctx)
    assert reply is not None and reply.grpc_status == grpc_status


def test_closing_an_http_stream_resets_it() -> None:
    from proxywasm import Action, Status, StreamType

    host, stream, _ = _started()
    with host.in_context(stream):
        assert host.proxy_close_stream(int(StreamType.HTTP_RESPONSE)) == int(Status.OK)
    record = host.get_http_stream(stream)
    assert record.reset and record.request_ended
    assert host.get_current_http_stream_action(stream) == Action.PAUSE


def test_a_local_replys_header_names_are_lower_case_bytes_as_sent() -> None:
    from proxywasm import Action, HttpContext

    class Reply(HttpContext):
        def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
            headers = [(b"X-\xff", b"v\xfe"), ("X-Up", "V")]
            self.send_http_response(403, headers=headers, details="bad\udcff")
            return Action.PAUSE

    host = HostEmulator.for_http_context(Reply)
    ctx = host.initialize_http_context()
    host.call_on_request_headers(ctx, [(":path", "/")])
    assert host.get_http_stream(ctx).response_headers == [
        (b":status", b"403"),
        (b"x-\xff", b"v\xfe"),
        (b"x-up", b"V"),
    ]
    reply = host.get_sent_local_response(ctx)
    assert reply is not None and reply.details == "bad\ufffd"  # details are text: replaced


def test_an_http_callout_is_recorded_as_the_filter_sent_it() -> None:
    from proxywasm import Status
    from proxywasm.testing import HttpCallAttributes

    host, stream, _ = _started()
    second = host.add_plugin("second")
    other = host.initialize_http_context(second)
    headers = serialize_map(
        [(b":method", b"GET"), (b":path", b"/\xff"), (b":authority", b"a"), (b"x-\xfd", b"v")]
    )
    trailers = serialize_map([(b"x-t\xfc", b"\xfe")])
    with host.in_context(other):
        status, token = host.proxy_http_call(b"up\xff", headers, b"body", trailers, 250)
    assert status == int(Status.OK)
    assert host.get_http_call_attributes() == [
        HttpCallAttributes(
            token=token,
            upstream="up\ufffd",  # a cluster name is text
            headers=[
                (":method", "GET"),
                (":path", "/\udcff"),
                (":authority", "a"),
                ("x-\udcfd", "v"),
            ],
            body=b"body",
            trailers=[("x-t\udcfc", "\udcfe")],
            timeout_ms=250,
            root_context_id=second,
            context_id=other,
        )
    ]
    with host.in_context(stream):
        no_path = serialize_map([(b":method", b"GET"), (b":authority", b"a")])
        assert host.proxy_http_call(b"up", no_path, b"", trailers, 1) == (
            int(Status.BAD_ARGUMENT),
            0,
        )
        assert host.proxy_http_call(b"up", b"\x05", b"", trailers, 1) == (
            int(Status.SERIALIZATION_FAILURE),
            0,
        )
    limited = HostEmulator(RootContext, upstreams=["known"])
    assert limited.start_vm() and limited.start_plugin()
    with limited.in_context():
        assert limited.proxy_http_call(b"other", headers, b"", trailers, 1) == (
            int(Status.BAD_ARGUMENT),
            0,
        )
        assert limited.proxy_http_call(b"known", headers, b"", trailers, 1)[0] == int(Status.OK)


def test_a_grpc_call_and_stream_are_recorded_as_the_filter_opened_them() -> None:
    from proxywasm import Status
    from proxywasm.testing import GrpcCallAttributes

    host, stream, _ = _started()
    metadata = serialize_map([(b"x-md", b"v\xff")])
    with host.in_context(stream):
        status, call = host.proxy_grpc_call(b"g\xff", b"pkg.S\xfe", b"M\xfd", metadata, b"m", 300)
        assert status == int(Status.OK)
        status, watch = host.proxy_grpc_stream(b"g", b"pkg.S", b"Watch", serialize_map([]))
        assert status == int(Status.OK)
        bad_map = (int(Status.SERIALIZATION_FAILURE), 0)
        assert host.proxy_grpc_call(b"g", b"s", b"m", b"\x05", b"", 1) == bad_map
        assert host.proxy_grpc_stream(b"g", b"s", b"m", b"\x05") == bad_map
    root = host.root_context_id
    assert host.get_grpc_call_attributes() == [
        GrpcCallAttributes(
            token=call,
            upstream="g\ufffd",  # names and metadata values are text
            service="pkg.S\ufffd",
            method="M\ufffd",
            initial_metadata=[("x-md", "v\ufffd")],
            messages=[b"m"],
            timeout_ms=300,
            is_stream=False,
            root_context_id=root,
            context_id=stream,
        ),
        GrpcCallAttributes(
            token=watch,
            upstream="g",
            service="pkg.S",
            method="Watch",
            initial_metadata=[],
            messages=[],
            timeout_ms=0,
            is_stream=True,
            root_context_id=root,
            context_id=stream,
        ),
    ]
    limited = HostEmulator(RootContext, upstreams=["known"])
    assert limited.start_vm() and limited.start_plugin()
    with limited.in_context():
        refused = (int(Status.BAD_ARGUMENT), 0)
        assert limited.proxy_grpc_call(b"other", b"s", b"m", metadata, b"", 1) == refused
        assert limited.proxy_grpc_stream(b"other", b"s", b"m", metadata) == refused


def test_grpc_send_needs_an_open_stream() -> None:
    from proxywasm import Status

    host, stream, _ = _started()
    missing = int(Status.NOT_FOUND)
    with host.in_context(stream):
        _, unary = host.proxy_grpc_call(b"g", b"s", b"m", serialize_map([]), b"", 1)
        _, watch = host.proxy_grpc_stream(b"g", b"s", b"m", serialize_map([]))
        assert host.proxy_grpc_send(999, b"x", 0) == missing
        assert host.proxy_grpc_send(unary, b"x", 0) == missing
        assert host.proxy_grpc_send(watch, b"x", 0) == int(Status.OK)


def test_a_missing_shared_key_has_no_value_and_no_cas() -> None:
    from proxywasm import Status

    host = HostEmulator(RootContext)
    assert host.proxy_get_shared_data(b"nothing") == (int(Status.NOT_FOUND), b"", 0)


def test_a_queue_registered_again_belongs_to_the_last_registrant() -> None:
    from proxywasm import Status

    host = HostEmulator(RootContext, vm_id="v")
    assert host.start_vm() and host.start_plugin()
    second = host.add_plugin("second")
    with host.in_context():
        status, first_id = host.proxy_register_shared_queue(b"q\xff")
        assert status == int(Status.OK)
    with host.in_context(second):
        assert host.proxy_register_shared_queue(b"q\xff") == (int(Status.OK), first_id)
        assert host.proxy_resolve_shared_queue(b"", "q\ufffd".encode()) == (
            int(Status.OK),
            first_id,
        )
    (queue,) = host.queues.values()
    assert (queue.name, queue.vm_id, queue.owner_context_id) == ("q\ufffd", "v", second)
    with host.in_context():
        ok, missing = int(Status.OK), int(Status.NOT_FOUND)
        assert host.proxy_resolve_shared_queue(b"v", b"q\xff") == (ok, first_id)
        assert host.proxy_resolve_shared_queue(b"v\xff", b"q\xff") == (missing, 0)
        assert host.proxy_resolve_shared_queue(b"", b"r") == (missing, 0)
        assert host.proxy_dequeue_shared_queue(first_id) == (int(Status.EMPTY), b"")
        assert host.proxy_dequeue_shared_queue(999) == (missing, b"")


def test_metrics_are_defined_by_type_and_text_name() -> None:
    from proxywasm import MetricType, Status

    host = HostEmulator(RootContext)
    assert host.proxy_define_metric(7, b"m") == (int(Status.BAD_ARGUMENT), 0)
    status, metric_id = host.proxy_define_metric(int(MetricType.COUNTER), b"m\xff")
    assert status == int(Status.OK)
    assert host.metrics[metric_id].name == "m\ufffd"
    assert host.proxy_define_metric(int(MetricType.COUNTER), b"m\xff") == (
        int(Status.OK),
        metric_id,
    )
    assert host.proxy_get_metric(metric_id) == (int(Status.OK), 0)
    assert host.proxy_get_metric(999) == (int(Status.NOT_FOUND), 0)
    _, histogram = host.proxy_define_metric(int(MetricType.HISTOGRAM), b"h")
    assert host.proxy_get_metric(histogram) == (int(Status.BAD_ARGUMENT), 0)  # not readable


class HttpContextPass(HttpContext):
    pass


REQUEST = [
    (":method", "POST"),
    (":path", "/a/b?x=1?y"),
    (":authority", "example.com"),
    (":scheme", "https"),
    ("x-request-id", "rid"),
    ("user-agent", "ua"),
    ("referer", "ref"),
]


def _property(host: HostEmulator, context: int | None, *path: str) -> tuple[int, bytes]:
    with host.in_context(context):
        return host.proxy_get_property("\x00".join(path).encode())


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("request", "path"), b"/a/b?x=1?y"),
        (("request", "url_path"), b"/a/b"),
        (("request", "query"), b"x=1?y"),  # everything after the first "?"
        (("request", "method"), b"POST"),
        (("request", "host"), b"example.com"),
        (("request", "scheme"), b"https"),
        (("request", "id"), b"rid"),
        (("request", "useragent"), b"ua"),
        (("request", "referer"), b"ref"),
        (("response", "code"), (201).to_bytes(8, "little")),
        (("plugin_vm_id",), b"vm"),
    ],
)
def test_envoys_attributes_follow_from_the_stream(path: tuple[str, ...], value: bytes) -> None:
    host = HostEmulator.for_http_context(HttpContextPass, vm_id="vm")
    ctx = host.initialize_http_context()
    host.call_on_request_headers(ctx, [(k.upper(), v) for k, v in REQUEST])
    host.call_on_response_headers(ctx, [(":status", "201")])
    assert _property(host, ctx, *path) == (0, value)


def test_header_attributes_are_the_serialized_maps() -> None:
    host = HostEmulator.for_http_context(HttpContextPass)
    ctx = host.initialize_http_context()
    host.call_on_request_headers(ctx, REQUEST)
    request = [(k.encode(), v.encode()) for k, v in REQUEST]
    assert _property(host, ctx, "request", "headers") == (0, serialize_map(request))
    assert _property(host, ctx, "response", "headers") == (int(Status.NOT_FOUND), b"")
    assert _property(host, ctx, "response", "code") == (int(Status.NOT_FOUND), b"")
    assert _property(host, ctx, "connection", "id") == (0, ctx.to_bytes(8, "little"))
    host.call_on_response_headers(ctx, [(":status", "20x")])
    status = [(b":status", b"20x")]
    assert _property(host, ctx, "response", "headers") == (0, serialize_map(status))
    assert _property(host, ctx, "response", "code") == (int(Status.NOT_FOUND), b"")  # not digits


def test_attributes_of_a_request_without_them_are_missing() -> None:
    host = HostEmulator.for_http_context(HttpContextPass)
    ctx = host.initialize_http_context()
    host.call_on_request_headers(ctx, [(":path", "/plain")])
    missing = (int(Status.NOT_FOUND), b"")
    assert _property(host, ctx, "request", "query") == missing
    assert _property(host, ctx, "request", "url_path") == (0, b"/plain")
    for name in ("method", "host", "scheme", "id", "useragent", "referer"):
        assert _property(host, ctx, "request", name) == missing
    empty = host.initialize_http_context()
    assert _property(host, empty, "request", "url_path") == missing
    assert _property(host, empty, "request", "query") == missing
    # outside a stream there is no request at all
    assert _property(host, None, "request", "path") == missing
    assert _property(host, None, "connection", "id") == missing


def test_plugin_root_id_is_the_root_of_the_context_asking() -> None:
    host = HostEmulator.for_http_context(HttpContextPass, root_id="first")
    second = host.add_plugin("second")
    stream = host.initialize_http_context(second)
    assert _property(host, stream, "plugin_root_id") == (0, b"second")
    assert _property(host, None, "plugin_root_id") == (0, b"first")
    unstarted = HostEmulator(RootContext, root_id="r")  # no root context yet: the host's root id
    assert _property(unstarted, None, "plugin_root_id") == (0, b"r")


def test_properties_set_on_a_stream_or_connection_stay_with_it() -> None:
    host, stream, conn = _started()
    with host.in_context(conn):
        assert host.proxy_set_property(b"my\x00key", b"conn") == 0
    with host.in_context(stream):
        assert host.proxy_set_property(b"my\x00key", b"stream") == 0
    assert _property(host, conn, "my", "key") == (0, b"conn")
    assert _property(host, stream, "my", "key") == (0, b"stream")
    assert _property(host, None, "my", "key") == (int(Status.NOT_FOUND), b"")
    with host.in_context():
        assert host.proxy_get_property(b"my\xff") == (int(Status.NOT_FOUND), b"")
        assert host.proxy_set_property(b"my\xff", b"root") == 0
        assert host.proxy_get_property("my\ufffd".encode()) == (0, b"root")  # names are text


def test_foreign_functions_answer_by_text_name() -> None:
    host = HostEmulator(RootContext)
    host.register_foreign_function("f\ufffd", lambda arguments: arguments[::-1])

    def boom(arguments: bytes) -> bytes:
        raise RuntimeError("down")

    host.register_foreign_function("boom", boom)
    assert host.proxy_call_foreign_function(b"f\xff", b"ab") == (0, b"ba")
    assert host.proxy_call_foreign_function(b"nothing", b"") == (int(Status.NOT_FOUND), b"")
    assert host.proxy_call_foreign_function(b"boom", b"") == (int(Status.INTERNAL_FAILURE), b"")
