"""Format an exception with its traceback, without the ``traceback`` module.

Inside a compiled module there are no source files to quote, and the
``traceback`` module would freeze ``linecache``, ``tokenize``, ``re`` and
``textwrap`` into every module. Natively, where ``traceback`` is already
loaded (pytest imports it), its richer output with source lines is used.

Either way the result is bounded: runs of the same frame collapse into one
``[Previous line repeated N more times]`` line, as CPython prints them, and
an entry longer than :data:`MAX_TRACEBACK_CHARS` keeps its head and its tail
(the exception itself is always in the tail). Unbounded recursion in a
callback then costs one short log entry per request, not tens of kilobytes.
"""

from __future__ import annotations

import sys

__all__ = ["MAX_TRACEBACK_CHARS", "cap", "format_exception"]

#: The longest traceback text one log entry carries (characters).
MAX_TRACEBACK_CHARS = 8192

#: Identical frames shown before a run collapses (CPython shows three).
_REPEAT_SHOWN = 3


def _frames(exc: BaseException) -> list[str]:
    lines: list[str] = []
    last = ""
    repeats = 0
    tb = exc.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        line = f'  File "{code.co_filename}", line {tb.tb_lineno}, in {code.co_name}'
        tb = tb.tb_next
        if line == last:
            repeats += 1
            if repeats >= _REPEAT_SHOWN:
                continue
        else:
            if repeats >= _REPEAT_SHOWN:
                lines.append(_repeated(repeats - _REPEAT_SHOWN + 1))
            last = line
            repeats = 0
        lines.append(line)
    if repeats >= _REPEAT_SHOWN:
        lines.append(_repeated(repeats - _REPEAT_SHOWN + 1))
    return lines


def _repeated(count: int) -> str:
    return f"  [Previous line repeated {count} more time{'s' if count > 1 else ''}]"


def _one(exc: BaseException) -> list[str]:
    out = (
        ["Traceback (most recent call last):", *_frames(exc)]
        if exc.__traceback__ is not None
        else []
    )
    name = type(exc).__qualname__
    module = type(exc).__module__
    if module not in ("builtins", "__main__"):
        name = f"{module}.{name}"
    try:
        text = str(exc)
    except Exception:  # a broken __str__ must not hide the exception
        text = "<exception str() failed>"
    out.append(f"{name}: {text}" if text else name)
    return out


def cap(text: str, limit: int = MAX_TRACEBACK_CHARS) -> str:
    """``text`` cut to at most ``limit`` characters, keeping its head and its tail."""
    if len(text) <= limit:
        return text
    marker = f"\n  [... {len(text) - limit} characters omitted ...]\n"
    head = (limit - len(marker)) // 3
    tail = limit - len(marker) - head
    return text[:head] + marker + text[len(text) - tail :]


def format_exception(exc: BaseException) -> str:
    """The whole traceback as text, chained exceptions first, as Python prints it (capped)."""
    tb_module = sys.modules.get("traceback")
    if tb_module is not None:
        return cap("".join(tb_module.format_exception(exc)).rstrip())
    chain: list[tuple[BaseException, str]] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    note = ""
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append((current, note))
        if current.__cause__ is not None:
            note = "The above exception was the direct cause of the following exception:"
            current = current.__cause__
        elif current.__context__ is not None and not current.__suppress_context__:
            note = "During handling of the above exception, another exception occurred:"
            current = current.__context__
        else:
            current = None
    lines: list[str] = []
    for i, (item, _) in enumerate(reversed(chain)):
        lines += _one(item)
        following = chain[len(chain) - 1 - i][1]
        if following and i < len(chain) - 1:
            lines += ["", following, ""]
    return cap("\n".join(lines))
