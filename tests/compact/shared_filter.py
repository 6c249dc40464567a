"""A filter exercising ``proxywasm.shared`` for the compact backend's tests.

``test_shared.py`` sends request headers: ``op`` (``ensure``, ``incr``,
``append``, ``raw``,
``finally`` or ``stale``), ``key``, ``lock`` (the lock key, absent: none),
``attempts`` and ``initial``. The filter answers with ``x-result`` (what the
helper returned, or the error it raised) and ``x-calls`` (how many times the
update ran). ``raw`` lets the helper's errors escape: the barrier logs their
traceback (frames in this file and in ``proxywasm/shared.py``) and fails
closed. Run natively and compiled, every answer must be the same.
"""

import proxywasm
from proxywasm import Action, HttpContext, RootContext
from proxywasm.shared import (
    LOCK_STALE_NS,
    SharedDataContendedError,
    ensure_shared_data,
    update_shared_data,
)

LOCK = "probe:lock"
UPDATES = proxywasm.Counter("shared_probe.updates")


def incr(value: bytes | None) -> bytes:
    """A module function as the update: a counter in decimal text."""
    UPDATES.increment()
    return str(int(value or b"0") + 1).encode()


def nested_finally(n: int, log: list[str]) -> int:
    """Returns through two finally blocks, from a body and from a handler (as the helper does)."""
    try:
        try:
            if n > 1:
                return n * 10
            log.append("inner body")
        finally:
            log.append("inner finally")
        if n == 1:
            raise ValueError("one")
        return n
    except ValueError:
        log.append("caught")
        return -1
    finally:
        log.append("outer finally")


class Probe(HttpContext):
    root: "Root"

    def __init__(self, context_id: int, root: "Root") -> None:
        super().__init__(context_id, root)
        self.calls = 0

    def append(self, value: bytes | None) -> str:
        """A bound method as the update, returning ``str`` (the helper encodes it)."""
        self.calls += 1
        return ("<new>" if value is None else value.decode()) + "+"

    def run(self, op: str, key: str, lock: str | None, attempts: int) -> str:
        if op == "ensure":
            initial = self.get_http_request_header("initial")
            created = (
                ensure_shared_data(key) if initial is None else ensure_shared_data(key, initial)
            )
            return str(created)
        if op == "incr":
            return update_shared_data(key, incr, lock_key=lock, attempts=attempts).decode()
        if op == "append":
            return repr(update_shared_data(key, self.append, lock_key=lock, attempts=attempts))
        if op == "finally":
            log: list[str] = []
            return repr((nested_finally(attempts - 1, log), log))
        return str(LOCK_STALE_NS)

    def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
        op = self.get_http_request_header("op") or ""
        key = self.get_http_request_header("key") or "k"
        lock = self.get_http_request_header("lock")
        attempts = int(self.get_http_request_header("attempts") or "64")
        if op == "raw":  # no handler: the error reaches the barrier
            update_shared_data(key, self.append, lock_key=lock, attempts=attempts)
            return Action.CONTINUE
        try:
            result = self.run(op, key, lock, attempts)
        except SharedDataContendedError as exc:
            result = "contended: " + str(exc)
        except proxywasm.ProxyWasmError as exc:
            result = "error: " + str(exc)
        self.set_http_request_header("x-result", result)
        self.set_http_request_header("x-calls", str(self.calls))
        return Action.CONTINUE


class Root(RootContext):
    def on_vm_start(self, vm_configuration_size: int) -> bool:
        UPDATES.define()
        return True

    def on_configure(self, plugin_configuration_size: int) -> bool:
        ensure_shared_data(LOCK)
        return True

    def create_http_context(self, context_id: int) -> HttpContext:
        return Probe(context_id, self)


proxywasm.set_root_context(Root)
