"""The coroutines of ``async def`` callbacks, driven by the dispatcher without an event loop.

A callback that returns a coroutine is stepped at once. If it finishes, its
return value is the callback's action, as for a plain callback. If it awaits
a callout (:class:`~proxywasm.calls.HttpCall`, or a ``gather`` of several),
the dispatcher keeps a :class:`Task` under each callout's token, answers
the host PAUSE, and steps the coroutine again when the last answer it waits
for has arrived.
"""

from __future__ import annotations

from .calls import HttpCall, _Gather

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Coroutine
    from typing import Any


async def _probe() -> None:
    pass


_c = _probe()
#: The type of a coroutine object, found without importing ``types``.
COROUTINE = type(_c)
_c.close()
del _c


class Task:
    """One callback's coroutine, waiting for callouts."""

    __slots__ = ("calls", "context_id", "coro", "name", "replied", "stream")

    def __init__(self, context_id: int, coro: Coroutine[Any, Any, Any], name: str, stream: int):
        self.context_id = context_id
        self.coro = coro
        #: The callback that made it (for messages).
        self.name = name
        #: The ``StreamType`` the callback paused and its end resumes; -1 for none.
        self.stream = stream
        #: The callouts it waits for, by token.
        self.calls: dict[int, HttpCall] = {}
        #: It sent a local reply: its end must not resume the stream.
        self.replied = False


def step(task: Task) -> int | None:
    """Run the coroutine to its next ``await`` or its end.

    Returns the action it finished with, or ``None`` when it waits (then
    ``task.calls`` holds the callouts it waits for). Raises what the
    coroutine raised, or ``TypeError`` for an await or a result a filter
    cannot use.
    """
    try:
        awaited = task.coro.send(None)
    except StopIteration as stop:
        value = stop.value
        if value is None:
            return 0
        if isinstance(value, int) and type(value) is not bool and value in (0, 1):
            return int(value)
        raise TypeError(
            f"{task.name} returned {value!r}; return Action.CONTINUE or Action.PAUSE"
        ) from None
    if isinstance(awaited, HttpCall):
        calls: tuple[HttpCall, ...] = (awaited,)
    elif isinstance(awaited, _Gather):
        calls = awaited.calls
    else:
        task.coro.close()
        raise TypeError(
            f"{task.name} awaited {awaited!r}: a filter can await only self.http_call(...) "
            "or proxywasm.gather(...) (there is no event loop in the proxy)"
        )
    task.calls = {c.token: c for c in calls if c.response is None}
    return None
