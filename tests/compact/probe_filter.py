"""A filter of small typed functions, compiled by the compact backend and run natively.

``test_differential.py`` sends request headers ``op``, ``a``, ``b``, ``s``;
the filter answers with the request header ``x-result`` (or fails closed when
the function raises). Results must fit in 64 bits: the compact backend's
``int`` raises OverflowError past that, CPython's does not.
"""

import proxywasm
from proxywasm import Action, HttpContext, RootContext


def arith(a: int, b: int) -> int:
    return a * 3 + b // 7 - a % 5 - -b


def divide(a: int, b: int) -> int:
    return a // b + a % b


def mixed(a: int, b: int) -> float:
    return a / 4 + b * 0.5 - 1.25


def compare(a: int, b: int) -> bool:
    return a < b or a == b * 2 and not b > 100


def pick(a: int, b: int) -> int:
    return a if a >= b else b - 1


def loop(a: int, b: int) -> int:
    total = 0
    i = 0
    while i < b % 20:
        i += 1
        if i == 7:
            continue
        total += a
        if total > 1000000:
            break
    return total


def text(s: str, a: int) -> str:
    flag = s == "x" or s < "m"
    return f"{s}-{a}:{flag}/{len(s)}" + str(a * 2) + ("!" if s else "?")


def bits(a: int, b: int) -> int:
    return (a & b) | (a ^ 255) + min(a, b) - max(a, b) + abs(a - b)


def defaults(a: int, b: int = 10, *, scale: int = 2) -> int:
    return (a + b) * scale


def parse(s: str) -> int:
    return int(s) * 2


class Probe(HttpContext):
    def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
        a = int(self.get_http_request_header("a") or "0")
        b = int(self.get_http_request_header("b") or "0")
        s = self.get_http_request_header("s") or ""
        op = self.get_http_request_header("op") or ""
        if op == "arith":
            result = str(arith(a, b))
        elif op == "divide":
            result = str(divide(a, b))
        elif op == "mixed":
            result = str(mixed(a, b))
        elif op == "compare":
            result = str(compare(a, b))
        elif op == "pick":
            result = str(pick(a, b))
        elif op == "loop":
            result = str(loop(a, b))
        elif op == "text":
            result = text(s, a)
        elif op == "bits":
            result = str(bits(a, b))
        elif op == "defaults":
            result = f"{defaults(a)} {defaults(a, b)} {defaults(a, scale=b)}"
        elif op == "parse":
            result = str(parse(s))
        else:
            result = "unknown op " + op
        self.set_http_request_header("x-result", result)
        return Action.CONTINUE


class Root(RootContext):
    def create_http_context(self, context_id: int) -> HttpContext:
        return Probe(context_id, self)


proxywasm.set_root_context(Root)
