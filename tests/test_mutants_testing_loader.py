"""load_filter / filter_roots: the cases the mutation run of testing/loader.py found untested."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import proxywasm
import pytest
from proxywasm import RootContext, dispatcher
from proxywasm.testing import filter_roots, load_filter
from proxywasm_compiler import grammar

PEP695 = Path(__file__).resolve().parent / "componentize" / "pep695" / "filter.py"

ROOT_ONLY = """\
import proxywasm
from proxywasm import RootContext
{extra}
class Root(RootContext):
    pass

proxywasm.set_root_context(Root)
"""


def _filter(folder: Path, extra: str = "", name: str = "filter.py") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(ROOT_ONLY.format(extra=extra))
    return path


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no filter file at .*nope.py"):
        load_filter(tmp_path / "nope.py")


def test_a_file_python_cannot_import_is_an_import_error(tmp_path: Path) -> None:
    path = _filter(tmp_path, name="filter.txt")  # no loader for the suffix: no spec
    with pytest.raises(ImportError, match="cannot import .*filter.txt"):
        load_filter(path)


def test_the_filters_own_helper_wins_over_the_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A same-named module first on sys.path must not shadow the helper beside filter.py.
    other = tmp_path / "elsewhere"
    other.mkdir()
    (other / "mt_helper_x.py").write_text("NAME = 'elsewhere'\n")
    monkeypatch.syspath_prepend(str(other))
    folder = tmp_path / "f"
    path = _filter(folder, extra="import mt_helper_x\nNAME = mt_helper_x.NAME\n")
    (folder / "mt_helper_x.py").write_text("NAME = 'beside'\n")
    module = load_filter(path)
    assert module.NAME == "beside"
    assert "mt_helper_x" not in sys.modules


def test_a_new_module_without_a_file_stays_imported(tmp_path: Path) -> None:
    # A module without __file__ (a builtin, one built at import) is not a helper beside the filter.
    extra = "import sys, types\nsys.modules['mt_fileless_x'] = types.ModuleType('mt_fileless_x')\n"
    try:
        load_filter(_filter(tmp_path, extra=extra))
        assert "mt_fileless_x" in sys.modules
    finally:
        sys.modules.pop("mt_fileless_x", None)


def test_roots_registered_before_are_not_the_filters(tmp_path: Path) -> None:
    class Elsewhere(RootContext):
        pass

    saved = dispatcher.registered_roots()
    proxywasm.set_root_context(Elsewhere, root_id="mt-elsewhere")
    try:
        module = load_filter(_filter(tmp_path))
        assert list(filter_roots(module)) == [None]
        assert dispatcher.registered_roots()["mt-elsewhere"] is Elsewhere
    finally:
        dispatcher._registry.clear()
        dispatcher._registry.update(saved)


def test_filter_roots_refuses_a_module_not_loaded_by_load_filter() -> None:
    with pytest.raises(TypeError, match="mt_plain was not loaded with proxywasm.testing"):
        filter_roots(types.ModuleType("mt_plain"))


def test_a_syntax_error_without_a_file_is_left_alone(tmp_path: Path) -> None:
    path = _filter(tmp_path, extra="raise SyntaxError('made up at import')\n")
    with pytest.raises(SyntaxError) as info:
        load_filter(path)
    assert info.value.msg == "made up at import"


needs_311 = pytest.mark.skipif(sys.version_info >= (3, 12), reason="the 3.11 refusal path")


@needs_311
def test_the_newer_syntax_message_in_full() -> None:
    with pytest.raises(SyntaxError) as info:
        load_filter(PEP695)
    version = ".".join(map(str, sys.version_info[:3]))
    assert info.value.msg.endswith(
        f"needs Python 3.12 or newer to run natively, and this is Python {version}: "
        "run the native tests on Python >= 3.12, or build the filter with `proxywasm build "
        "--backend componentize-py` (CPython 3.14) and test the compiled module with "
        "HostEmulator.from_wasm"
    )


@needs_311
def test_without_libcst_the_failing_line_names_the_construct(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(grammar, "_libcst", lambda: None)
    with pytest.raises(SyntaxError) as info:
        load_filter(PEP695)
    assert "needs Python 3.12 or newer" in info.value.msg
    assert info.value.lineno == 13


@pytest.mark.parametrize("version", [(3, 12, 0, "final", 0), (3, 13, 1, "final", 0)])
def test_on_312_and_later_a_syntax_error_is_not_rewritten(
    monkeypatch: pytest.MonkeyPatch, version: tuple[object, ...]
) -> None:
    # PEP 695 fails on this 3.11 parser; told it is 3.12+, the loader must not blame the version.
    if sys.version_info >= (3, 12):
        pytest.skip("PEP 695 parses natively here")
    monkeypatch.setattr(sys, "version_info", version)
    with pytest.raises(SyntaxError) as info:
        load_filter(PEP695)
    assert "needs Python 3.12" not in (info.value.msg or "")
