"""`proxywasm build` on good and bad input: errors name what is wrong and where,
and nothing half-written is left at the output path."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from proxywasm_compiler.build import BuildError, build_filter

pytestmark = pytest.mark.slow

GOOD = """\
import proxywasm
from proxywasm import Action, HttpContext, RootContext

class Root(RootContext):
    pass

proxywasm.set_root_context(Root)
"""


def _write(tmp_path: Path, text: str, name: str = "f.py") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def _fails(tmp_path: Path, source: Path, match: str) -> BuildError:
    out = tmp_path / "out.wasm"
    with pytest.raises(BuildError, match=match) as info:
        build_filter(source, out)
    assert not out.exists(), "a failed build left a file at the output path"
    assert not list(tmp_path.glob(".out.wasm.*")), "a failed build left a temporary file"
    return info.value


def test_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    src = _write(tmp_path, "import proxywasm\n\ndef broken(:\n    pass\n")
    err = _fails(tmp_path, src, "syntax error")
    assert f"{src}:3" in str(err)


def test_missing_module_names_it_and_the_importer(tmp_path: Path) -> None:
    src = _write(
        tmp_path,
        GOOD.replace("import proxywasm\n", "import proxywasm\nimport no_such_module_here\n"),
    )
    err = _fails(tmp_path, src, "no_such_module_here")
    assert f"{src}:2" in str(err)


def test_c_extension_is_refused(tmp_path: Path) -> None:
    import importlib.machinery

    (tmp_path / f"fastthing{importlib.machinery.EXTENSION_SUFFIXES[0]}").write_bytes(b"\x7fELF")
    src = _write(
        tmp_path, GOOD.replace("import proxywasm\n", "import proxywasm\nimport fastthing\n")
    )
    err = _fails(tmp_path, src, "C extension")
    assert "fastthing" in str(err) and "f.py" in str(err)


def test_missing_set_root_context_gives_a_hint(tmp_path: Path) -> None:
    src = _write(tmp_path, GOOD.replace("proxywasm.set_root_context(Root)\n", ""))
    _fails(tmp_path, src, r"never calls proxywasm\.set_root_context")


def test_exception_at_import_time_shows_the_traceback(tmp_path: Path) -> None:
    src = _write(tmp_path, GOOD + "\nraise ValueError('bad setting 42')\n")
    err = _fails(tmp_path, src, "bad setting 42")
    assert "Traceback" in str(err) and "f.py" in str(err)


def test_existing_output_survives_a_failed_build(tmp_path: Path) -> None:
    out = tmp_path / "out.wasm"
    out.write_bytes(b"previous module")
    src = _write(tmp_path, "this is not python\n")
    with pytest.raises(BuildError):
        build_filter(src, out)
    assert out.read_bytes() == b"previous module"


def test_cli_exit_codes(tmp_path: Path) -> None:
    cli = [sys.executable, "-m", "proxywasm_compiler.cli", "build"]
    bad = _write(tmp_path, "def (:\n", "bad.py")
    proc = subprocess.run(
        [*cli, str(bad), "-o", str(tmp_path / "bad.wasm")],
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode != 0
    assert "proxywasm: error:" in proc.stderr and "bad.py:1" in proc.stderr
    good = _write(tmp_path, GOOD, "good.py")
    proc = subprocess.run(
        [*cli, str(good), "-o", str(tmp_path / "good.wasm")],
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    assert "built " in proc.stderr and (tmp_path / "good.wasm").read_bytes()[:4] == b"\0asm"


NAMEDTUPLE_FILTER = """\
import builtins
import collections
import proxywasm
from proxywasm import Action, HttpContext, RootContext

Point = collections.namedtuple("Point", ["x", "y", "z"], defaults=[30])

class H(HttpContext):
    def on_http_request_headers(self, num_headers, end_of_stream):
        p = Point(1, y=2)
        try:
            Point(1, 2, 3, 4)
        except TypeError as exc:
            too_many = "positional" in str(exc)
        self.set_http_request_header("x-point", f"{p.x},{p.y},{p.z},{p._replace(x=9).x},{too_many}")
        try:
            getattr(builtins, "ev" + "al")("1 + 1")  # hidden from the build's scan on purpose
        except RuntimeError as exc:
            self.set_http_request_header("x-eval", "no compiler" if "without the Python compiler" in str(exc) else str(exc))
        return Action.CONTINUE

class Root(RootContext):
    def create_http_context(self, context_id):
        return H(context_id, self)

proxywasm.set_root_context(Root)
"""


def _run_once(wasm: Path) -> dict[str, str]:
    from proxywasm.testing import HostEmulator

    host = HostEmulator.from_wasm(str(wasm))
    assert host.start_vm() and host.start_plugin()
    ctx = host.initialize_http_context()
    host.call_on_request_headers(ctx, [(":path", "/")], end_of_stream=True)
    return dict(host.get_current_request_headers(ctx))


def test_without_compiler_namedtuple_still_works_and_eval_explains(tmp_path: Path) -> None:
    src = _write(tmp_path, NAMEDTUPLE_FILTER)
    out = tmp_path / "nt.wasm"
    build_filter(src, out)
    headers = _run_once(out)
    assert headers["x-point"] == "1,2,30,9,True"
    assert headers["x-eval"] == "no compiler"  # a clear error, not a crash
    small = out.stat().st_size
    build_filter(src, tmp_path / "full.wasm", keep_compiler=True)
    assert (tmp_path / "full.wasm").stat().st_size > small + 300_000


def test_a_filter_calling_exec_keeps_the_compiler(tmp_path: Path) -> None:
    import io

    src = _write(
        tmp_path,
        NAMEDTUPLE_FILTER.replace('getattr(builtins, "ev" + "al")("1 + 1")', 'exec("x = 1")'),
    )
    progress = io.StringIO()
    build_filter(src, tmp_path / "exec.wasm", progress=progress)
    assert "keeping the Python compiler" in progress.getvalue()
    assert "x-eval" not in _run_once(tmp_path / "exec.wasm")  # exec worked: no error header


def test_random_is_reseeded_in_each_vm(tmp_path: Path) -> None:
    from proxywasm import LogLevel
    from proxywasm.testing import HostEmulator

    src = _write(
        tmp_path,
        GOOD.replace("import proxywasm\n", "import random\nimport proxywasm\n").replace(
            "class Root(RootContext):\n    pass\n",
            "class Root(RootContext):\n"
            "    def on_vm_start(self, size):\n"
            "        proxywasm.log_info(str(random.getrandbits(64)))\n"
            "        return True\n",
        ),
    )
    out = tmp_path / "rnd.wasm"
    build_filter(src, out)
    draws = set()
    for _ in range(3):
        host = HostEmulator.from_wasm(str(out))
        assert host.start_vm()
        draws.update(host.get_logs(LogLevel.INFO))
    assert len(draws) == 3, "every VM started from the snapshot drew the same random numbers"
