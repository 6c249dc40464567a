"""call_foreign_function (filter -> host) and on_foreign_function (host -> filter)."""

from __future__ import annotations

import proxywasm
import pytest
from proxywasm import HostCallError, LogLevel, RootContext, Status
from proxywasm.testing import HostEmulator


class Root(RootContext):
    def __init__(self, context_id: int) -> None:
        super().__init__(context_id)
        self.results: list[object] = []

    def on_tick(self) -> None:
        self.results.append(self.call_foreign_function("reverse", b"abc"))
        self.results.append(self.call_foreign_function("nothing"))
        try:
            self.call_foreign_function("missing", b"")
        except HostCallError as exc:
            self.results.append((exc.status, "missing" in str(exc)))
        try:
            self.call_foreign_function("boom", b"")
        except HostCallError as exc:
            self.results.append(exc.status)
        self.results.append(proxywasm.call_foreign_function("reverse", b"xy"))

    def on_foreign_function(self, function_id: int, arguments_size: int) -> None:
        self.results.append((function_id, arguments_size, self.get_foreign_function_arguments()))


def start() -> tuple[HostEmulator, Root]:
    roots: list[Root] = []

    def factory(context_id: int) -> Root:
        roots.append(Root(context_id))
        return roots[-1]

    host = HostEmulator(factory)
    assert host.start_vm() and host.start_plugin()
    return host, roots[0]


def _boom(_: bytes) -> bytes:
    raise RuntimeError("extension failed")


def test_call_registered_functions() -> None:
    host, root = start()
    host.register_foreign_function("reverse", lambda b: b[::-1])
    host.register_foreign_function("nothing", lambda b: None)
    host.register_foreign_function("boom", _boom)
    host.tick(host.root_context_id)
    assert root.results == [
        b"cba",
        None,
        (Status.NOT_FOUND, True),
        Status.INTERNAL_FAILURE,
        b"yx",
    ]
    # The host's own failure is logged by the host, the filter goes on.
    assert any("extension failed" in m for m in host.get_logs(LogLevel.ERROR))


def test_host_calls_into_the_plugin() -> None:
    host, root = start()
    host.call_on_foreign_function(7, b"payload")
    host.call_on_foreign_function(8)
    assert root.results == [(7, 7, b"payload"), (8, 0, None)]


def test_foreign_arguments_are_not_visible_elsewhere() -> None:
    host, root = start()
    with host.in_context():
        assert root.get_foreign_function_arguments() is None


def test_missing_function_without_registration() -> None:
    host, _ = start()
    with host.in_context(), pytest.raises(HostCallError, match="no foreign function 'compress'"):
        proxywasm.call_foreign_function("compress", b"x")
