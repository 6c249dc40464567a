"""Rules of the import closure, on small filter trees (no toolchain needed: the host stdlib)."""

from __future__ import annotations

import _imp
import importlib.machinery
import sys
import sysconfig
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from proxywasm_compiler.closure import Closure, ClosureError, resolve_closure

STDLIB = Path(sysconfig.get_paths()["stdlib"])
# As the build probes the wasm libpython: built-in and frozen modules; the
# host keeps some C modules the wasm one links in lib-dynload.
BUILTINS = (
    frozenset(sys.builtin_module_names)
    | frozenset(_imp._frozen_module_names())  # type: ignore[attr-defined]
    | frozenset(p.name.split(".")[0] for p in (STDLIB / "lib-dynload").glob("*.so"))
)

PLAIN = """
import proxywasm
from proxywasm import RootContext

class Root(RootContext):
    pass

proxywasm.set_root_context(Root)
"""


def closure_of(tmp_path: Path, source: str, **local: str) -> set[str]:
    (tmp_path / "my_filter.py").write_text(source)
    for name, text in local.items():
        (tmp_path / f"{name}.py").write_text(text)
    _, closure = resolve_closure(tmp_path / "my_filter.py", STDLIB, BUILTINS)
    return set(closure.modules)


def test_the_sdks_lazy_json_is_not_frozen_unless_the_filter_mentions_it(tmp_path: Path) -> None:
    modules = closure_of(tmp_path, PLAIN)
    assert "proxywasm.contexts" in modules
    assert "json" not in modules


def test_get_plugin_configuration_json_freezes_json(tmp_path: Path) -> None:
    source = PLAIN.replace(
        "    pass",
        "    def on_configure(self, n: int) -> bool:\n"
        "        return self.get_plugin_configuration_json() is not None",
    )
    modules = closure_of(tmp_path, source)
    assert {"json", "json.decoder"} <= modules


def test_a_mention_in_a_module_read_after_the_sdk_counts_too(tmp_path: Path) -> None:
    # my_filter -> mid -> helper: the SDK's modules are read before helper
    modules = closure_of(
        tmp_path,
        PLAIN + "import mid\n",
        mid="import helper\n",
        helper="def parse(r):\n    return r.body.json()\n",
    )
    assert "helper" in modules and "json" in modules


def closure(tmp_path: Path, source: str, **local: str) -> Closure:
    """The closure of ``my_filter.py`` = ``source``, beside ``local`` files (``pkg/x`` allowed)."""
    (tmp_path / "my_filter.py").write_text(source)
    for name, text in local.items():
        path = tmp_path / f"{name}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return resolve_closure(tmp_path / "my_filter.py", STDLIB, BUILTINS)[1]


# --- imports inside functions, at function granularity -------------------------------------


def test_counter_most_common_freezes_heapq(tmp_path: Path) -> None:
    used = closure(tmp_path, "import collections\ncollections.Counter('ab').most_common(1)\n")
    assert "heapq" in used.modules
    unused = closure(tmp_path, "import collections\ncollections.OrderedDict()\n")
    assert "heapq" not in unused.modules


def test_uuid5_freezes_hashlib_and_uuid4_does_not(tmp_path: Path) -> None:
    assert (
        "hashlib" in closure(tmp_path, "import uuid\nuuid.uuid5(uuid.NAMESPACE_DNS, 'x')\n").modules
    )
    assert "hashlib" not in closure(tmp_path, "import uuid\nuuid.uuid4()\n").modules


def test_a_function_reached_through_another_brings_its_imports(tmp_path: Path) -> None:
    # time.strptime is C; datetime.strptime reaches _strptime through the C table,
    # and _strptime's module-level imports follow
    used = closure(tmp_path, "import time\ntime.strptime('2020', '%Y')\n")
    assert {"_strptime", "calendar", "locale"} <= set(used.modules)
    assert "_strptime" not in closure(tmp_path, "import time\ntime.time()\n").modules


def test_a_method_of_a_class_nobody_uses_is_not_reached(tmp_path: Path) -> None:
    # the SDK's own Counter and a most_common of the filter's do not make
    # collections.Counter.most_common reachable
    source = PLAIN + (
        "class Tally:\n    def most_common(self):\n        return proxywasm.Counter('n')\n"
    )
    assert "heapq" not in closure(tmp_path, source).modules


def test_data_tables_name_functions_only_when_used(tmp_path: Path) -> None:
    # uuid's _GETTERS list names the MAC-address getters that run commands
    modules = set(closure(tmp_path, "import uuid\nuuid.uuid4()\n").modules)
    assert not modules & {"subprocess", "shutil", "socket"}
    assert "subprocess" in closure(tmp_path, "import uuid\nuuid.getnode()\n").modules


def test_site_packages_follow_the_same_granularity(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    (site / "pkgx").mkdir(parents=True)
    (site / "pkgx" / "__init__.py").write_text(
        "def used():\n    import pkgx.needed\n\ndef unused():\n    import pkgx.heavy\n"
    )
    (site / "pkgx" / "needed.py").write_text("")
    (site / "pkgx" / "heavy.py").write_text("")
    monkeypatch.syspath_prepend(str(site))
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "my_filter.py").write_text("import pkgx\npkgx.used()\n")
    modules = resolve_closure(tmp_path / "app" / "my_filter.py", STDLIB, BUILTINS)[1].modules
    assert modules["pkgx"].origin == "site-packages"
    assert "pkgx.needed" in modules and "pkgx.heavy" not in modules


def test_the_sdks_logging_handler_is_frozen_when_asked_for(tmp_path: Path) -> None:
    assert "logging" not in closure(tmp_path, PLAIN).modules
    asked = closure(tmp_path, PLAIN + "handler = proxywasm.ProxyLogHandler\n")
    assert "logging" in asked.modules


def test_a_plain_filter_stays_small(tmp_path: Path) -> None:
    modules = set(closure(tmp_path, PLAIN).modules)
    assert not modules & {"heapq", "logging", "doctest", "subprocess", "pickle", "ast"}


# --- `if` evaluated for the target, __main__ and TYPE_CHECKING ------------------------------


def test_main_blocks_are_not_followed(tmp_path: Path) -> None:
    used = closure(
        tmp_path, "import heapq\nif __name__ == '__main__':\n    import helper\n", helper=""
    )
    assert "helper" not in used.modules
    assert not set(used.modules) & {"doctest", "pdb", "unittest", "argparse"}


def test_type_checking_blocks_are_not_followed(tmp_path: Path) -> None:
    source = (
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import no_such_mod_tc\n"
        "else:\n    import helper\n"
    )
    assert "helper" in closure(tmp_path, source, helper="").modules


def test_version_conditions_take_the_branch_of_3_11(tmp_path: Path) -> None:
    source = (
        "import sys\nif sys.version_info >= (3, 14):\n    import annotationlib_xyz\n"
        "elif sys.version_info[:2] >= (3, 11):\n    import new_enough\nelse:\n    import too_old\n"
    )
    used = closure(tmp_path, source, new_enough="", too_old="")
    assert "new_enough" in used.modules and "too_old" not in used.modules


def test_a_module_constant_of_the_target_is_evaluated_too(tmp_path: Path) -> None:
    source = (
        "import sys\nPY_3_14 = sys.version_info >= (3, 14)\nWIN = sys.platform == 'win32'\n"
        "if PY_3_14 or WIN:\n    import annotationlib_xyz\nelse:\n    import helper\n"
    )
    assert "helper" in closure(tmp_path, source, helper="").modules
    # assigned twice: not a constant, so both branches (the filter's: required)
    twice = source.replace("WIN = sys.platform == 'win32'", "WIN = True\nWIN = False")
    with pytest.raises(ClosureError, match="annotationlib_xyz"):
        closure(tmp_path, twice, helper="")


def test_platform_conditions_take_the_branch_of_wasi(tmp_path: Path) -> None:
    source = (
        "import os, sys\nif sys.platform == 'win32':\n    import winreg\nelse:\n    import on_posix\n"
        "if os.name == 'nt' or sys.platform.startswith('darwin'):\n    import _winapi\n"
        "if sys.platform != 'win32' and os.name == 'posix':\n    import also_posix\n"
    )
    used = closure(tmp_path, source, on_posix="", also_posix="")
    assert {"on_posix", "also_posix"} <= set(used.modules)


def test_an_unknown_condition_in_the_filter_is_still_required(tmp_path: Path) -> None:
    with pytest.raises(ClosureError, match="no_such_mod_if"):
        closure(tmp_path, "import os\nif os.environ.get('X'):\n    import no_such_mod_if\n")


# --- guarded imports are optional, everywhere -----------------------------------------------


def test_try_import_error_is_optional_and_recorded(tmp_path: Path) -> None:
    source = "try:\n    import no_such_mod_a\nexcept ImportError:\n    no_such_mod_a = None\n"
    used = closure(tmp_path, source)
    assert "no_such_mod_a" in used.skipped_optional


def test_a_bare_except_and_an_exception_tuple_make_an_import_optional(tmp_path: Path) -> None:
    source = (
        "try:\n    import no_such_mod_e\nexcept:\n    no_such_mod_e = None\n"
        "try:\n    import no_such_mod_f\nexcept (ValueError, ImportError):\n    pass\n"
    )
    used = closure(tmp_path, source)
    assert {"no_such_mod_e", "no_such_mod_f"} <= set(used.skipped_optional)
    # An except clause that does not catch import errors leaves the import required.
    with pytest.raises(ClosureError, match="no_such_mod_g"):
        closure(tmp_path, "try:\n    import no_such_mod_g\nexcept ValueError:\n    pass\n")


def test_module_not_found_and_suppress_are_optional(tmp_path: Path) -> None:
    source = (
        "import contextlib\nfrom contextlib import suppress\n"
        "try:\n    import no_such_mod_b\nexcept ModuleNotFoundError:\n    pass\n"
        "with suppress(ImportError):\n    import no_such_mod_c\n"
        "with contextlib.suppress(ModuleNotFoundError):\n    import helper\n"
    )
    used = closure(tmp_path, source, helper="")
    assert {"no_such_mod_b", "no_such_mod_c"} <= set(used.skipped_optional)
    assert "helper" in used.modules  # optional and present: frozen


def test_the_fallback_is_followed_only_when_the_tried_import_is_missing(tmp_path: Path) -> None:
    template = "try:\n    import {tried}\nexcept ImportError:\n    import fallback\n"
    missing = closure(tmp_path, template.format(tried="no_such_mod_d"), fallback="")
    assert "fallback" in missing.modules
    present = closure(tmp_path, template.format(tried="fast"), fallback="", fast="")
    assert "fast" in present.modules and "fallback" not in present.modules


def test_decimal_does_not_freeze_pydecimal(tmp_path: Path) -> None:
    assert "_pydecimal" not in closure(tmp_path, "import decimal\n").modules


def test_a_guarded_module_that_cannot_import_is_skipped_whole(tmp_path: Path) -> None:
    # dateutil.tz: `try: from .win import tzwin except ImportError`, win.py imports winreg
    used = closure(
        tmp_path,
        "import pkg\n",
        **{
            "pkg/__init__": "try:\n    from . import win\nexcept ImportError:\n    win = None\n",
            "pkg/win": "import winreg_xyz\n",
        },
    )
    assert "pkg" in used.modules and "pkg.win" not in used.modules
    assert "pkg.win" in used.skipped_optional


def test_an_import_in_an_error_handler_is_optional(tmp_path: Path) -> None:
    source = "try:\n    x = int('1')\nexcept ValueError:\n    import no_such_mod_e\n"
    assert "no_such_mod_e" in closure(tmp_path, source).skipped_optional


# --- a needed import that cannot be frozen: module, importer, line, chain, fix -------------


def test_a_deep_missing_import_names_the_chain_and_the_line(tmp_path: Path) -> None:
    with pytest.raises(ClosureError) as err:
        closure(tmp_path, "import a\n", a="import b\n", b="x = 1\nimport no_such_mod_f\n")
    message = str(err.value)
    assert "'no_such_mod_f'" in message and "imported by b" in message
    assert f"{tmp_path / 'b.py'}:2" in message
    assert "my_filter -> a -> b" in message and "pip install" in message


def test_a_c_extension_names_the_fix(tmp_path: Path) -> None:
    (tmp_path / f"fastthing{importlib.machinery.EXTENSION_SUFFIXES[0]}").write_bytes(b"\x7fELF")
    with pytest.raises(ClosureError, match="pure-Python fallback"):
        closure(tmp_path, "import fastthing\n")
    # guarded, it is only skipped
    guarded = "try:\n    import fastthing\nexcept ImportError:\n    fastthing = None\n"
    assert "fastthing" in closure(tmp_path, guarded).skipped_optional


def test_a_stdlib_module_missing_from_wasm_says_so(tmp_path: Path) -> None:
    # a module of CPython's stdlib that the target lacks: an empty stdlib folder
    (tmp_path / "std").mkdir()
    (tmp_path / "my_filter.py").write_text("import zlib\n")
    with pytest.raises(ClosureError, match="not of its wasm32-wasi build: zlib is not in"):
        resolve_closure(tmp_path / "my_filter.py", tmp_path / "std", frozenset({"sys"}))


# --- importlib.import_module with a literal -------------------------------------------------


def test_import_module_with_a_literal_is_followed(tmp_path: Path) -> None:
    source = "import importlib\nmod = importlib.import_module('helper')\n"
    assert "helper" in closure(tmp_path, source, helper="").modules
    relative = closure(
        tmp_path,
        "import pkg\n",
        **{
            "pkg/__init__": "import importlib\nimportlib.import_module('.sub', __name__)\n",
            "pkg/sub": "",
        },
    )
    assert "pkg.sub" in relative.modules


# --- codecs by name -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "module"),
    [
        ("'x'.encode('utf-16-le')", "encodings.utf_16_le"),
        ("'x'.encode('cp1252')", "encodings.cp1252"),
        ("'x'.encode('utf-8-sig')", "encodings.utf_8_sig"),
        ("'x'.encode('latin-1')", "encodings.latin_1"),
        ("b'x'.decode('us-ascii')", "encodings.ascii"),
        ("'x'.encode('idna')", "encodings.idna"),
        ("'x'.encode('unicode_escape')", "encodings.unicode_escape"),
        ("__import__('codecs').lookup('Windows-1252')", "encodings.cp1252"),
        ("open('f', encoding='ISO-8859-15')", "encodings.iso8859_15"),
    ],
)
def test_a_codec_named_by_a_literal_is_frozen(tmp_path: Path, expression: str, module: str) -> None:
    assert module in closure(tmp_path, f"def f():\n    return {expression}\n").modules


def test_idna_brings_punycode_and_stringprep(tmp_path: Path) -> None:
    modules = closure(tmp_path, "'x'.encode('idna')\n").modules
    assert {"encodings.punycode", "stringprep"} <= set(modules)


def test_no_codec_literal_freezes_no_codec(tmp_path: Path) -> None:
    modules = closure(tmp_path, "x = 'hello'\n").modules
    assert not [m for m in modules if m.startswith("encodings.")]


def test_transform_codecs_count_only_as_codec_arguments(tmp_path: Path) -> None:
    assert "encodings.hex_codec" not in closure(tmp_path, "kind = 'hex'\n").modules
    source = "import codecs\ncodecs.encode(b'x', 'hex')\n"
    assert "encodings.hex_codec" in closure(tmp_path, source).modules


def test_elementtree_tostring_freezes_us_ascii(tmp_path: Path) -> None:
    source = "import xml.etree.ElementTree as ET\nET.tostring(ET.Element('a'))\n"
    assert "encodings.ascii" in closure(tmp_path, source).modules


# --- compiled: the values are native ones (slow) --------------------------------------------

PROXYWASM_FILTER = Path(__file__).parent / "closure" / "filter.py"


@pytest.mark.slow
def test_lazy_imports_and_codecs_work_compiled(proxywasm_filter_host: Callable[..., Any]) -> None:
    from proxywasm import Action
    from proxywasm.testing import load_filter

    expected = load_filter(PROXYWASM_FILTER).features()
    host = proxywasm_filter_host()
    ctx = host.initialize_http_context()
    host.call_on_request_headers(ctx, [(":path", "/")], end_of_stream=True)
    assert host.call_on_response_headers(ctx, [(":status", "200")], end_of_stream=True) == (
        Action.CONTINUE
    )
    got = dict(host.get_current_response_headers(ctx))
    assert {k: got.get(k) for k in expected} == expected


# -- stand-ins ----------------------------------------------------------------------------------

SSL_USER = PLAIN + "from ssl import SSLContext\n"


def test_ssl_without_its_c_module_is_the_stand_in(tmp_path: Path) -> None:
    from proxywasm_compiler.closure import STAND_IN_DIR

    (tmp_path / "my_filter.py").write_text(SSL_USER)
    _, found = resolve_closure(tmp_path / "my_filter.py", STDLIB, BUILTINS - {"_ssl"})
    assert found.modules["ssl"].path == STAND_IN_DIR / "ssl.py"
    assert "_ssl" not in found.builtins_used


def test_ssl_with_its_c_module_is_the_real_one(tmp_path: Path) -> None:
    (tmp_path / "my_filter.py").write_text(SSL_USER)
    _, found = resolve_closure(tmp_path / "my_filter.py", STDLIB, BUILTINS | {"_ssl"})
    assert found.modules["ssl"].path == STDLIB / "ssl.py"


def test_the_ssl_stand_in_imports_and_refuses_to_make_a_context() -> None:
    import importlib.util

    from proxywasm_compiler.closure import STAND_IN_DIR

    spec = importlib.util.spec_from_file_location("ssl_stand_in", STAND_IN_DIR / "ssl.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for make in (module.SSLContext, module.create_default_context, module.wrap_socket):
        with pytest.raises(module.SSLError, match="no TLS inside a proxy-wasm filter"):
            make()
    assert issubclass(module.SSLCertVerificationError, ValueError)
    assert module.CERT_REQUIRED == 2 and not module.HAS_SNI
