"""Mutation testing of the SDK (and optionally the compiler) with mutmut 3.

    python scripts/mutation.py                         # all of sdk/proxywasm
    python scripts/mutation.py sdk/proxywasm/_serde.py # some files only
    python scripts/mutation.py --jobs 2 --keep /tmp/mut
    python scripts/mutation.py --ignore tests/test_x.py  # a test that fails in the tree now

mutmut rewrites every function of the chosen files into mutants and runs the
fast tier (``-m "not slow"``) against each, keeping only the tests that reach
the mutated function. A mutant the tests do not notice *survives*: either a
missing test or an equivalent change; docs/testing.md lists the score and the
survivors of the last run. This is not a CI gate (it takes a long time); run
it when you change the core.

mutmut expects the import name to be the path from the work folder and puts
``mutants/`` first on ``sys.path``. Our packages live under ``sdk/`` (mapped
by setuptools), so the run happens in a copy of the tracked tree where
``proxywasm`` and ``proxywasm_compiler`` are links to their folders. Tests
that start a Python subprocess (the CLI, pdb) would import the unmutated
package there and are left out of the run. Untracked test files are copied
too (new tests count before they are committed); the run needs the fast tier
green in the copy, so a test that fails there must be fixed or ``--ignore``d.
Each mutant's tests run in a child of a fork server that has only collected
the suite, so no test sees state another run left behind.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINKS = {"proxywasm": "sdk/proxywasm", "proxywasm_compiler": "compiler/proxywasm_compiler"}
#: Left out of the run: tests that run Python in a subprocess (the child would
#: not see the mutants), and compiler tests that make wasmtime trap (its signal
#: handling does not survive mutmut's forked workers: "Illegal instruction").
LEFT_OUT = [
    "tests/test_cli_workflow.py",
    "tests/test_debugger.py",
    "tests/test_cli.py",
    "tests/test_toolchain.py",
    "tests/test_wasm_host.py",
    "tests/test_dce.py",
]


def _config(only: list[str], ignore: list[str]) -> str:
    pytest_args = ["-m", "not slow", "-p", "no:cacheprovider", "-q"]
    pytest_args += [f"--ignore={t}" for t in [*LEFT_OUT, *ignore]]
    lines = [
        "",
        "[tool.mutmut]",
        f"source_paths = {json.dumps(sorted({p.split('/')[0] + '/' for p in only}))}",
        f"only_mutate = {json.dumps(only)}",
        'also_copy = ["examples/", "abi-stubs/", "docs/", "sdk/", "compiler/", "benchmarks/", "conftest.py"]',
        f"pytest_add_cli_args = {json.dumps(pytest_args)}",
        'pytest_add_cli_args_test_selection = ["tests/", "examples/"]',
        # A mutant that hangs is caught; waiting 15x the test's time for it
        # (mutmut's default) makes a run hours longer.
        "timeout_multiplier = 3.0",
        # Fork each mutant's run from a process that only collected the tests: forked
        # from mutmut's main process (the default) it would inherit what the stats run
        # left behind (a filter module's class attributes, registered roots) and fail
        # tests that pass in a fresh run, so the clean run aborts and mutants are
        # "killed" for nothing.
        'process_isolation = "forkserver"',
    ]
    return "\n".join(lines) + "\n"


def _as_import_paths(paths: list[str]) -> list[str]:
    """``sdk/proxywasm/x.py`` -> ``proxywasm/x.py`` (the path mutmut sees through the link);
    a folder becomes a glob of every file under it."""
    out = []
    for path in (p.rstrip("/") for p in paths):
        for name, folder in LINKS.items():
            if path == folder or path.startswith(folder + "/"):
                rest = path[len(folder) :].lstrip("/")
                out.append(f"{name}/{rest}" if rest.endswith(".py") else f"{name}/{rest}*")
                break
        else:
            raise SystemExit(f"mutation.py: {path} is not under {' or '.join(LINKS.values())}")
    return [p.replace("//", "/") for p in out]


def main(argv: list[str] | None = None) -> int:
    """Copy the tree, configure mutmut, run it, print the score."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*", default=["sdk/proxywasm"], help="files or folders")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 2, help="mutmut children")
    parser.add_argument("--keep", type=Path, help="work folder to use and keep (results stay)")
    parser.add_argument(
        "--ignore",
        action="append",
        default=[],
        metavar="TEST",
        help="leave out a test file too (one that fails in the tree as it is: the run needs a green suite)",
    )
    args = parser.parse_args(argv)

    only = _as_import_paths(args.paths)
    work = args.keep or Path(tempfile.mkdtemp(prefix="proxywasm-mutation-"))
    work.mkdir(parents=True, exist_ok=True)
    # Untracked (not ignored) files too: new tests must take part before they are committed.
    tracked = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout.split(b"\0")
    for name in filter(None, (t.decode() for t in tracked)):
        if not (ROOT / name).is_file():  # deleted in the work tree, not yet in git
            continue
        dest = work / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, dest)
    for name, folder in LINKS.items():
        link = work / name
        if not link.exists():
            link.symlink_to(folder, target_is_directory=True)
    pyproject = work / "pyproject.toml"
    pyproject.write_text((ROOT / "pyproject.toml").read_text() + _config(only, args.ignore))
    # mutants/ must exist before Python starts: a missing sys.path folder is
    # cached as "nothing here" and the mutants would never be imported.
    (work / "mutants").mkdir(exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(work / "mutants")}
    mutmut = [sys.executable, "-m", "mutmut"]
    run = subprocess.run(
        [*mutmut, "run", "--max-children", str(args.jobs)], check=False, cwd=work, env=env
    )
    subprocess.run([*mutmut, "export-cicd-stats"], cwd=work, env=env, check=False)
    stats_file = work / "mutants" / "mutmut-cicd-stats.json"
    if stats_file.exists():
        stats = json.loads(stats_file.read_text())
        # A mutant that makes a test hang or crash is caught as surely as one
        # that makes it fail.
        caught = sum(stats.get(k, 0) for k in ("killed", "timeout", "segfault"))
        checked = caught + sum(stats.get(k, 0) for k in ("survived", "no_tests", "suspicious"))
        score = 100.0 * caught / checked if checked else 0.0
        print(json.dumps(stats, indent=2))
        print(f"mutation score: {caught}/{checked} caught ({score:.1f}%) in {work}")
    print(f"survivors: cd {work} && PYTHONPATH=mutants {' '.join(mutmut)} results")
    return run.returncode


if __name__ == "__main__":
    raise SystemExit(main())
