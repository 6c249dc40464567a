"""Render docs/libraries.md: which stdlib modules and packages work inside a module, measured.

    python docs/gen_libraries.py            # build, run, rewrite docs/libraries.md
    python docs/gen_libraries.py --check    # exit 1 if docs/libraries.md is out of date

Two filters, ``tests/libraries/stdlib_filter.py`` and
``tests/libraries/packages_filter.py``, hold one check per module or package.
Each filter is run natively and built with the cpython backend and run under
wasmtime (the test emulator); every check's value is compared. A check whose
module cannot be frozen is skipped by that build (its import is inside the
check, so optional), and its module is then built alone, which fails at
build time with the message the table quotes.

What each entry adds to a module comes from the closure report of the one
build: the import closure of the check alone (a filter with the check's
imports at module level), less that of an empty filter, is the set of Python
modules it brings; their marshalled code sizes from the build are summed.
That is the code frozen in before the snapshot, not the snapshot's heap.
``tests/test_libraries.py`` runs all of this in CI and compares the result
with docs/libraries.md.
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
import tempfile
import textwrap
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "docs" / "libraries.md"
FILTERS = (
    ("stdlib", REPO / "tests" / "libraries" / "stdlib_filter.py"),
    ("packages", REPO / "tests" / "libraries" / "packages_filter.py"),
)
#: A filter with no import of its own: what every module has anyway.
EMPTY_FILTER = """\
import proxywasm
from proxywasm import Action, HttpContext, RootContext


class Root(RootContext):
    pass


proxywasm.set_root_context(Root)
"""
#: The fixed string-hash secret of the builds (the sizes do not depend on it).
HASH_SEED = 1


@dataclass(frozen=True)
class Entry:
    """One check: what it exercises, its value natively and compiled, what it costs."""

    group: str
    name: str
    exercised: str
    native: str
    compiled: str
    #: the message of the failed build of the check alone, or None when the build froze it
    build_error: str | None
    #: Python modules the check adds to an empty filter's closure, and their marshalled bytes
    modules_added: tuple[str, ...]
    frozen_bytes: int
    #: C modules of the wasm libpython the check adds
    c_modules: tuple[str, ...]
    #: why the check keeps CPython's compiler in the module (None: it does not)
    compiler: str | None = None

    @property
    def works(self) -> bool:
        """Built, and the compiled value is the native one."""
        return self.build_error is None and self.native == self.compiled


def _check_lines(host: object) -> dict[str, str]:
    from proxywasm import LogLevel
    from proxywasm.testing import HostEmulator

    assert isinstance(host, HostEmulator)
    assert host.start_vm() and host.start_plugin(), host.get_all_logs()[-5:]
    ctx = host.initialize_http_context()
    host.call_on_request_headers(ctx, [(":path", "/")], end_of_stream=True)
    out: dict[str, str] = {}
    for line in host.get_logs(LogLevel.INFO):
        if line.startswith("check "):
            name, _, value = line[len("check ") :].partition(" ")
            out[name] = value
    return out


def _functions(path: Path) -> dict[str, ast.FunctionDef]:
    """The ``@check("NAME")`` functions of a filter file, by NAME."""
    out: dict[str, ast.FunctionDef] = {}
    for node in ast.parse(path.read_text()).body:
        if not isinstance(node, ast.FunctionDef):
            continue
        for dec in node.decorator_list:
            if (
                isinstance(dec, ast.Call)
                and isinstance(dec.func, ast.Name)
                and dec.func.id == "check"
                and isinstance(dec.args[0], ast.Constant)
            ):
                out[str(dec.args[0].value)] = node
    return out


def _probe(path: Path, func: ast.FunctionDef) -> str:
    """A filter with the check's imports at module level and the check itself."""
    source = path.read_text()
    imports = [
        ast.get_source_segment(source, stmt) or ""
        for stmt in func.body
        if isinstance(stmt, (ast.Import, ast.ImportFrom))
    ]
    lines = source.splitlines()
    body = "\n".join(lines[func.lineno - 1 : func.end_lineno])
    constants = [
        ast.get_source_segment(source, node) or ""
        for node in ast.parse(source).body
        if isinstance(node, ast.Assign)
        and all(isinstance(t, ast.Name) and t.id.isupper() for t in node.targets)
    ]
    return "\n".join(
        [EMPTY_FILTER, *imports, "from collections.abc import Iterator", *constants, "", body, ""]
    )


def _clean(message: str, folders: list[Path]) -> str:
    """A build message without this machine's paths."""
    for folder in folders:
        message = message.replace(f"{folder}/", "")
    message = re.sub(r"/\S*?/site-packages/", "", message)
    return re.sub(r"/\S*?/lib/python3\.11/", "", message)


def measure(work: Path) -> list[Entry]:
    """Run both filters natively, build them, run them compiled, probe every check."""
    from proxywasm.testing import HostEmulator, load_filter
    from proxywasm_compiler.build import BuildError, _wasm_builtins, build_filter
    from proxywasm_compiler.closure import ClosureError, SourceModule, resolve_closure
    from proxywasm_compiler.compiler_use import compiler_uses
    from proxywasm_compiler.inittab import CORE_MODULES, read_config
    from proxywasm_compiler.toolchain import get_toolchain

    tc = get_toolchain()
    builtins = _wasm_builtins(tc)
    # The C modules a build can leave out (libpython's frozen Python modules cost nothing).
    optional_c = {
        name
        for name, _ in read_config(tc.stdlib_dir / "config-3.11-wasm32-wasi" / "config.c")
        if name not in CORE_MODULES
    }

    def closure_of(path: Path) -> tuple[dict[str, SourceModule], set[str]]:
        extra: tuple[str, ...] = ("proxywasm.dispatcher", "proxywasm.log")
        _, closure = resolve_closure(path, tc.stdlib_dir, builtins, extra=extra)
        if "zoneinfo" in closure.modules:  # as the build: importlib.resources and the zone files
            extra += ("importlib.resources",)
            _, closure = resolve_closure(path, tc.stdlib_dir, builtins, extra=extra)
            closure.modules.setdefault("_pw_tzdata", closure.modules["zoneinfo"])
        c_modules = (closure.builtins_used | closure.optional_builtins) & optional_c
        return closure.modules, c_modules

    (work / "empty").mkdir()
    (work / "empty" / "my_filter.py").write_text(EMPTY_FILTER)
    base_modules, base_c = closure_of(work / "empty" / "my_filter.py")
    entries: list[Entry] = []
    for group, path in FILTERS:
        module: ModuleType = load_filter(path)
        native = _check_lines(HostEmulator(module))
        result = build_filter(path, work / f"{group}.wasm", hash_seed=HASH_SEED)
        compiled = _check_lines(HostEmulator.from_wasm(str(result.output)))
        functions = _functions(path)
        for name, func in functions.items():
            # Each probe in a folder of its own: the messages say my_filter.py, as for a user.
            folder = work / group / re.sub(r"\W", "_", name)
            folder.mkdir(parents=True)
            probe = folder / "my_filter.py"
            probe.write_text(_probe(path, func))
            error: str | None = None
            added: set[str] = set()
            c_added: set[str] = set()
            compiler: str | None = None
            try:
                modules, c_modules = closure_of(probe)
            except ClosureError:
                # The build fails at its closure stage: the user's message, verbatim.
                try:
                    build_filter(probe, folder / "probe.wasm", hash_seed=HASH_SEED)
                except BuildError as exc:
                    error = _clean(str(exc), [folder])
                else:
                    raise AssertionError(f"{probe}: the closure failed, the build did not")
            else:
                added = set(modules) - set(base_modules) - {probe.stem}
                c_added = c_modules - base_c
                uses = compiler_uses(
                    ((m.name, m.path) for n, m in modules.items() if n in added), c_added
                )
                compiler = uses[0] if uses else None
            entries.append(
                Entry(
                    group,
                    name,
                    (ast.get_docstring(func) or "").splitlines()[0],
                    native.get(name, "<no line>"),
                    compiled.get(name, "<no line>"),
                    error,
                    tuple(sorted(added)),
                    sum(result.frozen_sizes.get(m, 0) for m in added),
                    tuple(sorted(c_added)),
                    _clean(compiler, []) if compiler else None,
                )
            )
    return entries


def _adds(e: Entry) -> str:
    n = len(e.modules_added)
    text = f"{n} module{'' if n == 1 else 's'}, {e.frozen_bytes / 1000:.1f} kB" if n else "nothing"
    return text + (" + the compiler" if e.compiler else "")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render(entries: list[Entry]) -> str:
    """docs/libraries.md for these measurements."""
    out = [
        "# Libraries inside a module",
        "",
        (
            "<!-- Generated by docs/gen_libraries.py from tests/libraries/; "
            "tests/test_libraries.py checks it in CI. Do not edit by hand. -->"
        ),
        "",
        textwrap.dedent(
            """\
            What works natively works compiled, or the build says why not. Every row
            is a check in `tests/libraries/` run natively and inside a module built
            with the cpython backend (under the test emulator, wasmtime); the values
            are compared one by one (`tests/test_libraries.py`, in CI). A module that
            cannot be frozen fails the build with the message quoted, naming the
            module, its importer and the fix.

            **Adds** is what the module or package brings to a filter that imports
            nothing else: the Python modules its import closure adds to an empty
            filter's (`proxywasm build` freezes exactly these; modules the SDK already
            needs count for nothing) and their marshalled code, from the closure
            report of the build (`BuildResult.frozen_sizes`), plus the C modules of
            the wasm libpython it links in. Entries share modules: a filter using
            several pays for each module once. The snapshot holds the imported
            modules as objects rather than as code, which is of the same order.

            A module imported by a name computed at run time is not seen by the
            build: inside the module its import raises `ModuleNotFoundError` whose
            message names the fix, `proxywasm build --include MODULE`.
            """
        ).rstrip(),
        "",
    ]
    titles = {"stdlib": "The standard library", "packages": "Pure-Python packages"}
    for group in ("stdlib", "packages"):
        rows = [e for e in entries if e.group == group]
        works = sum(e.works for e in rows)
        out += [
            f"## {titles[group]}",
            "",
            f"{works} of {len(rows)} work compiled with the same values as natively.",
            "",
            "| module | exercised | compiled | adds | C modules |",
            "| --- | --- | --- | --- | --- |",
        ]
        for e in rows:
            if e.build_error is not None:
                status = "build error (below)"
                adds = "—"
            else:
                status = "same values" if e.works else "**differs**"
                adds = _adds(e)
            c_mods = ", ".join(e.c_modules) or "—"
            out.append(
                f"| `{e.name}` | {_cell(e.exercised)} | {status} | {adds} | {_cell(c_mods)} |"
            )
        out.append("")
        failed = [e for e in rows if e.build_error is not None]
        if failed:
            out += ["Build errors, as `proxywasm build` prints them:", ""]
            for e in failed:
                out += [f"- `{e.name}`:", "", "  ```", f"  {e.build_error}", "  ```", ""]
        compiled_in = [e for e in rows if e.compiler]
        if compiled_in:
            out += [
                (
                    '"+ the compiler": the entry keeps CPython\'s parser and compiler in the '
                    "module (left out otherwise), because a module it brings calls `exec`, "
                    "`eval` or `compile`:"
                ),
                "",
            ]
            out += [f"- `{e.name}`: {e.compiler}" for e in compiled_in]
            out.append("")
        differs = [e for e in rows if e.build_error is None and not e.works]
        if differs:
            out += ["Values that differ:", ""]
            for e in differs:
                out += [
                    f"- `{e.name}`: natively `{_cell(e.native)}`, compiled `{_cell(e.compiled)}`"
                ]
            out.append("")
    out += [
        "## Time zones",
        "",
        textwrap.dedent(
            """\
            A module has no filesystem, so no `/usr/share/zoneinfo`. When the closure has
            `zoneinfo` and the `tzdata` package is installed where you build, the build
            freezes tzdata's zone files in (about 0.5 MB) and serves them to
            `importlib.resources`, which `zoneinfo` reads them with: `ZoneInfo("Europe/Paris")`
            works as natively. Without tzdata, a filter importing `zoneinfo` fails to build
            with the fix (`pip install tzdata`, or fixed offsets with `datetime.timezone`).
            """
        ).rstrip(),
        "",
    ]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    """Rewrite docs/libraries.md, or with ``--check`` compare it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is stale")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="pw-libraries-") as td:
        text = render(measure(Path(td)))
    if args.check:
        if OUT.read_text() != text:
            print(f"{OUT} is out of date: run python docs/gen_libraries.py", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text)
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
