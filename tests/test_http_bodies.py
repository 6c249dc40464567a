"""HTTP request/response bodies: reads, Envoy's replacement rules, buffering after PAUSE."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from proxywasm import Action, HostCallError, HttpContext, RootContext, Status
from proxywasm.testing import HostEmulator

REQUEST = [(":method", "POST"), (":path", "/upload"), (":authority", "example.com")]


def body_host(
    on_body: Callable[[HttpContext, int, bool], Action | None],
) -> tuple[HostEmulator, int]:
    class Filter(HttpContext):
        def on_http_request_body(self, body_size: int, end_of_stream: bool) -> Action:
            return on_body(self, body_size, end_of_stream) or Action.CONTINUE

    class Root(RootContext):
        def create_http_context(self, context_id: int) -> HttpContext:
            return Filter(context_id, self)

    host = HostEmulator(Root, raise_callback_errors=True)
    assert host.start_vm() and host.start_plugin()
    ctx = host.initialize_http_context()
    host.call_on_request_headers(ctx, REQUEST)
    return host, ctx


def test_get_whole_body_and_ranges() -> None:
    seen: list[object] = []

    def on_body(f: HttpContext, size: int, eos: bool) -> None:
        seen.append(size)
        seen.append(f.get_http_request_body())
        seen.append(f.get_http_request_body(2, 3))
        seen.append(f.get_http_request_body(start=4))
        seen.append(f.get_http_request_body(0, 100))  # over-long size is clamped

    host, ctx = body_host(on_body)
    host.call_on_request_body(ctx, b"0123456789", end_of_stream=True)
    assert seen == [10, b"0123456789", b"234", b"456789", b"0123456789"]


def test_read_past_the_end_is_empty_not_an_error() -> None:
    # proxy-wasm-cpp-host clamps: start beyond the end reads nothing (OK, zero bytes).
    seen: list[object] = []

    def on_body(f: HttpContext, size: int, eos: bool) -> None:
        seen.append(f.get_http_request_body(20))
        seen.append(f.get_http_request_body(10))

    host, ctx = body_host(on_body)
    host.call_on_request_body(ctx, b"0123456789", end_of_stream=True)
    assert seen == [None, None]


def test_empty_body_reads_as_none() -> None:
    seen: list[object] = []

    def on_body(f: HttpContext, size: int, eos: bool) -> None:
        seen.append((size, f.get_http_request_body()))

    host, ctx = body_host(on_body)
    host.call_on_request_body(ctx, b"", end_of_stream=True)
    assert seen == [(0, None)]


def test_body_is_not_readable_outside_body_callbacks() -> None:
    seen: list[object] = []

    class Filter(HttpContext):
        def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
            seen.append(self.get_http_request_body())
            return Action.CONTINUE

        def on_http_response_headers(self, num_headers: int, end_of_stream: bool) -> Action:
            seen.append(self.get_http_response_body())
            return Action.CONTINUE

    host = HostEmulator.for_http_context(Filter, raise_callback_errors=True)
    ctx = host.initialize_http_context()
    host.call_on_request_headers(ctx, REQUEST)
    host.call_on_response_headers(ctx, [(":status", "200")])
    assert seen == [None, None]


def test_set_whole_body() -> None:
    def on_body(f: HttpContext, size: int, eos: bool) -> None:
        f.set_http_request_body(b"replaced")

    host, ctx = body_host(on_body)
    host.call_on_request_body(ctx, b"original body", end_of_stream=True)
    assert host.get_current_request_body(ctx) == b"replaced"
    assert host.get_forwarded_request_body(ctx) == b"replaced"


def test_set_body_accepts_str() -> None:
    def on_body(f: HttpContext, size: int, eos: bool) -> None:
        f.set_http_request_body("é")

    host, ctx = body_host(on_body)
    host.call_on_request_body(ctx, b"x", end_of_stream=True)
    assert host.get_current_request_body(ctx) == "é".encode()


def test_start_zero_replaces_the_first_size_bytes() -> None:
    def on_body(f: HttpContext, size: int, eos: bool) -> None:
        f.set_http_request_body(b"AB", 0, 3)

    host, ctx = body_host(on_body)
    host.call_on_request_body(ctx, b"0123456789", end_of_stream=True)
    assert host.get_current_request_body(ctx) == b"AB3456789"


def test_start_zero_size_zero_prepends() -> None:
    def on_body(f: HttpContext, size: int, eos: bool) -> None:
        f.set_http_request_body(b">>", 0, 0)

    host, ctx = body_host(on_body)
    host.call_on_request_body(ctx, b"body", end_of_stream=True)
    assert host.get_current_request_body(ctx) == b">>body"


@pytest.mark.parametrize("start", [4, 10])
def test_start_at_or_past_the_end_appends(start: int) -> None:
    def on_body(f: HttpContext, size: int, eos: bool) -> None:
        f.set_http_request_body(b"<<", start)

    host, ctx = body_host(on_body)
    host.call_on_request_body(ctx, b"body", end_of_stream=True)
    assert host.get_current_request_body(ctx) == b"body<<"


@pytest.mark.parametrize("start,size", [(1, None), (2, 1), (3, 0)])
def test_replacing_in_the_middle_is_bad_argument(start: int, size: int | None) -> None:
    errors: list[HostCallError] = []

    def on_body(f: HttpContext, body_size: int, eos: bool) -> None:
        try:
            f.set_http_request_body(b"X", start, size)
        except HostCallError as exc:
            errors.append(exc)

    host, ctx = body_host(on_body)
    host.call_on_request_body(ctx, b"body", end_of_stream=True)
    assert len(errors) == 1
    assert errors[0].status == Status.BAD_ARGUMENT
    assert errors[0].function == "proxy_set_buffer_bytes"
    assert host.get_current_request_body(ctx) == b"body"  # unchanged


def test_negative_range_is_a_value_error() -> None:
    errors: list[BaseException] = []

    def on_body(f: HttpContext, size: int, eos: bool) -> None:
        for call in (
            lambda: f.get_http_request_body(-1),
            lambda: f.set_http_request_body(b"", 0, -2),
        ):
            try:
                call()
            except ValueError as exc:
                errors.append(exc)

    host, ctx = body_host(on_body)
    host.call_on_request_body(ctx, b"body", end_of_stream=True)
    assert len(errors) == 2


def test_after_pause_body_size_is_the_whole_buffered_body() -> None:
    sizes: list[tuple[int, bool, bytes | None]] = []

    def on_body(f: HttpContext, size: int, eos: bool) -> Action:
        sizes.append((size, eos, f.get_http_request_body()))
        return Action.CONTINUE if eos else Action.PAUSE

    host, ctx = body_host(on_body)
    assert host.call_on_request_body(ctx, b"abc") == Action.PAUSE
    assert host.get_forwarded_request_body(ctx) == b""
    assert host.call_on_request_body(ctx, b"def") == Action.PAUSE
    assert host.call_on_request_body(ctx, b"gh", end_of_stream=True) == Action.CONTINUE
    assert sizes == [(3, False, b"abc"), (6, False, b"abcdef"), (8, True, b"abcdefgh")]
    assert host.get_forwarded_request_body(ctx) == b"abcdefgh"


def test_chunks_without_pause_are_seen_one_at_a_time() -> None:
    sizes: list[tuple[int, bytes | None]] = []

    def on_body(f: HttpContext, size: int, eos: bool) -> None:
        sizes.append((size, f.get_http_request_body()))

    host, ctx = body_host(on_body)
    host.call_on_request_body(ctx, b"abc")
    host.call_on_request_body(ctx, b"de", end_of_stream=True)
    assert sizes == [(3, b"abc"), (2, b"de")]
    assert host.get_forwarded_request_body(ctx) == b"abcde"


def test_rewriting_the_buffered_body_at_end_of_stream() -> None:
    def on_body(f: HttpContext, size: int, eos: bool) -> Action:
        if not eos:
            return Action.PAUSE
        body = f.get_http_request_body() or b""
        f.set_http_request_body(body.upper())
        return Action.CONTINUE

    host, ctx = body_host(on_body)
    host.call_on_request_body(ctx, b"hello ")
    host.call_on_request_body(ctx, b"world", end_of_stream=True)
    assert host.get_forwarded_request_body(ctx) == b"HELLO WORLD"


def test_paused_body_is_readable_and_writable_from_a_callout_response() -> None:
    # Envoy keeps the buffered body reachable while the stream is paused on it.
    seen: list[object] = []

    class Filter(HttpContext):
        def on_http_request_body(self, body_size: int, end_of_stream: bool) -> Action:
            if not end_of_stream:
                return Action.PAUSE
            self.dispatch_http_call(
                "auth", [(":method", "GET"), (":path", "/"), (":authority", "auth")]
            )
            return Action.PAUSE

        def on_http_call_response(
            self, token_id: int, num_headers: int, body_size: int, num_trailers: int
        ) -> None:
            seen.append(self.get_http_request_body())
            self.set_http_request_body(b"[", 0, 0)
            self.set_http_request_body(b"]", 1 << 20)
            self.resume_http_request()

    host = HostEmulator.for_http_context(Filter, raise_callback_errors=True)
    ctx = host.initialize_http_context()
    host.call_on_request_headers(ctx, REQUEST)
    host.call_on_request_body(ctx, b"ab")
    host.call_on_request_body(ctx, b"cd", end_of_stream=True)
    (call,) = host.get_http_call_attributes()
    host.call_on_http_call_response(call.token, [(":status", "200")])
    assert seen == [b"abcd"]
    assert host.get_forwarded_request_body(ctx) == b"[abcd]"
    assert host.get_current_http_stream_action(ctx) == Action.CONTINUE


def test_response_body_rules_match_request_body() -> None:
    seen: list[object] = []

    class Filter(HttpContext):
        def on_http_response_body(self, body_size: int, end_of_stream: bool) -> Action:
            seen.append((body_size, self.get_http_response_body()))
            if not end_of_stream:
                return Action.PAUSE
            self.set_http_response_body(b"<", 0, 0)
            self.set_http_response_body(b">", body_size + 1)  # past the end: appends
            try:
                self.set_http_response_body(b"!", 2)
            except HostCallError as exc:
                seen.append(exc.status)
            return Action.CONTINUE

    host = HostEmulator.for_http_context(Filter, raise_callback_errors=True)
    ctx = host.initialize_http_context()
    host.call_on_request_headers(ctx, REQUEST, end_of_stream=True)
    host.call_on_response_headers(ctx, [(":status", "200")])
    assert host.call_on_response_body(ctx, b"ab") == Action.PAUSE
    assert host.call_on_response_body(ctx, b"cd", end_of_stream=True) == Action.CONTINUE
    assert seen == [(2, b"ab"), (4, b"abcd"), Status.BAD_ARGUMENT]
    assert host.get_current_response_body(ctx) == b"<abcd>"
    assert host.get_forwarded_response_body(ctx) == b"<abcd>"


def test_resume_from_another_context_forwards_a_paused_body() -> None:
    class Filter(HttpContext):
        def on_http_response_body(self, body_size: int, end_of_stream: bool) -> Action:
            assert isinstance(self.root, Root)
            self.root.paused.append(self)
            return Action.PAUSE

    class Root(RootContext):
        def __init__(self, context_id: int) -> None:
            super().__init__(context_id)
            self.paused: list[HttpContext] = []

        def on_configure(self, plugin_configuration_size: int) -> bool:
            self.set_tick_period_ms(10)
            return True

        def on_tick(self) -> None:
            while self.paused:
                self.paused.pop().resume_http_response()

        def create_http_context(self, context_id: int) -> HttpContext:
            return Filter(context_id, self)

    host = HostEmulator(Root, raise_callback_errors=True)
    host.start_vm()
    host.start_plugin()
    ctx = host.initialize_http_context()
    host.call_on_request_headers(ctx, REQUEST, end_of_stream=True)
    host.call_on_response_headers(ctx, [(":status", "200")])
    assert host.call_on_response_body(ctx, b"held", end_of_stream=True) == Action.PAUSE
    assert host.get_forwarded_response_body(ctx) == b""
    host.tick()
    assert host.get_forwarded_response_body(ctx) == b"held"
    assert host.get_current_http_stream_action(ctx) == Action.CONTINUE
