"""The generated C glue, checked for what it does (fast tier, no wasm build).

``test_glue_generation.py`` checks that every name is there. These tests read
each generated function and check its meaning: an export dispatches to the
callback its index names, every object the glue makes is released, every
host output is read only when the host said OK and is freed, and a stream
callback whose dispatcher call failed fails closed from C.
"""

from __future__ import annotations

import re
from typing import Any

import proxywasm_abi
import pytest
from proxywasm_compiler.glue import render_glue

ABI = proxywasm_abi.load()
SRC = render_glue()


def _body(start: str) -> str:
    """The text of the C function whose definition begins with ``start``."""
    i = SRC.index(start)
    end = SRC.index("\n}\n", i)
    return SRC[i:end]


def _callback_names() -> list[str]:
    m = re.search(r"pw_callback_names\[PW_NUM_CALLBACKS\] = \{\n(.*?)\n\};", SRC, re.DOTALL)
    assert m, "the callback name table is missing"
    return re.findall(r'"(\w+)"', m.group(1))


def _callback_body(name: str) -> str:
    return _body(f'__attribute__((export_name("{name}")))\n')


def test_the_name_table_lists_every_callback_once() -> None:
    names = _callback_names()
    assert sorted(names) == sorted(fn.name for fn in ABI.callbacks)
    assert len(set(names)) == len(names)
    (count,) = re.findall(r"#define PW_NUM_CALLBACKS (\d+)", SRC)
    assert int(count) == len(names)


@pytest.mark.parametrize("fn", ABI.callbacks, ids=lambda fn: fn.name)
def test_each_export_dispatches_to_the_callback_its_index_names(fn: Any) -> None:
    name = fn.name
    (index,) = re.findall(r"pw_dispatch\((\d+),", _callback_body(name))
    assert _callback_names()[int(index)] == name


@pytest.mark.parametrize("fn", ABI.callbacks, ids=lambda fn: fn.name)
def test_each_export_releases_every_reference_it_makes(fn: Any) -> None:
    body = _callback_body(fn.name)
    n = len(fn.params)
    made = re.findall(r"PyLong_FromUnsignedLong\(a(\d+)\)", body)
    assert made == [str(i) for i in range(n)], "one argument object per parameter, in order"
    for i in range(n):
        assert body.count(f"Py_XDECREF(argv[{i}]);") == 1, f"argv[{i}] released once"
    dispatch = body.index("pw_dispatch(")
    # The result is released on every path that returns after the dispatch.
    tail = body[dispatch:]
    returns = [m.start() for m in re.finditer(r"\breturn\b", tail)]
    release = tail.find("Py_XDECREF(r);")
    assert release != -1, "the dispatcher's result is released"
    for at in returns:
        line = tail[tail.rfind("\n", 0, at) : tail.find("\n", at)]
        if "pw_fail_" in line:
            assert "r == NULL" in line, "only a NULL result (nothing to release) skips the release"
        else:
            assert at > release, f"return before releasing the result: {line.strip()}"


STREAM_CALLBACKS = [
    f"proxy_on_{d}_{p}" for d in ("request", "response") for p in ("headers", "body", "trailers")
]
TCP_CALLBACKS = ["proxy_on_new_connection", "proxy_on_downstream_data", "proxy_on_upstream_data"]


@pytest.mark.parametrize("name", STREAM_CALLBACKS)
def test_http_callbacks_fail_closed_from_c(name: str) -> None:
    body = _callback_body(name)
    assert "if (r == NULL) return pw_fail_http(a0);" in body
    fail = _body("static uint32_t pw_fail_http(")
    assert "proxy_send_local_response(" in fail and "PW_FAIL_STATUS" in fail
    assert "return 1; /* PAUSE */" in fail


@pytest.mark.parametrize("name", TCP_CALLBACKS)
def test_tcp_callbacks_close_the_connection_from_c(name: str) -> None:
    assert "if (r == NULL) return pw_fail_tcp(a0);" in _callback_body(name)
    assert "proxy_close_stream(" in _body("static uint32_t pw_fail_tcp(")


def test_the_c_reply_is_the_dispatchers_reply() -> None:
    (status,) = re.findall(r"#define PW_FAIL_STATUS (\d+)", SRC)
    assert int(status) == 500


def test_on_done_defaults_to_finished() -> None:
    # A context Python could not answer for must still be released by the host.
    assert "uint32_t value = 1;" in _callback_body("proxy_on_done")


def test_the_last_resort_does_not_allocate() -> None:
    body = _body("static void pw_log_failure(")
    for allocating in ("PyErr_Print", "PyErr_Display", "malloc", "PyUnicode_", "PyObject_Str"):
        assert allocating not in body
    assert "proxy_log(4," in body  # one entry at ERROR


def _wrapper(name: str) -> str:
    return _body(f"static PyObject *w_{name}(")


@pytest.mark.parametrize(
    "fn",
    [fn for fn in ABI.proxy_imports if "out0" in _wrapper(fn.name)],
    ids=lambda fn: fn.name,
)
def test_host_outputs_are_read_only_on_ok_and_freed(fn: Any) -> None:
    body = _wrapper(fn.name)
    outs = sorted(set(re.findall(r"\b(out\d+)\b", body)))
    buffers = [o for o in outs if re.search(rf"uint8_t \*{o} = NULL", body)]
    for out in buffers:
        reads = re.findall(rf"PyBytes_FromStringAndSize\(\(const char \*\){out}, ([^;]*)\)", body)
        assert reads, f"{out} becomes bytes"
        for size in reads:
            assert size.startswith(f"status == 0 && {out} ?"), f"{out} read without status check"
        assert f"free({out});" in body, f"{out} freed"
        # The free is on the path every exit takes.
        assert body.index(f"free({out});") > body.index("done:")


def test_every_import_checks_its_arity_before_reading_arguments() -> None:
    for fn in ABI.proxy_imports:
        body = _wrapper(fn.name)
        arity = body.index("pw_arity(")
        first_read = body.find("args[0]")
        assert first_read == -1 or arity < first_read, fn.name
