"""Shared data: (value, cas) reads and compare-and-swap writes."""

from __future__ import annotations

from collections.abc import Callable

import proxywasm
import pytest
from proxywasm import CasMismatchError, HostCallError, RootContext, Status
from proxywasm.testing import HostEmulator


def run(fn: Callable[[RootContext], object], host: HostEmulator | None = None) -> object:
    """Run ``fn(root)`` inside the root's on_tick, as a filter would, and return its result."""
    out: list[object] = []

    class Root(RootContext):
        def on_tick(self) -> None:
            out.append(fn(self))

    if host is None:
        host = HostEmulator(Root)
        host.start_vm()
        host.start_plugin()
    host.tick(host.root_context_id)
    return out[0]


def started() -> tuple[HostEmulator, list[Callable[[RootContext], object]]]:
    todo: list[Callable[[RootContext], object]] = []
    results: list[object] = []

    class Root(RootContext):
        def on_tick(self) -> None:
            results.append(todo.pop(0)(self))

    host = HostEmulator(Root)
    host.start_vm()
    host.start_plugin()
    return host, todo


def test_missing_key_is_none_none() -> None:
    assert run(lambda r: r.get_shared_data("nope")) == (None, None)


def test_set_then_get_returns_value_and_cas() -> None:
    def fn(r: RootContext) -> object:
        r.set_shared_data("k", b"v1")
        return r.get_shared_data("k")

    value, cas = run(fn)  # type: ignore[misc]
    assert value == b"v1" and isinstance(cas, int) and cas > 0


def test_str_value_is_utf8() -> None:
    def fn(r: RootContext) -> object:
        r.set_shared_data("k", "é")
        return r.get_shared_data("k")[0]

    assert run(fn) == "é".encode()


def test_cas_none_and_zero_set_unconditionally() -> None:
    def fn(r: RootContext) -> object:
        r.set_shared_data("k", b"a")
        r.set_shared_data("k", b"b", cas=None)
        r.set_shared_data("k", b"c", cas=0)
        return r.get_shared_data("k")[0]

    assert run(fn) == b"c"


def test_current_cas_succeeds_and_changes_the_cas() -> None:
    def fn(r: RootContext) -> object:
        r.set_shared_data("k", b"a")
        _, cas1 = r.get_shared_data("k")
        r.set_shared_data("k", b"b", cas=cas1)
        value, cas2 = r.get_shared_data("k")
        return value, cas1 != cas2

    assert run(fn) == (b"b", True)


def test_stale_cas_raises_cas_mismatch() -> None:
    def fn(r: RootContext) -> object:
        r.set_shared_data("k", b"a")
        _, stale = r.get_shared_data("k")
        r.set_shared_data("k", b"b")  # another writer
        try:
            r.set_shared_data("k", b"c", cas=stale)
        except CasMismatchError as exc:
            return exc, r.get_shared_data("k")[0]
        return None

    result = run(fn)
    assert isinstance(result, tuple)
    exc, value = result
    assert isinstance(exc, HostCallError) and exc.status == Status.CAS_MISMATCH
    assert "'k'" in str(exc)
    assert value == b"b"


def test_missing_key_never_mismatches() -> None:
    def fn(r: RootContext) -> object:
        r.set_shared_data("fresh", b"v", cas=12345)
        return r.get_shared_data("fresh")[0]

    assert run(fn) == b"v"


def test_module_level_functions() -> None:
    def fn(r: RootContext) -> object:
        proxywasm.set_shared_data("m", b"1")
        return proxywasm.get_shared_data("m")[0]

    assert run(fn) == b"1"


def test_test_can_seed_and_inspect_shared_data() -> None:
    class Root(RootContext):
        def on_tick(self) -> None:
            value, _ = self.get_shared_data("seed")
            self.set_shared_data("out", (value or b"") + b"!")

    host = HostEmulator(Root)
    host.start_vm()
    host.start_plugin()
    host.set_shared_data("seed", "hello")
    host.tick(host.root_context_id)
    assert host.get_shared_data("out")[0] == b"hello!"
    assert host.get_shared_data("absent") == (None, None)


def test_two_emulators_do_not_share_state() -> None:
    class Root(RootContext):
        def on_tick(self) -> None:
            value, cas = self.get_shared_data("n")
            self.set_shared_data("n", str(int(value or b"0") + 1), cas)

    a = HostEmulator(Root)
    b = HostEmulator(Root)
    for h in (a, b):
        h.start_vm()
        h.start_plugin()
    a.tick(a.root_context_id)
    a.tick(a.root_context_id)
    b.tick(b.root_context_id)
    assert a.get_shared_data("n")[0] == b"2"
    assert b.get_shared_data("n")[0] == b"1"


def test_shared_data_is_visible_across_contexts_of_one_host() -> None:
    from proxywasm import Action, HttpContext

    class F(HttpContext):
        def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
            value, _ = self.get_shared_data("token")
            self.set_http_request_header("x-token", value or b"none")
            return Action.CONTINUE

    class Root(RootContext):
        def on_configure(self, plugin_configuration_size: int) -> bool:
            self.set_shared_data("token", b"secret")
            return True

        def create_http_context(self, context_id: int) -> HttpContext:
            return F(context_id, self)

    host = HostEmulator(Root)
    host.start_vm()
    host.start_plugin()
    ctx = host.initialize_http_context()
    host.call_on_request_headers(ctx, [(":path", "/")])
    assert ("x-token", "secret") in host.get_current_request_headers(ctx)


def test_non_str_key_is_a_type_error() -> None:
    def fn(r: RootContext) -> object:
        with pytest.raises(TypeError):
            r.get_shared_data(5)  # type: ignore[arg-type]
        return True

    assert run(fn) is True
