"""TCP contexts compiled by the compact backend behave as the same filter natively.

hypothesis draws connections (chunks from the client and the upstream); the
native filter and its compact module must agree on the actions, the bytes
forwarded, whether the client side was closed (``bye``, and the fail-closed
policy after an exception), the log entries and the metrics.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from proxywasm import LogLevel
from proxywasm.testing import HostEmulator, load_filter

from .conftest import TCP_PROBE

pytestmark = pytest.mark.slow

tcp_probe = load_filter(TCP_PROBE)
SETTINGS = settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
word = st.sampled_from([b"pass", b"upper", b"drop", b"bye", b"boom", b""])
chunk = st.tuples(st.booleans(), word, st.binary(max_size=6))


def _run(host: HostEmulator, chunks: list[tuple[bool, bytes, bytes]]) -> tuple[object, ...]:
    before = {level: len(host.get_logs(level)) for level in (LogLevel.INFO, LogLevel.ERROR)}
    ctx, first = host.initialize_connection()
    actions = [int(first)]
    for downstream, w, rest in chunks:
        data = w + b" " + rest if w else rest
        if downstream:
            actions.append(int(host.call_on_downstream_data(ctx, data)))
        else:
            actions.append(int(host.call_on_upstream_data(ctx, data)))
    conn = host.get_connection(ctx)
    state = (
        bytes(conn.forwarded_downstream),
        bytes(conn.forwarded_upstream),
        conn.downstream_closed,
    )
    host.call_on_downstream_close(ctx)
    host.complete_connection(ctx)
    logs = []
    for level in (LogLevel.INFO, LogLevel.ERROR):
        for entry in host.get_logs(level)[before[level] :]:
            lines = entry.splitlines()
            frames = [
                ln.strip() for ln in lines if ln.startswith("  File ") and str(TCP_PROBE) in ln
            ]
            logs.append((lines[0].split("(context")[0], frames, lines[-1]))
    return (
        actions,
        state,
        logs,
        host.get_metric("tcp_probe.chunks"),
        host.get_metric("tcp_probe.open"),
    )


@pytest.fixture(scope="module")
def hosts(tcp_probe_wasm: Path) -> list[HostEmulator]:
    hosts = [HostEmulator(tcp_probe.Root), HostEmulator.from_wasm(str(tcp_probe_wasm))]
    for h in hosts:
        assert h.start_vm() and h.start_plugin()
    return hosts


@SETTINGS
@given(chunks=st.lists(chunk, max_size=5))
@example(chunks=[(True, b"upper", b"abc"), (False, b"", b"xyz"), (True, b"boom", b"\xff\x00")])
@example(chunks=[(True, b"bye", b"")])
def test_connections_agree(
    hosts: list[HostEmulator], chunks: list[tuple[bool, bytes, bytes]]
) -> None:
    native, compact = (_run(h, chunks) for h in hosts)
    assert native == compact


def test_an_exception_closes_the_connection(hosts: list[HostEmulator]) -> None:
    actions, (_down, _up, closed), logs, _chunks, _open = _run(hosts[1], [(True, b"boom", b"x")])
    assert closed and actions[-1] == 1  # fail closed: PAUSE and the client side closed
    [(head, frames, last)] = [log for log in logs if log[0].startswith("python exception")]
    assert head.startswith("python exception in on_downstream_data")
    assert last == "ValueError: boom after 1 chunks: b'boom x'"
    assert len(frames) == 1 and frames[0].endswith("in on_downstream_data")
