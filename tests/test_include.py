"""``proxywasm build --include MODULE``, and the hint a module missing inside a build gives.

A module imported by a name computed at run time is invisible to the build's
import closure: without ``--include`` the compiled filter's import raises
``ModuleNotFoundError`` whose message names the option; with it, the module
(and its own imports) is frozen in and the import works.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from proxywasm.testing import HostEmulator
from proxywasm_compiler.build import BuildError, build_filter
from proxywasm_compiler.cli import main

pytestmark = pytest.mark.slow

# colorsys: a small pure-Python stdlib module nothing in the SDK imports.
FILTER = textwrap.dedent(
    """\
    import importlib

    import proxywasm
    from proxywasm import Action, HttpContext, RootContext

    NAME = "".join(["colo", "rsys"])  # computed: the build cannot see it


    class H(HttpContext):
        def on_http_request_headers(self, num_headers, end_of_stream):
            try:
                mod = importlib.import_module(NAME)
            except ModuleNotFoundError as exc:
                self.set_http_request_header("x-error", str(exc))
                self.set_http_request_header("x-error-name", str(exc.name))
            else:
                h, s, v = mod.rgb_to_hsv(0.2, 0.4, 0.4)
                self.set_http_request_header("x-hsv", f"{h:.4f},{s:.4f},{v:.4f}")
            return Action.CONTINUE


    class Root(RootContext):
        def create_http_context(self, context_id):
            return H(context_id, self)


    proxywasm.set_root_context(Root)
    """
)


def _headers(wasm: Path) -> dict[str, str]:
    host = HostEmulator.from_wasm(str(wasm))
    assert host.start_vm() and host.start_plugin()
    ctx = host.initialize_http_context()
    host.call_on_request_headers(ctx, [(":path", "/")], end_of_stream=True)
    return dict(host.get_current_request_headers(ctx))


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "computed.py"
    path.write_text(FILTER)
    return path


def test_a_module_missing_inside_the_build_names_the_include_option(source: Path) -> None:
    out = source.with_name("without.wasm")
    result = build_filter(source, out)
    assert "colorsys" not in result.frozen_sizes
    headers = _headers(out)
    assert "x-hsv" not in headers
    assert headers["x-error-name"] == "colorsys"
    message = headers["x-error"]
    assert message.startswith("No module named 'colorsys'")
    assert "proxywasm build --include colorsys" in message


def test_include_freezes_the_module_and_it_imports(source: Path) -> None:
    import colorsys

    out = source.with_name("with.wasm")
    assert main(["build", str(source), "-o", str(out), "--include", "colorsys"]) == 0
    h, s, v = colorsys.rgb_to_hsv(0.2, 0.4, 0.4)
    headers = _headers(out)
    assert "x-error" not in headers, headers.get("x-error")
    assert headers["x-hsv"] == f"{h:.4f},{s:.4f},{v:.4f}"


def test_include_brings_the_modules_closure(source: Path) -> None:
    # fractions imports decimal, numbers, operator, re...: all frozen although
    # only fractions is named (the closure of an included module).
    out = source.with_name("closure.wasm")
    result = build_filter(source, out, include=["fractions"])
    assert {"fractions", "numbers", "decimal"} <= set(result.frozen_sizes)
    assert result.imported_by["numbers"].startswith("fractions ")


def test_include_of_a_module_that_cannot_be_frozen_is_a_build_error(source: Path) -> None:
    with pytest.raises(BuildError, match=r"'zlib'.*compress outside the filter"):
        build_filter(source, source.with_name("bad.wasm"), include=["zlib"])
    with pytest.raises(BuildError, match="no module named 'no_such_pkg_xyz'"):
        build_filter(source, source.with_name("bad.wasm"), include=["no_such_pkg_xyz"])
    with pytest.raises(BuildError, match="dotted module name"):
        build_filter(source, source.with_name("bad.wasm"), include=["not a module"])
    assert not source.with_name("bad.wasm").exists()


def test_the_cli_reports_a_bad_include_as_one_error_line(
    source: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["build", str(source), "--include", "no_such_pkg_xyz"]) == 1
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("proxywasm: error:")]
    assert len(lines) == 1 and "no_such_pkg_xyz" in lines[0]
