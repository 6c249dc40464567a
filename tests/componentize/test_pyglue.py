"""The generated Python glue: ``_proxywasm`` over the WIT bindings, and the app module."""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass
from typing import Any

import proxywasm
import proxywasm_abi  # type: ignore[import-not-found]
import pytest
from proxywasm_compiler.backends.componentize.pyglue import render_app, render_host_module


def _run(source: str, filename: str, ns: dict[str, Any]) -> None:
    """Execute generated source (the code under test) in `ns`."""
    exec(compile(source, filename, "exec"), ns)  # noqa: S102


@dataclass
class _Record:
    status: int
    value: bytes = b""
    cas: int = 0


def _fake_bindings(calls: list[tuple[Any, ...]]) -> types.ModuleType:
    mod = types.ModuleType("wit_world")

    def proxy_log(level: int, message: bytes) -> int:
        calls.append(("log", level, message))
        return 0

    def proxy_get_shared_data(key: bytes) -> _Record:
        calls.append(("get", key))
        return _Record(0, b"v", 7)

    def proxy_increment_metric(metric_id: int, delta: int) -> int:
        calls.append(("inc", metric_id, delta))
        return 0

    mod.proxy_log = proxy_log  # type: ignore[attr-defined]
    mod.proxy_get_shared_data = proxy_get_shared_data  # type: ignore[attr-defined]
    mod.proxy_increment_metric = proxy_increment_metric  # type: ignore[attr-defined]
    mod.WitWorld = type("WitWorld", (), {})  # type: ignore[attr-defined]
    return mod


def test_host_module_has_the_stub_signatures(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[Any, ...]] = []
    monkeypatch.setitem(sys.modules, "wit_world", _fake_bindings(calls))
    ns: dict[str, Any] = {}
    _run(render_host_module(), "_proxywasm.py", ns)
    names = {f.name for f in proxywasm_abi.load().proxy_imports}
    assert names <= set(ns)
    assert ns["proxy_log"](2, b"hi") == 0
    # outputs: (status, *outputs), in the stub's order
    assert ns["proxy_get_shared_data"](b"k") == (0, b"v", 7)
    # u32 inputs are masked like the C glue does; s64 stays signed
    ns["proxy_log"](-1, b"")
    ns["proxy_increment_metric"](2**32 + 5, -3)
    assert calls[-2:] == [("log", 0xFFFFFFFF, b""), ("inc", 5, -3)]


class _Vm:
    def proxy_on_vm_start(self, root: int, size: int) -> bool:
        return True

    def proxy_on_done(self, context_id: int) -> None:
        return None

    def proxy_on_request_headers(self, context_id: int, n: int, eos: int) -> int:
        raise RuntimeError("escaped the barrier")

    def proxy_on_new_connection(self, context_id: int) -> int:
        raise MemoryError


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch) -> tuple[Any, list[tuple[Any, ...]]]:
    calls: list[tuple[Any, ...]] = []
    monkeypatch.setitem(sys.modules, "wit_world", _fake_bindings(calls))
    host = types.ModuleType("_proxywasm")
    for name in (
        "proxy_log",
        "proxy_set_effective_context",
        "proxy_send_local_response",
        "proxy_close_stream",
    ):
        setattr(host, name, lambda *a, _n=name: calls.append((_n, *a)) or 0)
    monkeypatch.setitem(sys.modules, "_proxywasm", host)
    dispatcher = types.ModuleType("proxywasm.dispatcher")
    dispatcher.registered_roots = lambda: {None: object}  # type: ignore[attr-defined]
    dispatcher.vm = _Vm()  # type: ignore[attr-defined]
    monkeypatch.setattr(proxywasm, "dispatcher", dispatcher)
    monkeypatch.setitem(sys.modules, "proxywasm.dispatcher", dispatcher)
    monkeypatch.setitem(sys.modules, "pw_fake_filter", types.ModuleType("pw_fake_filter"))
    # The app points sys.stdout/stderr at proxy_log: restore them afterwards.
    monkeypatch.setattr(sys, "stdout", sys.stdout)
    monkeypatch.setattr(sys, "stderr", sys.stderr)
    ns: dict[str, Any] = {}
    _run(render_app("pw_fake_filter", "fake.py"), "app.py", ns)
    return ns["WitWorld"](), calls


def test_app_answers_through_the_dispatcher(app: tuple[Any, list[tuple[Any, ...]]]) -> None:
    world, _calls = app
    assert world.proxy_on_vm_start(1, 0) == 1
    assert world.proxy_on_done(1) == 1  # None from the dispatcher: finished


def test_app_last_resort_fails_http_closed(app: tuple[Any, list[tuple[Any, ...]]]) -> None:
    world, calls = app
    assert world.proxy_on_request_headers(5, 1, 1) == 1  # PAUSE
    assert calls[0][0:2] == ("proxy_log", 4)
    assert calls[1] == ("proxy_set_effective_context", 5)
    assert calls[2][0:2] == ("proxy_send_local_response", 500)


def test_app_last_resort_closes_tcp(app: tuple[Any, list[tuple[Any, ...]]]) -> None:
    world, calls = app
    assert world.proxy_on_new_connection(9) == 1
    assert calls[-1] == ("proxy_close_stream", 2)


def test_app_refuses_a_filter_without_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "wit_world", _fake_bindings([]))
    monkeypatch.setitem(sys.modules, "_proxywasm", types.ModuleType("_proxywasm"))
    dispatcher = types.ModuleType("proxywasm.dispatcher")
    dispatcher.registered_roots = dict  # type: ignore[attr-defined]
    monkeypatch.setattr(proxywasm, "dispatcher", dispatcher)
    monkeypatch.setitem(sys.modules, "proxywasm.dispatcher", dispatcher)
    monkeypatch.setitem(sys.modules, "pw_fake_filter", types.ModuleType("pw_fake_filter"))
    with pytest.raises(RuntimeError, match=r"fake\.py never calls proxywasm\.set_root_context"):
        _run(render_app("pw_fake_filter", "fake.py"), "app.py", {})


def test_app_preloads_the_closure(
    app: tuple[Any, list[tuple[Any, ...]]],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Any,
) -> None:
    (tmp_path / "pw_lazy_dep.py").write_text("VALUE = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "pw_lazy_dep", raising=False)
    source = render_app("pw_fake_filter", "fake.py", preload=("pw_lazy_dep", "pw_not_there"))
    _run(source, "app.py", {})
    assert sys.modules.pop("pw_lazy_dep").VALUE == 1
    assert "pw_not_there" not in sys.modules


def test_import_closure_lists_what_the_sdk_imports_lazily() -> None:
    from pathlib import Path

    from proxywasm_compiler.backends.componentize import import_closure

    filter_py = Path(__file__).resolve().parents[2] / "examples" / "add_header" / "filter.py"
    names = import_closure(filter_py, None)
    # json: proxywasm.contexts imports it inside a method; the filter module itself is not listed
    assert "json" in names and "proxywasm.contexts" in names
    assert "filter" not in names
