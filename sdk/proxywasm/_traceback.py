"""Format an exception with its traceback, without the ``traceback`` module.

Inside a compiled module there are no source files to quote, and the
``traceback`` module would freeze ``linecache``, ``tokenize``, ``re`` and
``textwrap`` into every module. Natively, where ``traceback`` is already
loaded (pytest imports it), its richer output with source lines is used.
"""

from __future__ import annotations

import sys

__all__ = ["format_exception"]


def _frames(exc: BaseException) -> list[str]:
    lines = []
    tb = exc.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        lines.append(f'  File "{code.co_filename}", line {tb.tb_lineno}, in {code.co_name}')
        tb = tb.tb_next
    return lines


def _one(exc: BaseException) -> list[str]:
    out = ["Traceback (most recent call last):", *_frames(exc)] if exc.__traceback__ is not None else []
    name = type(exc).__qualname__
    module = type(exc).__module__
    if module not in ("builtins", "__main__"):
        name = f"{module}.{name}"
    text = str(exc)
    out.append(f"{name}: {text}" if text else name)
    return out


def format_exception(exc: BaseException) -> str:
    """The whole traceback as text, chained exceptions first, as Python prints it."""
    tb_module = sys.modules.get("traceback")
    if tb_module is not None:
        return "".join(tb_module.format_exception(exc)).rstrip()
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
    return "\n".join(lines)
