"""A filter in Python 3.12+ syntax: built with ``--backend componentize-py`` (CPython 3.14).

PEP 695 (``type`` alias, a generic class and a generic function) and PEP 701
(quotes reused inside an f-string). ``colorsys`` is imported lazily, inside a
callback: it is in the module only if the build's import resolver parsed
this file, with the target's grammar. ``twin.py`` is the same filter in
Python 3.11 syntax, the native expectation under the host's Python.
"""

import proxywasm
from proxywasm import Action, HttpContext, RootContext

type Pair = tuple[str, str]
type Tally[K] = dict[K, int]


class Counter[K]:
    """How often each key was seen."""

    def __init__(self) -> None:
        self.seen: Tally[K] = {}

    def add(self, key: K) -> int:
        self.seen[key] = self.seen.get(key, 0) + 1
        return self.seen[key]


def first[T](items: list[T], default: T) -> T:
    return items[0] if items else default


PATHS: Counter[str] = Counter()


class Http(HttpContext["Root"]):
    def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
        import colorsys  # lazy: only the target-grammar closure finds it

        path = self.request.headers.get(":path") or "/"
        parts = [p for p in path.split("/") if p]
        info = {"path": path, "first": first(parts, "-")}
        hue = colorsys.rgb_to_hsv(0.2, 0.4, 0.4)[0]
        pair: Pair = ("x-pep695", f"{info["first"]}:{PATHS.add(path)}:{hue:.3f}")  # fmt: skip
        self.request.headers[pair[0]] = pair[1]
        return Action.CONTINUE


class Root(RootContext):
    http_context = Http


proxywasm.set_root_context(Root)
