"""``async def`` callbacks compiled as state machines (``async_filter.py``).

hypothesis draws a plan (awaits in a loop with int, float, str and bool
locals kept across them, awaits under try/except/finally, a helper that
returns the call, a three-way gather, an exception or a bad result after an
await), the answers (status, body, headers, order) and whether the stream
ends before they come; also a TCP connection whose first data awaits. The
native filter and the compact module must agree on every host-visible
effect.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from proxywasm import LogLevel
from proxywasm.testing import HostEmulator, load_filter
from proxywasm_compiler.backends.compact import build_compact

HERE = Path(__file__).resolve().parent
FILTER = HERE / "async_filter.py"
machines = load_filter(FILTER)


@pytest.fixture(scope="module")
def async_wasm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("compact") / "async.wasm"
    build_compact(FILTER, out)
    return out


def _hosts(wasm: Path) -> list[HostEmulator]:
    out = [HostEmulator(machines.Root), HostEmulator.from_wasm(str(wasm))]
    for h in out:
        assert h.start_vm() and h.start_plugin()
    return out


def _logs(h: HostEmulator) -> list[object]:
    out: list[object] = []
    for level in (LogLevel.INFO, LogLevel.ERROR):
        for entry in h.get_logs(level):
            lines = entry.splitlines()
            frames = [ln.strip() for ln in lines if ln.startswith("  File ") and str(FILTER) in ln]
            out.append((int(level), lines[0].split("(context")[0], frames, lines[-1]))
    return out


def _answer_all(h: HostEmulator, answers: list[Any], pick: int, seen: list[object]) -> None:
    for status, body, extra in answers:
        pending = h.get_http_call_attributes()
        if not pending:
            return
        call = pending[pick % len(pending)]
        seen.append((call.upstream, call.headers, call.body, call.timeout_ms))
        h.call_on_http_call_response(call.token, [(":status", status), *extra], body)


def _http(h: HostEmulator, s: dict[str, Any]) -> list[object]:
    seen: list[object] = []
    for _ in range(s["streams"]):
        ctx = h.initialize_http_context()
        headers = [
            (":method", "GET"),
            (":path", "/"),
            (":authority", "x"),
            ("x-plan", s["plan"]),
            ("x-rounds", str(s["rounds"])),
            ("x-bad", s["bad"]),
        ]
        seen.append(int(h.call_on_request_headers(ctx, headers, end_of_stream=True)))
        if not s["end_early"]:
            _answer_all(h, s["answers"], s["pick"], seen)
        seen.append(int(h.get_current_http_stream_action(ctx)))
        seen.append(h.get_current_request_headers(ctx))
        reply = h.get_sent_local_response(ctx)
        seen.append(None if reply is None else (reply.status_code, reply.headers, reply.body))
        if reply is None and not s["end_early"]:
            response = [(":status", "200"), *([("x-ask", "1")] if s["ask"] else [])]
            seen.append(int(h.call_on_response_headers(ctx, response, end_of_stream=True)))
            _answer_all(h, s["answers"], 0, seen)
            seen.append(h.get_current_response_headers(ctx))
        h.complete_http_context(ctx)
        seen.append([(c.upstream, c.headers) for c in h.get_http_call_attributes()])
    seen.append(_logs(h))
    return seen


STATUS = st.sampled_from(["200", "403", "500", "503", "x"])
ANSWERS = st.lists(
    st.tuples(
        STATUS,
        st.sampled_from([b"", b"ok", b"\xff!", b"deny"]),
        st.lists(
            st.tuples(st.sampled_from(["x-user", "X-Other"]), st.text("ab", max_size=2)), max_size=2
        ),
    ),
    max_size=5,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    s=st.fixed_dictionaries(
        {
            "plan": st.sampled_from(["loop", "try", "helper", "three", "raise", "bad", "none"]),
            "rounds": st.integers(0, 3),
            "bad": st.sampled_from(["7", "null", "1", "true", '"s"']),
            "answers": ANSWERS,
            "pick": st.integers(0, 2),
            "end_early": st.booleans(),
            "ask": st.booleans(),
            "streams": st.integers(1, 2),
        }
    )
)
def test_state_machines_agree(async_wasm: Path, s: dict[str, Any]) -> None:
    native, compact = (_http(h, s) for h in _hosts(async_wasm))
    assert native == compact


def _tcp(h: HostEmulator, chunks: list[bytes], answers: list[Any]) -> list[object]:
    seen: list[object] = []
    ctx, action = h.initialize_connection()
    seen.append(int(action))
    for chunk in chunks:
        seen.append(int(h.call_on_downstream_data(ctx, chunk, end_of_stream=False)))
        _answer_all(h, answers, 0, seen)
        seen.append(int(h.get_current_connection_action(ctx)))
    seen.append(_logs(h))
    return seen


@settings(max_examples=40, deadline=None)
@given(
    chunks=st.lists(st.sampled_from([b"", b"hi", b"there"]), min_size=1, max_size=3),
    answers=ANSWERS,
)
def test_tcp_coroutines_agree(async_wasm: Path, chunks: list[bytes], answers: list[Any]) -> None:
    native, compact = (_tcp(h, chunks, answers) for h in _hosts(async_wasm))
    assert native == compact


def test_locals_survive_the_awaits(async_wasm: Path) -> None:
    """The documented shape of a loop of awaits, checked once by hand, compact."""
    (h,) = _hosts(async_wasm)[1:]
    ctx = h.initialize_http_context()
    headers = [(":method", "GET"), (":path", "/"), (":authority", "x")]
    headers += [("x-plan", "loop"), ("x-rounds", "3")]
    assert int(h.call_on_request_headers(ctx, headers, end_of_stream=True)) == 1
    for body in (b"a", b"b", b"c"):
        (call,) = h.get_http_call_attributes()
        h.call_on_http_call_response(call.token, [(":status", "200")], body)
    got = dict(h.get_current_request_headers(ctx))
    assert (got["x-total"], got["x-ratio"], got["x-seen"], got["x-ok"]) == (
        "600",
        "5.75",
        "abc",
        "True",
    )
    assert int(h.get_current_http_stream_action(ctx)) == 0
