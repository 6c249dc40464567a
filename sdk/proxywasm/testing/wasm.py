"""Run a compiled proxy-wasm module under wasmtime against a :class:`HostEmulator`.

The host imports are built from the ABI table (``abi-stubs/abi.toml``), not
written one by one: for each ``env.proxy_*`` function the table says which
parameters are input byte ranges, which are output pointers and how wide they
are, so one generic adapter reads wasm memory, calls the emulator's method of
the same name (the same code that serves native filters) and writes the
outputs back, allocating through the module's ``proxy_on_memory_allocate``.

It implements the host side of the ABI, so modules built by other SDKs run too.
"""

from __future__ import annotations

import atexit
import gc
import os
import struct
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..types import LogLevel, Status

if TYPE_CHECKING:
    from .abi_host import AbiHost

__all__ = ["DEFAULT_MEMORY_LIMIT", "WasmCallbacks", "WasmTrapError"]

_UNIMPLEMENTED = int(Status.UNIMPLEMENTED)

#: The WASI namespaces Envoy provides, with the same functions in each.
_WASI = ("wasi_snapshot_preview1", "wasi_unstable")


#: A VM's linear memory may grow to this many bytes: proxy-wasm-cpp-host's
#: default (``PROXY_WASM_HOST_MAX_WASM_MEMORY_SIZE_BYTES``, 1 GiB), which Envoy uses.
DEFAULT_MEMORY_LIMIT = 1 << 30


class WasmTrapError(RuntimeError):
    """The module trapped: the VM is gone, as it is to Envoy after a crash.

    The one error type for every way a module can die: a wasm trap
    (``unreachable``, an out-of-bounds access, a native stack overflow,
    ``abort``), WASI ``proc_exit`` (``os._exit``) and a failed allocation of
    host data in the module. The host then applies its ``failure_policy``.
    """


def _abi() -> Any:
    import proxywasm_abi  # type: ignore[import-not-found]  # installed beside the SDK

    return proxywasm_abi.load()


_ENGINE: Any = None
_MODULES: dict[tuple[str, int, int], Any] = {}


def _engine() -> Any:
    """One wasmtime engine per process; Cranelift without optimisation compiles
    a CPython-sized module about 1.5x faster, and tests care about that more."""
    global _ENGINE
    if _ENGINE is None:
        import wasmtime

        config = wasmtime.Config()
        config.cranelift_opt_level = "none"
        _ENGINE = wasmtime.Engine(config)
        atexit.register(_release)
    return _ENGINE


def _release() -> None:
    """Free the cached modules and the engine while wasmtime is still importable:
    left to interpreter shutdown, their finalizers run after wasmtime's own
    globals are gone and print ``TypeError: 'NoneType' object is not callable``."""
    global _ENGINE
    for module in _MODULES.values():
        module.close()
    _MODULES.clear()
    gc.collect()  # hosts that are garbage by now release their stores first
    if _ENGINE is not None:
        _ENGINE.close()
        _ENGINE = None
    # Objects still referenced (hosts kept in module globals) are finalised during
    # interpreter shutdown, after wasmtime's globals: the process is ending and the
    # OS frees their memory, so their finalizers have nothing left to do.
    try:
        from wasmtime._managed import Managed
    except ImportError:  # a wasmtime without that base class: nothing to quiet
        return
    Managed.__del__ = lambda self: None  # type: ignore[method-assign]


def _compiled(engine: Any, path: Path) -> Any:
    """Compile a module once per process (keyed by path, size and mtime)."""
    import wasmtime

    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    module = _MODULES.get(key)
    if module is None:
        try:
            module = wasmtime.Module.from_file(engine, str(path))
        except wasmtime.WasmtimeError as exc:
            raise ValueError(f"{path} is not a valid WebAssembly module: {exc}") from None
        _MODULES[key] = module
    return module


class _Adapter:
    """Turns one host function of the table into a wasmtime host function."""

    def __init__(self, fn: Any, owner: WasmCallbacks) -> None:
        self.fn = fn
        self.owner = owner
        self.method: Callable[..., Any] = getattr(owner.host, fn.name)
        # Plan the parameters once: (kind, wasm positions, width).
        # Inputs: (kind, wasm positions, mask). wasmtime hands i32/i64 over as
        # signed ints; unsigned C types are masked back, int64_t stays signed.
        self.inputs: list[tuple[str, tuple[int, ...], int]] = []
        index = {p.name: i for i, p in enumerate(fn.params)}
        for p in fn.py_inputs():
            first = p.c_params[0]
            if first.wasm_type == "i32":
                mask = 0xFFFFFFFF
            elif first.c_type.startswith("int64_t"):
                mask = 0
            else:
                mask = 0xFFFFFFFFFFFFFFFF
            self.inputs.append((p.kind, tuple(index[c.name] for c in p.c_params), mask))
        self.outputs: list[tuple[str, tuple[int, ...], int]] = []
        for p in fn.py_outputs():
            width = 8 if p.c_params[0].c_type.startswith(("uint64_t", "int64_t")) else 4
            self.outputs.append((p.kind, tuple(index[c.name] for c in p.c_params), width))

    def __call__(self, caller: Any, *args: int) -> int:
        owner = self.owner
        mem = owner.memory(caller)
        call_args: list[Any] = []
        for kind, pos, mask in self.inputs:
            if kind == "bytes":
                ptr, size = args[pos[0]] & 0xFFFFFFFF, args[pos[1]] & 0xFFFFFFFF
                call_args.append(bytes(mem.read(caller, ptr, ptr + size)) if size else b"")
            else:
                call_args.append(args[pos[0]] & mask if mask else args[pos[0]])
        result = self.method(*call_args)
        if not self.outputs:
            return int(result)
        status, *values = result
        if status != 0:
            return int(status)
        for (kind, pos, width), value in zip(self.outputs, values):
            if kind == "bytes":
                data = bytes(value)
                ptr = owner.allocate(caller, len(data)) if data else 0
                if data:
                    mem.write(caller, data, ptr)
                mem.write(caller, struct.pack("<I", ptr), args[pos[0]] & 0xFFFFFFFF)
                mem.write(caller, struct.pack("<I", len(data)), args[pos[1]] & 0xFFFFFFFF)
            else:
                fmt = "<Q" if width == 8 else "<I"
                mem.write(
                    caller,
                    struct.pack(fmt, value & (0xFFFFFFFFFFFFFFFF if width == 8 else 0xFFFFFFFF)),
                    args[pos[0]] & 0xFFFFFFFF,
                )
        return 0


class WasmCallbacks:
    """The ``proxy_on_*`` exports of a module, callable like a native Dispatcher."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        host: AbiHost,
        *,
        memory_limit: int = DEFAULT_MEMORY_LIMIT,
    ) -> None:
        import wasmtime

        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"no wasm module at {self.path}")
        self.host = host
        self._wt = wasmtime
        self.engine = _engine()
        self.store = wasmtime.Store(self.engine)
        if memory_limit <= 0:
            raise ValueError(f"memory_limit must be a positive number of bytes, not {memory_limit}")
        # Past the limit memory.grow fails (-1), as in Envoy: CPython then raises MemoryError.
        self.store.set_limits(memory_size=memory_limit)
        self.module = _compiled(self.engine, self.path)
        wasi = wasmtime.WasiConfig()
        self.store.set_wasi(wasi)
        linker = wasmtime.Linker(self.engine)
        linker.define_wasi()
        linker.allow_shadowing = True
        table = {f.name: f for f in _abi().proxy_imports}
        self.unimplemented: list[str] = []
        for imp in self.module.imports:
            ty = imp.type
            if not isinstance(ty, wasmtime.FuncType):
                continue
            name = imp.name or ""
            if imp.module == "env" and name in table:
                adapter = _Adapter(table[name], self)
                linker.define_func("env", name, ty, adapter, access_caller=True)
            elif imp.module in _WASI and name == "fd_write":
                linker.define_func(imp.module, name, ty, self._fd_write, access_caller=True)
            elif imp.module == "wasi_unstable":
                # Envoy (proxy-wasm-cpp-host) serves the same WASI functions under both
                # names; older SDKs (AssemblyScript's) import the older one.
                self._alias_wasi(linker, name)
            elif imp.module == "env":
                # Not in ABI v0.2.1 (an older or newer ABI function): answer UNIMPLEMENTED.
                self.unimplemented.append(name)
                linker.define_func("env", name, ty, self._unimplemented(name, ty))
        self._stdio: dict[int, bytes] = {1: b"", 2: b""}
        try:
            self.instance = linker.instantiate(self.store, self.module)
        except wasmtime.WasmtimeError as exc:
            raise ValueError(f"cannot instantiate {self.path}: {exc}") from None
        exports = self.instance.exports(self.store)
        self._exports: dict[str, Any] = {}
        for name in ("proxy_on_memory_allocate", "malloc", "memory", "_initialize", "_start"):
            try:
                self._exports[name] = exports[name]
            except KeyError:
                pass
        self._exports_view = exports
        if not any(self._has(f"proxy_abi_version_{v}") for v in ("0_2_1", "0_2_0", "0_1_0")):
            raise ValueError(
                f"{self.path} exports no proxy_abi_version_* function: not a proxy-wasm module"
            )
        self._alloc = self._exports.get("proxy_on_memory_allocate") or self._exports.get("malloc")
        if self._alloc is None:
            raise ValueError(f"{self.path} exports neither proxy_on_memory_allocate nor malloc")
        init = self._exports.get("_initialize") or self._exports.get("_start")
        if init is not None:
            self._call(init)

    # -- plumbing -----------------------------------------------------------------------

    def _alias_wasi(self, linker: Any, name: str) -> None:
        """Serve ``wasi_unstable::name`` with wasmtime's ``wasi_snapshot_preview1::name``.

        A name wasmtime does not define stays undefined, so instantiation
        names the missing import as it would for any other.
        """
        try:
            func = linker.get(self.store, "wasi_snapshot_preview1", name)
        except self._wt.WasmtimeError:
            return
        linker.define(self.store, "wasi_unstable", name, func)

    def _has(self, name: str) -> bool:
        try:
            self._exports_view[name]
            return True
        except KeyError:
            return False

    def memory(self, caller: Any) -> Any:
        mem = caller.get("memory") if caller is not None else None
        return mem if mem is not None else self._exports["memory"]

    def allocate(self, caller: Any, size: int) -> int:
        assert self._alloc is not None
        ptr = int(self._alloc(caller, size))
        if ptr == 0:
            raise WasmTrapError(f"the module could not allocate {size} bytes")
        return ptr

    def _unimplemented(self, name: str, ty: Any) -> Callable[..., Any]:
        results = list(ty.results)

        def stub(*_args: Any) -> Any:
            self.host.logs.append(
                (LogLevel.WARN, f"{name}: not part of ABI v0.2.1, answered UNIMPLEMENTED")
            )
            if not results:
                return None
            return _UNIMPLEMENTED

        return stub

    def _fd_write(self, caller: Any, fd: int, iovs: int, iovs_len: int, nwritten: int) -> int:
        mem = self.memory(caller)
        raw = bytes(mem.read(caller, iovs, iovs + 8 * iovs_len))
        data = b""
        for i in range(iovs_len):
            ptr, size = struct.unpack_from("<II", raw, 8 * i)
            data += bytes(mem.read(caller, ptr, ptr + size)) if size else b""
        mem.write(caller, struct.pack("<I", len(data)), nwritten)
        if fd not in (1, 2):
            return 8  # EBADF, as Envoy
        # As Envoy: stdout lines become INFO entries, stderr lines ERROR.
        buf = self._stdio[fd] + data
        *lines, rest = buf.split(b"\n")
        self._stdio[fd] = rest
        level = LogLevel.INFO if fd == 1 else LogLevel.ERROR
        for line in lines:
            self.host.proxy_log(int(level), line)
        return 0

    def _call(self, func: Any, *args: int) -> Any:
        try:
            return func(self.store, *args)
        except self._wt.Trap as exc:
            raise WasmTrapError(f"{self.path.name} trapped: {exc}") from None
        except self._wt.ExitTrap as exc:  # WASI proc_exit: the VM is gone, as a crash is to Envoy
            raise WasmTrapError(f"{self.path.name} called proc_exit({exc.code})") from None
        except self._wt.WasmtimeError as exc:  # e.g. proc_exit with a status WASI refuses (abort)
            first = str(exc).strip().splitlines()
            cause = first[-1].strip() if first else "unknown error"
            raise WasmTrapError(f"{self.path.name} failed: {cause}") from None

    # -- the callbacks -------------------------------------------------------------------

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if not name.startswith("proxy_on_"):
            raise AttributeError(name)
        try:
            func = self._exports_view[name]
        except KeyError:
            func = None

        def call(*args: int) -> Any:
            if func is None:  # the module does not handle this callback
                return 0
            return self._call(func, *[a & 0xFFFFFFFF if isinstance(a, int) else a for a in args])

        self.__dict__[name] = call
        return call
