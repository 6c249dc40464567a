"""Shared data that stays right when several workers write it at once.

Every VM of a plugin (one per Envoy worker thread) sees the same shared data.
``set_shared_data(key, value, cas)`` is a compare-and-swap, but only for a
key that exists: Envoy (proxy-wasm-cpp-host) ignores ``cas`` when the key is
missing, so two workers that both find a key missing and both write it lose
one of the two updates. There is no "create if absent" in the ABI and no way
to delete a key, so this module adds the two rules that make it safe:

- keys known in advance are created by :func:`ensure_shared_data` from
  ``on_configure`` (each VM configures before it serves; a key that exists
  is left alone, so a VM started later does not reset it);
- keys made on the fly (one per client, say) are created under a lock, a key
  of its own made by :func:`ensure_shared_data`: :func:`update_shared_data`
  with ``lock_key`` takes the lock (compare-and-swap on a key that exists),
  looks again, creates the key only if it is still missing, and lets go.
  Every later update is a plain compare-and-swap. A lock whose holder died
  (a VM that trapped while holding it) is taken over after ``LOCK_STALE_NS``.

The same code runs natively, where the null runtime applies Envoy's rule.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing is not imported at run time: it would be frozen into every module
if TYPE_CHECKING:
    from collections.abc import Callable

from .hostcalls import get_current_time_nanoseconds, get_shared_data, set_shared_data
from .types import CasMismatchError, ProxyWasmError

__all__ = ["LOCK_STALE_NS", "SharedDataContendedError", "ensure_shared_data", "update_shared_data"]

#: A creation lock older than this (1 s) belongs to a VM that died holding it.
LOCK_STALE_NS = 1_000_000_000

_FREE = b""


class SharedDataContendedError(ProxyWasmError):
    """Other workers kept winning: no update after the allowed number of attempts."""


def ensure_shared_data(key: str, initial: bytes | str = _FREE) -> bool:
    """Create ``key`` with ``initial`` unless it exists; call it from ``on_configure``.

    Returns whether this call created it. Keys are never deleted, so once a
    key exists every write to it can be a compare-and-swap.
    """
    value, _ = get_shared_data(key)
    if value is not None:
        return False
    set_shared_data(key, initial)
    return True


def update_shared_data(
    key: str,
    update: Callable[[bytes | None], bytes | str],
    *,
    lock_key: str | None = None,
    attempts: int = 64,
) -> bytes:
    """Replace the value of ``key`` with ``update(value)`` atomically; returns what was written.

    ``update`` gets ``None`` when the key does not exist yet; it may run more
    than once (once per attempt) and must not have other effects. A missing
    key is created under ``lock_key`` (a key :func:`ensure_shared_data`
    made in ``on_configure``); without ``lock_key`` a missing key is an
    error, since creating it unlocked could lose a concurrent update.
    Raises :class:`SharedDataContendedError` after ``attempts`` lost races.
    """
    for _ in range(attempts):
        value, cas = get_shared_data(key)
        if value is None:
            if lock_key is None:
                raise ProxyWasmError(
                    f"shared data key {key!r} does not exist: create it with ensure_shared_data() in "
                    "on_configure, or pass lock_key= to create it under a lock"
                )
            created = _create_locked(key, update, lock_key)
            if created is not None:
                return created
            continue  # the lock was busy, or the key appeared meanwhile: read again
        new = _as_bytes(update(value))
        try:
            set_shared_data(key, new, cas)
        except CasMismatchError:
            continue  # another worker wrote first: read again
        return new
    raise SharedDataContendedError(f"shared data key {key!r}: no update after {attempts} attempts")


def _as_bytes(value: bytes | str) -> bytes:
    return value.encode() if isinstance(value, str) else value


def _create_locked(
    key: str, update: Callable[[bytes | None], bytes | str], lock_key: str
) -> bytes | None:
    """Create ``key`` holding the lock; ``None`` if the lock is busy or the key now exists."""
    lock, lock_cas = get_shared_data(lock_key)
    if lock is None:
        raise ProxyWasmError(
            f"lock key {lock_key!r} does not exist: create it with ensure_shared_data({lock_key!r}) in on_configure"
        )
    now = get_current_time_nanoseconds()
    if lock != _FREE:
        try:
            since = int(lock)
        except ValueError:
            since = 0  # unreadable: treat as stale
        if now - since < LOCK_STALE_NS:
            return None
    token = str(now).encode()
    try:
        set_shared_data(lock_key, token, lock_cas)
    except CasMismatchError:
        return None  # another worker took it first
    try:
        value, _ = get_shared_data(key)
        if value is not None:
            return None  # created while we waited: update it with compare-and-swap
        new = _as_bytes(update(None))
        set_shared_data(key, new)  # safe: every creator holds the lock, and keys are never deleted
        return new
    finally:
        held, held_cas = get_shared_data(lock_key)
        if held == token:
            try:
                set_shared_data(lock_key, _FREE, held_cas)
            except CasMismatchError:
                pass  # taken over as stale meanwhile: it is not ours to free
