"""A TCP (network) filter for the compact backend's differential tests.

Each downstream chunk is read and, by its first word, passed through
(``pass``), rewritten (``upper``: upper-cased, ``drop``: emptied), answered
by closing the connection (``bye``), or made to raise (``boom``: fails
closed, the connection is closed). Upstream chunks are counted.
"""

import proxywasm
from proxywasm import Action, PeerType, RootContext, StreamContext

CHUNKS = proxywasm.Counter("tcp_probe.chunks")
OPEN = proxywasm.Gauge("tcp_probe.open")


class Probe(StreamContext):
    def on_new_connection(self) -> Action:
        OPEN.increment(1)
        self.seen: list[bytes] = []
        return Action.CONTINUE

    def on_downstream_data(self, data_size: int, end_of_stream: bool) -> Action:
        CHUNKS.increment()
        data = self.get_downstream_data(0, data_size) or b""
        self.seen.append(data)
        word = data.split(b" ")[0] if data else b""
        if word == b"upper":
            self.set_downstream_data(data.upper())
        elif word == b"drop":
            self.set_downstream_data(b"")
        elif word == b"bye":
            self.close_downstream()
        elif word == b"boom":
            raise ValueError(f"boom after {len(self.seen)} chunks: {data[:8]!r}")
        return Action.CONTINUE

    def on_upstream_data(self, data_size: int, end_of_stream: bool) -> Action:
        CHUNKS.increment(2)
        return Action.CONTINUE

    def on_downstream_close(self, peer_type: PeerType) -> None:
        proxywasm.log_info(f"closed by {int(peer_type)} after {len(self.seen)} chunks")

    def on_done(self) -> bool:
        OPEN.increment(-1)
        return True


class Root(RootContext):
    def create_stream_context(self, context_id: int) -> StreamContext:
        return Probe(context_id, self)


proxywasm.set_root_context(Root)
