"""``filter.py`` in Python 3.11 syntax: what the PEP 695 filter must do, run natively here."""

from typing import Generic, TypeAlias, TypeVar

import proxywasm
from proxywasm import Action, HttpContext, RootContext

K = TypeVar("K")
T = TypeVar("T")
Pair: TypeAlias = tuple[str, str]


class Counter(Generic[K]):
    """How often each key was seen."""

    def __init__(self) -> None:
        self.seen: dict[K, int] = {}

    def add(self, key: K) -> int:
        self.seen[key] = self.seen.get(key, 0) + 1
        return self.seen[key]


def first(items: list[T], default: T) -> T:
    return items[0] if items else default


PATHS: Counter[str] = Counter()


class Http(HttpContext["Root"]):
    def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
        import colorsys

        path = self.request.headers.get(":path") or "/"
        parts = [p for p in path.split("/") if p]
        info = {"path": path, "first": first(parts, "-")}
        hue = colorsys.rgb_to_hsv(0.2, 0.4, 0.4)[0]
        pair: Pair = ("x-pep695", f"{info['first']}:{PATHS.add(path)}:{hue:.3f}")
        self.request.headers[pair[0]] = pair[1]
        return Action.CONTINUE


class Root(RootContext):
    http_context = Http


proxywasm.set_root_context(Root)
