"""The one-frame fast paths of the per-request SDK calls and their fallbacks.

``HttpContext.get_http_request_header``, ``HttpContext.add_http_response_header``
and ``proxywasm.log_debug`` call the host module in their own frame for the
common case (``str`` arguments, the context already effective, status OK or
NOT_FOUND). Everything else must behave exactly as the general path
(``hostcalls``): bytes arguments work, a bad type is the same ``TypeError``, a
failing status is the same :class:`HostCallError` (hint included) raised after
one host call, and a context that is not effective is entered first.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

import proxywasm
import pytest
from proxywasm import Action, HostCallError, HttpContext, LogLevel, RootContext, _nullhost, _state
from proxywasm import hostcalls as hc
from proxywasm.testing import HostEmulator
from proxywasm.types import MapType, Status

REQUEST = [(":method", "GET"), (":path", "/p"), (":authority", "a"), ("x-custom", "abc")]
RESPONSE = [(":status", "200")]
SDK = Path(proxywasm.__file__).resolve().parent


# -- through the null runtime ------------------------------------------------------------------


def run(
    on_request: Callable[[HttpContext], object], on_response: Callable[[HttpContext], object]
) -> tuple[HostEmulator, int]:
    """One request whose header callbacks run ``on_request`` / ``on_response``."""

    class Filter(HttpContext):
        def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
            on_request(self)
            return Action.CONTINUE

        def on_http_response_headers(self, num_headers: int, end_of_stream: bool) -> Action:
            on_response(self)
            return Action.CONTINUE

    class Root(RootContext):
        def create_http_context(self, context_id: int) -> HttpContext:
            return Filter(context_id, self)

    host = HostEmulator(Root, raise_callback_errors=True)
    assert host.start_vm() and host.start_plugin()
    ctx = host.initialize_http_context()
    assert host.call_on_request_headers(ctx, REQUEST, end_of_stream=True) == Action.CONTINUE
    assert host.call_on_response_headers(ctx, RESPONSE, end_of_stream=True) == Action.CONTINUE
    return host, ctx


def test_str_and_bytes_arguments_read_add_and_log_the_same() -> None:
    seen: dict[str, object] = {}

    def on_request(f: HttpContext) -> None:
        seen["str"] = f.get_http_request_header("X-Custom")
        seen["bytes"] = f.get_http_request_header(b"x-custom")  # type: ignore[arg-type]
        seen["missing"] = f.get_http_request_header("x-missing")
        seen["missing bytes"] = f.get_http_request_header(b"x-missing")  # type: ignore[arg-type]
        proxywasm.log_debug("str message")
        proxywasm.log_debug(b"bytes message")  # type: ignore[arg-type]

    def on_response(f: HttpContext) -> None:
        f.add_http_response_header("x-a", "1")
        f.add_http_response_header(b"x-b", "2")  # type: ignore[arg-type]
        f.add_http_response_header("x-c", b"3")
        f.add_http_response_header("x-a", "again")

    host, ctx = run(on_request, on_response)
    assert seen == {"str": "abc", "bytes": "abc", "missing": None, "missing bytes": None}
    assert host.get_logs(LogLevel.DEBUG) == ["str message", "bytes message"]
    assert host.get_current_response_headers(ctx) == [
        (":status", "200"),
        ("x-a", "1"),
        ("x-b", "2"),
        ("x-c", "3"),
        ("x-a", "again"),
    ]


def test_a_bad_argument_type_is_the_general_paths_type_error() -> None:
    errors: list[str] = []

    def catch(call: Callable[[], object]) -> None:
        with pytest.raises(TypeError) as info:
            call()
        errors.append(str(info.value))

    def on_request(f: HttpContext) -> None:
        catch(lambda: f.get_http_request_header(5))  # type: ignore[arg-type]
        catch(lambda: proxywasm.log_debug(None))  # type: ignore[arg-type]

    def on_response(f: HttpContext) -> None:
        catch(lambda: f.add_http_response_header(5, "v"))  # type: ignore[arg-type]
        catch(lambda: f.add_http_response_header("x-n", 5))  # type: ignore[arg-type]

    host, ctx = run(on_request, on_response)
    assert errors == [
        "header name must be str or bytes, not int",
        "log message must be str or bytes, not NoneType",
        "header name must be str or bytes, not int",
        "header value must be str or bytes, not int",
    ]
    assert host.get_current_response_headers(ctx) == [(":status", "200")]


def test_an_undecodable_value_round_trips_as_on_the_general_path() -> None:
    seen: list[object] = []

    def on_request(f: HttpContext) -> None:
        f.set_http_request_header("x-raw", b"\xff\xfe")
        seen.append(f.get_http_request_header("x-raw"))
        seen.append(hc.get_map_value(MapType.HTTP_REQUEST_HEADERS, "x-raw"))

    run(on_request, lambda f: None)
    assert seen == ["\udcff\udcfe", "\udcff\udcfe"]


# -- against a host that answers one chosen status --------------------------------------------


class StatusHost:
    """Answers every ABI call with ``status`` (and ``value`` as a result), recording each call."""

    def __init__(self, status: int, value: bytes = b"") -> None:
        self.status = status
        self.value = value
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if not name.startswith("proxy_"):
            raise AttributeError(name)

        def call(*args: Any) -> Any:
            self.calls.append((name, args))
            if name == "proxy_get_header_map_value":
                return self.status, self.value
            return self.status

        return call


@contextmanager
def answering(status: int, value: bytes = b"", entered: int = 7) -> Iterator[StatusHost]:
    """Make ``StatusHost(status)`` the host, with context ``entered`` effective."""
    host = StatusHost(status, value)
    previous = _nullhost.active, _state.effective_context_id
    _nullhost.active, _state.effective_context_id = host, entered
    try:
        yield host
    finally:
        _nullhost.active, _state.effective_context_id = previous


def stream(context_id: int = 7) -> HttpContext:
    return HttpContext(context_id, RootContext(1))


def general_error(status: int, call: Callable[[], object]) -> str:
    """The message the general path (``hostcalls``) raises for ``status``."""
    with answering(status), pytest.raises(HostCallError) as info:
        call()
    return str(info.value)


@pytest.mark.parametrize("status", [Status.BAD_ARGUMENT, Status.INTERNAL_FAILURE])
def test_a_failed_read_raises_the_general_error_after_one_call(status: Status) -> None:
    expected = general_error(status, lambda: hc.get_map_value(MapType.HTTP_REQUEST_HEADERS, "k"))
    with answering(status) as host, pytest.raises(HostCallError) as info:
        stream().get_http_request_header("k")
    assert str(info.value) == expected
    assert info.value.function == "proxy_get_header_map_value" and info.value.status == status
    assert host.calls == [("proxy_get_header_map_value", (0, b"k"))]
    if status == Status.BAD_ARGUMENT:
        assert "request headers are only reachable in on_http_request_headers" in expected


@pytest.mark.parametrize("status", [Status.NOT_FOUND, Status.BAD_ARGUMENT, Status.INTERNAL_FAILURE])
def test_a_failed_add_raises_the_general_error_after_one_call(status: Status) -> None:
    expected = general_error(
        status, lambda: hc.add_map_value(MapType.HTTP_RESPONSE_HEADERS, "k", "v")
    )
    epoch = _state.map_epoch
    with answering(status) as host, pytest.raises(HostCallError) as info:
        stream().add_http_response_header("k", "v")
    assert str(info.value) == expected
    assert info.value.function == "proxy_add_header_map_value" and info.value.status == status
    assert host.calls == [("proxy_add_header_map_value", (2, b"k", b"v"))]
    assert _state.map_epoch == epoch + 1  # header views must not trust their copy
    if status == Status.BAD_ARGUMENT:
        assert "response headers are only reachable in on_http_response_headers" in expected


def test_a_failed_debug_log_raises_the_general_error_after_one_call() -> None:
    expected = general_error(Status.INTERNAL_FAILURE, lambda: hc.log(LogLevel.DEBUG, "m"))
    with answering(Status.INTERNAL_FAILURE) as host, pytest.raises(HostCallError) as info:
        proxywasm.log_debug("m")
    assert str(info.value) == expected == "proxy_log failed with INTERNAL_FAILURE"
    assert host.calls == [("proxy_log", (int(LogLevel.DEBUG), b"m"))]


def test_not_found_is_none_and_ok_is_the_decoded_value() -> None:
    with answering(Status.NOT_FOUND) as host:
        assert stream().get_http_request_header("k") is None
    assert host.calls == [("proxy_get_header_map_value", (0, b"k"))]
    with answering(Status.OK, b"v\xff"):
        assert stream().get_http_request_header("k") == "v\udcff"


def test_a_context_that_is_not_effective_is_entered_first() -> None:
    with answering(Status.OK, b"v", entered=3) as host:
        assert stream(7).get_http_request_header("k") == "v"
        assert _state.effective_context_id == 7
        stream(8).add_http_response_header("k", "v")
        assert _state.effective_context_id == 8
    assert host.calls == [
        ("proxy_set_effective_context", (7,)),
        ("proxy_get_header_map_value", (0, b"k")),
        ("proxy_set_effective_context", (8,)),
        ("proxy_add_header_map_value", (2, b"k", b"v")),
    ]


# -- the fast path is one SDK frame -------------------------------------------------------------


def sdk_frames(call: Callable[[], object]) -> list[str]:
    """Names of the SDK functions ``call`` runs (the null runtime's lookup excluded)."""
    names: list[str] = []

    def profile(frame: FrameType, event: str, arg: object) -> None:
        path = Path(frame.f_code.co_filename)
        if event == "call" and path.parent == SDK and path.name != "_nullhost.py":
            names.append(frame.f_code.co_name)

    sys.setprofile(profile)
    try:
        call()
    finally:
        sys.setprofile(None)
    return names


def test_the_common_case_runs_in_one_frame_and_the_rest_falls_back() -> None:
    with answering(Status.OK, b"v"):
        f = stream()
        assert sdk_frames(lambda: f.get_http_request_header("k")) == ["get_http_request_header"]
        assert sdk_frames(lambda: f.add_http_response_header("k", "v")) == [
            "add_http_response_header"
        ]
        assert sdk_frames(lambda: proxywasm.log_debug("m")) == ["log_debug"]
        bytes_name = sdk_frames(lambda: f.get_http_request_header(b"k"))  # type: ignore[arg-type]
        assert bytes_name[:2] == ["get_http_request_header", "_get_header"]
        bytes_value = sdk_frames(lambda: f.add_http_response_header("k", b"v"))
        assert bytes_value[:2] == ["add_http_response_header", "_add_header"]
        assert sdk_frames(lambda: proxywasm.log_debug(b"m"))[:2] == ["log_debug", "log"]  # type: ignore[arg-type]
