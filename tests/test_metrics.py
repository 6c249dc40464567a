"""Counter, Gauge, Histogram: defined at import time, bound lazily per VM."""

from __future__ import annotations

import proxywasm
import pytest
from proxywasm import Action, HostCallError, HttpContext, NotInCallbackError, RootContext
from proxywasm.testing import HostEmulator

# Made at import time, as a filter module does: no host exists yet.
REQUESTS = proxywasm.Counter("test_metrics_requests")
INFLIGHT = proxywasm.Gauge("test_metrics_inflight")
SIZES = proxywasm.Histogram("test_metrics_sizes")


class Counting(HttpContext):
    def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
        REQUESTS.increment()
        INFLIGHT.increment(1)
        SIZES.record(num_headers)
        return Action.CONTINUE

    def on_http_response_headers(self, num_headers: int, end_of_stream: bool) -> Action:
        INFLIGHT.increment(-1)
        return Action.CONTINUE


class Root(RootContext):
    def create_http_context(self, context_id: int) -> HttpContext:
        return Counting(context_id, self)


def started() -> HostEmulator:
    host = HostEmulator(Root)
    assert host.start_vm() and host.start_plugin()
    return host


def request(host: HostEmulator, respond: bool = True) -> None:
    ctx = host.initialize_http_context()
    host.call_on_request_headers(ctx, [(":path", "/"), (":method", "GET")])
    if respond:
        host.call_on_response_headers(ctx, [(":status", "200")])


def test_metrics_need_no_host_at_import_time() -> None:
    assert repr(REQUESTS) == "Counter('test_metrics_requests')"
    with pytest.raises(NotInCallbackError):
        REQUESTS.increment()  # using one outside a callback is the error, not making it


def test_counter_gauge_histogram_values() -> None:
    host = started()
    request(host)
    request(host)
    request(host, respond=False)
    assert host.get_metric("test_metrics_requests") == 3
    assert host.get_metric("test_metrics_inflight") == 1
    assert host.get_histogram("test_metrics_sizes") == [2, 2, 2]


def test_same_metric_objects_keep_separate_values_per_emulator() -> None:
    a = started()
    b = started()
    request(a)
    request(a)
    request(b)
    request(a)
    assert a.get_metric("test_metrics_requests") == 3
    assert b.get_metric("test_metrics_requests") == 1
    assert len(a.get_histogram("test_metrics_sizes")) == 3
    assert len(b.get_histogram("test_metrics_sizes")) == 1


def test_get_reads_the_value_back() -> None:
    seen: list[int] = []

    class R(RootContext):
        def on_tick(self) -> None:
            REQUESTS.increment(5)
            INFLIGHT.record(42)
            INFLIGHT.increment(-2)
            seen.extend([REQUESTS.get(), INFLIGHT.get()])

    host = HostEmulator(R)
    host.start_vm()
    host.start_plugin()
    host.tick(host.root_context_id)
    assert seen == [5, 40]


def test_counter_cannot_decrease() -> None:
    errors: list[BaseException] = []

    class R(RootContext):
        def on_tick(self) -> None:
            REQUESTS.increment(2)
            try:
                REQUESTS.increment(-1)
            except ValueError as exc:
                errors.append(exc)
            REQUESTS.increment(0)  # adding nothing is allowed and changes nothing

    host = HostEmulator(R)
    host.start_vm()
    host.start_plugin()
    host.tick(host.root_context_id)
    assert len(errors) == 1 and "cannot decrease" in str(errors[0])
    assert host.get_metric("test_metrics_requests") == 2


def test_host_refuses_a_non_positive_counter_offset() -> None:
    # What Envoy does when a module bypasses the SDK check.
    from proxywasm import MetricType, Status, hostcalls

    class R(RootContext):
        pass

    host = HostEmulator(R)
    host.start_vm()
    with host.in_context():
        metric_id = hostcalls.define_metric(MetricType.COUNTER, "raw")
        for delta in (0, -1):
            with pytest.raises(HostCallError) as info:
                hostcalls.increment_metric(metric_id, delta)
            assert info.value.status == Status.BAD_ARGUMENT
        hostcalls.record_metric(metric_id, 3)  # on a counter, Envoy adds
        hostcalls.record_metric(metric_id, 4)
        assert hostcalls.get_metric(metric_id) == 7


def test_histogram_rejects_negative_samples() -> None:
    errors: list[BaseException] = []

    class R(RootContext):
        def on_tick(self) -> None:
            SIZES.record(5)
            try:
                SIZES.record(-1)
            except ValueError as exc:
                errors.append(exc)

    host = HostEmulator(R)
    host.start_vm()
    host.start_plugin()
    host.tick(host.root_context_id)
    assert len(errors) == 1
    assert host.get_histogram("test_metrics_sizes") == [5]


def test_metric_defined_in_on_vm_start() -> None:
    class R(RootContext):
        def on_vm_start(self, vm_configuration_size: int) -> bool:
            self.hits = proxywasm.Counter("vm_start_hits")
            self.hits.increment(7)
            return True

    host = HostEmulator(R)
    host.start_vm()
    assert host.get_metric("vm_start_hits") == 7


def test_unknown_metric_names_are_key_errors() -> None:
    host = started()
    with pytest.raises(KeyError, match="nope"):
        host.get_metric("nope")
    with pytest.raises(KeyError):
        host.get_histogram("nope")


def test_empty_metric_name_is_value_error() -> None:
    with pytest.raises(ValueError):
        proxywasm.Counter("")


def test_define_makes_a_metric_visible_before_first_use() -> None:
    hist = proxywasm.Histogram("sizes.defined_early")

    class R(RootContext):
        def on_vm_start(self, vm_configuration_size: int) -> bool:
            hist.define()
            return True

    host = HostEmulator(R)
    host.start_vm()
    assert host.get_histogram("sizes.defined_early") == []
