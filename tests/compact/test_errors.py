"""What the compact backend refuses: a BuildError naming file:line, the construct and
the way out (``--backend cpython``), with nothing written at the output path."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from proxywasm_compiler.backends.compact import build_compact
from proxywasm_compiler.build import BuildError

HEAD = """\
import proxywasm
from proxywasm import Action, HttpContext, RootContext


"""
TAIL = """

class Root(RootContext):
    def create_http_context(self, context_id: int) -> HttpContext:
        return HttpContext(context_id, self)


proxywasm.set_root_context(Root)
"""

CASES = {
    "for else": (
        "def f(n: int) -> int:\n    for i in range(n):\n        pass\n    else:\n        return 1\n    return 0\n",
        2,
        "for ... else",
    ),
    "async def": ("async def f() -> None:\n    pass\n", 1, "async def or a generator"),
    "generator": ("def f() -> object:\n    yield 1\n", 1, "async def or a generator"),
    "sdk function": (
        "def f() -> None:\n    proxywasm.call_foreign_function('x')\n",
        2,
        "the SDK function proxywasm.hostcalls.call_foreign_function",
    ),
    "with": ("def f() -> None:\n    with open('x') as fh:\n        pass\n", 2, "with"),
    "import": ("import re\n", 1, "importing 're'"),
    "lambda": ("def f() -> int:\n    g = lambda: 1\n    return g()\n", 2, "lambda"),
    "format spec": ("def f(x: float) -> str:\n    return f'{x:.2f}'\n", 2, "format spec"),
    "starred": (
        "def f(xs: list[int]) -> int:\n    a, *b = xs\n    return a\n",
        2,
        "starred unpacking",
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_unsupported_construct(tmp_path: Path, name: str) -> None:
    body, line, construct = CASES[name]
    src = tmp_path / "bad_filter.py"
    src.write_text(HEAD + body + TAIL)
    out = tmp_path / "bad_filter.wasm"
    with pytest.raises(BuildError) as info:
        build_compact(src, out)
    message = str(info.value)
    assert message.startswith(f"{src}:{HEAD.count(chr(10)) + line}: "), message
    assert construct in message
    assert "--backend cpython" in message
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["bad_filter.py"]


def test_mypy_errors_fail_the_build(tmp_path: Path) -> None:
    src = tmp_path / "typo_filter.py"
    src.write_text(HEAD + "def f(n: int) -> str:\n    return n\n" + TAIL)
    with pytest.raises(
        BuildError,
        match=r"(?s)mypy rejects the filter.*typo_filter.py:6: error: Incompatible return",
    ):
        build_compact(src, tmp_path / "out.wasm")
    assert not (tmp_path / "out.wasm").exists()


def test_missing_root_registration(tmp_path: Path) -> None:
    src = tmp_path / "noroot_filter.py"
    body = "class H(HttpContext):\n    pass\n"
    tail = TAIL.replace("return HttpContext(", "return H(").replace(
        "proxywasm.set_root_context(Root)\n", ""
    )
    src.write_text(HEAD + body + tail)
    with pytest.raises(BuildError, match="never calls proxywasm.set_root_context"):
        build_compact(src, tmp_path / "out.wasm")


def test_unsupported_sdk_method(tmp_path: Path) -> None:
    src = tmp_path / "sdk_filter.py"
    body = textwrap.dedent("""\
        class H(HttpContext):
            def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
                self.call_foreign_function("f")
                return Action.PAUSE
        """)
    src.write_text(HEAD + body + TAIL)
    with pytest.raises(BuildError, match=r"sdk_filter.py:7: the SDK method call_foreign_function"):
        build_compact(src, tmp_path / "out.wasm")


def test_module_body_raising_fails_every_root_with_the_traceback(tmp_path: Path) -> None:
    """A module global whose value raises: as a failed import, one error entry, then no root starts."""
    from proxywasm import LogLevel
    from proxywasm.testing import HostEmulator

    src = tmp_path / "initfail_filter.py"
    src.write_text(HEAD + "LIMIT = int('ten')\n" + TAIL)
    out = tmp_path / "initfail.wasm"
    build_compact(src, out)
    host = HostEmulator.from_wasm(str(out))
    assert not host.start_vm()
    errors = host.get_logs(LogLevel.ERROR)
    assert errors[0].startswith("python exception in module initialisation")
    assert f'File "{src}", line 5, in <module>' in errors[0]
    assert errors[0].splitlines()[-1] == "ValueError: invalid literal for int() with base 10: 'ten'"
    assert any("no root context registered" in e for e in errors[1:])
