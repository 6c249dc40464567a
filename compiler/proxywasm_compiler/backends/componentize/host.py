"""How the fused module provides the component's host functions.

Three families, all derived from data, none needing a component-model host:

* **proxy-wasm ABI** (world-level imports of the WIT world of :mod:`.wit`): a
  function without outputs lowers to exactly the ABI's core signature, so it
  becomes the import ``env.proxy_*`` itself. A function with outputs lowers
  to ``(inputs..., retptr)``; a synthesised shim zeroes the result record,
  calls ``env.proxy_*`` with pointers into the record for each ``return_*``
  parameter and stores the status in the record's first field.
* **WASI 0.2** (the interfaces wasi-libc's p2 build imports), served by the
  WASI preview 1 functions Envoy provides (``fd_write``, ``clock_time_get``,
  ``random_get``, ``proc_exit``): stdout/stderr streams write with
  ``fd_write`` (Envoy turns stdout lines into INFO logs, stderr into ERROR),
  clocks and random come from the host. Handles are fixed small integers
  (stdin 3, stdout 1, stderr 2, pollables 4): nothing is ever allocated, so
  dropping a handle is a no-op. The environment, arguments and preopened
  directories are empty; there are no terminals.
* everything else (filesystem, sockets, ``poll``...) traps with
  ``unreachable``: Envoy has no such thing. :attr:`FuseResult.trapping` lists them.
"""

from __future__ import annotations

from typing import Any

from ...wasmbin import VT_I32, VT_I64, sleb, uleb
from .core import FuncType
from .fuse import FuseError, Host, HostFunc, Linker, Target
from .wit import kebab, record_layout

__all__ = ["WASI_P1", "ProxyWasmHost"]

WASI_P1 = "wasi_snapshot_preview1"
I32, I64 = VT_I32, VT_I64

_FD_WRITE = FuncType((I32, I32, I32, I32), (I32,))
_CLOCK_TIME_GET = FuncType((I32, I64, I32), (I32,))
_RANDOM_GET = FuncType((I32, I32), (I32,))
_PROC_EXIT = FuncType((I32,), ())

STDIN, STDOUT, STDERR, POLLABLE = 3, 1, 2, 4


def _abi() -> Any:
    import proxywasm_abi  # type: ignore[import-not-found]  # installed beside the compiler

    return proxywasm_abi.load()


# --- a few instructions ----------------------------------------------------------


def lget(i: int) -> bytes:
    """local.get"""
    return b"\x20" + uleb(i)


def lset(i: int) -> bytes:
    """local.set"""
    return b"\x21" + uleb(i)


def i32c(v: int) -> bytes:
    """i32.const"""
    return b"\x41" + sleb(v)


def i64c(v: int) -> bytes:
    """i64.const"""
    return b"\x42" + sleb(v)


def call(f: int) -> bytes:
    """call"""
    return b"\x10" + uleb(f)


def st32(off: int) -> bytes:
    """i32.store (align 4)"""
    return b"\x36\x02" + uleb(off)


def st64(off: int) -> bytes:
    """i64.store (align 8)"""
    return b"\x37\x03" + uleb(off)


def st8(off: int) -> bytes:
    """i32.store8"""
    return b"\x3a\x00" + uleb(off)


def ld64(off: int) -> bytes:
    """i64.load (align 8)"""
    return b"\x29\x03" + uleb(off)


END = b"\x0b"
DROP = b"\x1a"
I32_ADD, I32_SUB = b"\x6a", b"\x6b"
UNREACHABLE = b"\x00"


def _stack_frame(link: Linker, size: int, local: int) -> tuple[bytes, bytes]:
    """Allocate `size` bytes on the shadow stack (pointer in `local`); and free them."""
    sp = uleb(link.exported_global("__stack_pointer"))
    enter = b"\x23" + sp + i32c(size) + I32_SUB + b"\x22" + uleb(local) + b"\x24" + sp
    leave = lget(local) + i32c(size) + I32_ADD + b"\x24" + sp
    return enter, leave


# --- the proxy-wasm ABI ----------------------------------------------------------------


def _abi_type(fn: Any) -> FuncType:
    vt = {"i32": I32, "i64": I64}
    return FuncType(
        tuple(vt[p.wasm_type] for p in fn.params), tuple(vt[p.wasm_type] for p in fn.results)
    )


def _list_pointers(fn: Any) -> list[int]:
    """Lowered parameter positions of the pointers of `fn`'s ``list<u8>`` inputs."""
    out: list[int] = []
    k = 0
    for p in fn.py_inputs():
        if p.kind == "bytes":
            out.append(k)
        k += len(p.c_params)
    return out


def _free_lists(fn: Any, link: Linker, free_lists: bool) -> bytes:
    """``free(ptr)`` for each list input (see :attr:`ProxyWasmHost.free_list_params`)."""
    pointers = _list_pointers(fn)
    if not free_lists or not pointers:
        return b""
    free = link.exported_func("free")
    return b"".join(lget(k) + call(free) for k in pointers)


def _freeing_import(fn: Any, ty: FuncType) -> HostFunc:
    """``env.<fn>`` called as is, then its list inputs freed; returns the status."""
    n = len(ty.params)

    def body(link: Linker) -> bytes:
        code = b"".join(lget(i) for i in range(n)) + call(link.imported("env", fn.name))
        return code + lset(n) + _free_lists(fn, link, True) + lget(n) + END

    return HostFunc(ty, body=body, locals=((1, I32),), needs=(("env", fn.name, ty),))


def _record_shim(fn: Any, lowered: FuncType, free_lists: bool = False) -> HostFunc:
    """``(inputs..., retptr) -> ()`` calling ``env.<fn>`` with pointers into the record."""
    fields, size, _align = record_layout(fn)
    retptr = len(lowered.params) - 1
    offsets = {f.name: f.offset for f in fields}
    # Each ABI parameter: an input (its position among the lowered parameters)
    # or an output pointer (an offset in the record).
    arg_code: dict[str, bytes] = {}
    k = 0
    for p in fn.py_inputs():
        for c in p.c_params:
            arg_code[c.name] = lget(k)
            k += 1
    if k != retptr:
        raise FuseError(f"{fn.name}: lowered signature {lowered} does not match the ABI")
    for out in fn.py_outputs():
        off = offsets[out.name]
        for j, c in enumerate(out.c_params):
            arg_code[c.name] = lget(retptr) + i32c(off + 4 * j) + I32_ADD
    target = _abi_type(fn)

    def body(link: Linker) -> bytes:
        code = bytearray()
        for word in range(4, size, 4):  # outputs read as zero when the status is not OK
            code += lget(retptr) + i32c(0) + st32(word)
        code += lget(retptr)
        for p in fn.params:
            code += arg_code[p.name]
        code += call(link.imported("env", fn.name)) + st32(0)
        return bytes(code + _free_lists(fn, link, free_lists) + END)

    return HostFunc(lowered, body=body, needs=(("env", fn.name, target),))


# --- WASI 0.2 --------------------------------------------------------------------------


def _const_body(ty: FuncType, value: int | None) -> HostFunc:
    code = b"" if value is None else (i64c(value) if ty.results[0] == I64 else i32c(value))
    return HostFunc(ty, body=lambda _link: code + END)


def _store_bytes(ty: FuncType, stores: bytes) -> HostFunc:
    """A function of one parameter, a return pointer, that stores constants there."""
    return HostFunc(ty, body=lambda _link: stores + END)


def _write(ty: FuncType) -> HostFunc:
    """``output-stream.write`` / ``blocking-write-and-flush`` (self, ptr, len, retptr)."""

    def body(link: Linker) -> bytes:
        enter, leave = _stack_frame(link, 16, 4)
        return (
            enter
            + lget(4) + lget(1) + st32(0)  # iovec.buf
            + lget(4) + lget(2) + st32(4)  # iovec.len
            + lget(0) + lget(4) + i32c(1) + lget(4) + i32c(8) + I32_ADD
            + call(link.imported(WASI_P1, "fd_write")) + DROP
            + leave
            + lget(3) + i32c(0) + st8(0)  # result: ok
            + END
        )  # fmt: skip

    return HostFunc(ty, body=body, locals=((1, I32),), needs=((WASI_P1, "fd_write", _FD_WRITE),))


def _monotonic_now(ty: FuncType) -> HostFunc:
    def body(link: Linker) -> bytes:
        enter, leave = _stack_frame(link, 16, 0)
        return (
            enter
            + i32c(1) + i64c(1) + lget(0) + call(link.imported(WASI_P1, "clock_time_get")) + DROP
            + lget(0) + ld64(0) + lset(1)
            + leave + lget(1) + END
        )  # fmt: skip

    return HostFunc(
        ty,
        body=body,
        locals=((1, I32), (1, I64)),
        needs=((WASI_P1, "clock_time_get", _CLOCK_TIME_GET),),
    )


def _wall_now(ty: FuncType) -> HostFunc:
    """``wall-clock.now(retptr)``: datetime {seconds: u64, nanoseconds: u32}."""

    def body(link: Linker) -> bytes:
        return (
            i32c(0) + i64c(1) + lget(0) + call(link.imported(WASI_P1, "clock_time_get")) + DROP
            + lget(0) + ld64(0) + lset(1)
            + lget(0) + lget(1) + i64c(1_000_000_000) + b"\x80" + st64(0)  # i64.div_u
            + lget(0) + lget(1) + i64c(1_000_000_000) + b"\x82" + b"\xa7" + st32(8)  # rem_u, wrap
            + END
        )  # fmt: skip

    return HostFunc(
        ty, body=body, locals=((1, I64),), needs=((WASI_P1, "clock_time_get", _CLOCK_TIME_GET),)
    )


def _random_bytes(ty: FuncType, realloc: Target | None) -> HostFunc:
    """``get-random-bytes(len: u64, retptr) -> list<u8>``, allocated with the lowering's realloc."""
    if realloc is None:
        raise FuseError("get-random-bytes is lowered without a realloc")

    def body(link: Linker) -> bytes:
        return (
            lget(0) + b"\xa7" + lset(2)  # len as i32
            + i32c(0) + i32c(0) + i32c(1) + lget(2) + call(link.func(realloc)) + lset(3)
            + lget(3) + lget(2) + call(link.imported(WASI_P1, "random_get")) + DROP
            + lget(1) + lget(3) + st32(0) + lget(1) + lget(2) + st32(4) + END
        )  # fmt: skip

    return HostFunc(
        ty, body=body, locals=((2, I32),), needs=((WASI_P1, "random_get", _RANDOM_GET),)
    )


def _exit(ty: FuncType) -> HostFunc:
    def body(link: Linker) -> bytes:
        # result<_, _>: 0 is ok -> exit status 0, anything else -> 1.
        return lget(0) + b"\x45\x45" + call(link.imported(WASI_P1, "proc_exit")) + END

    return HostFunc(ty, body=body, needs=((WASI_P1, "proc_exit", _PROC_EXIT),))


def _trap(ty: FuncType) -> HostFunc:
    return HostFunc(ty, body=lambda _link: UNREACHABLE + END, traps=True)


def _empty_list(ty: FuncType) -> HostFunc:
    return _store_bytes(ty, lget(0) + i32c(0) + st32(0) + lget(0) + i32c(0) + st32(4))


def _ok(ty: FuncType) -> HostFunc:
    """Store ``ok`` (discriminant 0) at the return pointer (the last parameter)."""
    return HostFunc(ty, body=lambda _link: lget(len(ty.params) - 1) + i32c(0) + st8(0) + END)


class ProxyWasmHost(Host):
    """The host of a proxy-wasm module: the ABI's ``env`` functions and WASI preview 1."""

    def __init__(self) -> None:
        abi = _abi()
        self.world = {kebab(f.name): f for f in abi.proxy_imports}
        #: The realloc the proxy-wasm shims' lowerings use (for proxy_on_memory_allocate).
        self.realloc: Target | None = None
        #: Free each ``list<u8>`` argument after the host call. componentize-py 0.25's
        #: runtime lowers a ``bytes`` argument into a ``malloc``ed copy
        #: (``maybe_pop_list``) that nothing frees: ~10 kB leaked per 10 kB header set.
        self.free_list_params = True

    def provide(self, target: Target, ty: FuncType) -> HostFunc:
        """See :meth:`.fuse.Host.provide`."""
        if target.kind == "builtin":
            if target.name == "resource.drop" and ty == FuncType((I32,), ()):
                return HostFunc(ty, body=lambda _link: END)
            raise FuseError(f"unsupported canonical builtin {target.name} {ty}")
        if not target.interface:
            return self._world(target, ty)
        return self._wasi(target, ty)

    def _world(self, target: Target, ty: FuncType) -> HostFunc:
        fn = self.world.get(target.name)
        if fn is None:
            raise FuseError(f"the component imports {target.name!r}, which the ABI does not have")
        if target.realloc is not None and self.realloc is None:
            self.realloc = target.realloc
        if not fn.py_outputs():
            if ty != _abi_type(fn):
                raise FuseError(f"{target.name}: lowered as {ty}, the ABI says {_abi_type(fn)}")
            if self.free_list_params and _list_pointers(fn):
                return _freeing_import(fn, ty)
            return HostFunc(ty, import_=("env", fn.name))
        return _record_shim(fn, ty, self.free_list_params)

    def _wasi(self, target: Target, ty: FuncType) -> HostFunc:
        iface = target.interface.split("@", 1)[0]
        name = target.name
        if iface == "wasi:cli/stdout" and name == "get-stdout":
            return _const_body(ty, STDOUT)
        if iface == "wasi:cli/stderr" and name == "get-stderr":
            return _const_body(ty, STDERR)
        if iface == "wasi:cli/stdin" and name == "get-stdin":
            return _const_body(ty, STDIN)
        if iface == "wasi:io/streams":
            if name in (
                "[method]output-stream.write",
                "[method]output-stream.blocking-write-and-flush",
            ):
                return _write(ty)
            if name == "[method]output-stream.check-write":
                # ok(n): discriminant at 0, the u64 at 8; Envoy takes any size.
                return _store_bytes(
                    ty, lget(1) + i32c(0) + st8(0) + lget(1) + i64c(1 << 16) + st64(8)
                )
            if name == "[method]output-stream.blocking-flush":
                return _ok(ty)
            if name.endswith(".subscribe"):
                return _const_body(ty, POLLABLE)
        if iface == "wasi:io/poll" and name == "[method]pollable.block":
            return HostFunc(ty, body=lambda _link: END)
        if iface == "wasi:clocks/monotonic-clock":
            if name == "now":
                return _monotonic_now(ty)
            if name == "resolution":
                return _const_body(ty, 1)
            if name.startswith("subscribe-"):
                return _const_body(ty, POLLABLE)
        if iface == "wasi:clocks/wall-clock":
            if name == "now":
                return _wall_now(ty)
            if name == "resolution":
                return _store_bytes(ty, lget(0) + i64c(0) + st64(0) + lget(0) + i32c(1) + st32(8))
        if iface == "wasi:random/random" and name == "get-random-bytes":
            return _random_bytes(ty, target.realloc)
        if iface == "wasi:cli/environment" and name in ("get-environment", "get-arguments"):
            return _empty_list(ty)
        if iface == "wasi:filesystem/preopens" and name == "get-directories":
            return _empty_list(ty)
        if iface.startswith("wasi:cli/terminal-") and name.startswith("get-terminal-"):
            return _store_bytes(ty, lget(0) + i32c(0) + st8(0))  # option::none
        if iface == "wasi:cli/exit" and name == "exit":
            return _exit(ty)
        return _trap(ty)


def callback_export_name(name: str) -> str | None:
    """Component export ``proxy-on-vm-start`` -> module export ``proxy_on_vm_start``."""
    if name.startswith("proxy-on-"):
        return name.replace("-", "_")
    return None


def abi_exports(host: ProxyWasmHost) -> Any:
    """The synthesised exports: the ABI version marker and ``proxy_on_memory_allocate``."""

    def extra(link: Linker) -> list[tuple[str, FuncType, bytes]]:
        alloc = (
            link.func(host.realloc)
            if host.realloc is not None
            else link.exported_func("cabi_realloc")
        )
        return [
            ("proxy_abi_version_0_2_1", FuncType((), ()), END),
            (
                "proxy_on_memory_allocate",
                FuncType((I32,), (I32,)),
                i32c(0) + i32c(0) + i32c(8) + lget(0) + call(alloc) + END,
            ),
        ]

    return extra
