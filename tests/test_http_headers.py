"""HTTP header and trailer maps, driven through the null runtime."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from proxywasm import Action, HostCallError, HttpContext, LogLevel, RootContext
from proxywasm.testing import HostEmulator

REQUEST = [(":method", "GET"), (":path", "/a?b=1"), (":authority", "example.com")]


def run_request(
    on_headers: Callable[[HttpContext], object],
    headers: list[tuple[str | bytes, str | bytes]] | None = None,
) -> tuple[HostEmulator, int]:
    """Start a filter whose on_http_request_headers runs ``on_headers`` and deliver one request."""

    class Filter(HttpContext):
        def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
            on_headers(self)
            return Action.CONTINUE

    class Root(RootContext):
        def create_http_context(self, context_id: int) -> HttpContext:
            return Filter(context_id, self)

    host = HostEmulator(Root, raise_callback_errors=True)
    assert host.start_vm() and host.start_plugin()
    ctx = host.initialize_http_context()
    assert (
        host.call_on_request_headers(
            ctx, REQUEST if headers is None else headers, end_of_stream=True
        )
        == Action.CONTINUE
    )
    return host, ctx


def test_get_header_and_missing_header() -> None:
    seen: dict[str, object] = {}

    def on_headers(f: HttpContext) -> None:
        seen["path"] = f.get_http_request_header(":path")
        seen["missing"] = f.get_http_request_header("x-missing")
        seen["num"] = len(f.get_http_request_headers())

    run_request(on_headers)
    assert seen == {"path": "/a?b=1", "missing": None, "num": 3}


def test_num_headers_and_end_of_stream_passed_to_callback() -> None:
    seen: list[tuple[int, bool]] = []

    class Filter(HttpContext):
        def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
            seen.append((num_headers, end_of_stream))
            return Action.CONTINUE

    host = HostEmulator.for_http_context(Filter, raise_callback_errors=True)
    ctx = host.initialize_http_context()
    host.call_on_request_headers(ctx, REQUEST + [("x-a", "1")], end_of_stream=False)
    assert seen == [(4, False)]


def test_header_lookup_is_case_insensitive() -> None:
    seen: list[str | None] = []

    def on_headers(f: HttpContext) -> None:
        seen.append(f.get_http_request_header("X-Custom"))
        seen.append(f.get_http_request_header("x-custom"))

    run_request(on_headers, REQUEST + [("X-CUSTOM", "v1")])
    assert seen == ["v1", "v1"]


def test_header_names_are_lowercased_by_the_host() -> None:
    def on_headers(f: HttpContext) -> None:
        f.set_http_request_header("X-Set", "1")
        f.add_http_request_header("X-Added", "2")

    host, ctx = run_request(on_headers)
    headers = host.get_current_request_headers(ctx)
    assert ("x-set", "1") in headers and ("x-added", "2") in headers
    assert not any(k != k.lower() for k, _ in headers)


def test_first_value_of_a_repeated_header() -> None:
    seen: list[object] = []

    def on_headers(f: HttpContext) -> None:
        seen.append(f.get_http_request_header("x-multi"))
        seen.append([v for k, v in f.get_http_request_headers() if k == "x-multi"])

    run_request(
        on_headers, REQUEST + [("x-multi", "first"), ("x-other", "o"), ("x-multi", "second")]
    )
    assert seen == ["first", ["first", "second"]]


def test_add_keeps_existing_values() -> None:
    def on_headers(f: HttpContext) -> None:
        f.add_http_request_header("x-multi", "two")

    host, ctx = run_request(on_headers, REQUEST + [("x-multi", "one")])
    assert [v for k, v in host.get_current_request_headers(ctx) if k == "x-multi"] == ["one", "two"]


def test_set_replaces_every_value() -> None:
    def on_headers(f: HttpContext) -> None:
        f.set_http_request_header("X-Multi", "only")

    host, ctx = run_request(on_headers, REQUEST + [("x-multi", "one"), ("x-multi", "two")])
    assert [v for k, v in host.get_current_request_headers(ctx) if k == "x-multi"] == ["only"]


def test_set_adds_a_missing_header() -> None:
    def on_headers(f: HttpContext) -> None:
        f.set_http_request_header("x-new", "v")

    host, ctx = run_request(on_headers)
    assert host.get_current_request_headers(ctx) == REQUEST + [("x-new", "v")]


def test_set_none_and_remove_drop_every_value() -> None:
    def on_headers(f: HttpContext) -> None:
        f.set_http_request_header("x-a", None)
        f.remove_http_request_header("X-B")
        f.remove_http_request_header("x-never-there")  # no error

    host, ctx = run_request(
        on_headers, REQUEST + [("x-a", "1"), ("x-b", "1"), ("x-b", "2"), ("x-c", "3")]
    )
    assert host.get_current_request_headers(ctx) == REQUEST + [("x-c", "3")]


def test_set_http_request_headers_replaces_the_whole_map() -> None:
    def on_headers(f: HttpContext) -> None:
        f.set_http_request_headers([(":method", "POST"), (":path", "/new"), ("X-Only", "1")])

    host, ctx = run_request(on_headers, REQUEST + [("x-old", "gone")])
    assert host.get_current_request_headers(ctx) == [
        (":method", "POST"),
        (":path", "/new"),
        ("x-only", "1"),
    ]


def test_response_headers_and_trailers() -> None:
    seen: list[object] = []

    class Filter(HttpContext):
        def on_http_response_headers(self, num_headers: int, end_of_stream: bool) -> Action:
            seen.append(self.get_http_response_header(":status"))
            self.set_http_response_header("x-hello", "world")
            self.remove_http_response_header("server")
            self.add_http_response_header("set-cookie", "b=2")
            return Action.CONTINUE

        def on_http_response_trailers(self, num_trailers: int) -> Action:
            seen.append((num_trailers, self.get_http_response_trailer("Grpc-Status")))
            self.set_http_response_trailer("grpc-message", "ok")
            self.add_http_response_trailer("x-t", "1")
            self.remove_http_response_trailer("x-drop")
            return Action.CONTINUE

    host = HostEmulator.for_http_context(Filter, raise_callback_errors=True)
    ctx = host.initialize_http_context()
    host.call_on_request_headers(ctx, REQUEST, end_of_stream=True)
    host.call_on_response_headers(ctx, [(":status", "200"), ("server", "x"), ("set-cookie", "a=1")])
    host.call_on_response_trailers(ctx, [("grpc-status", "0"), ("x-drop", "1")])
    assert seen == ["200", (2, "0")]
    assert host.get_current_response_headers(ctx) == [
        (":status", "200"),
        ("set-cookie", "a=1"),
        ("x-hello", "world"),
        ("set-cookie", "b=2"),
    ]
    assert host.get_current_response_trailers(ctx) == [
        ("grpc-status", "0"),
        ("grpc-message", "ok"),
        ("x-t", "1"),
    ]


def test_request_trailers_get_set_replace_all() -> None:
    seen: list[object] = []

    class Filter(HttpContext):
        def on_http_request_trailers(self, num_trailers: int) -> Action:
            seen.append(self.get_http_request_trailers())
            seen.append(self.get_http_request_trailer("x-missing"))
            self.set_http_request_trailers([("x-t1", "a"), ("X-T2", "b")])
            self.add_http_request_trailer("x-t1", "c")
            self.remove_http_request_trailer("x-t2")
            return Action.CONTINUE

    host = HostEmulator.for_http_context(Filter, raise_callback_errors=True)
    ctx = host.initialize_http_context()
    host.call_on_request_headers(ctx, REQUEST)
    host.call_on_request_body(ctx, b"data")
    host.call_on_request_trailers(ctx, [("x-orig", "1")])
    assert seen == [[("x-orig", "1")], None]
    assert host.get_current_request_trailers(ctx) == [("x-t1", "a"), ("x-t1", "c")]


def test_last_body_chunk_can_add_trailers() -> None:
    class Filter(HttpContext):
        def on_http_request_body(self, body_size: int, end_of_stream: bool) -> Action:
            if end_of_stream:
                self.add_http_request_trailer("x-digest", "abc")
            return Action.CONTINUE

    host = HostEmulator.for_http_context(Filter, raise_callback_errors=True)
    ctx = host.initialize_http_context()
    host.call_on_request_headers(ctx, REQUEST)
    host.call_on_request_body(ctx, b"data", end_of_stream=True)
    assert host.get_current_request_trailers(ctx) == [("x-digest", "abc")]


def test_trailers_cannot_be_written_before_they_exist() -> None:
    errors: list[HostCallError] = []

    def on_headers(f: HttpContext) -> None:
        try:
            f.set_http_request_trailer("x-t", "1")
        except HostCallError as exc:
            errors.append(exc)

    run_request(on_headers)
    assert len(errors) == 1 and errors[0].function == "proxy_replace_header_map_value"


def test_bytes_values_and_bytes_getters() -> None:
    seen: list[object] = []

    def on_headers(f: HttpContext) -> None:
        f.set_http_request_header("x-bin", b"\x01\x02")
        f.add_http_request_header(b"x-bytes-name", "v")
        seen.append(f.get_http_request_header_bytes("x-bin"))
        seen.append(f.get_http_request_header_bytes("x-missing"))
        seen.append(f.get_http_request_headers_bytes()[-1])

    host, ctx = run_request(on_headers)
    assert seen == [b"\x01\x02", None, (b"x-bytes-name", b"v")]
    raw = host.get_http_stream(ctx).request_headers
    assert (b"x-bin", b"\x01\x02") in raw


def test_non_utf8_header_bytes_reach_the_filter_and_round_trip() -> None:
    raw_value = b"caf\xe9 \xff"  # latin-1, not UTF-8
    seen: list[object] = []

    def on_headers(f: HttpContext) -> None:
        text = f.get_http_request_header("x-latin")
        seen.append(text)
        seen.append(f.get_http_request_header_bytes("x-latin"))
        seen.append(dict(f.get_http_request_headers())["x-latin"])
        assert text is not None
        f.set_http_request_header("x-copy", text)  # the str encodes back to the same bytes

    host, ctx = run_request(on_headers, REQUEST + [(b"x-latin", raw_value)])
    text, raw, from_list = seen
    assert isinstance(text, str) and text == raw_value.decode("utf-8", "surrogateescape")
    assert text.startswith("caf") and "\udce9" in text
    assert raw == raw_value
    assert from_list == text
    assert (b"x-copy", raw_value) in host.get_http_stream(ctx).request_headers


def test_utf8_header_values_decode_to_text() -> None:
    seen: list[object] = []

    def on_headers(f: HttpContext) -> None:
        seen.append(f.get_http_request_header("x-name"))
        f.set_http_request_header("x-out", "żółw")

    host, ctx = run_request(on_headers, REQUEST + [("x-name", "naïve ☃")])
    assert seen == ["naïve ☃"]
    assert (b"x-out", "żółw".encode()) in host.get_http_stream(ctx).request_headers


def test_header_changes_in_one_stream_do_not_leak_into_another() -> None:
    def on_headers(f: HttpContext) -> None:
        f.set_http_request_header("x-ctx", str(f.context_id))

    class Filter(HttpContext):
        def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
            on_headers(self)
            return Action.CONTINUE

    host = HostEmulator.for_http_context(Filter, raise_callback_errors=True)
    a = host.initialize_http_context()
    b = host.initialize_http_context()
    host.call_on_request_headers(a, REQUEST)
    host.call_on_request_headers(b, REQUEST)
    assert dict(host.get_current_request_headers(a))["x-ctx"] == str(a)
    assert dict(host.get_current_request_headers(b))["x-ctx"] == str(b)
    assert a != b


@pytest.mark.parametrize("bad", [123, None, 1.5])
def test_non_str_header_value_is_a_type_error(bad: object) -> None:
    errors: list[BaseException] = []

    def on_headers(f: HttpContext) -> None:
        try:
            f.add_http_request_header("x-a", bad)  # type: ignore[arg-type]
        except TypeError as exc:
            errors.append(exc)

    run_request(on_headers)
    assert len(errors) == 1 and "header value" in str(errors[0])


# -- Envoy lets go of a stream's header map once its callback returned CONTINUE
# (measured against Envoy 1.40: BAD_ARGUMENT for one value, an empty map for all).


class _LateReader(HttpContext):
    pause: bool = False

    def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
        return Action.PAUSE if self.pause else Action.CONTINUE

    def on_http_response_headers(self, num_headers: int, end_of_stream: bool) -> Action:
        try:
            self.set_http_response_header("x-path", self.get_http_request_header(":path") or "-")
        except HostCallError as exc:
            self.set_http_response_header("x-error", str(exc))
        self.set_http_response_header("x-count", str(len(self.get_http_request_headers())))
        return Action.CONTINUE

    def on_log(self) -> None:
        self.log(
            LogLevel.INFO,
            f"log {self.get_http_request_header(':path')} {self.get_http_response_header(':status')}",
        )


def _late_host(pause: bool) -> HostEmulator:
    class Reader(_LateReader):
        pass

    Reader.pause = pause

    host = HostEmulator.for_http_context(Reader, raise_callback_errors=True)
    return host


def test_request_headers_unreachable_after_continue() -> None:
    host = _late_host(pause=False)
    ctx = host.initialize_http_context()
    host.call_on_request_headers(ctx, [(":path", "/a")], end_of_stream=True)
    host.call_on_response_headers(ctx, [(":status", "200")], end_of_stream=True)
    headers = dict(host.get_current_response_headers(ctx))
    assert "x-path" not in headers
    assert "BAD_ARGUMENT" in headers["x-error"] and "on_http_request_headers" in headers["x-error"]
    assert headers["x-count"] == "0"


def test_request_headers_kept_after_pause() -> None:
    host = _late_host(pause=True)
    ctx = host.initialize_http_context()
    host.call_on_request_headers(ctx, [(":path", "/a")], end_of_stream=True)
    host.call_on_response_headers(ctx, [(":status", "200")], end_of_stream=True)
    headers = dict(host.get_current_response_headers(ctx))
    assert headers["x-path"] == "/a" and "x-error" not in headers
    assert headers["x-count"] == "1"


def test_on_log_reads_request_and_response_headers() -> None:
    host = _late_host(pause=False)
    ctx = host.initialize_http_context()
    host.call_on_request_headers(ctx, [(":path", "/z")], end_of_stream=True)
    host.call_on_response_headers(ctx, [(":status", "204")], end_of_stream=True)
    host.complete_http_context(ctx)
    assert host.get_logs(LogLevel.INFO) == ["log /z 204"]


def test_replace_moves_the_header_to_the_end_as_envoy_does() -> None:
    class Replacer(HttpContext):
        def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
            self.set_http_request_header("x-a", "new")
            return Action.CONTINUE

    host = HostEmulator.for_http_context(Replacer, raise_callback_errors=True)
    ctx = host.initialize_http_context()
    host.call_on_request_headers(ctx, [("x-a", "1"), ("x-b", "b"), ("x-a", "2"), ("x-z", "z")])
    assert host.get_current_request_headers(ctx) == [("x-b", "b"), ("x-z", "z"), ("x-a", "new")]
