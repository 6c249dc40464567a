"""Python 3.12+ syntax: read with the target's grammar, refused by the cpython backend.

The componentize-py backend's import closure reads sources with CPython
3.14's grammar (``grammar.target_parse``: libcst, then a line-preserving
lowering for the host's ``ast``); the cpython backend (CPython 3.11) refuses
such a filter naming the file, the line and ``--backend componentize-py``;
the null runtime on Python 3.11 says the filter needs 3.12 natively. Fast:
no module is built here (tests/componentize/test_build_slow.py builds).
"""

from __future__ import annotations

import ast
import sys
import sysconfig
from pathlib import Path

import pytest
from proxywasm.testing import load_filter
from proxywasm_compiler import grammar
from proxywasm_compiler.build import BuildError, build_filter, refuse_newer_syntax
from proxywasm_compiler.closure import ClosureError, resolve_closure
from proxywasm_compiler.grammar import cpython_parse, newer_construct, target_parse

PEP695 = Path(__file__).resolve().parent / "componentize" / "pep695" / "filter.py"
STDLIB = Path(sysconfig.get_paths()["stdlib"])
BUILTINS = frozenset(sys.builtin_module_names)

#: Each line's first statement after lowering must keep its line number.
NEWER = '''\
import json
type Alias = int | str
type Generic[T] = list[T]; after_alias = 1
class Box[T: int = int](object):
    def get[U](self, x: U) -> U:
        import base64
        return x
def f[T, *Ts, **P](x: T) -> T:
    return x
d = {"a": 1}
x = f"{d["a"]} {f"{1 + 1}"}"
y = f"{
  json.dumps(d)
}" "tail" f'{d!r:>{10}}'
w = (
    "a"
    f"""x
{d["a"]}
"""
)
v = t"hi {json.loads("1")}"
try:
    pass
except ValueError, TypeError:
    import binascii
import colorsys
'''


def _lines(tree: ast.Module) -> dict[str, int]:
    """Line of each import and of each top-level assignment target / def / class name."""
    out: dict[str, int] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out[node.names[0].name] = node.lineno
        elif isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            out[node.targets[0].id] = node.lineno
        elif isinstance(node, (ast.ClassDef, ast.FunctionDef)):
            out[node.name] = node.lineno
    return out


def test_the_host_parser_cannot_read_newer_syntax() -> None:
    with pytest.raises(SyntaxError):
        ast.parse(NEWER)


def test_target_parse_reads_312_to_314_syntax_with_its_lines() -> None:
    lines = _lines(target_parse(NEWER.encode(), "newer.py"))
    expected = {
        "json": 1, "Alias": 2, "Generic": 3, "after_alias": 3, "Box": 4, "get": 5,
        "base64": 6, "f": 8, "d": 10, "x": 11, "y": 12, "w": 15, "v": 21,
        "binascii": 25, "colorsys": 26,
    }  # fmt: skip
    assert lines == expected


def test_target_parse_keeps_what_imports_depend_on() -> None:
    tree = target_parse(NEWER.encode(), "newer.py")
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    calls = {
        ast.unparse(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)
    }  # names and calls inside f-strings and t-strings survive the lowering
    assert {"d", "json", "ValueError", "TypeError"} <= names
    assert {"json.dumps", "json.loads"} <= calls


def test_target_parse_leaves_311_sources_to_the_host_parser() -> None:
    source = b"import os\nx = f'{os.sep!r}'\n"
    assert ast.dump(target_parse(source, "a.py")) == ast.dump(ast.parse(source))


def test_target_parse_reports_a_plain_syntax_error_as_such() -> None:
    with pytest.raises(SyntaxError) as info:
        target_parse(b"x = 1\ndef f(:\n    pass\n", "bad.py")
    assert (info.value.lineno, info.value.msg) == (2, "invalid syntax")


def test_the_componentize_closure_finds_imports_in_pep695_code(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from proxywasm_compiler.backends.componentize import import_closure

    assert "colorsys" in import_closure(PEP695, None)  # imported inside a callback
    monkeypatch.setattr(grammar, "target_parse", grammar.host_parse)
    assert "colorsys" not in import_closure(PEP695, None)  # the host's grammar: missed


@pytest.mark.parametrize("with_libcst", [True, False])
def test_newer_constructs_are_named_with_their_line(
    with_libcst: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not with_libcst:
        monkeypatch.setattr(grammar, "_libcst", lambda: None)
    cases = [
        (b"x = 1\ntype X = int\n", "`type` alias", 2),
        (b"class Box[T]:\n    pass\n", "(PEP 695)", 1),
        (b"x = 1\n\ndef f[T](x: T) -> T:\n    return x\n", "(PEP 695)", 3),
        (b"try:\n    pass\nexcept A, B:\n    pass\n", "PEP 758", 3),
    ]
    if with_libcst:  # recognised only by parsing with the 3.14 grammar
        cases += [(b'd = {}\nx = f"{d["a"]}"\n', "PEP 701", 2), (b"x = t'{y}'\n", "PEP 750", 1)]
    for source, what, line in cases:
        with pytest.raises(SyntaxError) as info:
            ast.parse(source)
        found = newer_construct(source, info.value)
        assert found is not None, source
        assert what in found[0] and found[1] == line, (source, found)
    for plain in (b"def f(:\n    pass\n", b"x = = 1\n", b"type = 1\ntype x\n"):
        with pytest.raises(SyntaxError) as info:
            ast.parse(plain)
        assert newer_construct(plain, info.value) is None, plain


def test_cpython_parse_names_the_backend_for_newer_syntax() -> None:
    with pytest.raises(SyntaxError) as info:
        cpython_parse(PEP695.read_bytes(), str(PEP695))
    err = info.value
    assert (err.filename, err.lineno) == (str(PEP695), 13)
    assert "Python 3.11" in err.msg and "--backend componentize-py" in err.msg
    with pytest.raises(SyntaxError) as info:
        cpython_parse(b"def f(:\n    pass\n", "bad.py")
    assert info.value.msg == "invalid syntax"


def test_the_cpython_backend_refuses_pep695_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out.wasm"
    with pytest.raises(BuildError) as info:
        build_filter(PEP695, out, backend="cpython")
    message = str(info.value)
    assert message.startswith(f"{PEP695}:13:1: a `type` alias statement (PEP 695)")
    assert "cpython backend runs Python 3.11" in message
    assert "--backend componentize-py" in message
    assert list(tmp_path.iterdir()) == []


def test_the_cpython_closure_names_the_backend_for_a_helper_module(tmp_path: Path) -> None:
    (tmp_path / "helper.py").write_text("x = 1\n\ndef pick[T](a: T) -> T:\n    return a\n")
    (tmp_path / "filter.py").write_text("import helper\n")
    refuse_newer_syntax(tmp_path / "filter.py")  # the filter itself is 3.11
    with pytest.raises(ClosureError) as info:
        resolve_closure(tmp_path / "filter.py", STDLIB, BUILTINS, parse=cpython_parse)
    assert f"{tmp_path / 'helper.py'}:3:" in str(info.value)
    assert "--backend componentize-py" in str(info.value)


def test_a_plain_syntax_error_stays_a_syntax_error(tmp_path: Path) -> None:
    bad = tmp_path / "filter.py"
    bad.write_text("import proxywasm\ndef f(:\n    pass\n")
    refuse_newer_syntax(bad)  # not refused as newer syntax...
    with pytest.raises(ClosureError) as info:
        resolve_closure(bad, STDLIB, BUILTINS, parse=cpython_parse)
    assert "filter.py:2:" in str(info.value) and "syntax error: invalid syntax" in str(info.value)
    assert "componentize" not in str(info.value)  # ...nor by the closure
    with pytest.raises(SyntaxError) as load:
        load_filter(bad)
    assert load.value.msg == "invalid syntax"


def test_the_null_runtime_says_the_filter_needs_python_312() -> None:
    if sys.version_info >= (3, 12):
        assert load_filter(PEP695) is not None  # runs natively there
        return
    with pytest.raises(SyntaxError) as info:
        load_filter(PEP695)
    err = info.value
    assert (err.filename, err.lineno) == (str(PEP695), 13)
    assert "needs Python 3.12 or newer to run natively" in err.msg
    assert "--backend componentize-py" in err.msg and "from_wasm" in err.msg
