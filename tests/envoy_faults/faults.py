"""A filter that fails on demand: the subject of the fault suite (tests/test_envoy_faults.py).

HTTP (root id ``""``, fail closed): the request header ``x-fault`` names the
fault, ``x-fault-in`` the callback it happens in (default
``request_headers``). Faults:

- ``value``: ``raise ValueError("deny")``;
- ``keyboard``: ``raise KeyboardInterrupt``; ``base``: a ``BaseException``
  subclass of the filter's own; ``exit``: ``raise SystemExit(3)``;
  ``generator_exit``: ``raise GeneratorExit``;
- ``memory``: fill the heap until ``MemoryError``, then ``raise ValueError("deny")``;
- ``recursion``: unbounded recursion (``RecursionError``);
- ``escape``: an exception that escapes the dispatcher itself (its re-raise
  switch, natively meant for pdb, is turned on): the compiled glue's last
  resort must fail closed on its own;
- traps, which kill the VM: ``os_exit`` (``os._exit(3)``), ``abort``
  (``os.abort()``), ``stack`` (a native stack overflow: ``repr`` of a deeply
  nested list after ``sys.setrecursionlimit``).

Callbacks: ``request_headers``, ``request_body``, ``request_trailers``,
``response_headers``, ``response_body``, ``response_trailers``, ``log``,
``callout`` (the answer of a callout to cluster ``upstream``), ``tick`` (the
next timer tick of this VM's root), ``queue`` (the root's ``on_queue_ready``
after this request enqueues an item).

TCP (root id ``"tcp"``): a connection whose first bytes contain ``tcp-fault``
raises in ``on_downstream_data``; fail closed closes the connection.

``/ok`` (or no ``x-fault``) passes through and adds ``x-faults: ok`` to the response.
"""

import os
import sys

import proxywasm
from proxywasm import Action, HttpContext, RootContext, StreamContext, _state

QUEUE = "faults"


class FilterAbort(BaseException):
    """A filter's own BaseException subclass: not an Exception, must still fail closed."""


def fill_heap() -> None:
    """Allocate until the heap is full, then fail with an ordinary exception."""
    chunks = []
    try:
        while True:
            chunks.append(bytearray(1 << 20))
    except MemoryError:
        raise ValueError("deny") from None


def recurse(n: int) -> int:
    """No base case: RecursionError."""
    return recurse(n + 1) + 1


def deep_repr() -> str:
    """A native stack overflow: repr() of a deep list recurses in C, not Python."""
    sys.setrecursionlimit(10**7)
    nested: list[object] = []
    for _ in range(200_000):
        nested = [nested]
    return repr(nested)


def fail(kind: str) -> None:
    """Raise (or trap) as ``kind`` says."""
    if kind == "value":
        raise ValueError("deny")
    if kind == "keyboard":
        raise KeyboardInterrupt
    if kind == "base":
        raise FilterAbort("filter's own BaseException")
    if kind == "exit":
        raise SystemExit(3)
    if kind == "generator_exit":
        raise GeneratorExit
    if kind == "memory":
        fill_heap()
    if kind == "recursion":
        recurse(0)
    if kind == "escape":
        vm = _state.vm
        if vm is not None:
            vm.reraise = True  # reset by the next on_log
        raise KeyboardInterrupt("escapes the dispatcher")
    if kind == "os_exit":
        os._exit(3)
    if kind == "abort":
        os.abort()
    if kind == "stack":
        deep_repr()
    raise LookupError(f"unknown fault {kind!r}")


class Faults(HttpContext):
    """Fails where the request asks."""

    root: "Root"

    def __init__(self, context_id: int, root: "Root") -> None:
        super().__init__(context_id, root)
        self.fault = ""
        self.where = ""

    def _maybe(self, where: str) -> None:
        if self.fault and self.where == where:
            fail(self.fault)

    def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
        self.fault = self.get_http_request_header("x-fault") or ""
        self.where = self.get_http_request_header("x-fault-in") or "request_headers"
        if self.fault and self.where == "callout":
            self.dispatch_http_call(
                "upstream",
                [(":method", "GET"), (":path", "/callout"), (":authority", "upstream")],
                timeout_ms=5000,
            )
            return Action.PAUSE
        if self.fault and self.where == "tick":
            self.root.tick_fault = self.fault
        if self.fault and self.where == "queue":
            self.enqueue_shared_queue(self.root.queue_id, self.fault)
        self._maybe("request_headers")
        return Action.CONTINUE

    def on_http_request_body(self, body_size: int, end_of_stream: bool) -> Action:
        self._maybe("request_body")
        return Action.CONTINUE

    def on_http_request_trailers(self, num_trailers: int) -> Action:
        self._maybe("request_trailers")
        return Action.CONTINUE

    def on_http_response_headers(self, num_headers: int, end_of_stream: bool) -> Action:
        self.set_http_response_header("x-faults", "ok")
        self._maybe("response_headers")
        return Action.CONTINUE

    def on_http_response_body(self, body_size: int, end_of_stream: bool) -> Action:
        self._maybe("response_body")
        return Action.CONTINUE

    def on_http_response_trailers(self, num_trailers: int) -> Action:
        self._maybe("response_trailers")
        return Action.CONTINUE

    def on_http_call_response(
        self, token_id: int, num_headers: int, body_size: int, num_trailers: int
    ) -> None:
        self._maybe("callout")
        self.resume_http_request()

    def on_log(self) -> None:
        vm = _state.vm
        if vm is not None:
            vm.reraise = False  # undo an "escape" fault
        self._maybe("log")


class Root(RootContext):
    """Ticks every 100 ms; a tick or a queue item fails when a request asked for it."""

    tick_fault = ""
    queue_id = 0

    def on_configure(self, plugin_configuration_size: int) -> bool:
        self.queue_id = self.register_shared_queue(QUEUE)
        self.set_tick_period_ms(100)
        return True

    def on_tick(self) -> None:
        fault, self.tick_fault = self.tick_fault, ""
        if fault:
            fail(fault)

    def on_queue_ready(self, queue_id: int) -> None:
        item = self.dequeue_shared_queue(queue_id)
        if item:
            fail(item.decode())

    def create_http_context(self, context_id: int) -> HttpContext:
        return Faults(context_id, self)


class TcpFaults(StreamContext):
    """Raises on the first downstream bytes that contain ``tcp-fault``."""

    def on_downstream_data(self, data_size: int, end_of_stream: bool) -> Action:
        data = self.get_downstream_data(0, min(data_size, 4096)) or b""
        if b"tcp-fault" in data:
            raise ValueError("tcp fault")
        return Action.CONTINUE


class TcpRoot(RootContext):
    """The network filter's root."""

    def create_stream_context(self, context_id: int) -> StreamContext:
        return TcpFaults(context_id, self)


proxywasm.set_root_context(Root)
proxywasm.set_root_context(TcpRoot, root_id="tcp")
