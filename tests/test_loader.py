"""load_filter: filters imported by path keep their roots and helper modules to themselves."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from proxywasm import dispatcher
from proxywasm.testing import HostEmulator, filter_roots, load_filter

FILTER = """\
import proxywasm
from proxywasm import HttpContext, RootContext, Action
import helper

class H(HttpContext):
    def on_http_response_headers(self, num_headers, end_of_stream):
        self.set_http_response_header("x-from", helper.NAME)
        return Action.CONTINUE

class Root(RootContext):
    def create_http_context(self, context_id):
        return H(context_id, self)

proxywasm.set_root_context(Root)
"""


def _make(tmp_path: Path, name: str) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "filter.py").write_text(FILTER)
    (folder / "helper.py").write_text(f"NAME = {name!r}\n")
    return folder / "filter.py"


def _header(module: object) -> str:
    host = HostEmulator(module)  # type: ignore[arg-type]
    assert host.start_vm() and host.start_plugin()
    ctx = host.initialize_http_context()
    host.call_on_request_headers(ctx, [(":path", "/")], end_of_stream=True)
    host.call_on_response_headers(ctx, [(":status", "200")], end_of_stream=True)
    return dict(host.get_current_response_headers(ctx))["x-from"]


def test_two_filters_with_same_named_helpers(tmp_path: Path) -> None:
    registry_before = dispatcher.registered_roots()
    first = load_filter(_make(tmp_path, "first"))
    second = load_filter(_make(tmp_path, "second"))
    assert _header(first) == "first"
    assert _header(second) == "second"
    assert "helper" not in sys.modules
    assert dispatcher.registered_roots() == registry_before  # nothing leaked globally
    assert list(filter_roots(first)) == [None]
    assert load_filter(tmp_path / "first" / "filter.py") is first  # imported once


def test_filter_without_root_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "f.py"
    path.write_text("import proxywasm\n")
    with pytest.raises(LookupError, match="never calls proxywasm.set_root_context"):
        load_filter(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_filter(tmp_path / "nope.py")
