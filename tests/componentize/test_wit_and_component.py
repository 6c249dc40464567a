"""The WIT world generated from abi.toml, and the component reader."""

from __future__ import annotations

import re

import proxywasm_abi  # type: ignore[import-not-found]
import pytest
from proxywasm_compiler.backends.componentize.component import (
    CORE_FUNC,
    Alias,
    Lift,
    Lower,
    parse_component,
)
from proxywasm_compiler.backends.componentize.wit import kebab, record_layout, render_wit
from proxywasm_compiler.wasmbin import WasmFormatError

from .conftest import component


def test_every_host_function_is_an_import_and_every_callback_an_export() -> None:
    abi = proxywasm_abi.load()
    text = render_wit()
    imports = re.findall(r"^  import ([a-z0-9-]+):", text, re.MULTILINE)
    exports = re.findall(r"^  export ([a-z0-9-]+):", text, re.MULTILINE)
    assert imports == [kebab(f.name) for f in abi.proxy_imports]
    assert exports == [kebab(f.name) for f in abi.callbacks]
    assert "proxy-on-memory-allocate" not in text  # synthesised by the fuser


def test_signatures_follow_the_abi_types() -> None:
    text = render_wit()
    assert "  import proxy-log: func(log-level: u32, message: list<u8>) -> u32;" in text
    assert "  import proxy-increment-metric: func(metric-id: u32, delta: s64) -> u32;" in text
    assert "  import proxy-record-metric: func(metric-id: u32, value: u64) -> u32;" in text
    assert (
        "  export proxy-on-request-headers: func(stream-context-id: u32, num-headers: u32, "
        "end-of-stream: u32) -> u32;"
    ) in text
    assert "  export proxy-on-log: func(context-id: u32);" in text
    assert (
        "  record proxy-get-shared-data-result { status: u32, value: list<u8>, cas: u32 }" in text
    )


@pytest.mark.parametrize(
    ("name", "layout", "size"),
    [
        ("proxy_get_shared_data", [("status", 0), ("value", 4), ("cas", 12)], 16),
        ("proxy_get_current_time_nanoseconds", [("status", 0), ("time", 8)], 16),
        ("proxy_get_status", [("status", 0), ("status_code", 4), ("status_message", 8)], 16),
    ],
)
def test_record_layouts_are_the_canonical_abi(
    name: str, layout: list[tuple[str, int]], size: int
) -> None:
    fields, total, _align = record_layout(proxywasm_abi.load().function(name))
    assert [(f.name, f.offset) for f in fields] == layout
    assert total == size


def test_component_reader_follows_the_instantiation_graph() -> None:
    data = component(
        """
        (import "proxy-log" (func $log (param "l" u32) (param "m" (list u8)) (result u32)))
        (core func $low (canon lower (func $log) (memory $mem) (realloc $realloc)))
        (core instance $root (export "proxy-log" (func $low)))
        (core module $app
          (import "$root" "proxy-log" (func (param i32 i32 i32) (result i32)))
          (func (export "t") (param i32)))
        (core instance $app (instantiate $app (with "$root" (instance $root))))
        (func (export "proxy-on-tick") (param "id" u32) (canon lift (core func $app "t")))
        """
    )
    comp = parse_component(data)
    assert len(comp.modules) == 2
    libc, bag, app = comp.core_instances
    assert (libc.module, bag.module, app.module) == (0, None, 1)
    assert app.args == {"$root": 1}
    assert bag.items == {"proxy-log": (CORE_FUNC, 1)}
    funcs = comp.core[CORE_FUNC]
    assert funcs[0] == Alias(0, "cabi_realloc")
    lower = funcs[1]
    assert isinstance(lower, Lower) and lower.realloc == 0 and lower.memory == 0
    assert [name for name, _sort, _idx in comp.exports] == ["proxy-on-tick"]
    lift = comp.funcs[comp.exports[0][2]]
    assert isinstance(lift, Lift) and lift.post_return is None


def test_a_core_module_is_not_a_component() -> None:
    with pytest.raises(WasmFormatError, match="not a WebAssembly component"):
        parse_component(b"\0asm\x01\0\0\0")
