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
    "for": ("def f(n: int) -> int:\n    t = 0\n    for i in range(n):\n        t += i\n    return t\n",
            3, "a for loop"),
    "try": ("def f(n: int) -> int:\n    try:\n        return n\n    except ValueError:\n        return 0\n",
            2, "try/except"),
    "plain class": ("class Point:\n    x: int = 0\n", 1, "class Point"),
    "import": ("import re\n", 1, "importing 're'"),
    "list": ("def f() -> int:\n    xs = [1, 2]\n    return 0\n", 2, "a list display"),
    "lambda": ("def f() -> int:\n    g = lambda: 1\n    return g()\n", 2, "lambda"),
    "global": ("LIMIT = 3\n", 1, "module-level AssignmentStmt"),
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
    with pytest.raises(BuildError, match=r"(?s)mypy rejects the filter.*typo_filter.py:6: error: Incompatible return"):
        build_compact(src, tmp_path / "out.wasm")
    assert not (tmp_path / "out.wasm").exists()


def test_missing_root_registration(tmp_path: Path) -> None:
    src = tmp_path / "noroot_filter.py"
    body = "class H(HttpContext):\n    pass\n"
    tail = TAIL.replace("return HttpContext(", "return H(").replace("proxywasm.set_root_context(Root)\n", "")
    src.write_text(HEAD + body + tail)
    with pytest.raises(BuildError, match="never calls proxywasm.set_root_context"):
        build_compact(src, tmp_path / "out.wasm")


def test_unsupported_sdk_method(tmp_path: Path) -> None:
    src = tmp_path / "sdk_filter.py"
    body = textwrap.dedent("""\
        class H(HttpContext):
            def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
                self.send_http_response(403, [], b"no")
                return Action.PAUSE
        """)
    src.write_text(HEAD + body + TAIL)
    with pytest.raises(BuildError, match=r"sdk_filter.py:7: the SDK method send_http_response"):
        build_compact(src, tmp_path / "out.wasm")
