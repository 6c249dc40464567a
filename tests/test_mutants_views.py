"""The request/response views at their edges, found unchecked by mutation testing.

Driven through the null runtime: a filter reads and writes through
``self.request`` / ``self.response`` and the test checks what the host holds
and what the filter saw. docs/testing.md lists the mutants these kill.
"""

from __future__ import annotations

from typing import Any

import pytest
from proxywasm import Action, HttpContext, RootContext, _state
from proxywasm.testing import HostEmulator
from proxywasm.types import MapType
from proxywasm.views import FrozenHeaders, header_map

REQUEST = [(":method", "GET"), (":path", "/p"), (":authority", "example.com")]


def _run(filter_cls: type[HttpContext], **extra: Any) -> tuple[HostEmulator, int]:
    host = HostEmulator.for_http_context(filter_cls)
    ctx = host.initialize_http_context()
    host.call_on_request_headers(ctx, REQUEST, end_of_stream=False)
    return host, ctx


def test_a_write_before_any_read_is_seen_by_the_next_read() -> None:
    seen: list[object] = []

    class Filter(HttpContext):
        def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
            headers = self.request.headers
            headers["x-new"] = "1"  # nothing read yet in this callback
            seen.append(headers.get("x-new"))
            headers.add("x-more", b"2")
            seen.append(headers.get_all("x-more"))
            return Action.CONTINUE

    host, ctx = _run(Filter)
    assert seen == ["1", ["2"]]
    assert ("x-new", "1") in host.get_current_request_headers(ctx)


def test_bytes_written_after_a_read_read_back_as_text() -> None:
    seen: list[object] = []

    class Filter(HttpContext):
        def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
            headers = self.request.headers
            assert headers[":path"] == "/p"  # the map is cached from here on
            headers["x-set"] = b"v\xff"
            headers.add("x-add", b"w")
            seen.extend([headers["x-set"], headers["x-add"], headers.get_all_bytes("x-set")])
            return Action.CONTINUE

    _run(Filter)
    assert seen == ["v\udcff", "w", [b"v\xff"]]


def test_a_header_name_that_is_not_utf8_is_found_by_its_bytes() -> None:
    seen: list[object] = []

    class Filter(HttpContext):
        def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
            seen.append(self.request.headers.get_all_bytes("x-\udcff"))
            return Action.CONTINUE

    host = HostEmulator.for_http_context(Filter)
    ctx = host.initialize_http_context()
    host.call_on_request_headers(ctx, [*REQUEST, (b"x-\xff", b"raw")], end_of_stream=True)
    assert seen == [[b"raw"]]


@pytest.mark.parametrize("how", ["getitem", "del", "pop"])
def test_a_missing_header_raises_key_error_naming_it(how: str) -> None:
    errors: list[tuple[object, ...]] = []

    class Filter(HttpContext):
        def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
            headers = self.request.headers
            try:
                if how == "getitem":
                    headers["x-missing"]
                elif how == "del":
                    del headers["x-missing"]
                else:
                    headers.pop("x-missing")
            except KeyError as exc:
                errors.append(exc.args)
            return Action.CONTINUE

    _run(Filter)
    assert errors == [("x-missing",)]


def test_frozen_headers_name_a_missing_key() -> None:
    with pytest.raises(KeyError) as info:
        FrozenHeaders([("a", "1")])["b"]
    assert info.value.args == ("b",)


def test_a_new_view_fetches_whatever_the_epoch_is() -> None:
    # The epoch is a counter of callbacks and writes; a view made at any value of it
    # must not take its empty start for a fetched map, nor a write or a replace_all
    # made while its cache was not valid for a valid cache.
    seen: list[object] = []

    class Filter(HttpContext):
        def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
            saved = _state.map_epoch
            try:
                for epoch in (0, 1):
                    _state.map_epoch = epoch
                    seen.append(header_map(self.context_id, MapType.HTTP_REQUEST_HEADERS)[":path"])
                    view = header_map(self.context_id, MapType.HTTP_REQUEST_HEADERS)
                    _state.map_epoch = epoch - 1  # the write below bumps it to `epoch`
                    view["x-w"] = str(epoch)
                    seen.append(view.get("x-w"))
                    _state.map_epoch = epoch - 1
                    view.replace_all([(":path", f"/r{epoch}")])
                    _state.map_epoch = epoch
                    seen.append((view.get(":path"), "x-w" in view))
            finally:
                _state.map_epoch = saved
            return Action.CONTINUE

    _run(Filter)
    assert seen == ["/p", "0", ("/r0", False), "/r0", "1", ("/r1", False)]


def test_a_timer_can_edit_and_resume_a_paused_stream() -> None:
    # The root works on another context's views: each view must make its stream current.
    class Paused(HttpContext):
        def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
            self.root.waiting.append(self)  # type: ignore[attr-defined]
            return Action.PAUSE

    class Root(RootContext):
        def __init__(self, context_id: int) -> None:
            super().__init__(context_id)
            self.waiting: list[HttpContext] = []

        def create_http_context(self, context_id: int) -> HttpContext:
            return Paused(context_id, self)

        def on_tick(self) -> None:
            for stream in self.waiting:
                stream.request.headers["x-timer"] = stream.request.path
                stream.resume_http_request()
            self.waiting.clear()

    host = HostEmulator(Root)
    assert host.start_vm() and host.start_plugin()
    ctx = host.initialize_http_context()
    assert host.call_on_request_headers(ctx, REQUEST, end_of_stream=True) == Action.PAUSE
    host.tick(host.root_context_id)
    assert ("x-timer", "/p") in host.get_current_request_headers(ctx)
    assert host.get_current_http_stream_action(ctx) == Action.CONTINUE


def test_a_body_outside_the_body_callbacks_is_empty() -> None:
    seen: list[object] = []

    class Filter(HttpContext):
        def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
            seen.extend(
                [self.request.body.read(), len(self.request.body), bytes(self.request.body)]
            )
            return Action.CONTINUE

    _run(Filter)
    assert seen == [b"", 0, b""]


def test_body_text_replaces_bad_bytes_and_json_parses() -> None:
    seen: list[object] = []

    class Filter(HttpContext):
        def on_http_request_body(self, body_size: int, end_of_stream: bool) -> Action:
            body = self.request.body
            seen.append(body.text())
            body.replace(b'{"a": [1, 2]}')
            seen.append(body.json())
            return Action.CONTINUE

    host, ctx = _run(Filter)
    host.call_on_request_body(ctx, b"ok\xff", end_of_stream=True)
    assert seen == ["ok\ufffd", {"a": [1, 2]}]


@pytest.mark.parametrize("method", ["replace", "append", "prepend"])
def test_a_body_write_names_what_it_refused(method: str) -> None:
    errors: list[str] = []

    class Filter(HttpContext):
        def on_http_request_body(self, body_size: int, end_of_stream: bool) -> Action:
            try:
                getattr(self.request.body, method)(123)
            except TypeError as exc:
                errors.append(str(exc))
            return Action.CONTINUE

    host, ctx = _run(Filter)
    host.call_on_request_body(ctx, b"x", end_of_stream=True)
    assert errors == ["body must be str or bytes, not int"]


def test_trailers_and_the_response_body_through_the_views() -> None:
    seen: list[object] = []

    class Filter(HttpContext):
        def on_http_request_trailers(self, num_trailers: int) -> Action:
            seen.append(dict(self.request.trailers))
            return Action.CONTINUE

        def on_http_response_body(self, body_size: int, end_of_stream: bool) -> Action:
            seen.append(self.response.body.read())
            self.response.body.append(b"!")
            return Action.CONTINUE

        def on_http_response_trailers(self, num_trailers: int) -> Action:
            seen.append(self.response.trailers.get("grpc-status"))
            return Action.CONTINUE

    host, ctx = _run(Filter)
    host.call_on_request_trailers(ctx, [("rt", "1")])
    host.call_on_response_headers(ctx, [(":status", "200")], end_of_stream=False)
    host.call_on_response_body(ctx, b"resp", end_of_stream=False)
    host.call_on_response_trailers(ctx, [("grpc-status", "0")])
    assert seen == [{"rt": "1"}, b"resp", "0"]
    assert host.get_forwarded_response_body(ctx) == b"resp!"
