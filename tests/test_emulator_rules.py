"""Envoy's rules as the null runtime models them, pinned one by one.

Each test is a rule measured in Envoy 1.40 that a filter can observe: what
on_log may read and write, what a held body looks like when it is released,
how each metric kind records a value.
"""

from __future__ import annotations

from proxywasm import Action, Counter, Gauge, HostCallError, HttpContext, RootContext
from proxywasm.testing import HostEmulator

REQUEST = [(":method", "POST"), (":path", "/"), (":authority", "example.com")]


def _complete(host: HostEmulator, ctx: int) -> None:
    host.call_on_response_headers(ctx, [(":status", "200")], end_of_stream=True)
    host.complete_http_context(ctx)


def test_on_log_reads_headers_but_not_request_trailers() -> None:
    seen: dict[str, object] = {}

    class Filter(HttpContext):
        def on_log(self) -> None:
            seen["headers"] = self.get_http_request_headers()
            seen["trailers"] = self.get_http_request_trailers()
            seen["response"] = self.get_http_response_headers()

    host = HostEmulator.for_http_context(Filter, raise_callback_errors=True)
    ctx = host.initialize_http_context()
    host.call_on_request_headers(ctx, REQUEST)
    host.call_on_request_trailers(ctx, [("x-t", "1")])
    _complete(host, ctx)
    assert seen["headers"] == REQUEST
    assert seen["trailers"] == []  # Envoy has let go of them by access-log time
    assert seen["response"] == [(":status", "200")]


def test_on_log_cannot_write_header_maps() -> None:
    failures: list[str] = []

    class Filter(HttpContext):
        def on_log(self) -> None:
            writes = (
                lambda: self.set_http_request_header("x-a", "b"),
                lambda: self.add_http_response_header("x-a", "b"),
                lambda: self.set_http_response_headers([("x-a", "b")]),
                lambda: self.remove_http_request_header(":path"),
            )
            for write in writes:
                try:
                    write()
                except HostCallError as exc:
                    failures.append(str(exc).split(" failed", 1)[0])

    host = HostEmulator.for_http_context(Filter, raise_callback_errors=True)
    ctx = host.initialize_http_context()
    host.call_on_request_headers(ctx, REQUEST)
    _complete(host, ctx)
    assert failures == [
        "proxy_replace_header_map_value",
        "proxy_add_header_map_value",
        "proxy_set_header_map_pairs",
        "proxy_remove_header_map_value",
    ]
    assert host.get_current_request_headers(ctx) == REQUEST


def test_a_held_body_is_released_with_its_end_of_stream() -> None:
    """Headers PAUSE holds the body; on resume the filter sees it whole, with end_of_stream."""
    bodies: list[tuple[bytes, bool]] = []

    class Filter(HttpContext):
        def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
            assert isinstance(self.root, Root)
            self.root.paused.append(self)
            return Action.PAUSE

        def on_http_request_body(self, body_size: int, end_of_stream: bool) -> Action:
            bodies.append((self.get_http_request_body(0, body_size) or b"", end_of_stream))
            return Action.CONTINUE

    class Root(RootContext):
        def __init__(self, context_id: int) -> None:
            super().__init__(context_id)
            self.paused: list[HttpContext] = []

        def on_configure(self, plugin_configuration_size: int) -> bool:
            self.set_tick_period_ms(100)
            return True

        def on_tick(self) -> None:
            for stream in self.paused:
                stream.resume_http_request()
            self.paused.clear()

        def create_http_context(self, context_id: int) -> HttpContext:
            return Filter(context_id, self)

    host = HostEmulator(Root, raise_callback_errors=True)
    assert host.start_vm() and host.start_plugin()
    ctx = host.initialize_http_context()
    assert host.call_on_request_headers(ctx, REQUEST, end_of_stream=False) == Action.PAUSE
    host.call_on_request_body(ctx, b"ab", end_of_stream=False)
    host.call_on_request_body(ctx, b"cd", end_of_stream=True)
    assert bodies == []  # held while the headers are paused
    host.tick()
    assert bodies == [(b"abcd", True)]
    assert host.get_forwarded_request_body(ctx) == b"abcd"


def test_a_gauge_records_values_a_counter_adds_them() -> None:
    gauge, counter = Gauge("rules_gauge"), Counter("rules_counter")

    class Filter(HttpContext):
        def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
            gauge.record(5)
            gauge.record(7)
            counter.increment(2)
            counter.increment(3)
            return Action.CONTINUE

    host = HostEmulator.for_http_context(Filter, raise_callback_errors=True)
    ctx = host.initialize_http_context()
    host.call_on_request_headers(ctx, REQUEST, end_of_stream=True)
    assert host.get_metric("rules_gauge") == 7
    assert host.get_metric("rules_counter") == 5
