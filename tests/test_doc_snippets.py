"""The Python blocks of the documentation run as written.

Every fenced ``python`` block of the documents in :data:`DOCS` is one of three
kinds, decided by the last non-blank line before its fence:

- a **file**: that line is ``` `name.py`: ``` (a parenthesis may follow the
  name: ``` `test_x.py` (run it with `pytest`): ```). The files of one
  document are written into one folder, as a reader saves them, and the
  ``test_*.py`` files among them run there with pytest in a subprocess, with
  the package's pytest plugin. ``-m "not slow"`` deselects the compiled
  variants of ``proxywasm_filter_host`` tests, so nothing is built: they run
  natively only. Every test function they define must pass, and every other
  file must be used by one of the tests.
- a **fragment**: that line is ``<!-- fragment -->`` (a method body shown
  with ``breakpoint()``, say). Skipped.
- otherwise an **inline** block: the inline blocks of one document are
  exec'd in order in one namespace (a later block may use an earlier one's
  names), then each test function they define is called. A block that is
  not complete code fails here: name it as a file or mark it a fragment.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pytest
from proxywasm import _nullhost, _state, dispatcher

ROOT = Path(__file__).resolve().parent.parent
DOCS = ("docs/tutorial.md", "docs/porting.md", "README.md")

#: ``` `name.py`: ``` or ``` `name.py` (any words): ``` on the line before a fence.
FILE_LINE = re.compile(r"^`(?P<name>[\w.-]+\.py)`(?:\s*\([^)]*\))?:\s*$")
FRAGMENT_LINE = "<!-- fragment -->"
FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`\s]*)")
PYTHON_INFO = {"python", "py", "python3"}
#: pytest in a subprocess: far above the few seconds it takes, well below CI's patience.
PYTEST_TIMEOUT_S = 120


@dataclass(frozen=True)
class Block:
    """One fenced ``python`` block of a document."""

    doc: str
    line: int  #: 1-based line of the first code line (after the fence)
    code: str
    kind: Literal["file", "fragment", "inline"]
    name: str | None = None  #: the file name, for ``kind == "file"``

    @property
    def where(self) -> str:
        """``doc:line`` of the block, for messages."""
        return f"{self.doc}:{self.line}"


def python_blocks(text: str, doc: str = "<doc>") -> list[Block]:
    """The ``python`` blocks of a Markdown text, each classified by the line before its fence."""
    lines = text.splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if match is None:
            i += 1
            continue
        indent, fence, info = match["indent"], match["fence"], match["info"].lower()
        start = i + 1
        end = start
        closing = re.compile(rf"^\s*{re.escape(fence[0])}{{{len(fence)},}}\s*$")
        while end < len(lines) and not closing.match(lines[end]):
            end += 1
        if end == len(lines):
            raise ValueError(f"{doc}:{i + 1}: unclosed code fence")
        if info in PYTHON_INFO:
            body = [ln.removeprefix(indent) for ln in lines[start:end]]
            before = next((ln.strip() for ln in reversed(lines[:i]) if ln.strip()), "")
            file_match = FILE_LINE.match(before)
            code = "\n".join(body) + "\n"
            if before == FRAGMENT_LINE:
                blocks.append(Block(doc, start + 1, code, "fragment"))
            elif file_match is not None:
                blocks.append(Block(doc, start + 1, code, "file", file_match["name"]))
            else:
                blocks.append(Block(doc, start + 1, code, "inline"))
        i = end + 1
    return blocks


def doc_blocks(doc: str) -> list[Block]:
    """The classified ``python`` blocks of one of :data:`DOCS`."""
    return python_blocks((ROOT / doc).read_text(encoding="utf-8"), doc)


def defined_tests(source: str, module: str) -> set[tuple[str, str]]:
    """``(classname, name)`` of the tests pytest collects from ``source``, as junit names them."""
    found: set[tuple[str, str]] = set()
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith(
            "test"
        ):
            found.add((module, node.name))
        elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and item.name.startswith("test"):
                    found.add((f"{module}.{node.name}", item.name))
    return found


def junit_outcomes(report: Path) -> dict[tuple[str, str], str]:
    """``(classname, base name) -> "passed" | "failed" | "skipped"`` from a junit XML report."""
    outcomes: dict[tuple[str, str], str] = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        key = (case.get("classname", ""), case.get("name", "").split("[", 1)[0])
        tags = {child.tag for child in case}
        outcome = (
            "failed"
            if tags & {"failure", "error"}
            else "skipped"
            if "skipped" in tags
            else "passed"
        )
        # A test run several times (parametrised) passes only if every run passed.
        if outcomes.get(key, "passed") == "passed":
            outcomes[key] = outcome
    return outcomes


def write_files(blocks: list[Block], folder: Path) -> dict[str, Block]:
    """Write the file blocks into ``folder``; a name given twice in one document is an error."""
    files: dict[str, Block] = {}
    for block in blocks:
        if block.kind != "file" or block.name is None:
            continue
        if block.name in files:
            pytest.fail(
                f"{block.where}: {block.name} was already given at {files[block.name].where}",
                pytrace=False,
            )
        files[block.name] = block
        (folder / block.name).write_text(block.code, encoding="utf-8")
    return files


# -- the extraction itself -------------------------------------------------------------


SAMPLE = """\
`filter.py`:

```python
X = 1
```

`test_filter.py` (run it with `pytest`):

```python
def test_x(): ...
```

<!-- fragment -->
```python
    breakpoint()
```

Some prose:

```python
assert 1 + 1 == 2
```

```sh
not python
```

- in a list:

  ```python
  Y = 2
  ```
"""


def test_blocks_are_classified_by_the_line_before_the_fence() -> None:
    blocks = python_blocks(SAMPLE)
    assert [(b.kind, b.name, b.line) for b in blocks] == [
        ("file", "filter.py", 4),
        ("file", "test_filter.py", 10),
        ("fragment", None, 15),
        ("inline", None, 21),
        ("inline", None, 31),
    ]
    assert blocks[-1].code == "Y = 2\n"  # the list item's indentation is removed


def test_a_prose_line_naming_a_path_is_not_a_file_name() -> None:
    text = "See `examples/auth/filter.py` for more:\n\n```python\nZ = 3\n```\n"
    assert [b.kind for b in python_blocks(text)] == ["inline"]


def test_an_unclosed_fence_is_an_error() -> None:
    with pytest.raises(ValueError, match="unclosed"):
        python_blocks("```python\nx = 1\n")


@pytest.mark.parametrize("doc", DOCS)
def test_every_doc_has_runnable_python(doc: str) -> None:
    kinds = [b.kind for b in doc_blocks(doc)]
    assert "file" in kinds or "inline" in kinds, f"{doc}: no runnable python block found"


# -- running the documents' blocks ------------------------------------------------------


@pytest.mark.parametrize("doc", DOCS)
def test_file_blocks_pass_their_tests(doc: str, tmp_path: Path) -> None:
    files = write_files(doc_blocks(doc), tmp_path)
    tests = sorted(name for name in files if name.startswith("test_"))
    if not files:
        return  # nothing saved as files in this document; its inline blocks are run below
    assert tests, f"{doc}: files {sorted(files)} are given but no test_*.py runs them"
    sources = {name: block.code for name, block in files.items() if name in tests}
    for name in sorted(set(files) - set(tests)):
        stem = name.removesuffix(".py")
        users = [
            t
            for t, src in sources.items()
            if re.search(rf"\b(import|from)\s+{re.escape(stem)}\b", src) or name in src
        ]
        assert users, f"{files[name].where}: {name} is not imported or named by any test file"

    # A folder of its own, as a reader's: no ini file above it takes over.
    (tmp_path / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    report = tmp_path / "junit.xml"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-m",
            "not slow",  # the compiled variants: they would build a module
            f"--junitxml={report}",
            *tests,
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=PYTEST_TIMEOUT_S,
        check=False,
    )
    output = proc.stdout[-6000:] + proc.stderr[-3000:]
    assert proc.returncode == 0, f"pytest on {doc}'s files {tests} failed:\n{output}"

    expected: set[tuple[str, str]] = set()
    for name, src in sources.items():
        expected |= defined_tests(src, name.removesuffix(".py"))
    outcomes = junit_outcomes(report)
    not_passed = {key: outcomes.get(key, "not run") for key in expected}
    not_passed = {key: what for key, what in not_passed.items() if what != "passed"}
    assert expected and not not_passed, f"{doc}: tests that did not pass: {not_passed}\n{output}"


def run_inline_blocks(blocks: list[Block], module: str) -> list[str]:
    """Exec the inline blocks in order in one namespace, calling the tests each defines.

    Returns the names of the tests called. A block that does not run fails the
    test with what to do; a test defined by a block fails as it would in pytest.
    """
    namespace: dict[str, object] = {"__name__": module}
    called: list[str] = []
    for block in blocks:
        if block.kind != "inline":
            continue
        error: Exception | None = None
        try:
            # Padded so that a traceback's line numbers are the document's.
            code = compile("\n" * (block.line - 1) + block.code, block.doc, "exec")
            exec(code, namespace)  # noqa: S102 -- running the documentation is the point
        except Exception as exc:  # noqa: BLE001 -- reported below, with what to do
            error = exc
        if error is not None:
            pytest.fail(
                f"{block.where}: the block raised {type(error).__name__}: {error}. "
                f"If it is not complete code, put `{FRAGMENT_LINE}` on the line before "
                "its fence, or a `name.py`: line to save it as a file.",
                pytrace=False,
            )
        for name in [n for n in namespace if n.startswith("test")]:
            func = namespace.pop(name)
            if not callable(func):
                continue
            params = getattr(getattr(func, "__code__", None), "co_argcount", 0)
            assert params == 0, (
                f"{block.where}: {name} takes fixtures; save its block as a `test_*.py` file"
            )
            func()
            called.append(name)
    return called


INLINE_SAMPLE = """```python
calls = []
def helper():
    calls.append(1)
```

```python
def test_uses_the_earlier_block():
    helper()
    assert calls == [1]
```
"""


def test_inline_blocks_share_names_and_their_tests_are_called() -> None:
    assert run_inline_blocks(python_blocks(INLINE_SAMPLE), "sample") == [
        "test_uses_the_earlier_block"
    ]


def test_a_failing_inline_test_fails() -> None:
    text = "```python\ndef test_wrong():\n    assert 1 == 2\n```\n"
    with pytest.raises(AssertionError):
        run_inline_blocks(python_blocks(text), "sample")


def test_an_incomplete_inline_block_fails_with_what_to_do() -> None:
    text = "```python\n    self.request.headers\n```\n"
    with pytest.raises(pytest.fail.Exception, match="fragment"):
        run_inline_blocks(python_blocks(text), "sample")


@pytest.mark.parametrize("doc", DOCS)
def test_inline_blocks_run(doc: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # A filter registered by a block, and the host it last ran on, stay in this test.
    monkeypatch.setattr(dispatcher, "_registry", {})
    monkeypatch.setattr(_nullhost, "active", _nullhost.active)
    monkeypatch.setattr(_state, "vm", _state.vm)
    run_inline_blocks(doc_blocks(doc), f"doc_{Path(doc).stem}")
