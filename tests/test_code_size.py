"""The rules that keep the cpython backend's code small (dce.py, link.py).

Each rule is checked on a small module: what it keeps, what it drops, and that
what it keeps still runs. The method pruning is checked on a module linked
with zig's wasm-ld and its relocations, as the build does.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import wasmtime
from proxywasm_compiler import dce, link
from proxywasm_compiler.toolchain import get_toolchain
from proxywasm_compiler.wasmbin import SEC_CODE, parse_module, read_uleb


def _instance(wasm: bytes) -> tuple[wasmtime.Store, wasmtime.Instance]:
    engine = wasmtime.Engine()
    store = wasmtime.Store(engine)
    return store, wasmtime.Instance(store, wasmtime.Module(engine, wasm), [])


def _call(wasm: bytes, name: str, *args: int) -> object:
    store, inst = _instance(wasm)
    func = inst.exports(store)[name]
    assert isinstance(func, wasmtime.Func)
    return func(store, *args)


def _bodies(wasm: bytes) -> list[bytes]:
    info = parse_module(wasm)
    code = info.section(SEC_CODE)
    assert code is not None
    n, p = read_uleb(wasm, code.start)
    out = []
    for _ in range(n):
        size, p = read_uleb(wasm, p)
        out.append(wasm[p : p + size])
        p += size
    return out


def _body_of(wasm: bytes, names: dict[int, str], name: str) -> bytes:
    index = next(i for i, n in names.items() if n == name)
    return _bodies(wasm)[index]  # no imported functions in these modules


# --- stubs: functions a module never runs after the snapshot ----------------------

STUB_WAT = """
(module
  (func $pw_trimmed unreachable)
  (func $finalize_only (result i32) i32.const 99)
  (func $Py_FinalizeEx (result i32) call $finalize_only)
  (func $shared (result i32) i32.const 5)
  (func $Py_EndInterpreter (param i32) call $shared drop)
  (func (export "exit") (result i32) call $Py_FinalizeEx)
  (func (export "work") (result i32) call $shared)
  (func (export "end") (param i32) local.get 0 call $Py_EndInterpreter)
)
"""


def test_a_stub_calls_the_trap_function_and_what_only_it_reached_goes() -> None:
    wasm = bytes(wasmtime.wat2wasm(STUB_WAT))
    names = dce.function_names(wasm, parse_module(wasm))
    assert {"Py_FinalizeEx", "pw_trimmed", "finalize_only"} <= set(names.values())
    result = dce.strip_unreachable(wasm, fold=False, compact=False)
    assert result.stubbed == ("Py_EndInterpreter", "Py_FinalizeEx")
    trap = next(i for i, n in names.items() if n == dce.TRAP_FUNCTION)
    # no locals, call pw_trimmed, unreachable, end
    assert (
        _body_of(result.wasm, names, "Py_FinalizeEx") == b"\x00\x10" + bytes([trap]) + b"\x00\x0b"
    )
    assert _body_of(result.wasm, names, "finalize_only") == b"\x00\x00\x0b"  # emptied
    # still reached from "work": kept although the stubbed Py_EndInterpreter called it too
    assert _body_of(result.wasm, names, "shared") == _body_of(wasm, names, "shared")
    assert _call(result.wasm, "work") == 5
    with pytest.raises(wasmtime.Trap):
        _call(result.wasm, "exit")


def test_the_safe_switch_keeps_the_stubbed_functions(monkeypatch: pytest.MonkeyPatch) -> None:
    wasm = bytes(wasmtime.wat2wasm(STUB_WAT))
    monkeypatch.setenv(dce.TRIM_ENV, "safe")
    result = dce.strip_unreachable(wasm, fold=False, compact=False)
    assert result.stubbed == ()
    assert _call(result.wasm, "exit") == 99


def test_no_stub_without_the_trap_function() -> None:
    wat = STUB_WAT.replace("$pw_trimmed", "$other_name")
    result = dce.strip_unreachable(bytes(wasmtime.wat2wasm(wat)), fold=False, compact=False)
    assert result.stubbed == ()
    assert _call(result.wasm, "exit") == 99


def test_the_linker_custom_sections_are_dropped_after_the_pass() -> None:
    wasm = bytes(wasmtime.wat2wasm(STUB_WAT))
    assert dce.function_names(wasm, parse_module(wasm))
    result = dce.strip_unreachable(wasm)
    assert dce.function_names(result.wasm, parse_module(result.wasm)) == {}
    kept = dce.strip_unreachable(wasm, strip_names=False, compact=False)
    assert dce.function_names(kept.wasm, parse_module(kept.wasm))
    # renumbered functions: a name section would lie, so it goes anyway
    compacted = dce.strip_unreachable(wasm, strip_names=False)
    assert compacted.removed > 0
    assert dce.function_names(compacted.wasm, parse_module(compacted.wasm)) == {}


# --- identical code folding ---------------------------------------------------------

FOLD_WAT = """
(module
  (type $t (func (param i32) (result i32)))
  (table 2 funcref)
  (elem (i32.const 0) $twin_in_table $other)
  (func $leaf_a (param i32) (result i32) local.get 0 i32.const 3 i32.mul)
  (func $leaf_b (param i32) (result i32) local.get 0 i32.const 3 i32.mul)
  (func $calls_a (param i32) (result i32) local.get 0 call $leaf_a i32.const 1 i32.add)
  (func $calls_b (param i32) (result i32) local.get 0 call $leaf_b i32.const 1 i32.add)
  (func $twin_in_table (param i32) (result i32) local.get 0 i32.const 3 i32.mul)
  (func $other (param i32) (result i32) local.get 0 i32.const 4 i32.mul)
  (func $exported_twin (export "twin") (param i32) (result i32) local.get 0 i32.const 3 i32.mul)
  (func (export "f") (param i32) (result i32)
    local.get 0 call $calls_a
    local.get 0 call $calls_b i32.add
    local.get 0 i32.const 0 call_indirect (type $t) i32.add
    local.get 0 i32.const 1 call_indirect (type $t) i32.add)
)
"""


def test_identical_functions_are_folded_and_still_compute_the_same() -> None:
    wasm = bytes(wasmtime.wat2wasm(FOLD_WAT))
    names = dce.function_names(wasm, parse_module(wasm))
    result = dce.strip_unreachable(wasm, compact=False)
    # leaf_b = leaf_a; then calls_b = calls_a (same code once its call is read
    # as a call of leaf_a); twin_in_table and exported_twin = leaf_a.
    assert result.merged == 4
    assert _body_of(result.wasm, names, "leaf_b") == b"\x00\x00\x0b"
    assert _body_of(result.wasm, names, "calls_b") == b"\x00\x00\x0b"
    # its table entry now holds leaf_a (its slot, the C pointer, is unchanged)
    assert _body_of(result.wasm, names, "twin_in_table") == b"\x00\x00\x0b"
    leaf_a = next(i for i, n in names.items() if n == "leaf_a")
    # an export keeps its function: a forwarding call
    assert (
        _body_of(result.wasm, names, "exported_twin")
        == b"\x00\x20\x00\x10" + bytes([leaf_a]) + b"\x0b"
    )
    assert _body_of(result.wasm, names, "other") == _body_of(wasm, names, "other")
    assert _call(result.wasm, "twin", 5) == 15
    for x in (0, 1, 7, -3):
        assert _call(result.wasm, "f", x) == _call(wasm, "f", x)
    unfolded = dce.strip_unreachable(wasm, fold=False, compact=False)
    assert unfolded.merged == 0 and unfolded.code_after > result.code_after


def _function_count(wasm: bytes) -> int:
    return len(_bodies(wasm))


def test_dead_functions_leave_the_module_and_every_index_is_renumbered() -> None:
    wasm = bytes(wasmtime.wat2wasm(FOLD_WAT))
    emptied = dce.strip_unreachable(wasm, compact=False)
    compacted = dce.strip_unreachable(wasm)
    # leaf_b, calls_b and twin_in_table are gone, not emptied
    assert compacted.removed == emptied.emptied == 3
    assert _function_count(compacted.wasm) == _function_count(wasm) - 3
    assert compacted.code_after < emptied.code_after
    for x in (0, 1, 7, -3):  # calls, call_indirect through the table, exports
        assert _call(compacted.wasm, "f", x) == _call(wasm, "f", x)
    assert _call(compacted.wasm, "twin", 5) == 15
    stubs = dce.strip_unreachable(bytes(wasmtime.wat2wasm(STUB_WAT)))
    assert stubs.removed == 1  # finalize_only; the stubs call pw_trimmed, renumbered
    assert _call(stubs.wasm, "work") == 5
    with pytest.raises(wasmtime.Trap):
        _call(stubs.wasm, "exit")


# --- table slots (opt-in) -----------------------------------------------------------

SLOTS_WAT = """
(module
  (type $t (func (result i32)))
  (memory 1)
  (table 4 funcref)
  (elem (i32.const 1) $stored $unused $const_in_code)
  (data (i32.const 16) "\\01\\00\\00\\00")
  (func $stored (result i32) i32.const 10)
  (func $unused (result i32) i32.const 20)
  (func $const_in_code (result i32) i32.const 30)
  (func (export "f") (result i32)
    (call_indirect (type $t) (i32.load (i32.const 16)))
    (call_indirect (type $t) (i32.const 3)) i32.add)
)
"""


def test_table_entries_stay_when_their_slot_is_stored_or_used() -> None:
    wasm = bytes(wasmtime.wat2wasm(SLOTS_WAT))
    names = dce.function_names(wasm, parse_module(wasm))
    tracked = dce.strip_unreachable(wasm, keep_table=False, fold=False, compact=False)
    assert tracked.table_rule.startswith("table entries kept when")
    assert _body_of(tracked.wasm, names, "unused") == b"\x00\x00\x0b"
    assert _body_of(tracked.wasm, names, "stored") == _body_of(wasm, names, "stored")
    assert _body_of(tracked.wasm, names, "const_in_code") == _body_of(wasm, names, "const_in_code")
    assert _call(tracked.wasm, "f") == 40
    # a dead function still in the table cannot be taken out: emptied in place instead
    kept_in_place = dce.strip_unreachable(wasm, keep_table=False, fold=False)
    assert kept_in_place.removed == 0 and kept_in_place.emptied == 1
    assert _call(kept_in_place.wasm, "f") == 40
    whole = dce.strip_unreachable(wasm, keep_table=True, fold=False, compact=False)
    assert _body_of(whole.wasm, names, "unused") == _body_of(wasm, names, "unused")


def test_a_table_write_keeps_the_whole_table() -> None:
    wat = SLOTS_WAT.replace(
        '(func (export "f") (result i32)',
        '(func (export "g") (table.set (i32.const 0) (ref.func $stored)))\n'
        '  (func (export "f") (result i32)',
    ).replace("(elem (i32.const 1)", "(elem declare func $stored)\n  (elem (i32.const 1)")
    wasm = bytes(wasmtime.wat2wasm(wat))
    names = dce.function_names(wasm, parse_module(wasm))
    result = dce.strip_unreachable(wasm, keep_table=False, fold=False, compact=False)
    assert "writes a table" in result.table_rule
    assert _body_of(result.wasm, names, "unused") == _body_of(wasm, names, "unused")


# --- the names Python code can look up ----------------------------------------------

#: marshal.dumps (CPython 3.11) of the code of:
#:   """Docstring mentions numeric."""
#:   import os
#:   x = getattr(os, "getcwd")
#:   y = "not a name!"
#:   z = "os.path.join"
#:   big = 2**100  (a long constant: its digits must be skipped exactly)
#:   def f(a):
#:       return a.rsplit()
MARSHALLED = bytes.fromhex(
    "630000000000000000000000000400000000000000f342000000970064005a00640164026c015a010200"
    "650265016403a6020000ab0200000000000000005a0364045a0464055a05640664077a0800005a066408"
    "84005a076402530029097a1b446f63737472696e67206d656e74696f6e73206e756d657269632ee90000"
    "00004eda066765746377647a0b6e6f742061206e616d65217a0c6f732e706174682e6a6f696ee9020000"
    "00e964000000630100000000000000000000000200000003000000f32a00000097007c00a00000000000"
    "00000000000000000000000000000000a6000000ab000000000000000000530029014e2901da06727370"
    "6c69742901da0161730100000020fa046d2e7079da016672090000000700000073100000008000d80b0c"
    "8f388a38893a8c3ad00415f3000000002908da075f5f646f635f5fda026f73da0767657461747472da01"
    "78da0179da017ada036269677209000000a900720a0000007208000000fa083c6d6f64756c653e721300"
    "0000010000007351000000f003010101d80021d00021d80009800980098009d8040b804788429008d104"
    "19d404198001d804118001d804128001d80607881381668003f002010116f000010116f000010116f000"
    "010116f000010116720a000000"
)


def test_code_names_reads_looked_up_names_and_name_like_constants_not_text() -> None:
    names = dce.code_names(MARSHALLED)
    assert {"os", "getattr", "getcwd", "rsplit", "path", "join"} <= names
    assert "etcwd" not in names  # parsed, not the fallback's every substring
    assert not {"x", "big", "f", "a"} & names  # only stored, or local: looked up by nothing
    assert "numeric" not in names  # only in the docstring
    assert "not" not in names and "name" not in names  # a message, not a name


def test_code_names_falls_back_to_every_run_of_letters_on_a_broken_stream() -> None:
    for broken in (b"\x01" + MARSHALLED[1:], MARSHALLED + b"z\x03abc", MARSHALLED[:-60]):
        assert {"getcwd", "rsplit", "numeric"} <= dce.code_names(broken)


def test_source_names_skips_docstrings_and_messages() -> None:
    src = b'"""Mentions numeric."""\nimport a.b as c\ndef g(k, *, w):\n    """Doc."""\n    return k.attr(w=1, q="x.y"), "some text"\n'
    names = dce.source_names(src)
    assert {"a", "b", "c", "g", "k", "w", "attr", "q", "x", "y"} <= names
    assert "numeric" not in names and "Doc" not in names and "some" not in names


# --- method pruning (relocations of a real link) ------------------------------------

METHODS_C = r"""
typedef int (*meth2)(int, int);
struct def { const char *name; void *meth; int flags; const char *doc; };

int pw_left_out_2(int a, int b) { return -2; }
int pw_left_out_3(int a, int b, int c) { return -3; }
int pw_left_out_4(int a, int b, int c, int d) { return -4; }
int pw_left_out_5(int a, int b, int c, int d, int e) { return -5; }
__attribute__((used)) void *const pw_left_out_table[] = {
    (void *)pw_left_out_2, (void *)pw_left_out_3, (void *)pw_left_out_4, (void *)pw_left_out_5};

static int used_m(int s, int a) { return 1; }
static int unused_m(int s, int a) { return 2; }
static int dunder_m(int s, int a) { return 3; }
static int also_in_code(int s, int a) { return 4; }
static int fast_m(int s, int a, int n) { return 5; }

struct def methods[] = {
    {"used_name", (void *)used_m, 0x8, 0},
    {"unused_name", (void *)unused_m, 0x4, "doc"},
    {"__dunder__", (void *)dunder_m, 0x8, 0},
    {"in_code", (void *)also_in_code, 0x8, 0},
    {"fast_unused", (void *)fast_m, 0x80, 0},
    {0, 0, 0, 0},
};
volatile meth2 keep_pointer;

__attribute__((export_name("call2"))) int call2(int i) {
    keep_pointer = also_in_code;  /* another pointer to it: its table entry stays */
    return ((meth2)methods[i].meth)(0, 0);
}
__attribute__((export_name("call3"))) int call3(int i) {
    return ((int (*)(int, int, int))methods[i].meth)(0, 0, 0);
}
"""


def test_unnamed_methods_are_replaced_and_their_functions_leave_the_table(
    tmp_path: Path,
) -> None:
    tc = get_toolchain()
    src = tmp_path / "m.c"
    src.write_text(METHODS_C)
    obj = tmp_path / "m.o"
    out = tmp_path / "m.wasm"
    subprocess.run(
        tc.zig_cmd("cc", "-target", "wasm32-wasi", "-O2", "-c", src, "-o", obj), check=True
    )
    subprocess.run(
        tc.zig_cmd("wasm-ld", "--no-entry", "--emit-relocs", "--strip-debug", obj, "-o", out),
        check=True,
    )
    wasm = out.read_bytes()
    assert _call(wasm, "call2", 1) == 2
    result = dce.prune_methods(wasm, {"used_name"})
    assert result.skipped == ""
    assert result.methods == 5
    assert result.replaced == ("fast_unused", "in_code", "unused_name")
    # unused_m and fast_m leave the table; also_in_code's address is taken in code
    assert result.slots_freed == 2
    assert [_call(result.wasm, "call2", i) for i in range(4)] == [1, -2, 3, -2]
    assert _call(result.wasm, "call3", 4) == -3
    assert b"reloc.CODE" not in result.wasm and b"linking" not in result.wasm
    # after the snapshot, the trim pass finds unused_m and fast_m unreachable
    names = dce.function_names(result.wasm, parse_module(result.wasm))
    trimmed = dce.strip_unreachable(result.wasm, fold=False, compact=False)
    assert _body_of(trimmed.wasm, names, "unused_m") == b"\x00\x00\x0b"
    assert _body_of(trimmed.wasm, names, "fast_m") == b"\x00\x00\x0b"
    assert _body_of(trimmed.wasm, names, "also_in_code") != b"\x00\x00\x0b"


def test_python_names_cover_the_interpreter_s_own_frozen_modules() -> None:
    names = link.python_names(get_toolchain(), [])
    # importlib's bootstrap (frozen by libpython) calls these; _Py_ID names too
    assert {"_abc_init", "rpartition", "is_frozen", "__import__", "flush"} <= names
