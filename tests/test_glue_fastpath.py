"""The per-request fast paths answer exactly as the general ones did.

Stream contexts are recorded by the compiled glue without a Python call, the
HTTP stream callbacks of a made context are run by the glue itself (the
dispatcher is called for anything but None / Action, and for exceptions), and
the SDK's empty ``on_delete`` is not called. Every test runs natively and compiled
(``proxywasm_filter_host``): each kind of answer, the exception barrier, the
failure policy and the contexts' lifecycle must not tell the paths apart.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from proxywasm import Action, LogLevel
from proxywasm.testing import HostEmulator

PROXYWASM_FILTER = Path(__file__).parent / "fastpath" / "filter.py"

Host = Callable[..., HostEmulator]


def _request(host: HostEmulator, path: str) -> tuple[int, Action]:
    ctx = host.initialize_http_context()
    return ctx, host.call_on_request_headers(ctx, [(":path", path)], end_of_stream=True)


@pytest.mark.parametrize(
    ("path", "action"),
    [
        ("/none", Action.CONTINUE),
        ("/continue", Action.CONTINUE),
        ("/pause", Action.PAUSE),
        ("/int-pause", Action.PAUSE),
        ("/int-continue", Action.CONTINUE),
        ("/true", Action.PAUSE),
        ("/async", Action.PAUSE),
    ],
)
def test_every_kind_of_answer_gives_its_action(
    proxywasm_filter_host: Host, path: str, action: Action
) -> None:
    host = proxywasm_filter_host()
    ctx, got = _request(host, path)
    assert got == action
    assert host.get_sent_local_response(ctx) is None
    assert host.get_logs(LogLevel.ERROR) == []
    assert host.call_on_response_headers(ctx, [(":status", "200")], True) == Action.CONTINUE
    assert ("x-fast", str(ctx)) in host.get_current_response_headers(ctx)


@pytest.mark.parametrize(
    ("path", "text"),
    [
        ("/bad", "Plain.on_http_request_headers returned 'nope'"),
        ("/raise", "ValueError: request headers refused"),
    ],
)
def test_a_bad_answer_or_an_exception_fails_closed(
    proxywasm_filter_host: Host, path: str, text: str
) -> None:
    host = proxywasm_filter_host()
    ctx, got = _request(host, path)
    assert got == Action.PAUSE
    reply = host.get_sent_local_response(ctx)
    assert reply is not None and reply.status_code == 500
    (error,) = host.get_logs(LogLevel.ERROR)
    assert error.startswith(f"python exception in on_http_request_headers (context {ctx}):")
    assert text in error


def test_fail_open_lets_the_stream_continue(proxywasm_filter_host: Host) -> None:
    host = proxywasm_filter_host(plugin_configuration={"fail_open": True})
    ctx, got = _request(host, "/raise")
    assert got == Action.CONTINUE
    assert host.get_sent_local_response(ctx) is None
    assert len(host.get_logs(LogLevel.ERROR)) == 1


@pytest.mark.parametrize("fail_open", [False, True])
def test_a_stream_whose_creation_failed_follows_the_failure_policy(
    proxywasm_filter_host: Host, fail_open: bool
) -> None:
    host = proxywasm_filter_host(plugin_configuration={"kind": "broken", "fail_open": fail_open})
    for _ in range(2):  # the second stream too: the first one's failure is not sticky
        ctx, got = _request(host, "/none")
        reply = host.get_sent_local_response(ctx)
        if fail_open:
            assert got == Action.CONTINUE and reply is None
        else:
            assert got == Action.PAUSE and reply is not None and reply.status_code == 500
        # Later callbacks of the broken stream get the policy as well.
        response = host.call_on_response_headers(ctx, [(":status", "200")], True)
        assert response == (Action.CONTINUE if fail_open else Action.PAUSE)
        host.complete_http_context(ctx)
    errors = host.get_logs(LogLevel.ERROR)
    assert len(errors) == 2
    assert all("python exception in context creation" in e for e in errors)
    assert all("LookupError: no context for you" in e for e in errors)


@pytest.mark.parametrize(
    ("kind", "info", "errors"),
    [
        ("plain", [], 0),
        ("deleting", ["deleted Deleting"], 0),
        ("inherits", ["deleted InheritsDelete"], 0),
        ("raising", [], 1),
    ],
)
def test_on_delete_runs_exactly_when_a_class_overrides_it(
    proxywasm_filter_host: Host, kind: str, info: list[str], errors: int
) -> None:
    host = proxywasm_filter_host(plugin_configuration={"kind": kind})
    for _ in range(3):
        before = len(host.get_logs(LogLevel.INFO))
        ctx, _ = _request(host, "/none")
        host.call_on_response_headers(ctx, [(":status", "200")], True)
        host.complete_http_context(ctx)
        assert host.get_logs(LogLevel.INFO)[before:] == info
    logged = host.get_logs(LogLevel.ERROR)
    assert len(logged) == 3 * errors
    assert all(e.startswith("python exception in on_delete") for e in logged)
    assert all("RuntimeError: on_delete failed" in e for e in logged)


def test_streams_announced_together_are_made_in_their_own_order(
    proxywasm_filter_host: Host,
) -> None:
    """Several stream contexts created before any of them runs (the glue records
    them pending): each is made at its first callback, with its own id."""
    host = proxywasm_filter_host()
    ids = [host.initialize_http_context() for _ in range(5)]
    for ctx in reversed(ids):
        assert host.call_on_request_headers(ctx, [(":path", "/none")], True) == Action.CONTINUE
        host.call_on_response_headers(ctx, [(":status", "200")], True)
        assert ("x-fast", str(ctx)) in host.get_current_response_headers(ctx)
    for ctx in ids:
        host.complete_http_context(ctx)
    # And a context deleted before its first callback leaves nothing behind.
    ctx = host.initialize_http_context()
    host.complete_http_context(ctx)
    assert host.get_logs(LogLevel.ERROR) == []
    ctx, got = _request(host, "/pause")
    assert got == Action.PAUSE


def test_a_tcp_stream_is_made_at_its_first_callback(proxywasm_filter_host: Host) -> None:
    host = proxywasm_filter_host()
    ctx, action = host.initialize_connection()
    assert action == Action.CONTINUE
    assert host.call_on_downstream_data(ctx, b"hello", end_of_stream=False) == Action.CONTINUE
    host.complete_connection(ctx)
    assert host.get_logs(LogLevel.INFO)[-1:] == ["tcp 5"]
    assert host.get_logs(LogLevel.ERROR) == []


def test_the_dispatcher_is_not_asked_to_delete_what_it_never_made() -> None:
    """A context deleted while only pending is dropped from the table (natively
    the dispatcher records it; compiled, the glue)."""
    from proxywasm import RootContext
    from proxywasm.dispatcher import Dispatcher

    d: Any = Dispatcher({None: RootContext})
    d.proxy_on_context_create(1, 0)
    d.proxy_on_context_create(2, 1)
    assert d.pending == {2: 1}
    d.proxy_on_delete(2)
    assert d.pending == {} and d.streams == {}


@pytest.mark.parametrize("path", ["/none", "/reply"])
def test_a_deleted_stream_is_let_go_of_at_once(proxywasm_filter_host: Host, path: str) -> None:
    """The context is freed during its own on_delete, whichever path drops it
    (the glue for a quiet stream, Python for one that sent a reply), every time."""
    host = proxywasm_filter_host(plugin_configuration={"kind": "freed"})
    for _ in range(3):
        ctx, _ = _request(host, path)
        if path == "/reply":
            reply = host.get_sent_local_response(ctx)
            assert reply is not None and reply.status_code == 403
        host.call_on_response_headers(ctx, [(":status", "200")], True)
        before = len(host.get_logs(LogLevel.INFO))
        host.complete_http_context(ctx)
        assert host.get_logs(LogLevel.INFO)[before:] == [f"freed {ctx}"]
    # A stream still open is not freed by another one's deletion.
    kept, _ = _request(host, "/none")
    done, _ = _request(host, "/none")
    host.complete_http_context(done)
    assert f"freed {kept}" not in host.get_logs(LogLevel.INFO)
    assert host.call_on_response_headers(kept, [(":status", "200")], True) == Action.CONTINUE
    assert ("x-fast", str(kept)) in host.get_current_response_headers(kept)
    assert host.get_logs(LogLevel.ERROR) == []


def test_the_error_entry_starts_at_the_filter_frame(proxywasm_filter_host: Host) -> None:
    """The glue calls the filter itself, so its traceback has no dispatcher frame; natively
    the dispatcher's own frame is left out too: one entry, the same both ways."""
    host = proxywasm_filter_host()
    _request(host, "/raise")
    (error,) = host.get_logs(LogLevel.ERROR)
    frames = [line for line in error.splitlines() if line.lstrip().startswith("File ")]
    assert frames and frames[0].endswith("in on_http_request_headers"), error
    assert "dispatcher" not in error


@pytest.mark.parametrize(
    ("do", "action", "error"),
    [
        ("", Action.CONTINUE, None),
        ("none", Action.CONTINUE, None),
        ("pause", Action.PAUSE, None),
        ("async", Action.PAUSE, None),
        ("bad", Action.PAUSE, "Bodies.on_http_response_headers returned 'nope'"),
        ("raise", Action.PAUSE, "KeyError: 'response headers refused'"),
    ],
)
def test_a_made_context_answers_its_later_callbacks_as_the_dispatcher(
    proxywasm_filter_host: Host, do: str, action: Action, error: str | None
) -> None:
    host = proxywasm_filter_host(plugin_configuration={"kind": "bodies"})
    ctx, got = _request(host, "/none")
    assert got == Action.CONTINUE
    headers = [(":status", "200")] + ([("x-do", do)] if do else [])
    assert host.call_on_response_headers(ctx, headers, False) == action
    errors = host.get_logs(LogLevel.ERROR)
    reply = host.get_sent_local_response(ctx)
    if error is None:
        assert errors == [] and reply is None
        assert ("x-fast", str(ctx)) in host.get_current_response_headers(ctx)
    else:
        (entry,) = errors
        assert entry.startswith(f"python exception in on_http_response_headers (context {ctx}):")
        assert error in entry
        assert reply is not None and reply.status_code == 500


def test_body_and_trailer_callbacks_get_their_arguments(proxywasm_filter_host: Host) -> None:
    host = proxywasm_filter_host(plugin_configuration={"kind": "bodies"})
    ctx = host.initialize_http_context()
    assert host.call_on_request_headers(ctx, [(":path", "/none")], False) == Action.CONTINUE
    assert host.call_on_request_trailers(ctx, [("t", "1"), ("u", "2")]) == Action.CONTINUE
    assert host.call_on_response_headers(ctx, [(":status", "200")], False) == Action.CONTINUE
    assert host.call_on_response_body(ctx, b"abc", end_of_stream=False) == Action.PAUSE
    assert host.call_on_response_body(ctx, b"de", end_of_stream=True) == Action.CONTINUE
    assert host.get_logs(LogLevel.INFO) == ["trailers 2", "body 3 False", "body 5 True"]
    # An exception in a body callback: the barrier and the failure policy, as anywhere.
    ctx, _ = _request(host, "/none")
    host.call_on_response_headers(ctx, [(":status", "200")], False)
    assert host.call_on_response_body(ctx, b"raise", end_of_stream=True) == Action.PAUSE
    (entry,) = host.get_logs(LogLevel.ERROR)
    assert entry.startswith(f"python exception in on_http_response_body (context {ctx}):")
    assert "RuntimeError: response body refused" in entry
