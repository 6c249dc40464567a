"""Helpers of the componentize backend's tests: small components written in WAT.

``wasmtime.wat2wasm`` parses the component text format too, so each test
writes the component it needs (a few core modules wired like componentize-py
wires its own) and fuses it in milliseconds; no componentize-py needed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import wasmtime
from proxywasm_compiler.backends.componentize.fuse import FuseResult, fuse
from proxywasm_compiler.backends.componentize.host import (
    ProxyWasmHost,
    abi_exports,
    callback_export_name,
)

#: The "libc" of the test components: memory, stack pointer, a bump allocator, a
#: `free` that only records its calls.
LIBC = """
  (core module $libc
    (memory (export "memory") 1)
    (global (export "__stack_pointer") (mut i32) (i32.const 8192))
    (global $heap (mut i32) (i32.const 16384))
    (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
      (local $p i32)
      global.get $heap
      local.set $p
      global.get $heap
      local.get 3
      i32.add
      i32.const 7
      i32.add
      i32.const -8
      i32.and
      global.set $heap
      local.get $p)
    ;; free() records its last argument at 4096 and counts calls at 4100
    (func (export "free") (param i32)
      i32.const 4096
      local.get 0
      i32.store
      i32.const 4100
      i32.const 4100
      i32.load
      i32.const 1
      i32.add
      i32.store))
  (core instance $libc (instantiate $libc))
  (alias core export $libc "memory" (core memory $mem))
  (alias core export $libc "cabi_realloc" (core func $realloc))
"""


def component(body: str) -> bytes:
    """A component: LIBC, then `body` (WAT component fields)."""
    return bytes(wasmtime.wat2wasm(f"(component {LIBC} {body})"))


def fuse_proxy(data: bytes) -> FuseResult:
    """Fuse with the proxy-wasm host (the backend's own configuration)."""
    host = ProxyWasmHost()
    return fuse(data, host, exports=callback_export_name, extra_exports=abi_exports(host))


@pytest.fixture
def write_fused(tmp_path: Path) -> Callable[[bytes], Path]:
    """Fuse a component and write the module; returns its path."""

    def write(data: bytes) -> Path:
        out = tmp_path / "fused.wasm"
        out.write_bytes(fuse_proxy(data).wasm)
        return out

    return write


def instantiate(
    wasm: bytes, funcs: dict[tuple[str, str], tuple[wasmtime.FuncType, Callable[..., Any]]]
) -> tuple[wasmtime.Store, wasmtime.Instance]:
    """Instantiate a core module with the given host functions (caller access on)."""
    engine = wasmtime.Engine()
    store = wasmtime.Store(engine)
    linker = wasmtime.Linker(engine)
    for (mod, name), (ty, fn) in funcs.items():
        linker.define_func(mod, name, ty, fn, access_caller=True)
    module = wasmtime.Module(engine, wasm)
    return store, linker.instantiate(store, module)


I32 = wasmtime.ValType.i32()
I64 = wasmtime.ValType.i64()
