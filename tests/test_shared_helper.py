"""proxywasm.shared: creation under a lock, CAS updates, clear errors (natively)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from proxywasm import ProxyWasmError, RootContext
from proxywasm.shared import (
    LOCK_STALE_NS,
    SharedDataContendedError,
    ensure_shared_data,
    update_shared_data,
)
from proxywasm.testing import HostEmulator

T0 = 1_700_000_000 * 10**9


class Root(RootContext):
    """Runs the test's function inside a callback (on_tick), where host calls are allowed."""

    job: Callable[[], Any] | None = None
    result: Any = None

    def on_configure(self, plugin_configuration_size: int) -> bool:
        ensure_shared_data("lock")
        self.set_tick_period_ms(1000)
        return True

    def on_tick(self) -> None:
        assert Root.job is not None
        Root.result = Root.job()


def run(host: HostEmulator, job: Callable[[], Any]) -> Any:
    Root.job, Root.result = job, None
    host.tick()
    return Root.result


@pytest.fixture
def host() -> HostEmulator:
    h = HostEmulator(Root, raise_callback_errors=True)
    assert h.start_vm() and h.start_plugin()
    h.now_ns = T0
    return h


def incr(value: bytes | None) -> bytes:
    return str(int(value or b"0") + 1).encode()


def test_ensure_creates_once_and_never_resets(host: HostEmulator) -> None:
    assert run(host, lambda: ensure_shared_data("k", b"initial"))
    host.set_shared_data("k", b"changed")
    assert not run(host, lambda: ensure_shared_data("k", b"initial"))
    assert host.get_shared_data("k")[0] == b"changed"


def test_updates_create_under_the_lock_then_compare_and_swap(host: HostEmulator) -> None:
    for expected in (b"1", b"2", b"3"):
        assert run(host, lambda: update_shared_data("n", incr, lock_key="lock")) == expected
    assert host.get_shared_data("n")[0] == b"3"
    assert host.get_shared_data("lock")[0] == b""


def test_a_missing_key_without_a_lock_is_refused(host: HostEmulator) -> None:
    with pytest.raises(
        ProxyWasmError, match=r"key 'n' does not exist: create it with ensure_shared_data"
    ):
        run(host, lambda: update_shared_data("n", incr))
    assert host.get_shared_data("n") == (None, None)


def test_a_missing_lock_is_refused(host: HostEmulator) -> None:
    with pytest.raises(ProxyWasmError, match=r"lock key 'nolock' does not exist"):
        run(host, lambda: update_shared_data("n", incr, lock_key="nolock"))


def test_a_held_lock_makes_creation_wait_then_give_up(host: HostEmulator) -> None:
    host.set_shared_data("lock", str(T0 - LOCK_STALE_NS // 2).encode())  # another worker holds it
    with pytest.raises(SharedDataContendedError, match="no update after 5 attempts"):
        run(host, lambda: update_shared_data("n", incr, lock_key="lock", attempts=5))
    assert host.get_shared_data("n") == (None, None)


def test_a_stale_lock_is_taken_over(host: HostEmulator) -> None:
    host.set_shared_data("lock", str(T0 - LOCK_STALE_NS - 1).encode())  # its holder died
    assert run(host, lambda: update_shared_data("n", incr, lock_key="lock")) == b"1"
    assert host.get_shared_data("lock")[0] == b""


def test_an_existing_key_is_updated_without_the_lock(host: HostEmulator) -> None:
    host.set_shared_data("n", b"41")
    host.set_shared_data("lock", str(T0).encode())  # held: not needed for an existing key
    assert run(host, lambda: update_shared_data("n", incr, lock_key="lock")) == b"42"
