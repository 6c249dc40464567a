"""send_http_response: a local reply ends the request path and passes through the
filter's own response callbacks, as Envoy's sendLocalReply does."""

from __future__ import annotations

from proxywasm import Action, HostCallError, HttpContext, RootContext
from proxywasm.testing import HostEmulator

REQUEST = [(":method", "GET"), (":path", "/"), (":authority", "example.com")]


class Recorder(HttpContext):
    """Records every callback it sees in ``self.root.events``."""

    def _ev(self, *item: object) -> None:
        root = self.root
        assert isinstance(root, Root)
        root.events.append(item)

    def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
        self._ev("request_headers")
        return Action.CONTINUE

    def on_http_request_body(self, body_size: int, end_of_stream: bool) -> Action:
        self._ev("request_body")
        return Action.CONTINUE

    def on_http_request_trailers(self, num_trailers: int) -> Action:
        self._ev("request_trailers")
        return Action.CONTINUE

    def on_http_response_headers(self, num_headers: int, end_of_stream: bool) -> Action:
        self._ev("response_headers", self.get_http_response_header(":status"), end_of_stream)
        return Action.CONTINUE

    def on_http_response_body(self, body_size: int, end_of_stream: bool) -> Action:
        self._ev("response_body", self.get_http_response_body(), end_of_stream)
        return Action.CONTINUE


class Root(RootContext):
    filter_class: type[HttpContext] = Recorder

    def __init__(self, context_id: int) -> None:
        super().__init__(context_id)
        self.events: list[tuple[object, ...]] = []

    def create_http_context(self, context_id: int) -> HttpContext:
        return self.filter_class(context_id, self)


def start(filter_class: type[HttpContext]) -> tuple[HostEmulator, Root]:
    roots: list[Root] = []

    def factory(context_id: int) -> Root:
        root = Root(context_id)
        root.filter_class = filter_class
        roots.append(root)
        return root

    host = HostEmulator(factory, raise_callback_errors=True)
    assert host.start_vm() and host.start_plugin()
    return host, roots[0]


class Deny(Recorder):
    def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
        self._ev("request_headers")
        self.send_http_response(
            403, [("x-reason", "nope"), ("Content-Type", "application/json")], b'{"denied":true}'
        )
        return Action.PAUSE


def test_status_headers_body_of_the_reply() -> None:
    host, _ = start(Deny)
    ctx = host.initialize_http_context()
    assert host.call_on_request_headers(ctx, REQUEST) == Action.PAUSE
    reply = host.get_sent_local_response(ctx)
    assert reply is not None
    assert reply.status_code == 403
    assert reply.body == b'{"denied":true}'
    assert ("x-reason", "nope") in reply.headers
    assert ("content-type", "application/json") in reply.headers  # names lower-cased
    assert [k for k, _ in reply.headers].count("content-type") == 1  # the filter's, not a default
    response = dict(host.get_current_response_headers(ctx))
    assert response[":status"] == "403"
    assert response["content-length"] == str(len(b'{"denied":true}'))


def test_no_reply_is_none() -> None:
    host, _ = start(Recorder)
    ctx = host.initialize_http_context()
    host.call_on_request_headers(ctx, REQUEST)
    assert host.get_sent_local_response(ctx) is None


def test_reply_without_body_or_headers() -> None:
    class Empty(Recorder):
        def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
            self.send_http_response(204)
            return Action.PAUSE

    host, root = start(Empty)
    ctx = host.initialize_http_context()
    host.call_on_request_headers(ctx, REQUEST)
    reply = host.get_sent_local_response(ctx)
    assert reply is not None and reply.status_code == 204 and reply.body == b""
    assert root.events == [("response_headers", "204", True)]


def test_reply_ends_the_request_path() -> None:
    host, root = start(Deny)
    ctx = host.initialize_http_context()
    host.call_on_request_headers(ctx, REQUEST)
    host.call_on_request_body(ctx, b"ignored", end_of_stream=False)
    host.call_on_request_trailers(ctx, [("x-t", "1")])
    names = [e[0] for e in root.events]
    assert "request_body" not in names and "request_trailers" not in names
    assert host.get_forwarded_request_body(ctx) == b""


def test_reply_passes_through_the_filters_own_response_callbacks() -> None:
    host, root = start(Deny)
    ctx = host.initialize_http_context()
    host.call_on_request_headers(ctx, REQUEST)
    assert root.events == [
        ("request_headers",),
        ("response_headers", "403", False),
        ("response_body", b'{"denied":true}', True),
    ]


def test_upstream_response_never_reaches_a_locally_answered_stream() -> None:
    host, root = start(Deny)
    ctx = host.initialize_http_context()
    host.call_on_request_headers(ctx, REQUEST)
    before = list(root.events)
    host.call_on_response_headers(ctx, [(":status", "200")])
    host.call_on_response_body(ctx, b"upstream", end_of_stream=True)
    assert root.events == before
    reply = host.get_sent_local_response(ctx)
    assert reply is not None and reply.status_code == 403


def test_response_callbacks_can_edit_the_local_reply() -> None:
    class EditReply(Deny):
        def on_http_response_headers(self, num_headers: int, end_of_stream: bool) -> Action:
            self.set_http_response_header("x-added-on-the-way-out", "1")
            return Action.CONTINUE

        def on_http_response_body(self, body_size: int, end_of_stream: bool) -> Action:
            self.set_http_response_body(b"rewritten")
            return Action.CONTINUE

    host, _ = start(EditReply)
    ctx = host.initialize_http_context()
    host.call_on_request_headers(ctx, REQUEST)
    reply = host.get_sent_local_response(ctx)
    assert reply is not None
    assert ("x-added-on-the-way-out", "1") in reply.headers
    assert reply.body == b"rewritten"


def test_reply_is_sent_when_the_callback_returns() -> None:
    class Late(Recorder):
        def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
            self.send_http_response(401, body=b"x")
            # Still inside the callback: nothing has been delivered yet.
            self._ev("after_send")
            return Action.PAUSE

    host, root = start(Late)
    ctx = host.initialize_http_context()
    host.call_on_request_headers(ctx, REQUEST)
    names = [e[0] for e in root.events]
    assert names.index("after_send") < names.index("response_headers")


def test_second_reply_in_the_same_callback_is_accepted_and_dropped() -> None:
    # Measured in Envoy 1.40 (tests/test_envoy_host_rules.py): both calls return OK,
    # the client gets the first reply.
    errors: list[HostCallError] = []

    class Twice(Recorder):
        def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
            self.send_http_response(403)
            try:
                self.send_http_response(500)
            except HostCallError as exc:
                errors.append(exc)
            return Action.PAUSE

    host, _ = start(Twice)
    ctx = host.initialize_http_context()
    host.call_on_request_headers(ctx, REQUEST)
    assert errors == []
    reply = host.get_sent_local_response(ctx)
    assert reply is not None and reply.status_code == 403


def test_a_reply_from_the_response_headers_of_a_local_reply_replaces_it() -> None:
    # Measured in Envoy 1.40: the client gets the second reply, which does not run
    # through the filter's response callbacks again.
    errors: list[HostCallError] = []
    statuses: list[str | None] = []

    class Again(Deny):
        def on_http_response_headers(self, num_headers: int, end_of_stream: bool) -> Action:
            statuses.append(self.get_http_response_header(":status"))
            try:
                self.send_http_response(500, body=b"later")
            except HostCallError as exc:
                errors.append(exc)
            return Action.CONTINUE

    host, _ = start(Again)
    ctx = host.initialize_http_context()
    host.call_on_request_headers(ctx, REQUEST)
    assert errors == [] and statuses == ["403"]
    reply = host.get_sent_local_response(ctx)
    assert reply is not None and (reply.status_code, reply.body) == (500, b"later")
    assert host.get_current_response_body(ctx) == b"later"


def test_reply_from_the_response_path() -> None:
    class ReplaceResponse(Recorder):
        def on_http_response_headers(self, num_headers: int, end_of_stream: bool) -> Action:
            self._ev("response_headers", self.get_http_response_header(":status"), end_of_stream)
            if self.get_http_response_header(":status") == "500":
                self.send_http_response(502, body=b"bad gateway")
                return Action.PAUSE
            return Action.CONTINUE

    host, root = start(ReplaceResponse)
    ctx = host.initialize_http_context()
    host.call_on_request_headers(ctx, REQUEST, end_of_stream=True)
    host.call_on_response_headers(ctx, [(":status", "500")])
    reply = host.get_sent_local_response(ctx)
    assert reply is not None and reply.status_code == 502 and reply.body == b"bad gateway"
    assert dict(host.get_current_response_headers(ctx))[":status"] == "502"
    # Sent from a response callback: not re-delivered to the same filter.
    assert [e for e in root.events if e[0] == "response_headers"] == [
        ("response_headers", "500", False)
    ]


def test_invalid_status_code_is_value_error() -> None:
    errors: list[BaseException] = []

    class Bad(Recorder):
        def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
            try:
                self.send_http_response(42)
            except ValueError as exc:
                errors.append(exc)
            return Action.CONTINUE

    host, _ = start(Bad)
    ctx = host.initialize_http_context()
    host.call_on_request_headers(ctx, REQUEST)
    assert len(errors) == 1
    assert host.get_sent_local_response(ctx) is None


def test_details_and_grpc_status_reach_the_host() -> None:
    class Grpc(Recorder):
        def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
            self.send_http_response(200, details="rate limited", grpc_status=8)
            return Action.PAUSE

    host, _ = start(Grpc)
    ctx = host.initialize_http_context()
    host.call_on_request_headers(ctx, REQUEST)
    reply = host.get_sent_local_response(ctx)
    assert reply is not None and reply.details == "rate limited" and reply.grpc_status == 8


def test_default_grpc_status_is_unset() -> None:
    host, _ = start(Deny)
    ctx = host.initialize_http_context()
    host.call_on_request_headers(ctx, REQUEST)
    reply = host.get_sent_local_response(ctx)
    assert reply is not None and reply.grpc_status == -1
