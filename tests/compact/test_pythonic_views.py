"""The SDK's Pythonic layer compiled by the compact backend (``pythonic_filter.py``).

``self.request`` / ``self.response`` and their views (``HeaderMap``, ``Body``)
are implemented in the compact runtime's C (``runtime/pw_views.c``) after
``sdk/proxywasm/views.py``. hypothesis draws whole streams with programs of
view operations (reads, writes through the view and through the Rust-named
methods, deletions, bodies, trailers, responses), plugin configurations and
callback results; the native filter and its compact module must agree on
every host-visible effect: actions, headers and trailers as the upstream and
the client get them, bodies, local replies, logs and tracebacks.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from proxywasm import LogLevel
from proxywasm.testing import HostEmulator, load_filter
from proxywasm_compiler.backends.compact import build_compact
from proxywasm_compiler.build import BuildError

HERE = Path(__file__).resolve().parent
FILTER = HERE / "pythonic_filter.py"
PYTHONIC = HERE.parent / "pythonic" / "filter.py"

pythonic = load_filter(FILTER)
SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture(scope="module")
def pythonic_wasm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("compact") / "pythonic.wasm"
    build_compact(FILTER, out)
    return out


def _hosts(wasm: Path, config: bytes | None = b'{"tag": "t1"}') -> list[HostEmulator]:
    return [
        HostEmulator(pythonic.Root, plugin_configuration=config),
        HostEmulator.from_wasm(str(wasm), plugin_configuration=config),
    ]


@pytest.fixture(scope="module")
def hosts(pythonic_wasm: Path) -> list[HostEmulator]:
    """One native and one compact host, started; each example makes new streams."""
    out = _hosts(pythonic_wasm)
    for h in out:
        assert h.start_vm() and h.start_plugin()
    return out


def _logs(host: HostEmulator, before: dict[LogLevel, int]) -> list[object]:
    """New log entries; a traceback is its first line, the filter's frames and the exception."""
    out: list[object] = []
    for level in (LogLevel.INFO, LogLevel.ERROR):
        for entry in host.get_logs(level)[before[level] :]:
            lines = entry.splitlines()
            if len(lines) == 1:
                out.append((int(level), entry))
                continue
            frames = [ln.strip() for ln in lines if ln.startswith("  File ") and str(FILTER) in ln]
            out.append((int(level), lines[0].split("(context")[0], frames, lines[-1]))
    return out


def _stream(host: HostEmulator, s: dict[str, Any]) -> list[object]:
    """Drive one stream; every host-visible effect, in order."""
    before = {lv: len(host.get_logs(lv)) for lv in (LogLevel.INFO, LogLevel.ERROR)}
    ctx = host.initialize_http_context()
    seen: list[object] = []

    def step(what: str, action: object) -> bool:
        reply = host.get_sent_local_response(ctx)
        seen.append((what, int(action) if action is not None else None))
        seen.append(None if reply is None else (reply.status_code, reply.headers, reply.body))
        return reply is None

    headers = [*s["headers"], ("x-ops", json.dumps(s["ops"]))]
    headers += [
        ("x-body-ops", json.dumps(s["body_ops"])),
        ("x-response-ops", json.dumps(s["response_ops"])),
        ("x-trailer-ops", json.dumps(s["trailer_ops"])),
        ("x-return", s["ret"][0]),
        ("x-bad", s["ret"][1]),
    ]
    chunks = s["body"]
    ok = step(
        "request headers", host.call_on_request_headers(ctx, headers, end_of_stream=not chunks)
    )
    seen.append(host.get_current_request_headers(ctx))
    for i, chunk in enumerate(chunks):
        if not ok:
            break
        last = i == len(chunks) - 1 and s["trailers"] is None
        ok = step("request body", host.call_on_request_body(ctx, chunk, end_of_stream=last))
        seen.append(host.get_current_request_body(ctx))
    if ok and s["trailers"] is not None:
        ok = step("request trailers", host.call_on_request_trailers(ctx, s["trailers"]))
        seen.append(host.get_current_request_trailers(ctx))
    if ok:
        ok = step(
            "response headers",
            host.call_on_response_headers(ctx, s["response_headers"], end_of_stream=False),
        )
        seen.append(host.get_current_response_headers(ctx))
    if ok:
        step("response body", host.call_on_response_body(ctx, s["response_body"], True))
        seen.append(host.get_current_response_body(ctx))
    seen.append(_logs(host, before))
    host.complete_http_context(ctx)
    return seen


NAMES = st.sampled_from(["x-a", "X-A", "x-b", "X-b", "x-late", ":path", "content-type", "x-none"])
VALUES = st.text(st.sampled_from("abXY09 -_/é"), max_size=5)
OPS = st.one_of(
    st.tuples(
        st.sampled_from(
            [
                "get",
                "getd",
                "index",
                "del",
                "pop",
                "popd",
                "in",
                "get_all",
                "get_bytes",
                "get_all_bytes",
                "rust_get",
                "rust_remove",
            ]
        ),
        NAMES,
    ),
    st.tuples(
        st.sampled_from(["set", "setb", "add", "setdefault", "update", "rust_set", "replace_all"]),
        NAMES,
        VALUES,
    ),
    st.tuples(
        st.sampled_from(
            ["len", "bool", "iter", "keys", "values", "items", "multi", "method", "clear"]
            + ["dict", "isinstance"]
        )
    ),
    st.tuples(st.just("in"), st.integers(0, 3)),
    st.tuples(st.just("set"), NAMES, st.integers(0, 9)),  # a TypeError from the view
    st.tuples(st.just("boom"), VALUES),  # escapes the callback: traceback and a 500
)
BODY_PIECES = st.sampled_from(
    [
        b"a",
        b"Z",
        b"{",
        b"}",
        b'"',
        b"1",
        b" ",
        b":",
        b"\xc3",
        b"\xa9",
        b"\xff",
        b"\xe2\x82",
        b"[",
        b"]",
    ]
)
BODIES = st.lists(BODY_PIECES, max_size=8).map(b"".join)
BODY_OPS = st.lists(
    st.one_of(
        st.tuples(st.sampled_from(["read", "text", "json", "len"])),
        st.tuples(
            st.sampled_from(["replace", "replace_bytes", "append", "prepend"]),
            st.text(st.sampled_from("ab{}1 é"), max_size=4),
        ),
        st.tuples(st.sampled_from(["replace", "append"]), st.integers(0, 5)),
    ),
    max_size=5,
)
STREAMS = st.fixed_dictionaries(
    {
        "headers": st.lists(st.tuples(NAMES.map(str.lower), VALUES), max_size=4).map(
            lambda pairs: [(":path", "/p?q=1"), (":method", "POST"), *pairs]
        ),
        "ops": st.lists(OPS, max_size=8),
        "body": st.lists(BODIES, max_size=2),
        "body_ops": BODY_OPS,
        "trailers": st.none() | st.lists(st.tuples(NAMES.map(str.lower), VALUES), max_size=3),
        "trailer_ops": st.lists(OPS, max_size=4),
        "response_headers": st.lists(st.tuples(NAMES.map(str.lower), VALUES), max_size=3).flatmap(
            lambda pairs: st.sampled_from(["200", "404", "", "x1", "007"]).map(
                lambda status: [(":status", status), ("server", "envoy"), *pairs]
            )
        ),
        "response_ops": st.lists(OPS, max_size=5),
        "response_body": BODIES,
        "ret": st.sampled_from(
            [("none", ""), ("pause", ""), ("bad", "7"), ("bad", "null"), ("bad", "true")]
            + [("bad", "1.0"), ("bad", '"s"'), ("bad", "0")]
        ),
    }
)


@SETTINGS
@given(s=STREAMS)
@example(
    s={
        "headers": [(":path", "/a"), (":method", "GET"), ("x-a", "1"), ("x-a", "2")],
        "ops": [("add", "X-A", "3"), ("get_all", "x-a"), ("del", "x-a"), ("del", "x-a")],
        "body": [b'{"k": [1', b"]}"],
        "body_ops": [("json",), ("text",), ("prepend", "<"), ("append", ">"), ("read",)],
        "trailers": [("x-b", "t")],
        "trailer_ops": [("items",), ("set", "x-b", "u"), ("multi",)],
        "response_headers": [(":status", "200"), ("server", "envoy")],
        "response_ops": [("rust_get", "x-a"), ("method",)],
        "response_body": b"hi",
        "ret": ("none", ""),
    }
)
@example(
    s={
        "headers": [(":path", "/a"), (":method", "GET")],
        "ops": [("boom", "x")],
        "body": [],
        "body_ops": [],
        "trailers": None,
        "trailer_ops": [],
        "response_headers": [(":status", "200")],
        "response_ops": [],
        "response_body": b"",
        "ret": ("none", ""),
    }
)
def test_views_agree(hosts: list[HostEmulator], s: dict[str, Any]) -> None:
    native, compact = (_stream(h, s) for h in hosts)
    assert native == compact


@SETTINGS
@given(
    body=BODIES,
    ops=st.lists(
        st.one_of(
            st.tuples(st.sampled_from(["text", "read", "len", "json"])),
            st.tuples(st.just("boom"), VALUES),
        ),
        min_size=1,
        max_size=3,
    ),
)
def test_body_decoding_agrees(hosts: list[HostEmulator], body: bytes, ops: list[object]) -> None:
    """``Body.text()`` replaces bad UTF-8 as CPython does; ``json()`` raises as it does."""
    s = {
        "headers": [(":path", "/"), (":method", "PUT")],
        "ops": [],
        "body": [body],
        "body_ops": ops,
        "trailers": None,
        "trailer_ops": [],
        "response_headers": [(":status", "200"), ("x-shout", "1")],
        "response_ops": [],
        "response_body": body,
        "ret": ("none", ""),
    }
    native, compact = (_stream(h, s) for h in hosts)
    assert native == compact


def _configure(host: HostEmulator) -> tuple[object, ...]:
    host.start_vm()
    ok = host.start_plugin()
    errors = []
    for entry in host.get_logs(LogLevel.ERROR):
        lines = entry.splitlines()
        frames = [ln.strip() for ln in lines if ln.startswith("  File ") and str(FILTER) in ln]
        errors.append((lines[0].split("(context")[0], frames, lines[-1]))
    return ok, errors


CONFIGS = st.one_of(
    st.none(),
    st.sampled_from([b"", b"  \n", b"{", b'{"tag": 1}', b"[1, 2]", b"\xff{}", b'"s"', b"nul"]),
    st.sampled_from([b'{"tag": "crash"}', b'{"tag": "a"} x', b'{"a":\n  }', b"\xef\xbb\xbf{}"]),
    st.dictionaries(
        st.sampled_from(["tag", "x"]), st.text(max_size=3) | st.integers(-(2**40), 2**40)
    ).map(lambda d: json.dumps(d).encode()),
)


@settings(max_examples=60, deadline=None)
@given(config=CONFIGS)
def test_configuration_agrees(pythonic_wasm: Path, config: bytes | None) -> None:
    """``get_plugin_configuration_json()`` and ``ConfigError`` as the native dispatcher has them."""
    native, compact = (_configure(h) for h in _hosts(pythonic_wasm, config))
    assert native == compact


def test_config_error_is_one_line(pythonic_wasm: Path) -> None:
    """The documented shape: one error line, no traceback, on_configure answers False."""
    for host in _hosts(pythonic_wasm, b"[1]"):
        host.start_vm()
        assert host.start_plugin() is False
        assert host.get_logs(LogLevel.ERROR) == [
            "on_configure rejected the configuration: expected a JSON object, got list"
        ]


def test_bad_callback_result_is_a_type_error(hosts: list[HostEmulator]) -> None:
    """A result that is no action fails closed with the dispatcher's message, both ways."""
    for host in hosts:
        ctx = host.initialize_http_context()
        headers = [(":path", "/"), (":method", "GET"), ("x-return", "bad"), ("x-bad", '"s"')]
        host.call_on_request_headers(ctx, headers, end_of_stream=True)
        reply = host.get_sent_local_response(ctx)
        assert reply is not None and reply.status_code == 500
        last = host.get_logs(LogLevel.ERROR)[-1].splitlines()[-1]
        assert last == (
            "TypeError: Gate.on_http_request_headers returned 's'; "
            "return Action.CONTINUE or Action.PAUSE"
        )
        host.complete_http_context(ctx)


def test_views_module_is_small(pythonic_wasm: Path) -> None:
    """The views are C in the runtime, not an interpreter: the module stays compact-sized."""
    assert pythonic_wasm.stat().st_size < 160_000


ASYNC_REFUSED = {
    "an async helper": (
        "    async def helper(self) -> None:\n        await self.http_call('a')\n",
        "awaits elsewhere are not compiled yet",
    ),
    "an await in a for loop": (
        (
            "    async def on_http_request_headers(self, n: int, eos: bool) -> None:\n"
            "        for _ in range(2):\n            await self.http_call('a')\n"
        ),
        "an await in a for loop (use while)",
    ),
    "an await in an expression": (
        (
            "    async def on_http_request_headers(self, n: int, eos: bool) -> None:\n"
            "        print((await self.http_call('a')).status)\n"
        ),
        "an await inside an expression",
    ),
}


@pytest.mark.parametrize("case", sorted(ASYNC_REFUSED))
def test_async_outside_the_subset_names_the_way_out(tmp_path: Path, case: str) -> None:
    """What the state machines do not cover fails the build at file:line, naming --backend cpython."""
    body, message = ASYNC_REFUSED[case]
    source = tmp_path / "f.py"
    source.write_text(
        "import proxywasm\nfrom proxywasm import HttpContext, RootContext\n\n\n"
        f"class Gate(HttpContext):\n{body}\n\n"
        "class Root(RootContext):\n    http_context = Gate\n\n\n"
        "proxywasm.set_root_context(Root)\n"
    )
    with pytest.raises(BuildError) as err:
        build_compact(source, tmp_path / "f.wasm")
    text = str(err.value)
    assert f"{source}:" in text and message in text, text
    assert "--backend cpython" in text
    assert not (tmp_path / "f.wasm").exists()
