"""VM start, plugin configuration, context lifecycle, several plugins in one VM."""

from __future__ import annotations

from typing import ClassVar

import proxywasm
import pytest
from proxywasm import (
    Action,
    HostCallError,
    HttpContext,
    LogLevel,
    RootContext,
    Status,
    StreamContext,
)
from proxywasm.dispatcher import _registry
from proxywasm.testing import HostEmulator


class ConfigRoot(RootContext):
    seen: ClassVar[list[object]] = []

    def on_vm_start(self, vm_configuration_size: int) -> bool:
        ConfigRoot.seen.append(("vm_start", vm_configuration_size, self.get_vm_configuration()))
        return True

    def on_configure(self, plugin_configuration_size: int) -> bool:
        config = self.get_plugin_configuration()
        ConfigRoot.seen.append(("configure", plugin_configuration_size, config))
        return config != b"reject"


def test_vm_and_plugin_configuration_reach_the_root() -> None:
    ConfigRoot.seen = []
    host = HostEmulator(ConfigRoot, vm_configuration=b"vm-cfg", plugin_configuration={"x": 1})
    assert host.start_vm() and host.start_plugin()
    assert ConfigRoot.seen == [("vm_start", 6, b"vm-cfg"), ("configure", 8, b'{"x": 1}')]


def test_no_configuration_is_none() -> None:
    ConfigRoot.seen = []
    host = HostEmulator(ConfigRoot)
    assert host.start_vm() and host.start_plugin()
    assert ConfigRoot.seen == [("vm_start", 0, None), ("configure", 0, None)]


def test_plugin_configuration_only_in_on_configure_vm_configuration_always() -> None:
    # Envoy 1.40 (measured): the VM configuration is readable in any callback.
    seen: ClassVar[list[object]] = []

    class R(RootContext):
        def on_tick(self) -> None:
            seen.append((self.get_plugin_configuration(), self.get_vm_configuration()))

    host = HostEmulator(R, plugin_configuration="p", vm_configuration="v")
    host.start_vm()
    host.start_plugin()
    host.tick(host.root_context_id)
    assert seen == [(None, b"v")]


def test_on_configure_false_rejects_and_reconfigure() -> None:
    ConfigRoot.seen = []
    host = HostEmulator(ConfigRoot, plugin_configuration=b"reject")
    host.start_vm()
    assert host.start_plugin() is False
    assert host.configure(b"ok") is True
    assert ConfigRoot.seen[-1] == ("configure", 2, b"ok")


def test_on_vm_start_false() -> None:
    class R(RootContext):
        def on_vm_start(self, vm_configuration_size: int) -> bool:
            return False

    host = HostEmulator(R)
    assert host.start_vm() is False


def test_start_plugin_before_start_vm_is_an_error() -> None:
    host = HostEmulator(ConfigRoot)
    with pytest.raises(RuntimeError, match="start_vm"):
        host.start_plugin()
    with pytest.raises(RuntimeError):
        host.initialize_http_context()


class Tracking(HttpContext):
    def __init__(self, context_id: int, root: RootContext) -> None:
        super().__init__(context_id, root)
        self.events = root.events  # type: ignore[attr-defined]

    def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
        self.events.append("request_headers")
        return Action.CONTINUE

    def on_done(self) -> bool:
        self.events.append("done")
        return True

    def on_log(self) -> None:
        self.events.append(("log", self.get_http_request_header(":path")))

    def on_delete(self) -> None:
        self.events.append("delete")


class TrackingRoot(RootContext):
    def __init__(self, context_id: int) -> None:
        super().__init__(context_id)
        self.events: list[object] = []

    def create_http_context(self, context_id: int) -> HttpContext:
        self.events.append("create")
        return Tracking(context_id, self)


def tracking_host() -> tuple[HostEmulator, TrackingRoot]:
    roots: list[TrackingRoot] = []

    def factory(context_id: int) -> TrackingRoot:
        roots.append(TrackingRoot(context_id))
        return roots[-1]

    host = HostEmulator(factory)
    host.start_vm()
    host.start_plugin()
    return host, roots[0]


def test_done_log_delete_order() -> None:
    host, root = tracking_host()
    ctx = host.initialize_http_context()
    host.call_on_request_headers(ctx, [(":path", "/x")])
    host.complete_http_context(ctx)
    assert root.events == ["create", "request_headers", ("log", "/x"), "done", "delete"]
    assert host.get_http_stream(ctx).done


def test_context_is_made_lazily_on_its_first_callback() -> None:
    host, root = tracking_host()
    host.initialize_http_context()
    assert root.events == []


def test_stream_on_done_false_does_not_hold_the_stream() -> None:
    # Envoy ignores a stream context's on_done answer; proxy_done is for root contexts.
    errors: list[HostCallError] = []

    class Lingering(Tracking):
        def on_done(self) -> bool:
            self.events.append("done")
            try:
                self.done()
            except HostCallError as exc:
                errors.append(exc)
            return False

    class R(TrackingRoot):
        def create_http_context(self, context_id: int) -> HttpContext:
            return Lingering(context_id, self)

    roots: list[R] = []
    host = HostEmulator(lambda cid: roots.append(R(cid)) or roots[-1])
    host.start_vm()
    host.start_plugin()
    ctx = host.initialize_http_context()
    host.call_on_request_headers(ctx, [(":path", "/")])
    host.complete_http_context(ctx)
    assert roots[0].events[-3:] == [("log", "/"), "done", "delete"]
    assert len(errors) == 1 and errors[0].status == Status.NOT_FOUND


def test_root_on_done_false_then_done() -> None:
    events: list[str] = []

    class R(RootContext):
        def on_done(self) -> bool:
            events.append("done")
            self.set_tick_period_ms(10)  # finish later
            return False

        def on_tick(self) -> None:
            events.append("tick")
            self.done()

        def on_delete(self) -> None:
            events.append("delete")

    host = HostEmulator(R)
    host.start_vm()
    host.start_plugin()
    host.shutdown()
    assert events == ["done"]
    assert host.is_root_context_alive()
    host.tick()
    assert events == ["done", "tick", "delete"]  # on_delete once the done() callback returned
    assert not host.is_root_context_alive()


def test_root_on_done_true_deletes_at_once() -> None:
    events: list[str] = []

    class R(RootContext):
        def on_done(self) -> bool:
            events.append("done")
            return True

        def on_delete(self) -> None:
            events.append("delete")

    host = HostEmulator(R)
    host.start_vm()
    host.start_plugin()
    host.shutdown()
    assert events == ["done", "delete"]
    assert not host.is_root_context_alive()


def test_several_plugins_with_root_ids() -> None:
    class A(RootContext):
        def create_http_context(self, context_id: int) -> HttpContext:
            return Tag(context_id, self)

    class B(A):
        pass

    class Tag(HttpContext):
        def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
            self.set_http_request_header("x-root", type(self.root).__name__)
            return Action.CONTINUE

    saved = dict(_registry)
    _registry.clear()
    try:
        proxywasm.set_root_context(A, root_id="a")
        proxywasm.set_root_context(B, root_id="b")
        host = HostEmulator(root_id="a")
        assert host.start_vm() and host.start_plugin()
        b_root = host.add_plugin("b", plugin_configuration=b"cfg-b")
        ca = host.initialize_http_context()
        cb = host.initialize_http_context(b_root)
        host.call_on_request_headers(ca, [(":path", "/")])
        host.call_on_request_headers(cb, [(":path", "/")])
        assert ("x-root", "A") in host.get_current_request_headers(ca)
        assert ("x-root", "B") in host.get_current_request_headers(cb)

        unknown = HostEmulator(root_id="zzz")
        unknown.start_vm()
        assert any(
            "no root context registered for root_id 'zzz'" in m
            for m in unknown.get_logs(LogLevel.ERROR)
        )
    finally:
        _registry.clear()
        _registry.update(saved)


def test_default_registration_serves_any_root_id() -> None:
    class Any(RootContext):
        pass

    class Special(RootContext):
        def on_configure(self, plugin_configuration_size: int) -> bool:
            return False

    saved = dict(_registry)
    _registry.clear()
    try:
        proxywasm.set_root_context(Any)
        proxywasm.set_root_context(Special, root_id="special")
        host = HostEmulator(root_id="whatever")
        host.start_vm()
        assert host.start_plugin() is True
        with pytest.raises(RuntimeError, match="special"):
            host.add_plugin("special")
    finally:
        _registry.clear()
        _registry.update(saved)


def test_root_context_decorator_and_type_checks() -> None:
    saved = dict(_registry)
    _registry.clear()
    try:

        @proxywasm.root_context
        class R(RootContext):
            pass

        assert _registry == {None: R}
        with pytest.raises(TypeError, match="not a subclass"):
            proxywasm.set_root_context(StreamContext)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            proxywasm.set_root_context("Root")  # type: ignore[arg-type]
    finally:
        _registry.clear()
        _registry.update(saved)


def test_no_registration_is_logged() -> None:
    saved = dict(_registry)
    _registry.clear()
    try:
        host = HostEmulator()
        assert host.start_vm() is False
        (msg,) = host.get_logs(LogLevel.ERROR)
        assert "set_root_context" in msg
    finally:
        _registry.update(saved)
