"""Details of the Pythonic layer natively: host-call economy, bytes, refusals with clear errors."""

from __future__ import annotations

from typing import Any

import pytest
from proxywasm import Action, FrozenHeaders, HttpContext, LogLevel, RootContext
from proxywasm.testing import HostEmulator


class CountingHost(HostEmulator):
    """Counts whole-map fetches and single-name reads (the host functions the views use)."""

    fetches = 0
    lookups = 0

    def proxy_get_header_map_pairs(self, map_type: int) -> Any:
        self.fetches += 1
        return super().proxy_get_header_map_pairs(map_type)

    def proxy_get_header_map_value(self, map_type: int, key: bytes) -> Any:
        self.lookups += 1
        return super().proxy_get_header_map_value(map_type, key)


def started(
    http: type[HttpContext], host_type: type[HostEmulator] = HostEmulator, **kwargs: Any
) -> HostEmulator:
    class Root(RootContext):
        http_context = http

    host = host_type(Root, **kwargs)
    assert host.start_vm() and host.start_plugin()
    return host


class Reader(HttpContext):
    def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
        h = self.request.headers
        seen = [h.get("x-1", ""), h.get("X-2", "")]  # single reads: one lookup each
        seen += list(h) + [str(len(h))]  # the whole map: one fetch
        seen += [h.get(f"x-{i}", "") for i in range(20)]  # from the fetched copy
        h["x-seen"] = ",".join(s for s in seen if s)
        h.get("x-seen")  # a read after a write needs no host call either
        return Action.CONTINUE


def test_single_reads_are_lookups_and_the_whole_map_is_fetched_once() -> None:
    host = started(Reader, CountingHost)
    assert isinstance(host, CountingHost)
    for n in range(3):
        ctx = host.initialize_http_context()
        host.call_on_request_headers(ctx, [("x-1", "a"), ("x-2", "b")], end_of_stream=True)
        assert (host.lookups, host.fetches) == (2 * (n + 1), n + 1)
        assert dict(host.get_current_request_headers(ctx))["x-seen"] == "a,b,x-1,x-2,2,a,b"


class Released(HttpContext):
    """Reads request headers where Envoy has let go of them: absent, as iteration sees them."""

    def on_http_response_headers(self, num_headers: int, end_of_stream: bool) -> Action:
        h = self.request.headers
        self.response.headers["x-saw"] = f"{h.get(':path')} {':path' in h} {len(h)}"
        return Action.CONTINUE


def test_a_released_map_reads_as_empty_by_name_and_whole() -> None:
    host = started(Released)
    ctx = host.initialize_http_context()
    host.call_on_request_headers(ctx, [(":path", "/p")], end_of_stream=True)
    host.call_on_response_headers(ctx, [(":status", "200")], end_of_stream=True)
    assert ("x-saw", "None False 0") in host.get_current_response_headers(ctx)


class Stale(HttpContext):
    """Keeps its view from one callback to the next: the next callback must refetch."""

    def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
        self.request.headers.get(":path")
        self.dispatch_http_call("c", [(":method", "GET"), (":path", "/"), (":authority", "c")])
        return Action.PAUSE  # the map stays reachable

    def on_http_call_response(
        self, token_id: int, num_headers: int, body_size: int, num_trailers: int
    ) -> None:
        self.request.headers["x-later-saw"] = self.request.headers.get("x-late", "none")
        self.resume_http_request()


def test_a_view_kept_across_callbacks_refetches() -> None:
    host = started(Stale)
    ctx = host.initialize_http_context()
    host.call_on_request_headers(ctx, [(":path", "/")], end_of_stream=True)
    host.get_http_stream(ctx).request_headers.append((b"x-late", b"1"))  # the host changed it
    (call,) = host.get_http_call_attributes()
    host.call_on_http_call_response(call.token, [(":status", "200")])
    assert ("x-later-saw", "1") in host.get_current_request_headers(ctx)


class Raw(HttpContext):
    def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
        h = self.request.headers
        assert h.get_bytes("x-bin") == b"\xff\xfe"
        assert h.get_all_bytes("x-bin") == [b"\xff\xfe", b"ok"]
        assert h["x-bin"].encode("utf-8", "surrogateescape") == b"\xff\xfe"
        with pytest.raises(KeyError):
            h["x-missing"]
        with pytest.raises(KeyError):
            del h["x-missing"]
        with pytest.raises(KeyError):
            h.pop("x-missing")
        assert h.multi_items()[-1] == ("x-bin", "ok")
        h.replace_all({"only": "this"})
        assert dict(h) == {"only": "this"}
        return Action.CONTINUE


def test_bytes_and_key_errors() -> None:
    host = started(Raw, raise_callback_errors=True)  # a failed assert inside reaches the test
    ctx = host.initialize_http_context()
    host.call_on_request_headers(
        ctx, [("x-bin", b"\xff\xfe"), ("x-bin", b"ok")], end_of_stream=True
    )
    assert host.get_logs(LogLevel.ERROR) == []
    assert host.get_current_request_headers(ctx) == [("only", "this")]


def test_frozen_headers_are_a_case_insensitive_read_only_mapping() -> None:
    h = FrozenHeaders([(":status", "200"), ("Set-Cookie", "a"), ("set-cookie", "b")])
    assert h["SET-COOKIE"] == "a" and h.get_all("set-cookie") == ["a", "b"]
    assert list(h) == [":status", "set-cookie"] and len(h) == 2
    assert not hasattr(h, "__setitem__")


class AsyncConfigure(RootContext):
    async def on_configure(self, plugin_configuration_size: int) -> bool:  # type: ignore[override]
        return True


def test_async_on_configure_is_refused_not_taken_as_true() -> None:
    host = HostEmulator(AsyncConfigure)
    assert host.start_vm()
    assert host.start_plugin() is False
    (error,) = host.get_logs(LogLevel.ERROR)
    assert "on_configure cannot be async def" in error


class AwaitsSomethingElse(HttpContext):
    async def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
        class Other:
            def __await__(self) -> Any:
                yield "tick"

        await Other()
        return Action.CONTINUE


def test_awaiting_anything_but_a_callout_is_a_clear_error() -> None:
    host = started(AwaitsSomethingElse)
    ctx = host.initialize_http_context()
    assert host.call_on_request_headers(ctx, [], end_of_stream=True) == Action.PAUSE
    (error,) = host.get_logs(LogLevel.ERROR)
    assert "can await only self.http_call(...) or proxywasm.gather(...)" in error
    reply = host.get_sent_local_response(ctx)
    assert reply is not None and reply.status_code == 500


class ReturnsTrue(HttpContext):
    async def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Any:
        return True


def test_a_coroutine_must_end_with_an_action() -> None:
    host = started(ReturnsTrue)
    ctx = host.initialize_http_context()
    assert host.call_on_request_headers(ctx, [], end_of_stream=True) == Action.PAUSE
    (error,) = host.get_logs(LogLevel.ERROR)
    assert "returned True; return Action.CONTINUE or Action.PAUSE" in error


class NoAwait(HttpContext):
    async def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> None:
        self.request.headers["x-sync"] = "1"


def test_an_async_callback_that_never_awaits_acts_at_once() -> None:
    host = started(NoAwait)
    ctx = host.initialize_http_context()
    assert host.call_on_request_headers(ctx, [], end_of_stream=True) == Action.CONTINUE
    assert host.get_current_request_headers(ctx) == [("x-sync", "1")]
