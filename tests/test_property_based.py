"""Property-based tests (hypothesis) of the header-map serialisation and the null runtime.

* the proxy-wasm map serialisation round-trips any pairs of bytes, and its
  parser rejects malformed input with ``MapSerializationError`` only;
* headers a filter sets come back identical, through the SDK and the emulator;
* the callbacks of generated streams arrive in Envoy's order, buffered bodies
  grow as Envoy's do after ``PAUSE``, and a local reply ends the request path.

Filters are driven with the ``proxywasm_host`` fixture of the package's
pytest plugin.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from proxywasm import Action, HttpContext, RootContext
from proxywasm._serde import MapSerializationError, deserialize_map, serialize_map, to_bytes, to_str
from proxywasm.testing import HostEmulator
from proxywasm.testing import strategies as pst
from proxywasm.testing.pytest_plugin import HostFactory

#: Modest and deterministic enough for CI; the fixture is a factory, so sharing
#: it between the examples of one test is intended.
PROPERTY = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

Pairs = list[tuple[bytes, bytes]]
byte_pairs = st.lists(st.tuples(st.binary(max_size=40), st.binary(max_size=40)), max_size=12)


# -- the map serialisation ----------------------------------------------------------------


@PROPERTY
@given(byte_pairs)
@example([])
@example([(b"", b"")])
@example([(b"a\x00b", b"\x00"), (b"\x00", b"")])  # NULs inside: the lengths are explicit
def test_map_round_trip_bytes(pairs: Pairs) -> None:
    data = serialize_map(pairs)
    assert deserialize_map(data) == pairs
    assert len(data) == 4 + sum(8 + len(k) + 1 + len(v) + 1 for k, v in pairs)


no_surrogates = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=20)


@PROPERTY
@given(st.lists(st.tuples(no_surrogates, no_surrogates), max_size=8))
def test_map_round_trip_str_is_utf8(pairs: list[tuple[str, str]]) -> None:
    assert deserialize_map(serialize_map(pairs)) == [(k.encode(), v.encode()) for k, v in pairs]


@PROPERTY
@given(st.binary(max_size=64))
def test_undecodable_bytes_round_trip_through_str(raw: bytes) -> None:
    assert to_bytes(to_str(raw), "value") == raw


def test_empty_map_encodings() -> None:
    assert deserialize_map(b"") == []
    assert deserialize_map(b"\x00") == []
    assert deserialize_map(serialize_map([])) == []
    with pytest.raises(MapSerializationError):
        deserialize_map(b"\x01")


def _parse_or_error(data: bytes) -> Pairs | None:
    """Parse; ``None`` for MapSerializationError; anything else propagates and fails the test."""
    try:
        result = deserialize_map(data)
    except MapSerializationError:
        return None
    assert isinstance(result, list)
    assert all(isinstance(k, bytes) and isinstance(v, bytes) for k, v in result)
    return result


@PROPERTY
@given(st.binary(max_size=200))
@example(b"\xff\xff\xff\xff")  # a huge count
@example(b"\x01\x00\x00\x00\xff\xff\xff\xff\x00\x00\x00\x00")  # a huge key length
@example(b"\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00")  # one pair, no data
def test_deserialize_arbitrary_bytes(data: bytes) -> None:
    result = _parse_or_error(data)
    if result is not None and len(data) >= 2:
        # What it accepted is exactly a well-formed prefix of the input.
        assert data.startswith(serialize_map(result))


@st.composite
def mutated_maps(draw: st.DrawFn) -> bytes:
    """A well-formed map with a few random byte edits (flip, insert, delete)."""
    data = bytearray(serialize_map(draw(byte_pairs)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "insert", "delete"]))
        pos = draw(st.integers(0, len(data)))
        if op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=4))
        elif data and pos < len(data):
            if op == "flip":
                data[pos] ^= draw(st.integers(1, 255))
            else:
                del data[pos]
    return bytes(data)


@PROPERTY
@given(mutated_maps())
def test_deserialize_corrupted_maps(data: bytes) -> None:
    result = _parse_or_error(data)
    if result is not None and len(data) >= 2:
        assert data.startswith(serialize_map(result))


@PROPERTY
@given(byte_pairs.filter(bool), st.data())
def test_deserialize_rejects_truncation(pairs: Pairs, data: st.DataObject) -> None:
    full = serialize_map(pairs)
    cut = data.draw(st.integers(2, len(full) - 1), label="cut")
    with pytest.raises(MapSerializationError):
        deserialize_map(full[:cut])
    # One byte is the documented spelling of an empty map only when it is NUL.
    if full[0] != 0:
        with pytest.raises(MapSerializationError):
            deserialize_map(full[:1])


@PROPERTY
@given(byte_pairs.filter(bool), st.data())
def test_deserialize_rejects_missing_terminator(pairs: Pairs, data: st.DataObject) -> None:
    full = bytearray(serialize_map(pairs))
    # Offsets of every NUL terminator (after each key and each value).
    terminators = []
    pos = 4 + 8 * len(pairs)
    for k, v in pairs:
        pos += len(k)
        terminators.append(pos)
        pos += 1 + len(v)
        terminators.append(pos)
        pos += 1
    at = data.draw(st.sampled_from(terminators), label="terminator")
    full[at] = data.draw(st.integers(1, 255), label="byte")
    with pytest.raises(MapSerializationError):
        deserialize_map(bytes(full))


# -- a recording filter -------------------------------------------------------------------------


class Event(NamedTuple):
    """One callback the filter received: its name, its arguments, what it read."""

    name: str
    args: tuple[Any, ...]
    seen: Any = None


@dataclass
class Plan:
    """What the recording filter does: actions for body chunks, a local reply, headers to set."""

    request_body_actions: list[Action] = field(default_factory=list)
    response_body_actions: list[Action] = field(default_factory=list)
    #: ``(event name, chunk index)`` at which to send a local reply.
    local_reply_at: tuple[str, int] | None = None
    local_reply: tuple[int, list[tuple[str, str]], bytes] = (403, [], b"")
    #: Map type name -> pairs the filter sets with ``set_http_*_headers/trailers``.
    set_maps: dict[str, list[tuple[Any, Any]]] = field(default_factory=dict)
    #: Header operations applied in ``on_http_request_headers``: (op, name, value).
    header_ops: list[tuple[str, str, str]] = field(default_factory=list)


class RecordingRoot(RootContext):
    def __init__(self, context_id: int, plan: Plan) -> None:
        super().__init__(context_id)
        self.plan = plan
        self.events: list[Event] = []

    def create_http_context(self, context_id: int) -> HttpContext:
        return Recorder(context_id, self)


class Recorder(HttpContext):
    """Records every callback, and follows its root's :class:`Plan`."""

    root: RecordingRoot

    def __init__(self, context_id: int, root: RecordingRoot) -> None:
        super().__init__(context_id, root)
        self.plan = root.plan
        self.index = {"request_body": 0, "response_body": 0}

    def _record(self, name: str, args: tuple[Any, ...], seen: Any = None) -> None:
        self.root.events.append(Event(name, args, seen))

    def _reply_here(self, name: str, index: int = 0) -> bool:
        if self.plan.local_reply_at != (name, index):
            return False
        status, headers, body = self.plan.local_reply
        self._record("local_reply", (status,))
        self.send_http_response(status, headers, body)
        return True

    def _body(
        self, name: str, size: int, eos: bool, read: Callable[[], bytes | None], plan: list[Action]
    ) -> Action:
        i = self.index[name]
        self.index[name] += 1
        self._record(name, (size, eos), read())
        if self._reply_here(name, i):
            return Action.PAUSE
        return plan[i] if i < len(plan) else Action.CONTINUE

    def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
        self._record(
            "request_headers", (num_headers, end_of_stream), self.get_http_request_headers()
        )
        if "request_headers" in self.plan.set_maps:
            self.set_http_request_headers(self.plan.set_maps["request_headers"])
            self._record("after_set", (), self.get_http_request_headers_bytes())
        for op, name, value in self.plan.header_ops:
            if op == "set":
                self.set_http_request_header(name, value)
            elif op == "add":
                self.add_http_request_header(name, value)
            else:
                self.remove_http_request_header(name)
            self._record(
                "after_op",
                (op, name, value),
                (self.get_http_request_headers(), self.get_http_request_header(name)),
            )
        return Action.PAUSE if self._reply_here("request_headers") else Action.CONTINUE

    def on_http_request_body(self, body_size: int, end_of_stream: bool) -> Action:
        return self._body(
            "request_body",
            body_size,
            end_of_stream,
            self.get_http_request_body,
            self.plan.request_body_actions,
        )

    def on_http_request_trailers(self, num_trailers: int) -> Action:
        self._record("request_trailers", (num_trailers,), self.get_http_request_trailers())
        if "request_trailers" in self.plan.set_maps:
            self.set_http_request_trailers(self.plan.set_maps["request_trailers"])
        return Action.PAUSE if self._reply_here("request_trailers") else Action.CONTINUE

    def on_http_response_headers(self, num_headers: int, end_of_stream: bool) -> Action:
        self._record(
            "response_headers", (num_headers, end_of_stream), self.get_http_response_headers()
        )
        if "response_headers" in self.plan.set_maps:
            self.set_http_response_headers(self.plan.set_maps["response_headers"])
        return Action.PAUSE if self._reply_here("response_headers") else Action.CONTINUE

    def on_http_response_body(self, body_size: int, end_of_stream: bool) -> Action:
        return self._body(
            "response_body",
            body_size,
            end_of_stream,
            self.get_http_response_body,
            self.plan.response_body_actions,
        )

    def on_http_response_trailers(self, num_trailers: int) -> Action:
        self._record("response_trailers", (num_trailers,), self.get_http_response_trailers())
        if "response_trailers" in self.plan.set_maps:
            self.set_http_response_trailers(self.plan.set_maps["response_trailers"])
        return Action.PAUSE if self._reply_here("response_trailers") else Action.CONTINUE

    def on_done(self) -> bool:
        self._record("done", ())
        return True

    def on_log(self) -> None:
        self._record("log", ())

    def on_delete(self) -> None:
        self._record("delete", ())


def recording_host(factory: HostFactory, plan: Plan) -> tuple[HostEmulator, RecordingRoot]:
    roots: list[RecordingRoot] = []

    def make_root(context_id: int) -> RecordingRoot:
        root = RecordingRoot(context_id, plan)
        roots.append(root)
        return root

    host = factory(make_root)
    return host, roots[0]


def drive(host: HostEmulator, request: pst.HttpMessage, response: pst.HttpMessage) -> int:
    """One whole stream, as Envoy delivers it; returns the context id."""
    ctx = host.initialize_http_context()
    host.call_on_request_headers(ctx, request.headers, end_of_stream=request.end_of_headers)
    for i, chunk in enumerate(request.body_chunks):
        last = i == len(request.body_chunks) - 1
        host.call_on_request_body(ctx, chunk, end_of_stream=last and request.trailers is None)
    if request.trailers is not None:
        host.call_on_request_trailers(ctx, request.trailers)
    host.call_on_response_headers(ctx, response.headers, end_of_stream=response.end_of_headers)
    for i, chunk in enumerate(response.body_chunks):
        last = i == len(response.body_chunks) - 1
        host.call_on_response_body(ctx, chunk, end_of_stream=last and response.trailers is None)
    if response.trailers is not None:
        host.call_on_response_trailers(ctx, response.trailers)
    host.complete_http_context(ctx)
    return ctx


#: Envoy's order of the callbacks of one HTTP stream (Envoy 1.40 writes the
#: access log, on_log, before it destroys the filter, on_done).
RANK = {
    "request_headers": 0,
    "request_body": 1,
    "request_trailers": 2,
    "response_headers": 3,
    "response_body": 4,
    "response_trailers": 5,
    "log": 6,
    "done": 7,
    "delete": 8,
}
ONCE = (
    "request_headers",
    "request_trailers",
    "response_headers",
    "response_trailers",
    "done",
    "log",
    "delete",
)


def callbacks(events: list[Event]) -> list[Event]:
    return [e for e in events if e.name in RANK]


def assert_callback_order(events: list[Event]) -> None:
    names = [e.name for e in callbacks(events)]
    ranks = [RANK[n] for n in names]
    assert ranks == sorted(ranks), f"callbacks out of order: {names}"
    for name in ONCE:
        assert names.count(name) <= 1, f"{name} delivered {names.count(name)} times: {names}"
    assert names[0] == "request_headers", names
    assert names[-3:] == ["log", "done", "delete"], names


def expected_buffers(chunks: list[bytes], actions: list[Action]) -> list[bytes]:
    """What the filter sees in each body callback: after PAUSE, everything buffered so far."""
    out, buffered, paused = [], b"", False
    for i, chunk in enumerate(chunks):
        buffered = buffered + chunk if paused else chunk
        out.append(buffered)
        paused = i < len(actions) and actions[i] == Action.PAUSE
    return out


def body_actions(chunks: list[bytes]) -> st.SearchStrategy[list[Action]]:
    """An action per chunk; the last one continues (a paused end of stream would stall the stream)."""
    n = len(chunks)
    return st.lists(st.sampled_from([Action.CONTINUE, Action.PAUSE]), min_size=n, max_size=n).map(
        lambda acts: acts[:-1] + [Action.CONTINUE] if acts else acts
    )


# -- headers through the SDK and the emulator ----------------------------------------------------


@PROPERTY
@given(pst.http_requests(), pst.http_responses())
def test_headers_reach_the_filter_unchanged(
    proxywasm_host: HostFactory, request: pst.HttpMessage, response: pst.HttpMessage
) -> None:
    host, root = recording_host(proxywasm_host, Plan())
    drive(host, request, response)
    seen = {e.name: e for e in root.events}
    assert seen["request_headers"].args == (len(request.headers), request.end_of_headers)
    assert seen["request_headers"].seen == request.headers
    assert seen["response_headers"].args == (len(response.headers), response.end_of_headers)
    assert seen["response_headers"].seen == response.headers
    if request.trailers is not None:
        assert seen["request_trailers"].args == (len(request.trailers),)
        assert seen["request_trailers"].seen == request.trailers
    if response.trailers is not None:
        assert seen["response_trailers"].seen == response.trailers


@PROPERTY
@given(
    pst.http_requests(with_trailers=False).map(lambda r: r._replace(trailers=[("x-t", "1")])),
    pst.http_responses(with_trailers=False).map(lambda r: r._replace(trailers=[("x-t", "2")])),
    pst.http_requests().map(lambda r: r.headers),
    pst.http_responses().map(lambda r: r.headers),
    pst.trailers(),
    pst.trailers(),
)
def test_headers_set_by_a_filter_come_back_identical(
    proxywasm_host: HostFactory,
    request: pst.HttpMessage,
    response: pst.HttpMessage,
    new_request: list[tuple[str, str]],
    new_response: list[tuple[str, str]],
    new_request_trailers: list[tuple[str, str]],
    new_response_trailers: list[tuple[str, str]],
) -> None:
    plan = Plan(
        set_maps={
            "request_headers": new_request,
            "response_headers": new_response,
            "request_trailers": new_request_trailers,
            "response_trailers": new_response_trailers,
        }
    )
    host, root = recording_host(proxywasm_host, plan)
    ctx = drive(host, request, response)
    assert host.get_current_request_headers(ctx) == new_request
    assert host.get_current_response_headers(ctx) == new_response
    assert host.get_current_request_trailers(ctx) == new_request_trailers
    assert host.get_current_response_trailers(ctx) == new_response_trailers
    (after,) = [e for e in root.events if e.name == "after_set"]
    assert after.seen == [(k.encode(), v.encode()) for k, v in new_request]


@PROPERTY
@given(
    pst.http_requests(), st.lists(st.tuples(pst.header_names(), st.binary(max_size=32)), max_size=8)
)
def test_binary_header_values_round_trip(
    proxywasm_host: HostFactory, request: pst.HttpMessage, pairs: list[tuple[str, bytes]]
) -> None:
    """Any bytes (NUL, non-UTF-8) survive set -> host -> get; the str view re-encodes to them."""
    host, root = recording_host(proxywasm_host, Plan(set_maps={"request_headers": pairs}))
    ctx = drive(host, request, pst.HttpMessage([(":status", "200")], [], None))
    want = [(k.encode(), v) for k, v in pairs]
    (after,) = [e for e in root.events if e.name == "after_set"]
    assert after.seen == want
    assert host.get_http_stream(ctx).request_headers == want
    assert [
        (to_bytes(k, "k"), to_bytes(v, "v")) for k, v in host.get_current_request_headers(ctx)
    ] == want


name_pool = st.sampled_from(["x-a", "x-b", "X-A", "cookie", ":path"])
header_ops = st.lists(
    st.tuples(
        st.sampled_from(["set", "add", "remove"]),
        name_pool | pst.header_names(),
        pst.header_values(),
    ),
    max_size=8,
)


@PROPERTY
@given(pst.http_requests(), header_ops)
def test_header_operations(
    proxywasm_host: HostFactory, request: pst.HttpMessage, ops: list[tuple[str, str, str]]
) -> None:
    """set: the name then reads as the value; add: appended, the rest kept; remove: gone."""
    host, root = recording_host(proxywasm_host, Plan(header_ops=ops))
    ctx = drive(host, request, pst.HttpMessage([(":status", "200")], [], None))
    before = list(request.headers)
    results = [e for e in root.events if e.name == "after_op"]
    assert len(results) == len(ops)
    for (op, name, value), event in zip(ops, results):
        after, read = event.seen
        lname = name.lower()
        if op == "set":
            assert read == value
            assert (lname, value) in after
            assert [h for h in after if h[0] != lname] == [h for h in before if h[0] != lname]
        elif op == "add":
            assert after == before + [(lname, value)]
        else:
            assert read is None
            assert after == [h for h in before if h[0] != lname]
        before = after
    assert host.get_current_request_headers(ctx) == before


# -- callback order, buffering, local replies --------------------------------------------------


@st.composite
def streams_with_plans(draw: st.DrawFn) -> tuple[pst.HttpMessage, pst.HttpMessage, Plan]:
    request = draw(pst.http_requests(), label="request")
    response = draw(pst.http_responses(), label="response")
    plan = Plan(
        request_body_actions=draw(body_actions(request.body_chunks), label="request body actions"),
        response_body_actions=draw(
            body_actions(response.body_chunks), label="response body actions"
        ),
    )
    return request, response, plan


@PROPERTY
@given(streams_with_plans())
def test_callback_order_and_buffering(
    proxywasm_host: HostFactory, stream: tuple[pst.HttpMessage, pst.HttpMessage, Plan]
) -> None:
    request, response, plan = stream
    host, root = recording_host(proxywasm_host, plan)
    ctx = drive(host, request, response)
    assert_callback_order(root.events)
    names = [e.name for e in callbacks(root.events)]
    assert names.count("request_body") == len(request.body_chunks)
    assert names.count("response_body") == len(response.body_chunks)
    assert names.count("request_trailers") == (request.trailers is not None)
    assert names.count("response_trailers") == (response.trailers is not None)

    for direction, message, actions in (
        ("request_body", request, plan.request_body_actions),
        ("response_body", response, plan.response_body_actions),
    ):
        seen = [e for e in root.events if e.name == direction]
        buffers = expected_buffers(message.body_chunks, actions)
        # body_size is the whole buffered body, and reading the buffer returns exactly it.
        assert [e.args[0] for e in seen] == [len(b) for b in buffers]
        assert [e.seen for e in seen] == buffers
        # Only the last chunk ends the stream, and only when no trailers follow.
        assert [e.args[1] for e in seen] == [
            i == len(seen) - 1 and message.trailers is None for i in range(len(seen))
        ]
    # Nothing lost or duplicated on the way through.
    assert host.get_forwarded_request_body(ctx) == request.body
    assert host.get_forwarded_response_body(ctx) == response.body


def reply_points(request: pst.HttpMessage, response: pst.HttpMessage) -> list[tuple[str, int]]:
    points = [("request_headers", 0)]
    points += [("request_body", i) for i in range(len(request.body_chunks))]
    points += [("request_trailers", 0)] if request.trailers is not None else []
    points += [("response_headers", 0)]
    points += [("response_body", i) for i in range(len(response.body_chunks))]
    points += [("response_trailers", 0)] if response.trailers is not None else []
    return points


@PROPERTY
@given(pst.http_requests(), pst.http_responses(), st.data())
def test_local_reply_ends_the_request_path(
    proxywasm_host: HostFactory,
    request: pst.HttpMessage,
    response: pst.HttpMessage,
    data: st.DataObject,
) -> None:
    at = data.draw(st.sampled_from(reply_points(request, response)), label="local reply at")
    status = data.draw(pst.status_codes(), label="status")
    headers = data.draw(
        pst.headers(
            max_size=3, names=pst.header_names().filter(lambda n: not n.startswith("content-"))
        )
    )
    body = data.draw(pst.bodies(max_size=64), label="reply body")
    plan = Plan(local_reply_at=at, local_reply=(status, headers, body))
    host, root = recording_host(proxywasm_host, plan)
    ctx = drive(host, request, response)

    assert_callback_order(root.events)
    names = [e.name for e in root.events]
    k = names.index("local_reply")
    after = [e for e in root.events[k + 1 :] if e.name in RANK]
    assert not [e for e in after if e.name.startswith("request_")], (
        f"request callbacks after a local reply: {names}"
    )
    if at[0].startswith("request_"):
        # The reply passes through the filter's own response callbacks, once.
        want = (
            ["response_headers"] + (["response_body"] if body else []) + ["log", "done", "delete"]
        )
        assert [e.name for e in after] == want
        reply_headers = after[0].seen
        assert reply_headers[0] == (":status", str(status))
        assert all(h in reply_headers for h in headers)
        if body:
            assert after[1].args == (len(body), True)
            assert after[1].seen == body
    else:
        # Sent while responding: the upstream response stops reaching the filter.
        assert [e.name for e in after] == ["log", "done", "delete"]
    reply = host.get_sent_local_response(ctx)
    assert reply is not None
    assert (reply.status_code, reply.body) == (status, body)
    assert all(h in reply.headers for h in headers)


# -- the fixture's failure message ------------------------------------------------------------


class RejectingRoot(RootContext):
    def on_configure(self, plugin_configuration_size: int) -> bool:
        self.log_error_entry()
        return False

    def log_error_entry(self) -> None:
        from proxywasm import LogLevel

        self.log(LogLevel.ERROR, "bad configuration: missing 'value'")


def test_fixture_reports_which_start_failed(proxywasm_host: HostFactory) -> None:
    with pytest.raises(pytest.fail.Exception) as info:
        proxywasm_host(RejectingRoot, plugin_configuration=b"{}")
    text = str(info.value)
    assert "start_plugin() returned False" in text
    assert "bad configuration: missing 'value'" in text
    host = proxywasm_host(RejectingRoot, start=False)
    assert host.start_vm() and not host.start_plugin()


# -- the strategies keep their own promises --------------------------------------------------

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9a-z]+")
_VALUE = re.compile(r"([\x21-\x7e]([\x21-\x7e \t]*[\x21-\x7e])?)?")


@PROPERTY
@given(pst.http_requests(), pst.http_responses())
def test_strategies_generate_valid_http(
    request: pst.HttpMessage, response: pst.HttpMessage
) -> None:
    assert [k for k, _ in request.headers[:4]] == [":method", ":path", ":authority", ":scheme"]
    assert request.headers[1][1].startswith("/")
    assert response.headers[0][0] == ":status" and 200 <= int(response.headers[0][1]) <= 599
    for message in (request, response):
        regular = [h for h in message.headers if not h[0].startswith(":")] + (
            message.trailers or []
        )
        for name, value in regular:
            assert _TOKEN.fullmatch(name), name
            assert _VALUE.fullmatch(value), value
        assert all(message.body_chunks), "empty body chunk"
        assert message.trailers is None or message.trailers
        assert message.end_of_headers == (not message.body_chunks and message.trailers is None)
