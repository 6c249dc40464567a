"""``proxywasm.shared`` compiled by the compact backend (``shared_filter.py``).

The compact module compiles ``sdk/proxywasm/shared.py`` from its source with
the filter. hypothesis draws sequences of helper calls and of what the other
workers do meanwhile (:class:`RacingHost`: writes between this VM's read and
its compare-and-swap, a key created the moment it was found missing, a lock
held, stale or unreadable); the native filter and the compact module must
agree on every host-visible effect. The fixed cases below check the
contended paths against what the helper's documentation says.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from proxywasm import LogLevel
from proxywasm import shared as shared_module
from proxywasm.testing import HostEmulator, load_filter
from proxywasm_compiler.backends.compact import build_compact

HERE = Path(__file__).resolve().parent
SHARED_FILTER = HERE / "shared_filter.py"
SHARED_PY = Path(shared_module.__file__).resolve()
LOCK = "probe:lock"
T0 = 1_700_000_000 * 10**9

shared_filter = load_filter(SHARED_FILTER)


class RacingHost(HostEmulator):
    """Other workers, played by the host between the filter's host calls.

    ``interfere``: after each of the next N reads of ``key`` that find a
    value, another worker writes it (``value + b"!"``, a new cas), so the
    filter's compare-and-swap fails. ``create_on_miss``: the first read that
    finds ``key`` missing is followed by another worker creating it.
    """

    key = b"k"
    interfere = 0
    create_on_miss: bytes | None = None

    def proxy_get_shared_data(self, key: bytes) -> tuple[int, bytes, int]:
        status, value, cas = super().proxy_get_shared_data(key)
        if bytes(key) == self.key:
            if self.interfere and status == 0:
                self.interfere -= 1
                self.shared_data[self.key] = (bytes(value) + b"!", next(self._cas))
            elif status != 0 and self.create_on_miss is not None:
                self.shared_data[self.key] = (self.create_on_miss, next(self._cas))
                self.create_on_miss = None
        return status, value, cas


@pytest.fixture(scope="module")
def shared_wasm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("compact") / "shared.wasm"
    build_compact(SHARED_FILTER, out)
    return out


@pytest.fixture(scope="module")
def hosts(shared_wasm: Path) -> list[RacingHost]:
    """A native host and a compact one, shared by the examples (each starts with :func:`reset`)."""
    return make_hosts(shared_wasm)


def make_hosts(wasm: Path) -> list[RacingHost]:
    hosts = [RacingHost(shared_filter.Root), RacingHost.from_wasm(str(wasm))]
    for h in hosts:
        assert isinstance(h, RacingHost)
        assert h.start_vm() and h.start_plugin()
        h.now_ns = T0
    return hosts


def call(host: HostEmulator, **headers: str) -> dict[str, str]:
    """One request through the filter; its ``x-*`` answers (and ``status`` if it failed closed)."""
    ctx = host.initialize_http_context()
    host.call_on_request_headers(ctx, list(headers.items()), end_of_stream=True)
    out = {k: v for k, v in host.get_current_request_headers(ctx) if k.startswith("x-")}
    reply = host.get_sent_local_response(ctx)
    if reply is not None:
        out["status"] = str(reply.status_code)
    host.complete_http_context(ctx)
    return out


def _errors(host: HostEmulator) -> list[tuple[str, list[str], str]]:
    """Each error entry: first line, the frames in the filter and in shared.py, the exception."""
    out = []
    for entry in host.get_logs(LogLevel.ERROR):
        lines = entry.splitlines()
        frames = [
            ln.strip()
            for ln in lines
            if ln.startswith("  File ") and (str(SHARED_FILTER) in ln or str(SHARED_PY) in ln)
        ]
        out.append((lines[0].split("(context")[0], frames, lines[-1].split(".")[-1]))
    return out


def effects(host: RacingHost, since: tuple[int, int] = (0, 0)) -> tuple[Any, ...]:
    """Shared data, error entries and updates counted (after ``since``: see :func:`mark`)."""
    data = {k: v for k, (v, _) in host.shared_data.items()}
    errors = _errors(host)[since[0] :]
    return (data, errors, (host.get_metric("shared_probe.updates") or 0) - since[1], host.interfere)


def mark(host: RacingHost) -> tuple[int, int]:
    """Where a host's error log and update counter stand now."""
    return len(host.get_logs(LogLevel.ERROR)), host.get_metric("shared_probe.updates") or 0


def reset(host: RacingHost) -> None:
    """Shared data as a freshly configured plugin leaves it (the lock key, free); the clock at T0."""
    host.shared_data.clear()
    host.set_shared_data("probe:lock", b"")
    host.now_ns = T0
    host.interfere, host.create_on_miss = 0, None


# -- differential ------------------------------------------------------------------

_headers = st.fixed_dictionaries(
    {
        "op": st.sampled_from(["ensure", "incr", "append", "raw", "finally", "stale"]),
        "key": st.sampled_from(["k", "other"]),
        "attempts": st.integers(1, 4).map(str),
    },
    optional={
        "lock": st.sampled_from(["probe:lock", "nolock"]),
        "initial": st.sampled_from(["", "5", "x y"]),
    },
)
_step = st.tuples(
    _headers,
    st.integers(0, 5),  # interfere
    st.sampled_from([None, b"7", b"seven"]),  # create_on_miss
    st.sampled_from([None, b"", b"free", "fresh", "stale"]),  # the lock's state before the call
    st.integers(0, 3 * 10**9),  # the clock moves on
)


def _set_lock(host: RacingHost, state: bytes | str | None) -> None:
    if state is None:
        return
    now = host.now_ns
    assert now is not None
    if state == "fresh":
        host.set_shared_data(LOCK, str(now - 10).encode())
    elif state == "stale":
        host.set_shared_data(LOCK, str(now - shared_module.LOCK_STALE_NS - 1).encode())
    else:
        assert isinstance(state, bytes)
        host.set_shared_data(LOCK, state)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=st.lists(_step, min_size=1, max_size=6))
def test_native_and_compact_agree(hosts: list[RacingHost], steps: list[Any]) -> None:
    for h in hosts:
        reset(h)
    since = [mark(h) for h in hosts]
    for headers, interfere, create_on_miss, lock_state, dt in steps:
        answers = []
        for h in hosts:
            h.interfere, h.create_on_miss = interfere, create_on_miss
            h.now_ns = (h.now_ns or T0) + dt
            _set_lock(h, lock_state)
            answers.append(call(h, **headers))
        native, compact = answers
        assert native == compact, headers
        assert effects(hosts[0], since[0]) == effects(hosts[1], since[1]), headers


# -- fixed cases: the contended paths -----------------------------------------------


@pytest.fixture
def compact(shared_wasm: Path) -> RacingHost:
    return make_hosts(shared_wasm)[1]


def test_cas_mismatches_are_retried_until_one_wins(compact: RacingHost) -> None:
    compact.set_shared_data("k", b"v")
    compact.interfere = 2  # two other workers write between this VM's read and its CAS
    assert call(compact, op="append", key="k") == {"x-result": "b'v!!+'", "x-calls": "3"}
    assert compact.interfere == 0
    assert compact.get_shared_data("k")[0] == b"v!!+"


def test_endless_contention_raises_after_the_attempts(compact: RacingHost) -> None:
    compact.set_shared_data("k", b"v")
    compact.interfere = 10
    assert call(compact, op="append", key="k", attempts="3") == {
        "x-result": "contended: shared data key 'k': no update after 3 attempts",
        "x-calls": "3",
    }
    assert compact.interfere == 7  # one read per attempt
    assert compact.get_shared_data("k")[0] == b"v!!!"  # only the other workers' writes


def test_a_key_created_meanwhile_is_updated_with_cas(compact: RacingHost) -> None:
    """Found missing, then another worker creates it: the lock holder sees it and backs off;
    the next attempt updates the other worker's value (nothing lost)."""
    compact.create_on_miss = b"7"
    assert call(compact, op="incr", key="k", lock="probe:lock") == {
        "x-result": "8",
        "x-calls": "0",
    }
    assert compact.get_shared_data("k")[0] == b"8"
    assert compact.get_shared_data("probe:lock")[0] == b""  # let go (in the finally block)
    assert compact.get_metric("shared_probe.updates") == 1


def test_a_held_lock_waits_and_a_stale_one_is_taken_over(compact: RacingHost) -> None:
    compact.set_shared_data("probe:lock", str(T0 - shared_module.LOCK_STALE_NS // 2))
    assert call(compact, op="incr", lock="probe:lock", attempts="5") == {
        "x-result": "contended: shared data key 'k': no update after 5 attempts",
        "x-calls": "0",
    }
    assert compact.get_shared_data("k") == (None, None)
    compact.now_ns = T0 + shared_module.LOCK_STALE_NS  # its holder died
    assert call(compact, op="incr", lock="probe:lock")["x-result"] == "1"
    assert compact.get_shared_data("probe:lock")[0] == b""


def test_errors_name_the_helpers_frames(compact: RacingHost) -> None:
    assert call(compact, op="raw", key="missing") == {"status": "500"}
    [(head, frames, last)] = _errors(compact)
    assert head.startswith("python exception in on_http_request_headers")
    assert last == (
        "ProxyWasmError: shared data key 'missing' does not exist: create it with "
        "ensure_shared_data() in on_configure, or pass lock_key= to create it under a lock"
    )
    source = SHARED_PY.read_text().splitlines()
    raise_line = next(i for i, ln in enumerate(source, 1) if "raise ProxyWasmError(" in ln)
    assert frames[-1] == f'File "{SHARED_PY}", line {raise_line}, in update_shared_data'
    assert frames[0].startswith(f'File "{SHARED_FILTER}", line ')


@pytest.mark.parametrize(
    ("n", "expected"),
    [
        (3, "(30, ['inner finally', 'outer finally'])"),
        (1, "(-1, ['inner body', 'inner finally', 'caught', 'outer finally'])"),
        (0, "(0, ['inner body', 'inner finally', 'outer finally'])"),
    ],
)
def test_return_runs_the_finally_blocks(compact: RacingHost, n: int, expected: str) -> None:
    """What the lock release relies on: a return inside try runs every enclosing finally."""
    assert call(compact, op="finally", attempts=str(n + 1))["x-result"] == expected
