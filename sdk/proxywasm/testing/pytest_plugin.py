"""pytest plugin of proxy-wasm-python: the ``proxywasm_host`` fixture.

Installed with the package (entry point ``pytest11: proxywasm``), so every
test session of every user loads this module: it imports nothing but pytest
at load time. The emulator (and, for compiled modules, wasmtime) is imported
only when a test asks for a host.

>>> def test_adds_header(proxywasm_host):                     # doctest: +SKIP
...     host = proxywasm_host(Root, plugin_configuration={"value": "hi"})
...     ctx = host.initialize_http_context()
...     host.call_on_response_headers(ctx, [(":status", "200")])
...     assert ("x-hello", "hi") in host.get_current_response_headers(ctx)

``proxywasm_host(wasm="filter.wasm", ...)`` runs a compiled module instead
(:meth:`HostEmulator.from_wasm`), with the same test code afterwards.

When a test fails and a host it used logged errors (a filter's exception is
logged with its traceback, natively and compiled, as in Envoy), the report
gets a section ``filter errors`` with those entries: the assertion says
``PAUSE != CONTINUE``, the section says why.
"""

from __future__ import annotations

import sys
from collections.abc import Generator, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Callable
    from os import PathLike
    from types import ModuleType

    from ..dispatcher import RootFactory
    from .emulator import HostEmulator

__all__ = [
    "MAX_ERROR_ENTRIES",
    "BuildFactory",
    "HostFactory",
    "filter_errors",
    "proxywasm_build",
    "proxywasm_filter_host",
    "proxywasm_host",
]


def _error_logs(host: HostEmulator) -> str:
    from ..types import LogLevel

    entries = [
        f"[{level.name}] {message}"
        for level, message in host.get_all_logs()
        if level >= LogLevel.ERROR
    ]
    if not entries:
        return "no ERROR or CRITICAL log entries"
    return "ERROR / CRITICAL log entries:\n" + "\n".join(entries)


class HostFactory:
    """Makes started :class:`~proxywasm.testing.HostEmulator` instances for one test.

    The ``proxywasm_host`` fixture is an instance; every host it made is
    cleaned up when the test ends.
    """

    def __init__(self) -> None:
        #: Every host this factory made, in order.
        self.hosts: list[HostEmulator] = []

    def __call__(
        self,
        root: RootFactory | ModuleType | None = None,
        *,
        wasm: str | PathLike[str] | None = None,
        plugin_configuration: Any = None,
        start: bool = True,
        **kwargs: Any,
    ) -> HostEmulator:
        """A host running ``root`` natively, or the compiled module ``wasm``.

        ``root`` is a ``RootContext`` subclass or factory (``None``: what the
        filter registered with ``proxywasm.set_root_context``). ``wasm`` is the
        path of a compiled module, run under wasmtime; it excludes ``root``.
        ``plugin_configuration`` and ``**kwargs`` go to the emulator
        (``vm_configuration=``, ``root_id=``, ``properties=``, ...).

        With ``start`` (the default) ``start_vm()`` and ``start_plugin()``
        have run and returned ``True``; if either returns ``False`` the test
        fails with the error logs of the filter.
        """
        from .emulator import HostEmulator

        if wasm is not None:
            if root is not None:
                raise TypeError("proxywasm_host: pass either a root context or wasm=, not both")
            host = HostEmulator.from_wasm(
                str(wasm), plugin_configuration=plugin_configuration, **kwargs
            )
        else:
            host = HostEmulator(root, plugin_configuration=plugin_configuration, **kwargs)
        self.hosts.append(host)
        if start:
            what = f"compiled module {str(wasm)!r}" if wasm is not None else _describe(root)
            if not host.start_vm():
                pytest.fail(
                    f"proxywasm_host: start_vm() returned False for {what} "
                    f"(on_vm_start returned False, or the root context failed to start)\n"
                    + _error_logs(host),
                    pytrace=False,
                )
            if not host.start_plugin():
                pytest.fail(
                    f"proxywasm_host: start_plugin() returned False for {what} "
                    f"(on_configure returned False for plugin_configuration={plugin_configuration!r})\n"
                    + _error_logs(host),
                    pytrace=False,
                )
        return host

    def cleanup(self) -> None:
        """Release every host: close wasm instances, detach the native host state."""
        from .. import _nullhost, _state

        errors: list[BaseException] = []
        for host in reversed(self.hosts):
            vm = getattr(host, "_vm", None)
            for closer in (getattr(host, "close", None), getattr(vm, "close", None)):
                if callable(closer):
                    try:
                        closer()
                    except Exception as exc:  # noqa: BLE001 -- keep cleaning the others
                        errors.append(exc)
            if _nullhost.active is host:
                _nullhost.active = None
            if vm is not None and _state.vm is vm:
                _state.vm = None
        self.hosts.clear()
        if errors:
            raise errors[0]


def _describe(root: object) -> str:
    if root is None:
        return "the registered root context"
    name = getattr(root, "__qualname__", None)
    return str(name) if name else repr(root)


@pytest.fixture
def proxywasm_host() -> Iterator[HostFactory]:
    """Factory of started host emulators: ``host = proxywasm_host(Root, plugin_configuration=...)``.

    Returns a :class:`~proxywasm.testing.HostEmulator` on which ``start_vm()``
    and ``start_plugin()`` already returned ``True``; ``wasm="filter.wasm"``
    runs a compiled module under wasmtime instead. Every host made is cleaned
    up at teardown.
    """
    factory = HostFactory()
    try:
        yield factory
    finally:
        factory.cleanup()


class BuildFactory:
    """``proxywasm_build("filter.py") -> Path`` of the compiled module, built once per session."""

    def __init__(self, out_dir: PathLike[str] | str) -> None:
        from pathlib import Path

        self.out_dir = Path(out_dir)
        self.built: dict[tuple[str, int, str], Path] = {}

    def __call__(self, source: PathLike[str] | str, backend: str = "cpython") -> PathLike[str]:
        from pathlib import Path

        src = Path(source).resolve()
        key = (str(src), src.stat().st_mtime_ns, backend)
        if key not in self.built:
            import importlib

            # The compiler is a separate package of the distribution: imported
            # only when a test asks for a compiled module.
            build = importlib.import_module("proxywasm_compiler.build")
            out = self.out_dir / f"{len(self.built)}_{src.stem}_{backend}.wasm"
            try:
                build.build_filter(src, out, backend=backend)
            except build.BuildError as exc:
                # The CLI's wording: e.g. a host call at import time is a hint, not a backtrace.
                explain = importlib.import_module("proxywasm_compiler.cli").explain_build_error
                pytest.fail(
                    f"proxywasm build --backend {backend} {src} failed:\n{explain(str(exc))}",
                    pytrace=False,
                )
            self.built[key] = out
        return self.built[key]


@pytest.fixture(scope="session")
def proxywasm_build(tmp_path_factory: pytest.TempPathFactory) -> BuildFactory:
    """Compile a filter with ``proxywasm build`` once per test session: ``path = proxywasm_build("filter.py")``.

    Pair it with ``proxywasm_host(wasm=path)`` to run the same test against the
    compiled module. Builds take seconds: mark such tests ``slow``.
    """
    return BuildFactory(tmp_path_factory.mktemp("proxywasm-build"))


#: Test ids of the compiled variants, by backend ("wasm" stays the cpython id).
_BACKEND_IDS = {"cpython": "wasm", "compact": "compact", "componentize-py": "componentize"}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrise ``proxywasm_filter_host``: native, then each backend the module names.

    ``PROXYWASM_BACKENDS`` in the test module (default ``("cpython",)``) lists
    the backends that build its filter; compiled variants are in the slow tier.
    """
    if "proxywasm_filter_host" not in metafunc.fixturenames:
        return
    backends = getattr(metafunc.module, "PROXYWASM_BACKENDS", ("cpython",))
    unknown = [b for b in backends if b not in _BACKEND_IDS]
    if unknown:
        raise pytest.UsageError(
            f"{metafunc.module.__name__}: PROXYWASM_BACKENDS names unknown backends {unknown} "
            f"(known: {sorted(_BACKEND_IDS)})"
        )
    params = [pytest.param("native", id="native")] + [
        pytest.param(b, id=_BACKEND_IDS[b], marks=pytest.mark.slow) for b in backends
    ]
    metafunc.parametrize("proxywasm_filter_host", params, indirect=True)


@pytest.fixture
def proxywasm_filter_host(
    request: pytest.FixtureRequest, proxywasm_host: HostFactory
) -> Callable[..., HostEmulator]:
    """Run each test natively and compiled with each backend (slow tier). Returns a factory.

    The test module names its filter file, and optionally the backends that
    build it (default ``("cpython",)``; ``"compact"`` for typed filters)::

        PROXYWASM_FILTER = Path(__file__).parent / "filter.py"
        PROXYWASM_BACKENDS = ("cpython", "compact")

        def test_adds_header(proxywasm_filter_host):
            host = proxywasm_filter_host(plugin_configuration={"value": "hi"})
            ...

    Natively the file is imported with :func:`proxywasm.testing.load_filter`
    (its own root contexts, pdb works); compiled, it is built once per session
    with ``proxywasm build`` and run under wasmtime. Hosts come started, as
    from ``proxywasm_host``.
    """
    path = getattr(request.module, "PROXYWASM_FILTER", None)
    if path is None:
        pytest.fail(
            "proxywasm_filter_host: set PROXYWASM_FILTER = <path of filter.py> in the test module",
            pytrace=False,
        )
    if request.param == "native":
        from .loader import load_filter

        module = load_filter(path)
        return lambda **kwargs: proxywasm_host(module, **kwargs)
    wasm = request.getfixturevalue("proxywasm_build")(path, request.param)
    return lambda **kwargs: proxywasm_host(wasm=wasm, **kwargs)


#: At most this many error entries per host in the ``filter errors`` section (the last ones).
MAX_ERROR_ENTRIES = 10


def _hosts_of(item: pytest.Item, call: pytest.CallInfo[None]) -> list[HostEmulator]:
    """The hosts a failed test used: those its ``proxywasm_host`` made, and any
    ``HostEmulator`` in the locals of the failing frames (``HostEmulator.from_wasm(...)``
    called by the test itself)."""
    emulator = sys.modules.get("proxywasm.testing.emulator")
    if emulator is None:  # no test made a host in this session
        return []
    hosts: list[HostEmulator] = []
    factory = getattr(item, "funcargs", {}).get("proxywasm_host")
    if isinstance(factory, HostFactory):
        hosts.extend(factory.hosts)
    if call.excinfo is not None:
        for entry in call.excinfo.traceback:
            for value in entry.frame.f_locals.values():
                # hasattr: a host whose constructor raised (keep_finished=-1) has no logs yet
                if isinstance(value, emulator.HostEmulator) and hasattr(value, "logs"):
                    hosts.append(value)
    unique: list[HostEmulator] = []
    for host in hosts:
        if not any(host is seen for seen in unique):
            unique.append(host)
    return unique


def filter_errors(hosts: list[HostEmulator]) -> str:
    """The ERROR and CRITICAL log entries of ``hosts`` (a filter's exceptions, traps), or ``""``."""
    from ..types import LogLevel

    parts: list[str] = []
    for i, host in enumerate(hosts):
        entries = [(lvl, msg) for lvl, msg in host.get_all_logs() if lvl >= LogLevel.ERROR]
        if not entries:
            continue
        if len(hosts) > 1:
            parts.append(f"host {i + 1} of {len(hosts)}:")
        if len(entries) > MAX_ERROR_ENTRIES:
            parts.append(f"(the last {MAX_ERROR_ENTRIES} of {len(entries)} entries)")
            entries = entries[-MAX_ERROR_ENTRIES:]
        parts.extend(f"[{level.name}] {message.rstrip()}" for level, message in entries)
    return "\n".join(parts)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, Any, None]:
    """Add the ``filter errors`` section to the report of a failed test."""
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or not report.failed:
        return
    text = filter_errors(_hosts_of(item, call))
    if text:
        report.sections.append(("filter errors", text))


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``slow`` marker used for compiled-module and Envoy tests."""
    config.addinivalue_line(
        "markers", "slow: builds modules or starts Envoy (deselect with -m 'not slow')"
    )
