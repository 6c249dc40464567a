"""Host properties: Envoy's well-known attributes, filter state, test-provided values."""

from __future__ import annotations

from collections.abc import Callable

import proxywasm
import pytest
from proxywasm import Action, HttpContext, RootContext
from proxywasm.testing import HostEmulator

REQUEST = [
    (":method", "PUT"),
    (":path", "/items/7?full=1"),
    (":authority", "shop.example"),
    (":scheme", "https"),
]


def in_request(
    fn: Callable[[HttpContext], object], **kwargs: object
) -> tuple[object, HostEmulator, int]:
    out: list[object] = []

    class F(HttpContext):
        def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
            out.append(fn(self))
            return Action.CONTINUE

    class R(RootContext):
        def create_http_context(self, context_id: int) -> HttpContext:
            return F(context_id, self)

    host = HostEmulator(R, **kwargs)  # type: ignore[arg-type]
    host.start_vm()
    host.start_plugin()
    ctx = host.initialize_http_context()
    host.call_on_request_headers(ctx, REQUEST)
    return out[0], host, ctx


def test_request_attributes_follow_the_headers() -> None:
    def fn(f: HttpContext) -> object:
        return {
            p: f.get_property_str(p)
            for p in (
                "request.path",
                "request.url_path",
                "request.query",
                "request.method",
                "request.host",
                "request.scheme",
            )
        }

    got, _, _ = in_request(fn)
    assert got == {
        "request.path": "/items/7?full=1",
        "request.url_path": "/items/7",
        "request.query": "full=1",
        "request.method": "PUT",
        "request.host": "shop.example",
        "request.scheme": "https",
    }


def test_path_as_a_list_of_segments() -> None:
    got, _, _ = in_request(lambda f: f.get_property(["request", "path"]))
    assert got == b"/items/7?full=1"


def test_missing_property_is_none() -> None:
    got, _, _ = in_request(
        lambda f: (f.get_property("no.such.thing"), f.get_property_str("request.id"))
    )
    assert got == (None, None)


def test_plugin_root_id_and_vm_id() -> None:
    got, _, _ = in_request(
        lambda f: (f.get_property_str("plugin_root_id"), f.get_property_str("plugin_vm_id")),
        root_id="my_root",
        vm_id="vm1",
    )
    assert got == ("my_root", "vm1")


def test_test_provided_properties_with_int_and_bool_encoding() -> None:
    props = {"node.id": "sidecar~1", "upstream.port": 8443, "connection.mtls": True}

    def fn(f: HttpContext) -> object:
        return (
            f.get_property_str("node.id"),
            f.get_property("upstream.port"),
            f.get_property_int("upstream.port"),
            f.get_property("connection.mtls"),
        )

    got, _, _ = in_request(fn, properties=props)
    assert got == ("sidecar~1", (8443).to_bytes(8, "little"), 8443, b"\x01")


def test_negative_int_property_round_trips() -> None:
    got, _, _ = in_request(lambda f: f.get_property_int("x.offset"), properties={"x.offset": -5})
    assert got == -5


def test_host_set_property_after_construction() -> None:
    class F(HttpContext):
        def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
            self.set_http_request_header(
                "x-region", self.get_property_str("node.metadata.region") or "?"
            )
            return Action.CONTINUE

    host = HostEmulator.for_http_context(F)
    host.set_property("node.metadata.region", "eu-west")
    ctx = host.initialize_http_context()
    host.call_on_request_headers(ctx, REQUEST)
    assert ("x-region", "eu-west") in host.get_current_request_headers(ctx)


def test_set_property_is_per_stream() -> None:
    seen: list[object] = []

    class F(HttpContext):
        def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
            seen.append(self.get_property("filter.state"))
            self.set_property("filter.state", f"ctx-{self.context_id}")
            return Action.CONTINUE

        def on_http_response_headers(self, num_headers: int, end_of_stream: bool) -> Action:
            seen.append(self.get_property_str("filter.state"))
            return Action.CONTINUE

    host = HostEmulator.for_http_context(F)
    a = host.initialize_http_context()
    b = host.initialize_http_context()
    host.call_on_request_headers(a, REQUEST)
    host.call_on_request_headers(b, REQUEST)
    host.call_on_response_headers(a, [(":status", "200")])
    host.call_on_response_headers(b, [(":status", "200")])
    assert seen == [None, None, f"ctx-{a}", f"ctx-{b}"]


def test_response_code_is_an_int_property() -> None:
    got: list[object] = []

    class F(HttpContext):
        def on_http_response_headers(self, num_headers: int, end_of_stream: bool) -> Action:
            got.append(self.get_property_int("response.code"))
            return Action.CONTINUE

    host = HostEmulator.for_http_context(F)
    ctx = host.initialize_http_context()
    host.call_on_request_headers(ctx, REQUEST)
    host.call_on_response_headers(ctx, [(":status", "404")])
    assert got == [404]


def test_module_level_get_property() -> None:
    got, _, _ = in_request(lambda f: proxywasm.get_property("request.method"))
    assert got == b"PUT"


def test_root_context_sees_plugin_root_id_of_its_plugin() -> None:
    seen: list[object] = []

    class R(RootContext):
        def on_configure(self, plugin_configuration_size: int) -> bool:
            seen.append(self.get_property_str("plugin_root_id"))
            return True

    host = HostEmulator(R, root_id="first")
    host.start_vm()
    host.start_plugin()
    host.add_plugin("second")
    assert seen == ["first", "second"]


def test_bad_property_path_type() -> None:
    def fn(f: HttpContext) -> object:
        with pytest.raises(TypeError):
            f.get_property(42)  # type: ignore[arg-type]
        return True

    got, _, _ = in_request(fn)
    assert got is True
