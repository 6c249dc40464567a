"""What ``hostcalls`` makes of each status a host can return, found unchecked by mutation testing.

Envoy and the emulator rarely fail most calls, so a stand-in host answers
every ABI function with one chosen status here (the host is the dependency;
``hostcalls``, the code under test, is real). Each public function must turn
``NOT_FOUND`` / ``EMPTY`` into its documented value and any other failure into
a :class:`HostCallError` that names the ABI function, the status and what it
was about, the message a filter author reads in the log.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from proxywasm import _nullhost, _state, hostcalls
from proxywasm.types import (
    BufferType,
    CasMismatchError,
    HostCallError,
    LogLevel,
    MapType,
    MetricType,
    Status,
    StreamType,
)

#: How many values after the status each ABI function returns (abi-stubs/_proxywasm.pyi).
_EXTRA = {
    "proxy_get_log_level": 1,
    "proxy_get_current_time_nanoseconds": 1,
    "proxy_get_buffer_bytes": 1,
    "proxy_get_buffer_status": 2,
    "proxy_get_header_map_pairs": 1,
    "proxy_get_header_map_value": 1,
    "proxy_get_status": 2,
    "proxy_http_call": 1,
    "proxy_grpc_call": 1,
    "proxy_grpc_stream": 1,
    "proxy_get_shared_data": 2,
    "proxy_register_shared_queue": 1,
    "proxy_resolve_shared_queue": 1,
    "proxy_dequeue_shared_queue": 1,
    "proxy_define_metric": 1,
    "proxy_get_metric": 1,
    "proxy_get_property": 1,
    "proxy_call_foreign_function": 1,
}


class StatusHost:
    """A host whose every call returns ``status`` and ``value`` for each extra result
    (a tuple ``value`` for a function with two), or what ``answers`` says for one function."""

    def __init__(self, status: int, value: Any = None, answers: dict[str, Any] | None = None):
        self.status = status
        self.value = value
        self.answers = answers or {}
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if not name.startswith("proxy_"):
            raise AttributeError(name)
        extra = _EXTRA.get(name, 0)

        def call(*args: Any) -> Any:
            self.calls.append((name, args))
            if name in self.answers:
                return self.answers[name]
            if extra == 2 and isinstance(self.value, tuple):
                return (self.status, *self.value)
            return (self.status, *([self.value] * extra)) if extra else self.status

        return call


@contextmanager
def answering(
    status: int, value: Any = None, answers: dict[str, Any] | None = None
) -> Iterator[StatusHost]:
    host = StatusHost(status, value, answers)
    previous = _nullhost.active
    _nullhost.active = host
    try:
        yield host
    finally:
        _nullhost.active = previous


FAIL = Status.INTERNAL_FAILURE

#: (call, the message of the HostCallError it raises when the host answers FAIL)
FAILURES: list[tuple[str, Callable[[], object], str]] = [
    ("log", lambda: hostcalls.log(LogLevel.INFO, "m"), "proxy_log"),
    ("log_level", hostcalls.get_log_level, "proxy_get_log_level"),
    ("time", hostcalls.get_current_time_nanoseconds, "proxy_get_current_time_nanoseconds"),
    (
        "tick",
        lambda: hostcalls.set_tick_period_milliseconds(5),
        "proxy_set_tick_period_milliseconds",
    ),
    (
        "get_buffer",
        lambda: hostcalls.get_buffer_bytes(BufferType.HTTP_REQUEST_BODY),
        "proxy_get_buffer_bytes: HTTP_REQUEST_BODY",
    ),
    (
        "buffer_status",
        lambda: hostcalls.get_buffer_status(BufferType.HTTP_RESPONSE_BODY),
        "proxy_get_buffer_status: HTTP_RESPONSE_BODY",
    ),
    (
        "set_buffer",
        lambda: hostcalls.set_buffer_bytes(BufferType.HTTP_REQUEST_BODY, b"x", 0, 1),
        "proxy_set_buffer_bytes: HTTP_REQUEST_BODY start=0 size=1",
    ),
    (
        "get_map",
        lambda: hostcalls.get_map_bytes(MapType.HTTP_REQUEST_HEADERS),
        "proxy_get_header_map_pairs: HTTP_REQUEST_HEADERS",
    ),
    (
        "set_map",
        lambda: hostcalls.set_map(MapType.HTTP_RESPONSE_HEADERS, [("a", "b")]),
        "proxy_set_header_map_pairs: HTTP_RESPONSE_HEADERS",
    ),
    (
        "map_value",
        lambda: hostcalls.get_map_value(MapType.HTTP_REQUEST_HEADERS, "k"),
        "proxy_get_header_map_value: HTTP_REQUEST_HEADERS",
    ),
    (
        "add",
        lambda: hostcalls.add_map_value(MapType.HTTP_REQUEST_TRAILERS, "k", "v"),
        "proxy_add_header_map_value: HTTP_REQUEST_TRAILERS",
    ),
    (
        "replace",
        lambda: hostcalls.replace_map_value(MapType.HTTP_RESPONSE_TRAILERS, "k", "v"),
        "proxy_replace_header_map_value: HTTP_RESPONSE_TRAILERS",
    ),
    (
        "remove",
        lambda: hostcalls.remove_map_value(MapType.HTTP_CALL_RESPONSE_HEADERS, "k"),
        "proxy_remove_header_map_value: HTTP_CALL_RESPONSE_HEADERS",
    ),
    (
        "continue",
        lambda: hostcalls.continue_stream(StreamType.HTTP_RESPONSE),
        "proxy_continue_stream: HTTP_RESPONSE",
    ),
    (
        "close",
        lambda: hostcalls.close_stream(StreamType.DOWNSTREAM),
        "proxy_close_stream: DOWNSTREAM",
    ),
    ("status", hostcalls.get_status, "proxy_get_status"),
    (
        "reply",
        lambda: hostcalls.send_local_response(403),
        "proxy_send_local_response: status 403",
    ),
    (
        "http_call",
        lambda: hostcalls.http_call("c", [(":path", "/")]),
        (
            "proxy_http_call: upstream 'c' (an unknown cluster, or headers missing "
            ":method, :path or :authority)"
        ),
    ),
    (
        "grpc_call",
        lambda: hostcalls.grpc_call("up", "svc", "m", None, b""),
        "proxy_grpc_call: svc/m on 'up'",
    ),
    (
        "grpc_stream",
        lambda: hostcalls.grpc_stream("up", "svc", "m"),
        "proxy_grpc_stream: svc/m on 'up'",
    ),
    ("grpc_send", lambda: hostcalls.grpc_send(3, b"x"), "proxy_grpc_send"),
    ("grpc_cancel", lambda: hostcalls.grpc_cancel(3), "proxy_grpc_cancel"),
    ("grpc_close", lambda: hostcalls.grpc_close(3), "proxy_grpc_close"),
    ("get_shared", lambda: hostcalls.get_shared_data("k"), "proxy_get_shared_data: 'k'"),
    ("set_shared", lambda: hostcalls.set_shared_data("k", b"v"), "proxy_set_shared_data: 'k'"),
    (
        "register",
        lambda: hostcalls.register_shared_queue("q"),
        "proxy_register_shared_queue: 'q'",
    ),
    (
        "resolve",
        lambda: hostcalls.resolve_shared_queue("vm", "q"),
        "proxy_resolve_shared_queue: 'q'",
    ),
    (
        "enqueue",
        lambda: hostcalls.enqueue_shared_queue(4, b"x"),
        "proxy_enqueue_shared_queue: queue 4",
    ),
    (
        "dequeue",
        lambda: hostcalls.dequeue_shared_queue(4),
        "proxy_dequeue_shared_queue: queue 4",
    ),
    (
        "define",
        lambda: hostcalls.define_metric(MetricType.COUNTER, "m"),
        "proxy_define_metric: 'm'",
    ),
    ("record", lambda: hostcalls.record_metric(5, 1), "proxy_record_metric: metric 5"),
    ("increment", lambda: hostcalls.increment_metric(5, 1), "proxy_increment_metric: metric 5"),
    ("get_metric", lambda: hostcalls.get_metric(5), "proxy_get_metric: metric 5"),
    ("get_property", lambda: hostcalls.get_property("a.b"), "proxy_get_property: 'a.b'"),
    ("set_property", lambda: hostcalls.set_property("a.b", b"v"), "proxy_set_property"),
    (
        "foreign",
        lambda: hostcalls.call_foreign_function("f"),
        "proxy_call_foreign_function: 'f'",
    ),
    (
        "effective",
        lambda: hostcalls.set_effective_context(7),
        "proxy_set_effective_context: context 7",
    ),
    ("done", hostcalls.done, "proxy_done"),
]


@pytest.mark.parametrize(
    ("call", "expected"), [f[1:] for f in FAILURES], ids=[f[0] for f in FAILURES]
)
def test_a_failed_host_call_names_its_function_status_and_subject(
    call: Callable[[], object], expected: str
) -> None:
    function, _, detail = expected.partition(": ")
    with answering(FAIL), pytest.raises(HostCallError) as info:
        call()
    error = info.value
    assert error.function == function and error.status == FAIL
    assert str(error) == f"{function} failed with INTERNAL_FAILURE" + (
        f": {detail}" if detail else ""
    )


@pytest.mark.parametrize(
    ("map_type", "hint"),
    [
        (
            MapType.HTTP_REQUEST_HEADERS,
            "request headers are only reachable in on_http_request_headers",
        ),
        (
            MapType.HTTP_REQUEST_TRAILERS,
            "request trailers are only reachable in on_http_request_trailers",
        ),
        (
            MapType.HTTP_RESPONSE_HEADERS,
            "response headers are only reachable in on_http_response_headers",
        ),
        (
            MapType.HTTP_RESPONSE_TRAILERS,
            "response trailers are only reachable in on_http_response_trailers",
        ),
    ],
)
def test_a_refused_stream_map_says_where_it_can_be_reached(map_type: MapType, hint: str) -> None:
    calls: list[tuple[Callable[[], object], str]] = [
        (lambda: hostcalls.set_map(map_type, []), "proxy_set_header_map_pairs"),
        (lambda: hostcalls.get_map_value(map_type, "k"), "proxy_get_header_map_value"),
        (lambda: hostcalls.add_map_value(map_type, "k", "v"), "proxy_add_header_map_value"),
        (
            lambda: hostcalls.replace_map_value(map_type, "k", "v"),
            "proxy_replace_header_map_value",
        ),
        (lambda: hostcalls.remove_map_value(map_type, "k"), "proxy_remove_header_map_value"),
    ]
    for call, function in calls:
        with answering(Status.BAD_ARGUMENT), pytest.raises(HostCallError) as info:
            call()
        assert info.value.function == function and info.value.status == Status.BAD_ARGUMENT
        message = str(info.value)
        assert message.startswith(f"{function} failed with BAD_ARGUMENT: ")
        assert f"failed with BAD_ARGUMENT: {map_type.name}: {hint}" in message
        assert message.endswith("; read what you need there and keep it on self")


def test_a_refused_map_that_is_not_a_stream_map_gets_no_hint() -> None:
    with answering(Status.BAD_ARGUMENT), pytest.raises(HostCallError) as info:
        hostcalls.set_map(MapType.HTTP_CALL_RESPONSE_HEADERS, [])
    assert str(info.value) == (
        "proxy_set_header_map_pairs failed with BAD_ARGUMENT: HTTP_CALL_RESPONSE_HEADERS"
    )


def test_not_found_and_empty_are_values_not_errors() -> None:
    with answering(Status.NOT_FOUND):
        assert hostcalls.get_buffer_bytes(BufferType.HTTP_REQUEST_BODY) is None
        assert hostcalls.get_buffer_status(BufferType.HTTP_REQUEST_BODY) is None
        assert hostcalls.get_map_bytes(MapType.HTTP_REQUEST_HEADERS) == []
        assert hostcalls.get_map_value(MapType.HTTP_REQUEST_HEADERS, "k") is None
        hostcalls.remove_map_value(MapType.HTTP_REQUEST_HEADERS, "k")  # nothing to remove
        assert hostcalls.get_shared_data("k") == (None, None)
        assert hostcalls.resolve_shared_queue("vm", "q") is None
        assert hostcalls.get_property("a") is None
    with answering(Status.EMPTY):
        assert hostcalls.get_buffer_bytes(BufferType.HTTP_REQUEST_BODY) is None
        assert hostcalls.dequeue_shared_queue(4) is None


def test_a_missing_foreign_function_is_named() -> None:
    with answering(Status.NOT_FOUND), pytest.raises(HostCallError) as info:
        hostcalls.call_foreign_function("compress")
    assert str(info.value) == (
        "proxy_call_foreign_function failed with NOT_FOUND: no foreign function 'compress'"
    )


def test_a_foreign_function_that_returns_nothing_returns_none() -> None:
    with answering(Status.OK, b""):
        assert hostcalls.call_foreign_function("f") is None
    with answering(Status.OK, b"r"):
        assert hostcalls.call_foreign_function("f") == b"r"


def test_a_stale_cas_is_its_own_error() -> None:
    with answering(Status.CAS_MISMATCH), pytest.raises(CasMismatchError) as info:
        hostcalls.set_shared_data("k", b"v", 3)
    assert str(info.value) == "proxy_set_shared_data failed with CAS_MISMATCH: key 'k', cas 3"


def test_what_the_host_is_asked() -> None:
    with answering(Status.OK, b"") as host:
        hostcalls.get_buffer_bytes(BufferType.HTTP_RESPONSE_BODY, 2)
        hostcalls.get_buffer_bytes(BufferType.HTTP_RESPONSE_BODY, 1, 3)
        hostcalls.set_shared_data("k", None)
        hostcalls.send_local_response(404, None, None, "why", -1)
        hostcalls.grpc_send(3, b"m", True)
        hostcalls.log(LogLevel.WARN, "caf\udce9")
    assert host.calls == [
        ("proxy_get_buffer_bytes", (int(BufferType.HTTP_RESPONSE_BODY), 2, 0xFFFFFFFF)),
        ("proxy_get_buffer_bytes", (int(BufferType.HTTP_RESPONSE_BODY), 1, 3)),
        ("proxy_set_shared_data", (b"k", b"", 0)),
        ("proxy_send_local_response", (404, b"why", b"", b"\x00\x00\x00\x00", 0xFFFFFFFF)),
        ("proxy_grpc_send", (3, b"m", 1)),
        ("proxy_log", (int(LogLevel.WARN), b"caf\xe9")),
    ]


def test_set_buffer_bytes_without_a_size_replaces_to_the_end() -> None:
    with answering(Status.OK, 10) as host:  # the buffer holds 10 bytes
        hostcalls.set_buffer_bytes(BufferType.HTTP_REQUEST_BODY, b"ab", 4)
        hostcalls.set_buffer_bytes(BufferType.HTTP_REQUEST_BODY, b"ab", 12)
    assert [c for c in host.calls if c[0] == "proxy_set_buffer_bytes"] == [
        ("proxy_set_buffer_bytes", (int(BufferType.HTTP_REQUEST_BODY), 4, 6, b"ab")),
        ("proxy_set_buffer_bytes", (int(BufferType.HTTP_REQUEST_BODY), 12, 0, b"ab")),
    ]


def test_arguments_out_of_range_are_refused_before_the_host() -> None:
    with answering(Status.OK) as host:
        with pytest.raises(ValueError, match=r"^tick period must be >= 0 ms, got -1$"):
            hostcalls.set_tick_period_milliseconds(-1)
        with pytest.raises(ValueError) as info:
            hostcalls.get_buffer_bytes(BufferType.HTTP_REQUEST_BODY, -1)
        assert str(info.value) == "buffer range must not be negative (start=-1, size=None)"
        with pytest.raises(ValueError, match=r"\(start=0, size=-2\)"):
            hostcalls.get_buffer_bytes(BufferType.HTTP_REQUEST_BODY, 0, -2)
        with pytest.raises(ValueError, match=r"\(start=-3, size=1\)"):
            hostcalls.set_buffer_bytes(BufferType.HTTP_REQUEST_BODY, b"", -3, 1)
        with pytest.raises(ValueError, match=r"\(start=0, size=-1\)"):
            hostcalls.set_buffer_bytes(BufferType.HTTP_REQUEST_BODY, b"", 0, -1)
        for code in (99, 1000):
            with pytest.raises(ValueError) as info:
                hostcalls.send_local_response(code)
            assert str(info.value) == f"HTTP status must be 100..999, got {code}"
        with pytest.raises(TypeError) as type_info:
            hostcalls.get_property(7)  # type: ignore[arg-type]
        assert str(type_info.value) == "property path must be str or a sequence of str, not int"
    assert host.calls == []
    for code in (100, 999):
        with answering(Status.OK):
            hostcalls.send_local_response(code)


_REQ = int(MapType.HTTP_REQUEST_HEADERS)
_BODY = int(BufferType.HTTP_REQUEST_BODY)
#: One pair ("k", "v\xff"), serialised by hand.
_MAP = b"\x01\x00\x00\x00\x01\x00\x00\x00\x02\x00\x00\x00k\x00v\xff\x00"

#: (id, call, what the host answers, the call the host sees, what the call returns)
CALLS: list[tuple[str, Callable[[], object], Any, tuple[str, tuple[Any, ...]], object]] = [
    (
        "log_bytes",
        lambda: hostcalls.log(LogLevel.ERROR, b"raw\xff"),  # type: ignore[arg-type]
        None,
        ("proxy_log", (int(LogLevel.ERROR), b"raw\xff")),
        None,
    ),
    ("log_level", hostcalls.get_log_level, 2, ("proxy_get_log_level", ()), LogLevel.INFO),
    (
        "time",
        hostcalls.get_current_time_nanoseconds,
        123,
        ("proxy_get_current_time_nanoseconds", ()),
        123,
    ),
    (
        "tick_0",
        lambda: hostcalls.set_tick_period_milliseconds(0),
        None,
        ("proxy_set_tick_period_milliseconds", (0,)),
        None,
    ),
    (
        "get_buffer",
        lambda: hostcalls.get_buffer_bytes(_BODY),
        b"abc",
        ("proxy_get_buffer_bytes", (_BODY, 0, 0xFFFFFFFF)),
        b"abc",
    ),
    (
        "get_buffer_0",
        lambda: hostcalls.get_buffer_bytes(_BODY, 0, 0),
        b"",
        ("proxy_get_buffer_bytes", (_BODY, 0, 0)),
        None,
    ),
    (
        "buffer_status",
        lambda: hostcalls.get_buffer_status(_BODY),
        (7, 1),
        ("proxy_get_buffer_status", (_BODY,)),
        (7, 1),
    ),
    (
        "set_buffer",
        lambda: hostcalls.set_buffer_bytes(_BODY, b"x", 0, 1),
        None,
        ("proxy_set_buffer_bytes", (_BODY, 0, 1, b"x")),
        None,
    ),
    (
        "get_map",
        lambda: hostcalls.get_map(_REQ),
        _MAP,
        ("proxy_get_header_map_pairs", (_REQ,)),
        [("k", "v\udcff")],
    ),
    (
        "get_map_bytes",
        lambda: hostcalls.get_map_bytes(_REQ),
        _MAP,
        ("proxy_get_header_map_pairs", (_REQ,)),
        [(b"k", b"v\xff")],
    ),
    (
        "set_map",
        lambda: hostcalls.set_map(_REQ, [("k", "v")]),
        None,
        (
            "proxy_set_header_map_pairs",
            (_REQ, b"\x01\x00\x00\x00\x01\x00\x00\x00\x01\x00\x00\x00k\x00v\x00"),
        ),
        None,
    ),
    (
        "map_value",
        lambda: hostcalls.get_map_value(_REQ, "k"),
        b"v\xff",
        ("proxy_get_header_map_value", (_REQ, b"k")),
        "v\udcff",
    ),
    (
        "map_value_bytes",
        lambda: hostcalls.get_map_value_bytes(_REQ, "k"),
        b"v",
        ("proxy_get_header_map_value", (_REQ, b"k")),
        b"v",
    ),
    (
        "add",
        lambda: hostcalls.add_map_value(_REQ, "k", b"v"),
        None,
        ("proxy_add_header_map_value", (_REQ, b"k", b"v")),
        None,
    ),
    (
        "replace",
        lambda: hostcalls.replace_map_value(_REQ, b"k", "v"),
        None,
        ("proxy_replace_header_map_value", (_REQ, b"k", b"v")),
        None,
    ),
    (
        "remove",
        lambda: hostcalls.remove_map_value(_REQ, "k"),
        None,
        ("proxy_remove_header_map_value", (_REQ, b"k")),
        None,
    ),
    (
        "continue",
        lambda: hostcalls.continue_stream(StreamType.UPSTREAM),
        None,
        ("proxy_continue_stream", (int(StreamType.UPSTREAM),)),
        None,
    ),
    (
        "close",
        lambda: hostcalls.close_stream(StreamType.HTTP_REQUEST),
        None,
        ("proxy_close_stream", (int(StreamType.HTTP_REQUEST),)),
        None,
    ),
    ("status", hostcalls.get_status, (14, b"m\xff"), ("proxy_get_status", ()), (14, "m\udcff")),
    (
        "reply",
        lambda: hostcalls.send_local_response(302, [("l", "/x")], "b", "d", 3),
        None,
        (
            "proxy_send_local_response",
            (302, b"d", b"b", b"\x01\x00\x00\x00\x01\x00\x00\x00\x02\x00\x00\x00l\x00/x\x00", 3),
        ),
        None,
    ),
    (
        "http_call",
        lambda: hostcalls.http_call("c", [("k", "v")], "b", [("t", "1")], 5),
        9,
        (
            "proxy_http_call",
            (
                b"c",
                b"\x01\x00\x00\x00\x01\x00\x00\x00\x01\x00\x00\x00k\x00v\x00",
                b"b",
                b"\x01\x00\x00\x00\x01\x00\x00\x00\x01\x00\x00\x00t\x001\x00",
                5,
            ),
        ),
        9,
    ),
    (
        "http_call_defaults",
        lambda: hostcalls.http_call("c", []),
        9,
        ("proxy_http_call", (b"c", b"\x00" * 4, b"", b"\x00" * 4, 1000)),
        9,
    ),
    (
        "grpc_call",
        lambda: hostcalls.grpc_call("u", "s", "m", [("k", "v")], b"x", 7),
        4,
        (
            "proxy_grpc_call",
            (
                b"u",
                b"s",
                b"m",
                b"\x01\x00\x00\x00\x01\x00\x00\x00\x01\x00\x00\x00k\x00v\x00",
                b"x",
                7,
            ),
        ),
        4,
    ),
    (
        "grpc_call_defaults",
        lambda: hostcalls.grpc_call("u", "s", "m", None, b""),
        4,
        ("proxy_grpc_call", (b"u", b"s", b"m", b"\x00" * 4, b"", 1000)),
        4,
    ),
    (
        "grpc_stream",
        lambda: hostcalls.grpc_stream("u", "s", "m", {"k": "v"}),
        6,
        (
            "proxy_grpc_stream",
            (b"u", b"s", b"m", b"\x01\x00\x00\x00\x01\x00\x00\x00\x01\x00\x00\x00k\x00v\x00"),
        ),
        6,
    ),
    (
        "grpc_stream_defaults",
        lambda: hostcalls.grpc_stream("u", "s", "m"),
        6,
        ("proxy_grpc_stream", (b"u", b"s", b"m", b"\x00" * 4)),
        6,
    ),
    (
        "grpc_send",
        lambda: hostcalls.grpc_send(3, "x"),  # type: ignore[arg-type]
        None,
        ("proxy_grpc_send", (3, b"x", 0)),
        None,
    ),
    ("grpc_cancel", lambda: hostcalls.grpc_cancel(3), None, ("proxy_grpc_cancel", (3,)), None),
    ("grpc_close", lambda: hostcalls.grpc_close(3), None, ("proxy_grpc_close", (3,)), None),
    (
        "get_shared",
        lambda: hostcalls.get_shared_data("k"),
        (b"v", 5),
        ("proxy_get_shared_data", (b"k",)),
        (b"v", 5),
    ),
    (
        "set_shared",
        lambda: hostcalls.set_shared_data("k", "v", 5),
        None,
        ("proxy_set_shared_data", (b"k", b"v", 5)),
        None,
    ),
    (
        "register",
        lambda: hostcalls.register_shared_queue("q"),
        8,
        ("proxy_register_shared_queue", (b"q",)),
        8,
    ),
    (
        "resolve",
        lambda: hostcalls.resolve_shared_queue("vm", "q"),
        8,
        ("proxy_resolve_shared_queue", (b"vm", b"q")),
        8,
    ),
    (
        "enqueue",
        lambda: hostcalls.enqueue_shared_queue(8, "x"),
        None,
        ("proxy_enqueue_shared_queue", (8, b"x")),
        None,
    ),
    (
        "dequeue",
        lambda: hostcalls.dequeue_shared_queue(8),
        b"x",
        ("proxy_dequeue_shared_queue", (8,)),
        b"x",
    ),
    (
        "define",
        lambda: hostcalls.define_metric(MetricType.GAUGE, "m"),
        2,
        ("proxy_define_metric", (int(MetricType.GAUGE), b"m")),
        2,
    ),
    ("record", lambda: hostcalls.record_metric(2, 9), None, ("proxy_record_metric", (2, 9)), None),
    (
        "increment",
        lambda: hostcalls.increment_metric(2, -1),
        None,
        ("proxy_increment_metric", (2, -1)),
        None,
    ),
    ("get_metric", lambda: hostcalls.get_metric(2), 11, ("proxy_get_metric", (2,)), 11),
    (
        "get_property",
        lambda: hostcalls.get_property("a.b"),
        b"v",
        ("proxy_get_property", (b"a\x00b",)),
        b"v",
    ),
    (
        "get_property_list",
        lambda: hostcalls.get_property(["a.b", "c"]),
        b"v",
        ("proxy_get_property", (b"a.b\x00c",)),
        b"v",
    ),
    (
        "set_property",
        lambda: hostcalls.set_property(("a", "b"), "v"),
        None,
        ("proxy_set_property", (b"a\x00b", b"v")),
        None,
    ),
    (
        "foreign",
        lambda: hostcalls.call_foreign_function("f", b"args"),
        b"r",
        ("proxy_call_foreign_function", (b"f", b"args")),
        b"r",
    ),
    (
        "effective",
        lambda: hostcalls.set_effective_context(7),
        None,
        ("proxy_set_effective_context", (7,)),
        None,
    ),
    ("done", hostcalls.done, None, ("proxy_done", ()), None),
    (
        "set_buffer_from_start",
        lambda: hostcalls.set_buffer_bytes(_BODY, b"x", size=2),
        None,
        ("proxy_set_buffer_bytes", (_BODY, 0, 2, b"x")),
        None,
    ),
    (
        "set_buffer_insert",
        lambda: hostcalls.set_buffer_bytes(_BODY, b"x", 3, 0),
        None,
        ("proxy_set_buffer_bytes", (_BODY, 3, 0, b"x")),
        None,
    ),
    (
        "reply_defaults",
        lambda: hostcalls.send_local_response(200),
        None,
        ("proxy_send_local_response", (200, b"", b"", b"\x00" * 4, 0xFFFFFFFF)),
        None,
    ),
    (
        "foreign_defaults",
        lambda: hostcalls.call_foreign_function("f"),
        b"r",
        ("proxy_call_foreign_function", (b"f", b"")),
        b"r",
    ),
]


@pytest.mark.parametrize(
    ("call", "answer", "asked", "result"), [c[1:] for c in CALLS], ids=[c[0] for c in CALLS]
)
def test_what_each_call_asks_the_host_and_returns(
    call: Callable[[], object], answer: Any, asked: tuple[str, tuple[Any, ...]], result: object
) -> None:
    with answering(Status.OK, answer) as host:
        assert call() == result
    assert host.calls[-1] == asked


#: (call with a value of the wrong type, the TypeError it raises)
WRONG_TYPES: list[tuple[Callable[[], object], str]] = [
    (lambda: hostcalls.log(LogLevel.INFO, 1), "log message"),  # type: ignore[arg-type]
    (lambda: hostcalls.set_buffer_bytes(_BODY, 1, 0, 0), "buffer value"),  # type: ignore[arg-type]
    (lambda: hostcalls.get_map_value(_REQ, 1), "header name"),  # type: ignore[arg-type]
    (lambda: hostcalls.add_map_value(_REQ, 1, "v"), "header name"),  # type: ignore[arg-type]
    (lambda: hostcalls.add_map_value(_REQ, "k", 1), "header value"),  # type: ignore[arg-type]
    (lambda: hostcalls.replace_map_value(_REQ, 1, "v"), "header name"),  # type: ignore[arg-type]
    (lambda: hostcalls.replace_map_value(_REQ, "k", 1), "header value"),  # type: ignore[arg-type]
    (lambda: hostcalls.remove_map_value(_REQ, 1), "header name"),  # type: ignore[arg-type]
    (lambda: hostcalls.send_local_response(200, None, 1), "body"),  # type: ignore[arg-type]
    (lambda: hostcalls.send_local_response(200, None, b"", 1), "status details"),  # type: ignore[arg-type]
    (lambda: hostcalls.http_call(1, []), "upstream"),  # type: ignore[arg-type]
    (lambda: hostcalls.http_call("c", [], 1), "body"),  # type: ignore[arg-type]
    (lambda: hostcalls.grpc_call(1, "s", "m", None, b""), "upstream"),  # type: ignore[arg-type]
    (lambda: hostcalls.grpc_call("u", 1, "m", None, b""), "service"),  # type: ignore[arg-type]
    (lambda: hostcalls.grpc_call("u", "s", 1, None, b""), "method"),  # type: ignore[arg-type]
    (lambda: hostcalls.grpc_call("u", "s", "m", None, 1), "message"),  # type: ignore[arg-type]
    (lambda: hostcalls.grpc_stream(1, "s", "m"), "upstream"),  # type: ignore[arg-type]
    (lambda: hostcalls.grpc_stream("u", 1, "m"), "service"),  # type: ignore[arg-type]
    (lambda: hostcalls.grpc_stream("u", "s", 1), "method"),  # type: ignore[arg-type]
    (lambda: hostcalls.grpc_send(1, 1), "message"),  # type: ignore[arg-type]
    (lambda: hostcalls.get_shared_data(1), "shared data key"),  # type: ignore[arg-type]
    (lambda: hostcalls.set_shared_data(1, b""), "shared data key"),  # type: ignore[arg-type]
    (lambda: hostcalls.set_shared_data("k", 1), "shared data value"),  # type: ignore[arg-type]
    (lambda: hostcalls.register_shared_queue(1), "queue name"),  # type: ignore[arg-type]
    (lambda: hostcalls.resolve_shared_queue(1, "q"), "vm id"),  # type: ignore[arg-type]
    (lambda: hostcalls.resolve_shared_queue("vm", 1), "queue name"),  # type: ignore[arg-type]
    (lambda: hostcalls.enqueue_shared_queue(1, 1), "queue item"),  # type: ignore[arg-type]
    (lambda: hostcalls.define_metric(MetricType.COUNTER, 1), "metric name"),  # type: ignore[arg-type]
    (lambda: hostcalls.get_property(["a", 1]), "property path segment"),  # type: ignore[list-item]
    (lambda: hostcalls.set_property("a", 1), "property value"),  # type: ignore[arg-type]
    (lambda: hostcalls.call_foreign_function(1), "function name"),  # type: ignore[arg-type]
]


@pytest.mark.parametrize(("call", "what"), WRONG_TYPES, ids=[w for _, w in WRONG_TYPES])
def test_a_value_of_the_wrong_type_is_named_in_the_error(
    call: Callable[[], object], what: str
) -> None:
    with answering(Status.OK, 1), pytest.raises(TypeError) as info:
        call()
    assert str(info.value) == f"{what} must be str or bytes, not int"


@pytest.mark.parametrize(
    "write",
    [
        lambda: hostcalls.set_map(_REQ, []),
        lambda: hostcalls.add_map_value(_REQ, "k", "v"),
        lambda: hostcalls.replace_map_value(_REQ, "k", "v"),
        lambda: hostcalls.remove_map_value(_REQ, "k"),
        lambda: hostcalls.send_local_response(200),
    ],
    ids=["set_map", "add", "replace", "remove", "reply"],
)
def test_a_map_write_moves_the_epoch_forward(write: Callable[[], object]) -> None:
    # Views compare the epoch for equality: it must move to a value it never had.
    saved = _state.map_epoch
    try:
        _state.map_epoch = 10
        with answering(Status.OK):
            write()
        assert _state.map_epoch > 10
    finally:
        _state.map_epoch = saved


def test_a_local_reply_marks_the_context_that_sent_it() -> None:
    saved = (_state.effective_context_id, _state.replied_context)
    try:
        _state.effective_context_id, _state.replied_context = 5, 0
        with answering(Status.OK):
            hostcalls.send_local_response(200)
        assert _state.replied_context == 5
    finally:
        _state.effective_context_id, _state.replied_context = saved


def test_set_buffer_bytes_of_a_missing_buffer_writes_from_nothing() -> None:
    answers = {"proxy_get_buffer_status": (Status.NOT_FOUND, 0, 0)}
    with answering(Status.OK, None, answers) as host:
        hostcalls.set_buffer_bytes(_BODY, b"ab", 0)
    assert host.calls[-1] == ("proxy_set_buffer_bytes", (_BODY, 0, 0, b"ab"))
    answers = {"proxy_get_buffer_status": (Status.OK, 10, 3)}  # size 10, flags 3
    with answering(Status.OK, None, answers) as host:
        hostcalls.set_buffer_bytes(_BODY, b"ab", 2)
    assert host.calls[-1] == ("proxy_set_buffer_bytes", (_BODY, 2, 8, b"ab"))


class UnskipHost(StatusHost):
    """The compiled glue's own switch, next to the ABI functions."""

    def __init__(self) -> None:
        super().__init__(Status.OK)
        self.unskipped: list[str] = []

    def pw_unskip(self, name: str) -> None:
        self.unskipped.append(name)


def test_unskip_reaches_the_glue_when_it_has_the_switch() -> None:
    host = UnskipHost()
    previous = _nullhost.active
    _nullhost.active = host
    try:
        hostcalls.unskip_callback("proxy_on_log")
    finally:
        _nullhost.active = previous
    assert host.unskipped == ["proxy_on_log"]
    with answering(Status.OK):
        hostcalls.unskip_callback("proxy_on_log")  # no switch natively: nothing happens
