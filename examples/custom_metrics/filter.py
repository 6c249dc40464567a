"""custom_metrics: request counters, an in-flight gauge and two histograms, from Python.

Every name starts with the configured ``prefix`` (default ``custom_metrics``);
Envoy shows them under ``wasmcustom.`` in ``/stats`` and ``/stats/prometheus``:

========================================  =========  ============================================
name                                      type       what
========================================  =========  ============================================
``<prefix>.requests.<METHOD>``            counter    requests by method: GET, HEAD, POST, PUT,
                                                     DELETE, PATCH, OPTIONS, CONNECT, TRACE;
                                                     any other method counts as ``OTHER``
``<prefix>.responses.<class>``            counter    responses by status class: ``1xx`` .. ``5xx``
                                                     (local replies included), ``other`` for a
                                                     status outside 100-599
``<prefix>.requests_in_flight``           gauge      requests started and not finished: +1 in
                                                     ``on_http_request_headers``, -1 in ``on_done``
``<prefix>.response_latency_ms``          histogram  ms from the request headers to the response
                                                     headers (the upstream's time to first byte)
``<prefix>.response_body_bytes``          histogram  response body size, recorded when the stream
                                                     ends (``on_log``) if a response started
========================================  =========  ============================================

The method list is fixed on purpose: a counter per arbitrary method string
would let clients create unbounded stats. Plugin configuration (JSON,
optional): ``{"prefix": "custom_metrics"}``.
"""

import proxywasm
from proxywasm import Action, ConfigError, HttpContext, RootContext

METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE")
CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx", "other")
NS_PER_MS = 1_000_000


def status_class(status: str | None) -> str:
    """``"404"`` -> ``"4xx"``; anything that is not a status in 100-599 -> ``"other"``."""
    if status is not None and len(status) == 3 and status.isdigit() and "1" <= status[0] <= "5":
        return status[0] + "xx"
    return "other"


class Metrics:
    """Every metric of one prefix. Made in ``on_configure``; each binds to the host on first use."""

    def __init__(self, prefix: str) -> None:
        self.requests = {
            m: proxywasm.Counter(f"{prefix}.requests.{m}") for m in METHODS + ("OTHER",)
        }
        self.responses = {c: proxywasm.Counter(f"{prefix}.responses.{c}") for c in CLASSES}
        self.in_flight = proxywasm.Gauge(f"{prefix}.requests_in_flight")
        self.latency_ms = proxywasm.Histogram(f"{prefix}.response_latency_ms")
        self.body_bytes = proxywasm.Histogram(f"{prefix}.response_body_bytes")

    def define_all(self) -> None:
        """Define the counters and the gauge now, so ``/stats`` lists them at 0 from the start."""
        for counter in list(self.requests.values()) + list(self.responses.values()):
            counter.define()
        self.in_flight.define()


class CustomMetrics(HttpContext["Root"]):
    def __init__(self, context_id: int, root: "Root") -> None:
        super().__init__(context_id, root)
        self.metrics = root.metrics  # a reconfiguration does not move a running stream's numbers
        self.started_ns = 0
        self.in_flight = False
        self.responded = False
        self.body_bytes = 0

    def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
        method = self.request.method.upper()  # "" without a :method
        self.metrics.requests[method if method in METHODS else "OTHER"].increment()
        self.metrics.in_flight.increment(1)
        self.in_flight = True
        self.started_ns = self.get_current_time_nanoseconds()
        return Action.CONTINUE

    def on_http_response_headers(self, num_headers: int, end_of_stream: bool) -> Action:
        self.responded = True
        # The header's text, not response.status: "other" must cover a status that is no number.
        status = self.response.headers.get(":status")
        self.metrics.responses[status_class(status)].increment()
        if self.started_ns:
            elapsed_ns = self.get_current_time_nanoseconds() - self.started_ns
            self.metrics.latency_ms.record(max(0, elapsed_ns) // NS_PER_MS)
        return Action.CONTINUE

    def on_http_response_body(self, body_size: int, end_of_stream: bool) -> Action:
        self.body_bytes += body_size  # each call brings a new chunk: the filter never pauses
        return Action.CONTINUE

    def on_log(self) -> None:
        if self.responded:
            self.metrics.body_bytes.record(self.body_bytes)

    def on_done(self) -> bool:
        if self.in_flight:
            self.in_flight = False
            self.metrics.in_flight.increment(-1)
        return True


class Root(RootContext):
    http_context = CustomMetrics

    def __init__(self, context_id: int) -> None:
        super().__init__(context_id)
        self.metrics = Metrics("custom_metrics")

    def on_configure(self, plugin_configuration_size: int) -> bool:
        config = self.get_plugin_configuration_json()  # None without a configuration
        if config is None:
            config = {}
        if not isinstance(config, dict) or set(config) - {"prefix"}:
            raise ConfigError('custom_metrics: expected {"prefix": "..."}')
        prefix = config.get("prefix", "custom_metrics")
        if (
            not isinstance(prefix, str)
            or not prefix
            or prefix.startswith(".")
            or prefix.endswith(".")
        ):
            raise ConfigError(
                "custom_metrics: prefix must be a non-empty string,"
                " without a leading or trailing dot"
            )
        self.metrics = Metrics(prefix)
        self.metrics.define_all()
        return True


proxywasm.set_root_context(Root)
