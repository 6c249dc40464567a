"""What works natively works compiled: the stdlib and pure-Python packages inside a module.

``docs/gen_libraries.py`` runs the checks of ``tests/libraries/`` natively
and compiled (two builds) and probes each check's closure; these tests hold
the outcome to issue 13's list and docs/libraries.md to the measurement.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
from proxywasm_compiler import build
from proxywasm_compiler.build import BuildError, build_filter

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]

#: Every stdlib module a filter might use (issue 13, item 3).
STDLIB = [
    *("json", "re", "base64", "hashlib", "hmac", "secrets", "uuid", "datetime", "zoneinfo"),
    *("time", "calendar", "urllib.parse", "ipaddress", "fnmatch", "string", "textwrap"),
    *("struct", "zlib", "gzip", "binascii", "html", "http", "email.utils", "dataclasses"),
    *("enum", "typing", "functools", "itertools", "collections", "heapq", "bisect"),
    *("decimal", "fractions", "math", "statistics", "random", "copy", "pprint", "logging"),
    *("csv", "io", "contextlib", "operator", "unicodedata", "difflib", "xml.etree", "codecs"),
]
#: zlib is not in the wasm libpython; gzip needs it.
STDLIB_BUILD_ERRORS = {"zlib": "compress outside the filter", "gzip": "compress outside the filter"}
PACKAGES = ("PyYAML", "PyJWT", "idna", "python-dateutil", "attrs", "fastjsonschema")
#: Packages that cannot work: the build names their compiled dependency.
PACKAGE_BUILD_ERRORS = {"jsonschema": "rpds", "pydantic": "pydantic_core"}


def _gen() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "gen_libraries", REPO / "docs" / "gen_libraries.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses looks its module up
    spec.loader.exec_module(module)
    return module


gen = _gen()


@pytest.fixture(scope="module")
def entries(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    return {e.name: e for e in gen.measure(tmp_path_factory.mktemp("libraries"))}


def test_every_module_and_package_of_the_issue_is_checked(entries: dict[str, object]) -> None:
    assert [n for n in entries if n in STDLIB] == STDLIB
    assert set(PACKAGES) | set(PACKAGE_BUILD_ERRORS) <= set(entries)


@pytest.mark.parametrize("name", [n for n in STDLIB if n not in STDLIB_BUILD_ERRORS])
def test_stdlib_module_gives_the_native_values_compiled(
    entries: dict[str, object], name: str
) -> None:
    e = entries[name]
    assert e.build_error is None, e.build_error  # type: ignore[attr-defined]
    assert not e.native.startswith("raised"), e.native  # type: ignore[attr-defined]
    assert e.compiled == e.native  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", [p for p in PACKAGES if p != "PyJWT"])
def test_package_gives_the_native_values_compiled(entries: dict[str, object], name: str) -> None:
    e = entries[name]
    assert e.build_error is None, e.build_error  # type: ignore[attr-defined]
    assert not e.native.startswith("raised"), e.native  # type: ignore[attr-defined]
    assert e.compiled == e.native  # type: ignore[attr-defined]


def test_pyjwt_works_or_names_what_it_lacks(entries: dict[str, object]) -> None:
    # PyJWT's package imports jwt.jwks_client, which imports ssl at module level
    # (for the JWKS client an HS256 filter never runs); until the closure has a
    # stand-in for ssl, the build refuses it and says so.
    e = entries["PyJWT"]
    if e.build_error is None:  # type: ignore[attr-defined]
        assert e.compiled == e.native  # type: ignore[attr-defined]
    else:
        assert "ssl" in e.build_error and "jwt.jwks_client" in e.build_error  # type: ignore[attr-defined]


@pytest.mark.parametrize("name, fix", [*STDLIB_BUILD_ERRORS.items(), *PACKAGE_BUILD_ERRORS.items()])
def test_what_cannot_work_fails_at_build_time_naming_module_importer_and_fix(
    entries: dict[str, object], name: str, fix: str
) -> None:
    e = entries[name]
    error = e.build_error  # type: ignore[attr-defined]
    assert error is not None, f"{name} built: {e.compiled}"  # type: ignore[attr-defined]
    assert error.startswith("cannot freeze ") and "imported by " in error
    assert fix in error
    # In the module built with the others, the skipped import says why it is missing.
    assert "an optional import the build skipped" in e.compiled  # type: ignore[attr-defined]


def test_zoneinfo_without_tzdata_is_a_build_error_naming_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(build, "tzdata_source", lambda: None)  # as if tzdata were not installed
    src = tmp_path / "tz.py"
    src.write_text(
        gen.EMPTY_FILTER.replace("import proxywasm\n", "import zoneinfo\nimport proxywasm\n")
    )
    with pytest.raises(
        BuildError, match=r"cannot freeze 'zoneinfo', imported by tz .*pip install tzdata"
    ):
        build_filter(src, tmp_path / "tz.wasm")
    assert not (tmp_path / "tz.wasm").exists()


def test_docs_libraries_md_is_the_measurement(entries: dict[str, object]) -> None:
    expected = gen.render(list(entries.values()))
    current = (REPO / "docs" / "libraries.md").read_text()
    assert current == expected, "docs/libraries.md is out of date: run python docs/gen_libraries.py"
