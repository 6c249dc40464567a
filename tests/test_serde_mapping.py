"""Headers given as a mapping are serialised by their items, never by their keys.

``serialize_map({"ab": "x"})`` used to iterate the dict (its keys) and unpack
the key ``"ab"`` into the header ``a: b``. Every place the SDK takes headers
goes through ``serialize_map``; these tests drive each of them with a dict.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any, ClassVar

import pytest
from proxywasm import Action, HttpContext
from proxywasm._serde import deserialize_map, serialize_map
from proxywasm.testing import HostEmulator


def test_a_dict_is_serialised_by_its_items() -> None:
    assert deserialize_map(serialize_map({"ab": "x"})) == [(b"ab", b"x")]
    assert deserialize_map(serialize_map({"ab": "x", "cd": b"y"})) == [(b"ab", b"x"), (b"cd", b"y")]
    assert deserialize_map(serialize_map({b"k": b"v"})) == [(b"k", b"v")]
    assert deserialize_map(serialize_map({})) == []


def test_any_mapping_is_accepted() -> None:
    assert deserialize_map(serialize_map(MappingProxyType({"ab": "x"}))) == [(b"ab", b"x")]


def test_pairs_still_work_as_tuples_or_lists() -> None:
    assert deserialize_map(serialize_map([("ab", "x"), ["cd", "y"]])) == [
        (b"ab", b"x"),
        (b"cd", b"y"),
    ]
    assert deserialize_map(serialize_map(p for p in [("a", "1")])) == [(b"a", b"1")]


@pytest.mark.parametrize("bad", ["ab", b"ab", ["ab"], [b"ab"], [("a", "b", "c")], [("a",)], [1]])
def test_what_is_not_a_pair_is_a_type_error(bad: Any) -> None:
    with pytest.raises(TypeError, match="pair"):
        serialize_map(bad)


def test_a_value_that_is_not_text_is_still_a_type_error() -> None:
    with pytest.raises(TypeError, match="header value"):
        serialize_map({"a": 1})


class Everything(HttpContext):
    """Passes a dict to each SDK call that takes headers."""

    seen: ClassVar[list[object]] = []

    def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
        self.set_http_request_headers({":path": "/replaced", "ab": "x"})
        self.dispatch_http_call(
            "cluster", {":method": "GET", ":path": "/auth", ":authority": "auth"}, b"", {"tr": "t"}
        )
        self.dispatch_grpc_call("grpc", "svc", "Method", {"md": "1"}, b"msg")
        return Action.PAUSE

    def on_http_call_response(
        self, token_id: int, num_headers: int, body_size: int, num_trailers: int
    ) -> None:
        self.send_http_response(403, {"x-why": "dict"}, b"no")

    def on_http_response_headers(self, num_headers: int, end_of_stream: bool) -> Action:
        self.set_http_response_headers({":status": "403", "x-why": "dict", "cd": "y"})
        return Action.CONTINUE


def test_every_sdk_entry_point_takes_a_dict() -> None:
    host = HostEmulator.for_http_context(Everything)
    ctx = host.initialize_http_context()
    assert (
        host.call_on_request_headers(ctx, {":path": "/", "x-in": "dict"}, end_of_stream=True)
        == Action.PAUSE
    )
    assert host.get_current_request_headers(ctx) == [(":path", "/replaced"), ("ab", "x")]
    (call,) = host.get_http_call_attributes()
    assert call.headers == [(":method", "GET"), (":path", "/auth"), (":authority", "auth")]
    assert call.trailers == [("tr", "t")]
    (grpc,) = host.get_grpc_call_attributes()
    assert grpc.initial_metadata == [("md", "1")]
    host.call_on_http_call_response(call.token, {":status": "200"})
    reply = host.get_sent_local_response(ctx)
    assert reply is not None and reply.status_code == 403
    assert ("x-why", "dict") in reply.headers
    assert ("cd", "y") in reply.headers  # the response callback's set_http_response_headers(dict)


def test_the_emulator_takes_a_mapping_and_refuses_a_bare_string() -> None:
    host = HostEmulator.for_http_context(HttpContext)
    ctx = host.initialize_http_context()
    host.call_on_request_headers(ctx, MappingProxyType({"ab": "x"}))
    assert host.get_current_request_headers(ctx) == [("ab", "x")]
    with pytest.raises(TypeError):
        host.call_on_request_headers(ctx, "ab")  # type: ignore[arg-type]
