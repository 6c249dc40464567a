"""Counters, gauges and histograms, defined once and usable from any context.

A metric made at import time (or in ``on_vm_start``) binds to the host lazily,
on first use in each VM: the filter module is imported at build time, when no
host exists.
"""

from __future__ import annotations

from . import _state
from . import hostcalls as hc
from .types import MetricType

__all__ = ["Counter", "Gauge", "Histogram"]


class _Metric:
    _type: MetricType

    def __init__(self, name: str) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"metric name must be a non-empty str, got {name!r}")
        self.name = name
        self._vm_key = -1
        self._id = 0

    def _metric_id(self) -> int:
        if self._vm_key != _state.vm_key:
            self._id = hc.define_metric(self._type, self.name)
            self._vm_key = _state.vm_key
        return self._id

    def define(self) -> None:
        """Define the metric in this VM now (call it in ``on_vm_start`` or
        ``on_configure``), so it shows in Envoy's stats before its first use."""
        self._metric_id()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


class Counter(_Metric):
    """A monotonic counter: ``Counter("requests").increment()``."""

    _type = MetricType.COUNTER

    def increment(self, delta: int = 1) -> None:
        """Add ``delta`` (>= 0)."""
        if delta < 0:
            raise ValueError(f"counter {self.name!r} cannot decrease (delta {delta})")
        metric_id = self._metric_id()
        if delta:  # Envoy refuses an offset of 0 (BAD_ARGUMENT): adding nothing is a no-op
            hc.increment_metric(metric_id, delta)

    def get(self) -> int:
        """Current value."""
        return hc.get_metric(self._metric_id())


class Gauge(_Metric):
    """A value that goes up and down: ``.record(v)``, ``.increment(d)``."""

    _type = MetricType.GAUGE

    def record(self, value: int) -> None:
        """Set the gauge."""
        hc.record_metric(self._metric_id(), value)

    def increment(self, delta: int = 1) -> None:
        """Add ``delta`` (may be negative)."""
        hc.increment_metric(self._metric_id(), delta)

    def get(self) -> int:
        """Current value."""
        return hc.get_metric(self._metric_id())


class Histogram(_Metric):
    """A distribution of samples: ``.record(v)``."""

    _type = MetricType.HISTOGRAM

    def record(self, value: int) -> None:
        """Record one sample (>= 0)."""
        if value < 0:
            raise ValueError(f"histogram {self.name!r} takes values >= 0, got {value}")
        hc.record_metric(self._metric_id(), value)
