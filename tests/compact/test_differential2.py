"""Differential tests of containers, loops, exceptions, classes and JSON (``probe2_filter.py``).

hypothesis draws the inputs; the native filter and its compact module must
agree on every host-visible effect: the action, the headers sent upstream
(``x-result`` holds a ``repr`` of the op's values), the local reply of a
failure, the error entry (its first line, the filter's frames, the
exception), and the counter the filter increments.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from proxywasm import LogLevel
from proxywasm.testing import HostEmulator, load_filter

from .conftest import PROBE2

pytestmark = pytest.mark.slow

probe2 = load_filter(PROBE2)
SETTINGS = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
small = st.integers(-50, 200)
#: str.upper/lower and isdigit are ASCII-only in the compact runtime (docs/compact.md): printable ASCII here.
ascii_text = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=10)
OPS = ["lists", "dicts", "strs", "excs", "raise", "classes", "jsons", "iters"]


def _exception_line(line: str) -> str:
    """``<module>.ProbeError: x`` -> ``ProbeError: x``: the native module's name is the loader's."""
    return re.sub(r"^[\w.]+\.(\w+(?::|$))", r"\1", line)


def _effects(host: HostEmulator, headers: list[tuple[str, str]]) -> tuple[object, ...]:
    before = len(host.get_logs(LogLevel.ERROR))
    ctx = host.initialize_http_context()
    action = host.call_on_request_headers(ctx, headers, end_of_stream=True)
    reply = host.get_sent_local_response(ctx)
    errors = []
    for entry in host.get_logs(LogLevel.ERROR)[before:]:
        lines = entry.splitlines()
        frames = [ln.strip() for ln in lines if ln.startswith("  File ") and str(PROBE2) in ln]
        errors.append((lines[0].split("(context")[0], frames, _exception_line(lines[-1])))
    host.complete_http_context(ctx)
    return (
        int(action),
        host.get_current_request_headers(ctx),
        None if reply is None else (reply.status_code, reply.headers, reply.body),
        errors,
        host.get_metric("probe2.seen"),
    )


@pytest.fixture(scope="module")
def hosts(probe2_wasm: Path) -> list[HostEmulator]:
    hosts = [HostEmulator(probe2.Root), HostEmulator.from_wasm(str(probe2_wasm))]
    for h in hosts:
        assert h.start_vm() and h.start_plugin()
    return hosts


@SETTINGS
@given(op=st.sampled_from(OPS), a=small, b=small, s=ascii_text)
@example(op="raise", a=-3, b=1, s="")
@example(op="raise", a=3, b=0, s="")
@example(op="excs", a=-9, b=0, s="")
@example(op="excs", a=2, b=0, s="")
@example(op="jsons", a=1, b=2, s='{"k": [1, 2.5, null]}')
@example(op="jsons", a=1, b=2, s="[1, 2")
@example(op="strs", a=1, b=0, s=" a,b ,c x")
@example(op="dicts", a=1, b=2, s="a")
def test_containers_agree(hosts: list[HostEmulator], op: str, a: int, b: int, s: str) -> None:
    headers = [("op", op), ("a", str(a)), ("b", str(b)), ("s", s)]
    native, compact = (_effects(h, headers) for h in hosts)
    assert native == compact


@SETTINGS
@given(s=st.text(max_size=8))
@example(s="héllo wörld")
@example(s="𝄞x")
def test_unicode_slicing_and_json_agree(hosts: list[HostEmulator], s: str) -> None:
    """Indexing, slicing, iteration and json.dumps over any code points (not case mapping)."""
    headers = [("op", "jsons"), ("a", "3"), ("b", "4"), ("s", s)]
    native, compact = (_effects(h, headers) for h in hosts)
    assert native == compact


def test_an_uncaught_user_exception_fails_closed_with_its_traceback(
    hosts: list[HostEmulator],
) -> None:
    """The barrier: the error entry names the filter's frames and the exception; the stream gets a 500."""
    compact = _effects(hosts[1], [("op", "raise"), ("a", "-4"), ("b", "1")])
    assert compact[2] is not None and compact[2][0] == 500
    [(head, frames, last)] = compact[3]
    assert head.startswith("python exception in on_http_request_headers")
    assert last == "ProbeError: negative -4"
    source = PROBE2.read_text().splitlines()
    call = source.index("            result = str(risky(a, b))") + 1
    raise_line = source.index('        raise ProbeError(f"negative {a}")') + 1
    assert frames == [
        f'File "{PROBE2}", line {call}, in on_http_request_headers',
        f'File "{PROBE2}", line {raise_line}, in risky',
    ]
