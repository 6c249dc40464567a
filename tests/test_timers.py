"""set_tick_period_ms and host.tick()."""

from __future__ import annotations

import pytest
from proxywasm import RootContext
from proxywasm.testing import HostEmulator


class Ticker(RootContext):
    def __init__(self, context_id: int) -> None:
        super().__init__(context_id)
        self.ticks = 0

    def on_vm_start(self, vm_configuration_size: int) -> bool:
        self.set_tick_period_ms(5000)
        return True

    def on_tick(self) -> None:
        self.ticks += 1
        if self.ticks == 3:
            self.set_tick_period_ms(0)  # stop


def start() -> tuple[HostEmulator, Ticker]:
    roots: list[Ticker] = []

    def factory(context_id: int) -> Ticker:
        roots.append(Ticker(context_id))
        return roots[-1]

    host = HostEmulator(factory, raise_callback_errors=True)
    assert host.start_vm() and host.start_plugin()
    return host, roots[0]


def test_tick_period_is_recorded() -> None:
    host, _ = start()
    assert host.get_tick_period() == 5000


def test_tick_calls_on_tick_until_the_period_is_zero() -> None:
    host, root = start()
    for _ in range(5):
        host.tick()
    assert root.ticks == 3
    assert host.get_tick_period() == 0


def test_no_period_no_tick() -> None:
    calls: list[int] = []

    class Quiet(RootContext):
        def on_tick(self) -> None:
            calls.append(1)

    host = HostEmulator(Quiet, raise_callback_errors=True)
    host.start_vm()
    host.start_plugin()
    host.tick()
    assert calls == [] and host.get_tick_period() == 0
    host.tick(host.root_context_id)  # an explicit root is ticked regardless
    assert calls == [1]


def test_negative_period_is_value_error() -> None:
    errors: list[BaseException] = []

    class Bad(RootContext):
        def on_configure(self, plugin_configuration_size: int) -> bool:
            try:
                self.set_tick_period_ms(-1)
            except ValueError as exc:
                errors.append(exc)
            return True

    host = HostEmulator(Bad)
    host.start_vm()
    host.start_plugin()
    assert len(errors) == 1


def test_tick_period_belongs_to_the_root_even_when_set_from_a_stream() -> None:
    from proxywasm import Action, HttpContext

    class F(HttpContext):
        def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
            root = self.root
            assert isinstance(root, Ticker)
            root.set_tick_period_ms(100)
            return Action.CONTINUE

    class R(Ticker):
        def on_vm_start(self, vm_configuration_size: int) -> bool:
            return True

        def create_http_context(self, context_id: int) -> HttpContext:
            return F(context_id, self)

    host = HostEmulator(R, raise_callback_errors=True)
    host.start_vm()
    host.start_plugin()
    ctx = host.initialize_http_context()
    host.call_on_request_headers(ctx, [(":path", "/")])
    assert host.get_tick_period() == 100
    assert host.get_tick_period(ctx) == 0


@pytest.mark.parametrize("n", [1, 2])
def test_each_plugin_has_its_own_timer(n: int) -> None:
    roots: list[Ticker] = []

    def factory(context_id: int) -> Ticker:
        roots.append(Ticker(context_id))
        return roots[-1]

    host = HostEmulator(factory, raise_callback_errors=True)
    assert host.start_vm() and host.start_plugin()
    second_id = host.add_plugin("second")
    first, second = roots
    assert second.context_id == second_id
    # The second plugin set no period: ticking the first does not tick it.
    assert host.get_tick_period(second_id) == 0
    for _ in range(n):
        host.tick()
    assert (first.ticks, second.ticks) == (n, 0)
    # Its own period, its own ticks; the first one's count stays.
    with host.in_context(second_id):
        second.set_tick_period_ms(200)
    assert host.get_tick_period(second_id) == 200
    assert host.get_tick_period() == 5000
    host.tick(second_id)
    assert (first.ticks, second.ticks) == (n, 1)
