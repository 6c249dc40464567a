"""A filter exercising the compact backend's containers, loops, exceptions and classes.

``test_differential2.py`` sends request headers ``op``, ``a``, ``b``, ``s``;
the filter answers with ``x-result`` (a ``repr`` of what the op computed) or
fails closed when the op raises. Run natively and compiled, the answers must
be the same.
"""

import json

import proxywasm
from proxywasm import Action, HttpContext, RootContext

LIMITS = {"low": 10, "high": 100}
NAMES = ("x", "y", "z")
SEEN = proxywasm.Counter("probe2.seen")
WEIGHTS = {name: i + 1 for i, name in enumerate(NAMES)}
TOTAL_WEIGHT = 0
for _weight in WEIGHTS.values():
    TOTAL_WEIGHT += _weight
CALLS = 0


def count_call(n: int) -> int:
    """Module state changed from a function (``global``)."""
    global CALLS
    CALLS += n
    return CALLS


class ProbeError(ValueError):
    """Raised by :func:`risky` for negative input."""


class Acc:
    """A plain class: fields, methods, ``__bool__``."""

    def __init__(self, start: int) -> None:
        self.total = start
        self.items: list[str] = []

    def add(self, name: str, n: int) -> None:
        self.items.append(name)
        self.total += n

    def __bool__(self) -> bool:
        return self.total != 0


def lists(a: int, b: int, s: str) -> str:
    xs = [a, b, a + b]
    xs.append(len(s))
    ys = [x * 2 for x in xs if x % 3 != 0]
    pairs = [(x, y) for x in xs[:2] for y in NAMES if y != "y"]
    return repr(
        (
            xs,
            ys,
            pairs,
            sorted(xs),
            xs[1:],
            xs[::-1],
            sum(xs),
            max(xs),
            min(xs),
            a in xs,
            xs.index(b),
        )
    )


def dicts(a: int, b: int, s: str) -> str:
    d: dict[str, int] = {"a": a, "b": b}
    d[s] = len(s)
    keys = list(d)
    items = [(k, v) for k, v in d.items()]
    popped = d.pop("a", -1)
    squares = {k: v * v for k, v in d.items() if v % 2 == 0}
    big = {i: i * i for i in range(a % 30)}  # past 8 entries: the hashed index
    for k in list(big):
        if k % 3 == 0:
            del big[k]
    big[b % 30] = -1
    words = {w: n for n, w in enumerate(s.split() * 3)}
    return repr(
        (
            keys,
            items,
            popped,
            d,
            d.get("zz", 0),
            "b" in d,
            squares,
            big,
            big.get(7),
            b % 30 in big,
            True in big,
            2.0 in big,
            words,
            sorted(set(s * 3)),
        )
    )


def strs(a: int, s: str) -> str:
    parts = s.split(",")
    first = s[0] if s else ""
    return repr(
        (
            s.upper(),
            s.lower(),
            s.strip(),
            s.split(),
            parts,
            "-".join(parts),
            s.replace("a", "bb"),
            s.startswith("a"),
            s.endswith(("x", "y")),
            s.find("b"),
            s[1:3],
            s[::-1],
            s[a % 5 :],
            first,
            s.isdigit(),
            [c for c in s][:3],
            s.count("a"),
            s.encode()[:4],
            f"<{s!r}>",
        )
    )


def risky(a: int, b: int) -> int:
    if a < 0:
        raise ProbeError(f"negative {a}")
    if b == 0:
        raise KeyError("b")
    return a // b


def excs(a: int, b: int) -> str:
    log: list[str] = []
    for i in range(3):
        try:
            try:
                log.append(str(risky(a - i, b)))
            finally:
                log.append("finally")
        except ProbeError as exc:
            log.append(f"probe:{exc}")
            if a < -5:
                break
        except LookupError as exc:
            log.append("lookup:" + repr(exc))
            continue
        else:
            log.append("else")
        log.append(f"end{i}")
    return ",".join(log)


def classes(a: int, b: int) -> str:
    acc = Acc(a)
    for i, name in enumerate(NAMES):
        acc.add(name, b * i)
    f = acc.add
    f("w", 1)
    level = "low" if acc.total < LIMITS["low"] else "high" if acc.total > LIMITS["high"] else "mid"
    return repr(
        (
            acc.total,
            acc.items,
            bool(acc),
            level,
            isinstance(acc, Acc),
            0 < a <= b,
            WEIGHTS,
            TOTAL_WEIGHT,
            count_call(a % 3),
        )
    )


def jsons(a: int, b: int, s: str) -> str:
    text = json.dumps({"s": s, "n": [a, b, a / 8], "t": True, "z": None})
    back = json.loads(text)
    compact = json.dumps(back, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    try:
        parsed = json.loads(s)
        kind = type(parsed).__name__
    except ValueError:
        kind = "invalid"
    return repr((text, compact, back == {"s": s, "n": [a, b, a / 8], "t": True, "z": None}, kind))


def iters(a: int, b: int, s: str) -> str:
    xs = [a, b, a - b]
    letters = set(s)
    return repr(
        (
            list(zip(xs, s)),
            any(x > b for x in xs),
            all(x > b for x in xs),
            sorted(letters - {"a"}),
            sorted(letters & set("abc")),
            list(reversed(xs)),
            [i for i in range(a % 7, 10, 3)],
            tuple(x for x in xs if isinstance(x, int)),
        )
    )


class Probe(HttpContext):
    def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
        a = int(self.get_http_request_header("a") or "0")
        b = int(self.get_http_request_header("b") or "0")
        s = self.get_http_request_header("s") or ""
        op = self.get_http_request_header("op") or ""
        SEEN.increment()
        if op == "lists":
            result = lists(a, b, s)
        elif op == "dicts":
            result = dicts(a, b, s)
        elif op == "strs":
            result = strs(a, s)
        elif op == "excs":
            result = excs(a, b)
        elif op == "raise":
            result = str(risky(a, b))
        elif op == "classes":
            result = classes(a, b)
        elif op == "jsons":
            result = jsons(a, b, s)
        elif op == "iters":
            result = iters(a, b, s)
        else:
            result = "unknown op " + op
        self.set_http_request_header("x-result", result)
        return Action.CONTINUE


class Root(RootContext):
    def create_http_context(self, context_id: int) -> HttpContext:
        return Probe(context_id, self)


proxywasm.set_root_context(Root)
