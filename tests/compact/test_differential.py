"""Differential tests: small typed functions compiled by the compact backend vs CPython.

``probe_filter.py`` runs one of its functions on request headers and writes
the result into ``x-result``. hypothesis draws the inputs; the native filter
and its compact module must agree on every host-visible effect: the action,
the headers sent upstream, the local reply of a failure, and the error entry
(its first line, the filter's frames of the traceback, the exception).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from proxywasm import LogLevel
from proxywasm.testing import HostEmulator, load_filter

from .conftest import PROBE

pytestmark = pytest.mark.slow

probe = load_filter(PROBE)
SETTINGS = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

#: Inputs whose results stay inside 64 bits (the compact int's range).
small = st.integers(-(2**30), 2**30)
#: repr() escapes non-printable characters by Unicode category; the compact
#: runtime does that for ASCII only so far (docs/compact.md), so text is printable.
printable = st.text(st.characters(categories=["L", "N", "P", "S"]) | st.just(" "), max_size=8)
OPS = ["arith", "divide", "mixed", "compare", "pick", "loop", "text", "bits", "defaults", "parse"]


def _hosts(wasm: Path) -> list[HostEmulator]:
    hosts = [HostEmulator(probe.Root), HostEmulator.from_wasm(str(wasm))]
    for h in hosts:
        assert h.start_vm() and h.start_plugin()
    return hosts


def _effects(host: HostEmulator, headers: list[tuple[str, str]]) -> tuple[object, ...]:
    before = len(host.get_logs(LogLevel.ERROR))
    ctx = host.initialize_http_context()
    action = host.call_on_request_headers(ctx, headers, end_of_stream=True)
    reply = host.get_sent_local_response(ctx)
    errors = []
    for entry in host.get_logs(LogLevel.ERROR)[before:]:
        lines = entry.splitlines()
        frames = [ln.strip() for ln in lines if ln.startswith("  File ") and str(PROBE) in ln]
        errors.append((lines[0].split("(context")[0], frames, lines[-1]))
    host.complete_http_context(ctx)
    return (
        int(action),
        host.get_current_request_headers(ctx),
        None if reply is None else (reply.status_code, reply.headers, reply.body),
        errors,
    )


@pytest.fixture(scope="module")
def hosts(probe_wasm: Path) -> list[HostEmulator]:
    """One native and one compiled host, shared by the examples (each gets new streams)."""
    return _hosts(probe_wasm)


@SETTINGS
@given(op=st.sampled_from(OPS), a=small, b=small, s=printable)
@example(op="divide", a=7, b=0, s="")
@example(op="parse", a=0, b=0, s=" 1_000 ")
@example(op="parse", a=0, b=0, s="12a")
@example(op="text", a=3, b=0, s="héllo wörld")
@example(op="mixed", a=2**30, b=-(2**30), s="")
def test_functions_agree(hosts: list[HostEmulator], op: str, a: int, b: int, s: str) -> None:
    headers = [("op", op), ("a", str(a)), ("b", str(b)), ("s", s)]
    native, compact = (_effects(h, headers) for h in hosts)
    assert native == compact


@SETTINGS
@given(s=st.text(st.sampled_from("0123456789 _+-x\t"), max_size=12))
def test_int_parsing_agrees(hosts: list[HostEmulator], s: str) -> None:
    headers = [("op", "parse"), ("s", s)]
    native, compact = (_effects(h, headers) for h in hosts)
    assert native == compact


def test_int_overflow_raises_where_cpython_grows(hosts: list[HostEmulator]) -> None:
    """The one intended difference: a 64-bit int raises OverflowError (documented)."""
    headers = [("op", "arith"), ("a", str(2**62)), ("b", "0")]
    native, compact = (_effects(h, headers) for h in hosts)
    assert native[2] is None and dict(native[1])["x-result"] == str(2**62 * 3 - 2**62 % 5)
    assert compact[2] is not None and compact[2][0] == 500
    [(_head, frames, last)] = compact[3]
    assert last.startswith("OverflowError: ")
    source = PROBE.read_text().splitlines()
    call = source.index("            result = str(arith(a, b))") + 1
    body = source.index("    return a * 3 + b // 7 - a % 5 - -b") + 1
    assert frames == [
        f'File "{PROBE}", line {call}, in on_http_request_headers',
        f'File "{PROBE}", line {body}, in arith',
    ]
