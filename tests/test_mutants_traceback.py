"""The traceback formatter compiled modules use, checked against CPython's own.

Inside a compiled module the ``traceback`` module is not there and
``proxywasm._traceback`` formats errors itself; natively pytest has loaded
``traceback`` and the fallback never runs. These tests hide ``traceback``
from the formatter and compare its text with what ``traceback`` prints for
the same exception, minus the source lines a module has no files for.
Found unchecked by mutation testing (scripts/mutation.py).
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable

import pytest
from proxywasm._traceback import MAX_TRACEBACK_CHARS, cap, format_exception


def _fallback(exc: BaseException) -> str:
    saved = sys.modules.pop("traceback")
    try:
        return format_exception(exc)
    finally:
        sys.modules["traceback"] = saved


def _cpython(exc: BaseException) -> str:
    lines = "".join(traceback.format_exception(exc)).rstrip().split("\n")
    # Source lines and their carets are indented by four spaces; frames by two.
    return "\n".join(line for line in lines if not line.startswith("    "))


def _caught(raiser: Callable[[], object]) -> BaseException:
    try:
        raiser()
    except BaseException as exc:  # noqa: BLE001 - the exception is the test's subject
        return exc
    raise AssertionError("did not raise")


class OwnError(Exception):
    pass


class Silent(Exception):
    def __str__(self) -> str:
        return ""


class BrokenStr(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no")


def _plain() -> None:
    raise ValueError("plain")


def _cause() -> None:
    try:
        _plain()
    except ValueError as exc:
        raise OwnError("with cause") from exc


def _context() -> None:
    try:
        _plain()
    except ValueError:
        raise KeyError("during")  # the implicit context is what is tested


def _suppressed() -> None:
    try:
        _plain()
    except ValueError:
        raise OwnError("suppressed") from None


def _recurse(n: int) -> None:
    if n:
        _recurse(n - 1)
    raise Silent()


def _same_line(n: int) -> int:
    return _same_line(n - 1) if n else 1 // n  # every frame on the same line, to the end


class MainError(Exception):
    pass


MainError.__module__ = "__main__"  # as a class of a script: printed without its module


@pytest.mark.parametrize(
    "raiser",
    [
        _plain,
        _cause,
        _context,
        _suppressed,
        lambda: _recurse(12),
        lambda: _recurse(2),
        lambda: _recurse(3),
        lambda: _recurse(4),
        lambda: _recurse(5),
        lambda: _same_line(3),
        lambda: _same_line(4),
        lambda: _same_line(9),
        lambda: (_ for _ in ()).throw(BrokenStr()),
        lambda: (_ for _ in ()).throw(MainError("m")),
    ],
    ids=[
        "plain",
        "cause",
        "context",
        "suppressed",
        "recursion",
        *(f"repeat-{n}" for n in (2, 3, 4, 5)),
        *(f"same-line-{n}" for n in (3, 4, 9)),
        "str",
        "main",
    ],
)
def test_the_fallback_prints_what_cpython_prints(raiser: Callable[[], object]) -> None:
    exc = _caught(raiser)
    assert _fallback(exc) == _cpython(exc)


def test_an_exception_never_raised_has_no_traceback_lines() -> None:
    assert _fallback(OwnError("made")) == f"{__name__}.OwnError: made"
    assert _fallback(ValueError()) == "ValueError"


def test_a_cycle_of_causes_ends() -> None:
    first, second = ValueError("a"), ValueError("b")
    first.__cause__, second.__cause__ = second, first
    text = _fallback(first)
    assert text.count("ValueError: a") == 1 and text.count("ValueError: b") == 1


def test_cap_keeps_short_text_and_cuts_long_text_to_the_limit() -> None:
    assert cap("x" * 50, 50) == "x" * 50
    text = "H" * 60 + "x" * 40 + "END"
    cut = cap(text, 80)
    marker = "\n  [... 23 characters omitted ...]\n"
    assert len(cut) == 80 and marker in cut
    head = (80 - len(marker)) // 3
    assert cut == text[:head] + marker + text[len(text) - (80 - len(marker) - head) :]
    assert cut.endswith("END")
    assert len(cap("a" * (MAX_TRACEBACK_CHARS + 1))) == MAX_TRACEBACK_CHARS
    assert cap("a" * MAX_TRACEBACK_CHARS) == "a" * MAX_TRACEBACK_CHARS


def test_a_long_fallback_traceback_is_capped() -> None:
    exc = OwnError("x" * (MAX_TRACEBACK_CHARS * 2))
    assert len(_fallback(exc)) == MAX_TRACEBACK_CHARS


def test_natively_the_traceback_module_formats() -> None:
    exc = _caught(_cause)
    assert format_exception(exc) == "".join(traceback.format_exception(exc)).rstrip()
