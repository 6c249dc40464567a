"""tcp_byte_counter: a network (L4) filter that counts the bytes of every TCP connection.

A ``StreamContext`` per connection sees each chunk of client data
(``on_downstream_data``) and of upstream data (``on_upstream_data``), adds its
size to Envoy counters and to the connection's own totals, and lets it through
unchanged. When the connection ends it writes one info log line::

    tcp_byte_counter: connection 7 from 127.0.0.1:50312 closed: 12 bytes in, 12 bytes out

("in": from the client; "out": from the upstream, to the client).

Metrics (Envoy shows them as ``wasmcustom.<name>``):

- ``tcp_byte_counter.connections`` (counter): connections accepted;
- ``tcp_byte_counter.active_connections`` (gauge): open now;
- ``tcp_byte_counter.downstream_bytes`` (counter): bytes from clients;
- ``tcp_byte_counter.upstream_bytes`` (counter): bytes from upstreams.

No configuration. In Envoy the filter goes in a listener's filter chain,
before ``envoy.filters.network.tcp_proxy`` (see ``envoy.yaml``).
"""

import proxywasm
from proxywasm import Action, RootContext, StreamContext

CONNECTIONS = proxywasm.Counter("tcp_byte_counter.connections")
ACTIVE = proxywasm.Gauge("tcp_byte_counter.active_connections")
DOWNSTREAM_BYTES = proxywasm.Counter("tcp_byte_counter.downstream_bytes")
UPSTREAM_BYTES = proxywasm.Counter("tcp_byte_counter.upstream_bytes")


class ByteCounter(StreamContext["Root"]):
    def __init__(self, context_id: int, root: "Root") -> None:
        super().__init__(context_id, root)
        self.bytes_in = 0
        self.bytes_out = 0
        self.peer = "unknown"
        self.open = False

    def on_new_connection(self) -> Action:
        CONNECTIONS.increment()
        ACTIVE.increment(1)
        self.open = True
        self.peer = self.get_property_str(["source", "address"]) or "unknown"
        return Action.CONTINUE

    def on_downstream_data(self, data_size: int, end_of_stream: bool) -> Action:
        # The filter never pauses, so each call brings only the new chunk.
        self.bytes_in += data_size
        DOWNSTREAM_BYTES.increment(data_size)
        return Action.CONTINUE

    def on_upstream_data(self, data_size: int, end_of_stream: bool) -> Action:
        self.bytes_out += data_size
        UPSTREAM_BYTES.increment(data_size)
        return Action.CONTINUE

    def on_done(self) -> bool:
        # Envoy calls on_done once the connection is closed (either side).
        if self.open:
            self.open = False
            ACTIVE.increment(-1)
            proxywasm.log_info(
                f"tcp_byte_counter: connection {self.context_id} from {self.peer} closed: "
                f"{self.bytes_in} bytes in, {self.bytes_out} bytes out"
            )
        return True


class Root(RootContext):
    stream_context = ByteCounter  # one ByteCounter(context_id, root) per connection

    def on_vm_start(self, vm_configuration_size: int) -> bool:
        for metric in (CONNECTIONS, ACTIVE, DOWNSTREAM_BYTES, UPSTREAM_BYTES):
            metric.define()  # now, so Envoy's /stats lists it from the start, at 0
        return True


proxywasm.set_root_context(Root)
