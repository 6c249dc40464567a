"""The WASI subset Envoy's proxy-wasm host provides, for wasmtime at build time.

Envoy (proxy-wasm-cpp-host) gives a module only a handful of WASI preview1
functions; our modules may import nothing else (see ``link.ENVOY_WASI_IMPORTS``).
This host implements exactly that set over ``wasmtime.Linker`` so that
pre-initialisation and the toolchain tests run the module the way Envoy
would: ``fd_write`` (fds 1 and 2 are captured), ``clock_time_get``,
``random_get``, empty ``environ_*`` and ``args_*``, and ``proc_exit`` (raises
:class:`ProcExit`).  Imports from ``env`` (proxy-wasm host functions) are
defined as traps unless the caller defines them first.
"""

from __future__ import annotations

import os
import struct
import time
from collections.abc import Callable
from typing import ClassVar

import wasmtime

WASI = "wasi_snapshot_preview1"
_I32 = wasmtime.ValType.i32()
_I64 = wasmtime.ValType.i64()

_EBADF = 8
_EINVAL = 28


class ProcExit(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(f"proc_exit({code})")
        self.code = code


class EnvoyWasi:
    """Build-time stand-in for Envoy's WASI functions; collects what fds 1-2 get."""

    def __init__(
        self,
        *,
        environ: dict[str, str] | None = None,
        args: list[str] | None = None,
        echo: bool = False,
    ) -> None:
        self.output: dict[int, bytearray] = {1: bytearray(), 2: bytearray()}
        self.environ = dict(environ or {})
        self.args = list(args or [])
        self.echo = echo

    @property
    def stdout(self) -> str:
        return self.output[1].decode("utf-8", "replace")

    @property
    def stderr(self) -> str:
        return self.output[2].decode("utf-8", "replace")

    # -- helpers ---------------------------------------------------------------

    @staticmethod
    def _mem(caller: wasmtime.Caller) -> wasmtime.Memory:
        mem = caller.get("memory")
        if not isinstance(mem, wasmtime.Memory):
            raise wasmtime.WasmtimeError("module exports no memory")
        return mem

    def _write_strings(
        self, caller: wasmtime.Caller, items: list[bytes], ptrs: int, buf: int
    ) -> int:
        mem = self._mem(caller)
        for i, item in enumerate(items):
            mem.write(caller, struct.pack("<I", buf), ptrs + 4 * i)
            mem.write(caller, item + b"\0", buf)
            buf += len(item) + 1
        return 0

    def _sizes(
        self, caller: wasmtime.Caller, items: list[bytes], count_ptr: int, size_ptr: int
    ) -> int:
        mem = self._mem(caller)
        mem.write(caller, struct.pack("<I", len(items)), count_ptr)
        mem.write(caller, struct.pack("<I", sum(len(i) + 1 for i in items)), size_ptr)
        return 0

    def _env_items(self) -> list[bytes]:
        return [f"{k}={v}".encode() for k, v in self.environ.items()]

    # -- the functions -----------------------------------------------------------

    def fd_write(
        self, caller: wasmtime.Caller, fd: int, iovs: int, iovs_len: int, nwritten: int
    ) -> int:
        if fd not in self.output:
            return _EBADF
        mem = self._mem(caller)
        total = 0
        for i in range(iovs_len):
            ptr, length = struct.unpack("<II", mem.read(caller, iovs + 8 * i, iovs + 8 * i + 8))
            data = bytes(mem.read(caller, ptr, ptr + length))
            self.output[fd] += data
            if self.echo:
                os.write(fd, data)
            total += length
        mem.write(caller, struct.pack("<I", total), nwritten)
        return 0

    def clock_time_get(
        self, caller: wasmtime.Caller, clock_id: int, precision: int, out: int
    ) -> int:
        if clock_id == 0:
            now = time.time_ns()
        elif clock_id in (1, 2, 3):
            now = time.monotonic_ns()
        else:
            return _EINVAL
        self._mem(caller).write(caller, struct.pack("<Q", now), out)
        return 0

    def random_get(self, caller: wasmtime.Caller, buf: int, length: int) -> int:
        self._mem(caller).write(caller, os.urandom(length), buf)
        return 0

    def environ_get(self, caller: wasmtime.Caller, ptrs: int, buf: int) -> int:
        return self._write_strings(caller, self._env_items(), ptrs, buf)

    def environ_sizes_get(self, caller: wasmtime.Caller, count: int, size: int) -> int:
        return self._sizes(caller, self._env_items(), count, size)

    def args_get(self, caller: wasmtime.Caller, ptrs: int, buf: int) -> int:
        return self._write_strings(caller, [a.encode() for a in self.args], ptrs, buf)

    def args_sizes_get(self, caller: wasmtime.Caller, count: int, size: int) -> int:
        return self._sizes(caller, [a.encode() for a in self.args], count, size)

    def proc_exit(self, code: int) -> None:
        raise ProcExit(code)

    _SIGNATURES: ClassVar[
        dict[str, tuple[list[wasmtime.ValType], list[wasmtime.ValType], bool]]
    ] = {
        "fd_write": ([_I32] * 4, [_I32], True),
        "clock_time_get": ([_I32, _I64, _I32], [_I32], True),
        "random_get": ([_I32, _I32], [_I32], True),
        "environ_get": ([_I32, _I32], [_I32], True),
        "environ_sizes_get": ([_I32, _I32], [_I32], True),
        "args_get": ([_I32, _I32], [_I32], True),
        "args_sizes_get": ([_I32, _I32], [_I32], True),
        "proc_exit": ([_I32], [], False),
    }

    def define(self, linker: wasmtime.Linker, module: wasmtime.Module | None = None) -> None:
        """Define the Envoy WASI set in linker; with module, make every other import a trap."""
        for name, (params, results, caller) in self._SIGNATURES.items():
            fn: Callable[..., object] = getattr(self, name)
            linker.define_func(
                WASI, name, wasmtime.FuncType(params, results), fn, access_caller=caller
            )
        if module is not None:
            linker.define_unknown_imports_as_traps(module)


def instantiate(
    engine: wasmtime.Engine,
    module: wasmtime.Module,
    host: EnvoyWasi | None = None,
) -> tuple[wasmtime.Store, wasmtime.Instance, EnvoyWasi]:
    """Instantiate module the way Envoy would see it (no start function is called)."""
    host = host or EnvoyWasi()
    store = wasmtime.Store(engine)
    linker = wasmtime.Linker(engine)
    linker.allow_shadowing = True
    host.define(linker, module)
    return store, linker.instantiate(store, module), host
