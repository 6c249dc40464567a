"""Everything that must agree with the ABI table (``abi-stubs/abi.toml``) does.

The table is the single source of truth: the emulator's host functions, the
dispatcher's callbacks, the SDK enums, the typing stub of ``_proxywasm`` and
the SDK's calls into ``_proxywasm`` are all checked against it here, so a
change on either side that is not mirrored on the other fails a test.
"""

from __future__ import annotations

import ast
import inspect
import typing
from enum import IntEnum
from pathlib import Path

import proxywasm_abi
import pytest
from proxywasm import hostcalls, types
from proxywasm.dispatcher import Dispatcher
from proxywasm.testing import emulator
from proxywasm.testing.abi_host import AbiHost
from proxywasm.testing.emulator import HostEmulator
from proxywasm_abi import Function

ABI = proxywasm_abi.load()
IMPORTS = ABI.proxy_imports
CALLBACKS = ABI.callbacks

#: Table enum -> SDK enum. Every ``proxy_*_t`` enum of the table must be here.
SDK_ENUMS: dict[str, type[IntEnum]] = {
    "proxy_log_level_t": types.LogLevel,
    "proxy_status_t": types.Status,
    "proxy_action_t": types.Action,
    "proxy_buffer_type_t": types.BufferType,
    "proxy_map_type_t": types.MapType,
    "proxy_peer_type_t": types.PeerType,
    "proxy_stream_type_t": types.StreamType,
    "proxy_metric_type_t": types.MetricType,
}

_PY_TYPE = {"bytes": bytes, "int": int}


def _ids(fns: list[Function]) -> list[str]:
    return [f.name for f in fns]


# -- the table itself ------------------------------------------------------------------


def test_table_has_39_host_functions() -> None:
    assert ABI.version == "0.2.1"
    assert len(IMPORTS) == 39, _ids(IMPORTS)
    assert all(f.name.startswith("proxy_") and f.module == "env" for f in IMPORTS)
    assert len(set(_ids(IMPORTS))) == 39, "duplicate host function in abi.toml"


def test_table_has_25_callbacks_besides_memory_allocate() -> None:
    assert len(CALLBACKS) == 25, _ids(CALLBACKS)
    assert all(f.name.startswith("proxy_on_") for f in CALLBACKS)
    assert len(set(_ids(CALLBACKS))) == 25, "duplicate callback in abi.toml"
    allocate = ABI.function("proxy_on_memory_allocate")
    assert allocate.direction == "export" and not allocate.is_callback


def test_every_host_function_returns_a_status() -> None:
    for f in IMPORTS:
        assert [(r.name, r.c_type) for r in f.results] == [("status", "proxy_status_t")], f.name


# -- the emulator implements every host function ------------------------------------------


@pytest.mark.parametrize("fn", IMPORTS, ids=_ids(IMPORTS))
def test_emulator_implements_host_function(fn: Function) -> None:
    for cls in (AbiHost, HostEmulator):
        method = getattr(cls, fn.name, None)
        assert method is not None, f"{cls.__name__} does not implement {fn.name}"
        assert callable(method)
        params = list(inspect.signature(method).parameters.values())
        assert params and params[0].name == "self"
        got = [p.name for p in params[1:]]
        want = [p.name for p in fn.py_inputs()]
        assert got == want, f"{cls.__name__}.{fn.name}{tuple(got)} != ABI {fn.name}{tuple(want)}"
        for p in params[1:]:
            assert p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD, (
                f"{fn.name}: {p.name} is {p.kind}"
            )
            assert p.default is inspect.Parameter.empty, f"{fn.name}: {p.name} has a default"


@pytest.mark.parametrize("fn", IMPORTS, ids=_ids(IMPORTS))
def test_emulator_host_function_types(fn: Function) -> None:
    hints = typing.get_type_hints(getattr(AbiHost, fn.name))
    for p in fn.py_inputs():
        assert hints[p.name] is _PY_TYPE[p.kind], (
            f"{fn.name}({p.name}): {hints[p.name]} is not {p.kind}"
        )
    outs = fn.py_outputs()
    ret = hints["return"]
    if not outs:
        assert ret is int, f"{fn.name} must return its status (int), annotated {ret}"
    else:
        assert typing.get_origin(ret) is tuple, (
            f"{fn.name} must return (status, *outputs), annotated {ret}"
        )
        want = (int, *(_PY_TYPE[o.kind] for o in outs))
        assert typing.get_args(ret) == want, f"{fn.name} returns {ret}, the ABI says {want}"


def test_emulator_has_no_host_function_outside_the_table() -> None:
    names = set(_ids(IMPORTS))
    extra = [n for n in dir(HostEmulator) if n.startswith("proxy_") and n not in names]
    assert extra == [], f"proxy_* methods that the ABI does not declare: {extra}"


# -- the dispatcher answers every callback --------------------------------------------------


@pytest.mark.parametrize("fn", CALLBACKS, ids=_ids(CALLBACKS))
def test_dispatcher_answers_callback(fn: Function) -> None:
    method = getattr(Dispatcher, fn.name, None)
    assert method is not None, f"Dispatcher has no {fn.name}"
    params = list(inspect.signature(method).parameters.values())[1:]
    assert len(params) == len(fn.params), (
        f"Dispatcher.{fn.name} takes {[p.name for p in params]}, the ABI passes {[p.name for p in fn.params]}"
    )
    assert all(
        p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD and p.default is p.empty for p in params
    )
    ret = typing.get_type_hints(method)["return"]
    if not fn.results:
        assert ret is type(None), (
            f"Dispatcher.{fn.name} returns {ret}; the ABI callback returns nothing"
        )
    else:
        (result,) = fn.results
        want = bool if result.c_type == "bool" else int
        assert ret is want, (
            f"Dispatcher.{fn.name} returns {ret}; the ABI callback returns {result.c_type}"
        )


def test_dispatcher_has_no_callback_outside_the_table() -> None:
    names = set(_ids(CALLBACKS))
    extra = [n for n in dir(Dispatcher) if n.startswith("proxy_") and n not in names]
    assert extra == [], f"proxy_* methods that the ABI does not declare: {extra}"


def _invocations(tree: ast.AST) -> list[tuple[str, int, int]]:
    """``self._invoke("proxy_on_x", ctx, *args)`` calls with a literal name: (name, nargs, line)."""
    out = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "_invoke"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
            and not any(isinstance(a, ast.Starred) for a in node.args)
        ):
            out.append((node.args[0].value, len(node.args) - 1, node.lineno))
    return out


def test_emulator_drives_callbacks_with_the_table_arity() -> None:
    source = Path(inspect.getfile(emulator)).read_text()
    calls = _invocations(ast.parse(source))
    assert len(calls) >= 15, "the emulator's _invoke calls were not found; update this test"
    for name, nargs, line in calls:
        fn = ABI.function(name)  # KeyError: not an ABI function
        assert fn.is_callback, f"emulator.py:{line} invokes {name}, which is not a callback"
        assert nargs == len(fn.params), (
            f"emulator.py:{line} calls {name} with {nargs} arguments, ABI: {len(fn.params)}"
        )


# -- SDK enums ---------------------------------------------------------------------------------


def test_every_table_enum_has_an_sdk_enum() -> None:
    table = {name for name in ABI.enums if name.startswith("proxy_")}
    assert table == set(SDK_ENUMS)


@pytest.mark.parametrize("table_name", sorted(SDK_ENUMS))
def test_sdk_enum_matches_table(table_name: str) -> None:
    enum = SDK_ENUMS[table_name]
    sdk = {m.name: int(m.value) for m in enum}
    assert sdk == ABI.enums[table_name], f"{enum.__name__} differs from {table_name}"
    assert enum.__name__ in types.__all__


# -- the typing stub ---------------------------------------------------------------------------


def test_stub_is_generated_from_the_table() -> None:
    assert proxywasm_abi.STUB_PATH.read_text() == proxywasm_abi.render_stub(), (
        "abi-stubs/_proxywasm.pyi is stale: regenerate it with `python -m proxywasm_abi`"
    )


def test_stub_declares_every_host_function() -> None:
    tree = ast.parse(proxywasm_abi.STUB_PATH.read_text())
    module_funcs = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert set(module_funcs) == set(_ids(IMPORTS))
    for f in IMPORTS:
        assert [a.arg for a in module_funcs[f.name].args.args] == [p.name for p in f.py_inputs()]


# -- the SDK calls only what the table declares --------------------------------------------------


def _abi_uses(
    tree: ast.AST,
) -> tuple[set[str], list[tuple[str, int, int]], list[tuple[str, int, int]]]:
    """Names used as ``_abi.X``; calls ``(X, nargs, line)``; unpackings ``(X, ntargets, line)``."""
    names: set[str] = set()
    calls: list[tuple[str, int, int]] = []
    unpacks: list[tuple[str, int, int]] = []

    def abi_attr(node: ast.AST) -> str | None:
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "_abi"
        ):
            return node.attr
        return None

    for node in ast.walk(tree):
        name = abi_attr(node)
        if name is not None:
            names.add(name)
        if isinstance(node, ast.Call) and (name := abi_attr(node.func)) is not None:
            assert not node.keywords, f"hostcalls.py:{node.lineno} passes keywords to _abi.{name}"
            assert not any(isinstance(a, ast.Starred) for a in node.args)
            calls.append((name, len(node.args), node.lineno))
        if (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Tuple)
            and isinstance(node.value, ast.Call)
            and (name := abi_attr(node.value.func)) is not None
        ):
            unpacks.append((name, len(node.targets[0].elts), node.lineno))
    return names, calls, unpacks


def test_hostcalls_use_only_table_functions() -> None:
    names, calls, unpacks = _abi_uses(ast.parse(Path(inspect.getfile(hostcalls)).read_text()))
    table = {f.name: f for f in IMPORTS}
    unknown = sorted(names - set(table))
    assert unknown == [], f"hostcalls.py calls _abi functions the ABI does not declare: {unknown}"
    assert len(names) >= 30, "hostcalls.py's uses of _abi were not found; update this test"
    for name, nargs, line in calls:
        want = len(table[name].py_inputs())
        assert nargs == want, (
            f"hostcalls.py:{line}: _abi.{name} called with {nargs} arguments, ABI: {want}"
        )
    for name, ntargets, line in unpacks:
        want = 1 + len(table[name].py_outputs())
        assert ntargets == want, (
            f"hostcalls.py:{line}: _abi.{name} unpacked into {ntargets}, ABI returns {want}"
        )
