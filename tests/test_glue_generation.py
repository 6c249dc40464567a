"""The C glue is generated from the ABI table: every import wrapped, every callback exported."""

from __future__ import annotations

import re

import proxywasm_abi
from proxywasm_compiler.glue import render_glue


def test_every_host_import_is_declared_and_wrapped() -> None:
    src = render_glue()
    for fn in proxywasm_abi.load().proxy_imports:
        assert f'import_module("env"), import_name("{fn.name}")' in src
        assert f"static PyObject *w_{fn.name}(" in src
        assert f'{{"{fn.name}", (PyCFunction)' in src
        # the wrapper checks its arity against the Python-level signature
        assert f'pw_arity("{fn.name}", {len(fn.py_inputs())}, nargs)' in src


def test_every_callback_is_exported_with_the_table_arity() -> None:
    src = render_glue()
    for fn in proxywasm_abi.load().callbacks:
        m = re.search(rf'export_name\("{fn.name}"\)\)\)\n(\w+) {fn.name}\(([^)]*)\)', src)
        assert m, fn.name
        params = [p for p in m.group(2).split(",") if p.strip() and p.strip() != "void"]
        assert len(params) == len(fn.params), fn.name
        assert (m.group(1) == "uint32_t") == bool(fn.results), fn.name


def test_integration_exports() -> None:
    src = render_glue()
    assert 'export_name("proxy_abi_version_0_2_1")' in src
    assert 'export_name("proxy_on_memory_allocate")' in src
    assert "PyInit__proxywasm" in src
