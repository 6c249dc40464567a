"""``breakpoint()`` inside a filter callback stops there, natively, under ``pytest -s``.

The promise of the null runtime is that a filter is ordinary Python while it is
being tested: pdb stops inside the callback, sees its locals, and can even make
host calls. This test writes a filter and its test into a temporary folder,
runs pytest on them in a subprocess with pdb commands on stdin, and checks the
transcript. It fails if the breakpoint never fires (the ``(Pdb)`` prompt and the
values are missing: e.g. the dispatcher swallowed it, or ran the callback
somewhere pdb cannot reach), if it fires outside the callback (the local
``num_headers`` and the stream's headers would not be visible), or if the
session does not resume and pass afterwards.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

FILTER = """
import proxywasm
from proxywasm import Action, HttpContext, RootContext


class Stop(HttpContext):
    def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
        marker = "inside-" + "the-callback"
        breakpoint()
        self.set_http_request_header("x-after-breakpoint", marker)
        return Action.CONTINUE


class Root(RootContext):
    def create_http_context(self, context_id: int) -> HttpContext:
        return Stop(context_id, self)


proxywasm.set_root_context(Root)
"""

TEST = """
import debug_filter
from proxywasm import Action, LogLevel
from proxywasm.testing import HostEmulator


def test_stops_in_callback():
    host = HostEmulator(debug_filter.Root)
    assert host.start_vm() and host.start_plugin()
    ctx = host.initialize_http_context()
    headers = [(":path", "/x"), (":method", "GET"), (":authority", "a"), ("x-probe", "probe-value"), ("x-n", "5")]
    action = host.call_on_request_headers(ctx, headers, end_of_stream=True)
    assert action == Action.CONTINUE
    assert ("x-after-breakpoint", "inside-the-callback") in host.get_current_request_headers(ctx)
    assert host.get_logs(LogLevel.ERROR) == []
    print("AFTER-THE-BREAKPOINT")
"""

# What the user types at the prompt: a local of the callback, a local made in
# it, a host call made from the prompt (it needs the callback's host context),
# then continue.
PDB_INPUT = "p num_headers\np marker\np self.get_http_request_header('x-probe')\nc\n"


def test_breakpoint_in_callback_stops_there(tmp_path: Path) -> None:
    (tmp_path / "debug_filter.py").write_text(textwrap.dedent(FILTER))
    (tmp_path / "test_debug_filter.py").write_text(textwrap.dedent(TEST))
    (tmp_path / "pytest.ini").write_text("[pytest]\n")  # keep the repository's pytest config out

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONBREAKPOINT", "PYTEST_ADDOPTS")}
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), env.get("PYTHONPATH", "")]).rstrip(
        os.pathsep
    )
    env["PYTHONUNBUFFERED"] = "1"
    try:
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-s",
                "-q",
                "-p",
                "no:cacheprovider",
                "test_debug_filter.py",
            ],
            check=False,
            cwd=tmp_path,
            env=env,
            input=PDB_INPUT,
            capture_output=True,
            text=True,
            timeout=60,
        )
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(
            f"pytest under pdb did not finish in 60 s; output so far:\n{exc.stdout!r}"
        ) from None

    out = run.stdout + run.stderr
    assert "(Pdb)" in out, f"the breakpoint never stopped:\n{out}"
    # It stopped in the callback's frame, not in the dispatcher or the test.
    assert "debug_filter.py(10)on_http_request_headers()" in out, out
    assert '-> self.set_http_request_header("x-after-breakpoint", marker)' in out, out
    lines = [line.removeprefix("(Pdb) ").strip() for line in out.splitlines()]
    assert "5" in lines, f"num_headers was not printed from inside the callback:\n{out}"
    assert "'inside-the-callback'" in lines, out
    assert "'probe-value'" in lines, f"a host call from the pdb prompt failed:\n{out}"
    # Continuing resumed the callback; the run passed.
    assert "AFTER-THE-BREAKPOINT" in out, out
    assert run.returncode == 0, out
    assert "1 passed" in out, out
