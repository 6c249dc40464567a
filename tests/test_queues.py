"""Shared queues: register, resolve, enqueue, dequeue, on_queue_ready."""

from __future__ import annotations

import pytest
from proxywasm import Action, HostCallError, HttpContext, RootContext
from proxywasm.testing import HostEmulator


class Root(RootContext):
    def __init__(self, context_id: int) -> None:
        super().__init__(context_id)
        self.queue_id = 0
        self.events: list[object] = []

    def on_configure(self, plugin_configuration_size: int) -> bool:
        self.queue_id = self.register_shared_queue("jobs")
        return True

    def on_queue_ready(self, queue_id: int) -> None:
        self.events.append(("ready", queue_id))
        while (item := self.dequeue_shared_queue(queue_id)) is not None:
            self.events.append(("item", item))
        self.events.append(("empty", self.dequeue_shared_queue(queue_id)))

    def create_http_context(self, context_id: int) -> HttpContext:
        return Producer(context_id, self)


class Producer(HttpContext):
    def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
        root = self.root
        assert isinstance(root, Root)
        queue_id = self.resolve_shared_queue("", "jobs")
        root.events.append(("resolved", queue_id))
        assert queue_id is not None
        self.enqueue_shared_queue(queue_id, b"job-1")
        self.enqueue_shared_queue(queue_id, "job-2")
        root.events.append("enqueued")
        return Action.CONTINUE


def start() -> tuple[HostEmulator, Root]:
    roots: list[Root] = []

    def factory(context_id: int) -> Root:
        roots.append(Root(context_id))
        return roots[-1]

    host = HostEmulator(factory, raise_callback_errors=True)
    assert host.start_vm() and host.start_plugin()
    return host, roots[0]


def test_register_resolve_enqueue_dequeue() -> None:
    host, root = start()
    ctx = host.initialize_http_context()
    host.call_on_request_headers(ctx, [(":path", "/")])
    q = root.queue_id
    assert q > 0
    # on_queue_ready runs after the enqueuing callback returned, once per item.
    assert root.events == [
        ("resolved", q),
        "enqueued",
        ("ready", q),
        ("item", b"job-1"),
        ("item", b"job-2"),
        ("empty", None),
        ("ready", q),
        ("empty", None),
    ]
    assert host.get_queue_items("jobs") == []


def test_register_twice_returns_the_same_queue() -> None:
    host, root = start()
    with host.in_context():
        assert root.register_shared_queue("jobs") == root.queue_id
        assert root.register_shared_queue("other") != root.queue_id


def test_resolve_unknown_queue_is_none() -> None:
    host, root = start()
    with host.in_context():
        assert root.resolve_shared_queue("", "nope") is None
        assert root.resolve_shared_queue("other-vm", "jobs") is None


def test_enqueue_to_an_unknown_queue_raises() -> None:
    host, root = start()
    with host.in_context(), pytest.raises(HostCallError, match="proxy_enqueue_shared_queue"):
        root.enqueue_shared_queue(9999, b"x")


def test_dequeue_empty_is_none() -> None:
    host, root = start()
    with host.in_context():
        assert root.dequeue_shared_queue(root.queue_id) is None


def test_enqueue_from_the_test_wakes_the_owner() -> None:
    host, root = start()
    host.enqueue_shared_queue("jobs", b"from-outside")
    assert root.events == [("ready", root.queue_id), ("item", b"from-outside"), ("empty", None)]


def test_items_wait_when_on_queue_ready_does_not_dequeue() -> None:
    class Lazy(RootContext):
        def on_configure(self, plugin_configuration_size: int) -> bool:
            self.register_shared_queue("q")
            return True

    host = HostEmulator(Lazy, raise_callback_errors=True)
    host.start_vm()
    host.start_plugin()
    host.enqueue_shared_queue("q", b"a")
    host.enqueue_shared_queue("q", b"b")
    assert host.get_queue_items("q") == [b"a", b"b"]
    with pytest.raises(KeyError):
        host.get_queue_items("missing")


def test_queue_of_another_vm_id() -> None:
    host = HostEmulator(Root, vm_id="vm-a", raise_callback_errors=True)
    host.start_vm()
    host.start_plugin()
    ids: list[int | None] = []

    class Probe(RootContext):
        pass

    with host.in_context():
        ids.append(Probe(0).resolve_shared_queue("vm-a", "jobs"))
        ids.append(Probe(0).resolve_shared_queue("", "jobs"))  # "" means this VM
        ids.append(Probe(0).resolve_shared_queue("vm-b", "jobs"))
    assert ids[0] is not None and ids[0] == ids[1] and ids[2] is None
