"""Wire formats against fixed bytes written from the ABI spec, not from our own encoder.

The SDK and the null runtime share ``proxywasm._serde`` natively, so a bug
that is symmetric (both byte orders flipped, the NULs dropped on both sides)
round-trips and every other test passes. These tests pin the bytes
themselves, in both directions, natively and through a wasm module's memory.

The header map, from the ABI spec (proxy-wasm ABI v0.2.1, "Header maps"):
a little-endian u32 count, then per pair a u32 key length and a u32 value
length, then each key and each value followed by one NUL byte.
Property paths: the segments joined by NUL bytes, with no trailing NUL.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import wasmtime
from proxywasm import Action, LogLevel, hostcalls
from proxywasm._serde import MapSerializationError, deserialize_map, serialize_map
from proxywasm.testing import HostEmulator
from proxywasm.testing.abi_host import encode_property

PAIRS = [(":path", "/a"), ("x-k", "")]
# Written by hand from the spec: count 2; sizes (5, 2) and (3, 0); then the strings.
GOLDEN = (
    b"\x02\x00\x00\x00"
    b"\x05\x00\x00\x00\x02\x00\x00\x00"
    b"\x03\x00\x00\x00\x00\x00\x00\x00"
    b":path\x00/a\x00"
    b"x-k\x00\x00"
)
# The map the WAT module below writes: one pair ("set", "1").
GOLDEN_SET = b"\x01\x00\x00\x00\x03\x00\x00\x00\x01\x00\x00\x00set\x001\x00"
# One pair, had the count been written big-endian.
BIG_ENDIAN_ONE = b"\x00\x00\x00\x01" + b"\x00\x00\x00\x01\x00\x00\x00\x01" + b"a\x00b\x00"


def test_serialize_map_matches_the_spec_bytes() -> None:
    assert serialize_map(PAIRS) == GOLDEN
    assert serialize_map([]) == b"\x00\x00\x00\x00"


def test_deserialize_map_reads_the_spec_bytes() -> None:
    assert deserialize_map(GOLDEN) == [(b":path", b"/a"), (b"x-k", b"")]
    assert deserialize_map(b"") == []
    assert deserialize_map(b"\x00") == []


def test_deserialize_map_reads_counts_little_endian() -> None:
    # Read big-endian, this is one pair; little-endian it declares 16 M pairs.
    with pytest.raises(MapSerializationError, match="declares 16777216 pairs"):
        deserialize_map(BIG_ENDIAN_ONE)


def test_property_path_is_nul_joined() -> None:
    assert hostcalls._path("request.headers") == b"request\x00headers"
    assert hostcalls._path(("a", "b.c")) == b"a\x00b.c"


def test_property_values_are_encoded_as_envoy_does() -> None:
    assert encode_property(7) == b"\x07\x00\x00\x00\x00\x00\x00\x00"
    assert encode_property(-1) == b"\xff" * 8
    assert encode_property(True) == b"\x01"
    assert encode_property("v") == b"v"


# -- through a wasm module's memory --------------------------------------------------------------


def _wat_bytes(data: bytes) -> str:
    return "".join(f"\\{b:02x}" for b in data)


#: A module with no SDK: on request headers it logs the raw bytes the host
#: wrote into its memory for the request map, then replaces the request map
#: with GOLDEN_SET from its data segment.
WAT = f"""
(module
  (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))
  (import "env" "proxy_get_header_map_pairs" (func $get (param i32 i32 i32) (result i32)))
  (import "env" "proxy_set_header_map_pairs" (func $set (param i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (global $heap (mut i32) (i32.const 8192))
  (data (i32.const 1024) "{_wat_bytes(GOLDEN_SET)}")
  (func (export "malloc") (param $n i32) (result i32) (local $p i32)
    global.get $heap
    local.set $p
    global.get $heap
    local.get $n
    i32.add
    global.set $heap
    local.get $p)
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) i32.const 1)
  (func (export "proxy_on_configure") (param i32 i32) (result i32) i32.const 1)
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (drop (call $get (i32.const 0) (i32.const 16) (i32.const 20)))
    (drop (call $log (i32.const 2) (i32.load (i32.const 16)) (i32.load (i32.const 20))))
    (drop (call $set (i32.const 0) (i32.const 1024) (i32.const {len(GOLDEN_SET)})))
    i32.const 0)
  (func (export "proxy_on_done") (param i32) (result i32) i32.const 1)
  (func (export "proxy_on_log") (param i32))
  (func (export "proxy_on_delete") (param i32)))
"""


@pytest.fixture(scope="module")
def golden_module(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("golden") / "golden.wasm"
    path.write_bytes(wasmtime.wat2wasm(WAT))
    return path


def test_the_wasm_host_writes_and_reads_spec_bytes(golden_module: Path) -> None:
    host = HostEmulator.from_wasm(str(golden_module))
    assert host.start_vm() and host.start_plugin()
    ctx = host.initialize_http_context()
    action = host.call_on_request_headers(ctx, PAIRS, end_of_stream=True)
    assert action == Action.CONTINUE
    # What the host wrote into the module's memory, byte for byte.
    (logged,) = host.get_logs(LogLevel.INFO)
    assert logged.encode("utf-8", "surrogateescape") == GOLDEN
    # What the host read back from the module's data segment.
    assert host.get_current_request_headers(ctx) == [("set", "1")]
