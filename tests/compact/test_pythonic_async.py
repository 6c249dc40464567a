"""tests/pythonic/filter.py (views, ``async def`` callbacks awaiting callouts, JSON
configuration) compiled by the compact backend.

Two proofs. The tests of ``tests/test_pythonic.py`` run here again, against
the compact module (``PROXYWASM_BACKENDS``), with their own assertions. And
hypothesis draws streams through every case of the filter with the callouts
answered in any order, with any status, or left unanswered while the stream
ends; the native filter and the compact module must agree on every
host-visible effect.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from proxywasm import LogLevel
from proxywasm.testing import HostEmulator, load_filter
from proxywasm_compiler.backends.compact import build_compact

HERE = Path(__file__).resolve().parent
PROXYWASM_FILTER = HERE.parent / "pythonic" / "filter.py"
PROXYWASM_BACKENDS = ("compact",)

_spec = importlib.util.spec_from_file_location(
    "_compact_pythonic_tests", HERE.parent / "test_pythonic.py"
)
assert _spec is not None and _spec.loader is not None
_suite = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_suite)

#: the fixture and the tests of tests/test_pythonic.py, run here natively and compact
host = _suite.host
test_header_views_read_and_write_the_live_map = _suite.test_header_views_read_and_write_the_live_map
test_response_view = _suite.test_response_view
test_body_view_buffers_then_rewrites = _suite.test_body_view_buffers_then_rewrites
test_awaited_callout_pauses_then_resumes_by_itself = (
    _suite.test_awaited_callout_pauses_then_resumes_by_itself
)
test_awaited_callout_denied_sends_the_local_reply_and_does_not_resume = (
    _suite.test_awaited_callout_denied_sends_the_local_reply_and_does_not_resume
)
test_envoys_timeout_answer_reaches_the_coroutine = (
    _suite.test_envoys_timeout_answer_reaches_the_coroutine
)
test_awaits_in_sequence = _suite.test_awaits_in_sequence
test_gather_waits_for_every_answer_in_any_order = (
    _suite.test_gather_waits_for_every_answer_in_any_order
)
test_an_exception_after_an_await_fails_closed = _suite.test_an_exception_after_an_await_fails_closed
test_a_refused_dispatch_raises_host_call_error = (
    _suite.test_a_refused_dispatch_raises_host_call_error
)
test_a_stream_that_ends_while_waiting_closes_its_coroutine = (
    _suite.test_a_stream_that_ends_while_waiting_closes_its_coroutine
)
test_root_context_awaits_in_on_tick = _suite.test_root_context_awaits_in_on_tick
test_config_errors_are_one_line = _suite.test_config_errors_are_one_line

pythonic = load_filter(PROXYWASM_FILTER)
CONFIG = b'{"tag": "blue"}'


@pytest.fixture(scope="module")
def pythonic_async_wasm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("compact") / "pythonic_async.wasm"
    build_compact(PROXYWASM_FILTER, out)
    return out


def _hosts(wasm: Path, upstreams: list[str] | None) -> list[HostEmulator]:
    out = [
        HostEmulator(pythonic.Root, plugin_configuration=CONFIG),
        HostEmulator.from_wasm(str(wasm), plugin_configuration=CONFIG),
    ]
    for h in out:
        if upstreams is not None:
            h.upstreams = set(upstreams)
        assert h.start_vm() and h.start_plugin()
    return out


def _logs(h: HostEmulator) -> list[object]:
    out: list[object] = []
    for level in (LogLevel.INFO, LogLevel.ERROR):
        for entry in h.get_logs(level):
            lines = entry.splitlines()
            frames = [ln.strip() for ln in lines if ln.startswith("  File ") and "filter.py" in ln]
            out.append((int(level), lines[0].split("(context")[0], frames, lines[-1]))
    return out


def _run(h: HostEmulator, s: dict[str, Any]) -> list[object]:
    """One stream of case ``s["case"]``; callouts answered as ``s["answers"]`` says."""
    seen: list[object] = []
    ctx = h.initialize_http_context()
    headers = [
        (":method", "POST"),
        (":path", s["path"]),
        (":authority", "x"),
        ("x-case", s["case"]),
        ("authorization", "Bearer t"),
        ("x-secret", "s3"),
        ("x-drop", "1"),
    ]
    seen.append(int(h.call_on_request_headers(ctx, headers, end_of_stream=not s["body"])))
    seen.append(h.get_current_request_headers(ctx))
    for status, body, extra in s["answers"]:
        pending = h.get_http_call_attributes()
        if not pending:
            break
        call = pending[min(s["pick"], len(pending) - 1)]
        seen.append((call.upstream, call.headers, call.body, call.timeout_ms))
        h.call_on_http_call_response(call.token, [(":status", status), *extra], body)
        seen.append(
            (int(h.get_current_http_stream_action(ctx)), h.get_current_request_headers(ctx))
        )
    if s["tick"]:
        h.tick()
        for call in h.get_http_call_attributes():
            if call.upstream == "stats":
                h.call_on_http_call_response(call.token, [(":status", "200")], b"fine")
    reply = h.get_sent_local_response(ctx)
    seen.append(None if reply is None else (reply.status_code, reply.headers, reply.body))
    if reply is None and s["body"] and not s["end_early"]:
        seen.append(int(h.call_on_request_body(ctx, s["body"], end_of_stream=True)))
        seen.append(h.get_current_request_body(ctx))
    if reply is None and not s["end_early"]:
        seen.append(
            int(h.call_on_response_headers(ctx, [(":status", "200"), ("server", "up")], True))
        )
        seen.append(h.get_current_response_headers(ctx))
    h.complete_http_context(ctx)
    seen.append([(c.upstream, c.headers) for c in h.get_http_call_attributes()])
    seen.append(_logs(h))
    return seen


CASES = st.sampled_from(
    ["views", "auth", "sequence", "gather", "raise-after-await", "cancel", "body", "refused", "x"]
)
ANSWERS = st.lists(
    st.tuples(
        st.sampled_from(["200", "401", "503", "504", "x"]),
        st.binary(max_size=4),
        st.lists(
            st.tuples(st.sampled_from(["x-user", "X-User", "x-other"]), st.text("ab", max_size=2)),
            max_size=2,
        ),
    ),
    max_size=3,
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    s=st.fixed_dictionaries(
        {
            "case": CASES,
            "path": st.sampled_from(["/", "/some/path", "/a?b=c"]),
            "answers": ANSWERS,
            "pick": st.integers(0, 1),
            "body": st.sampled_from([b"", b"hello", b"\xffx"]),
            "end_early": st.booleans(),
            "tick": st.booleans(),
            "refuse": st.booleans(),
        }
    )
)
def test_streams_agree(pythonic_async_wasm: Path, s: dict[str, Any]) -> None:
    upstreams = ["auth", "a", "b", "stats"] if s["refuse"] else None
    native, compact = (_run(h, s) for h in _hosts(pythonic_async_wasm, upstreams))
    assert native == compact
