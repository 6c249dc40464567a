"""The import closure of a filter: every Python module it needs inside the module.

Imports are read from source with :mod:`ast` (never by importing user code on
the host). A name is looked up, in order, among: modules built into the wasm
libpython, the filter's own folder, the ``proxywasm`` SDK (without
``proxywasm.testing``), the CPython 3.11 stdlib of the toolchain, and pure-Python
packages of the active environment. Module-level imports are required: one
that cannot be frozen (a C extension, a missing module) fails the build with
the module's name and who imports it. Imports inside functions, ``try`` blocks
catching ImportError or ``if TYPE_CHECKING`` are optional: frozen when found,
skipped otherwise. In the stdlib and the SDK, optional imports are not
followed at all (they are lazy on purpose: following them would freeze most of
the stdlib); a filter that needs such a module imports it itself. One
exception: the SDK's lazy ``import json`` (configuration and body helpers
such as ``get_plugin_configuration_json``) is frozen when the filter's own
source mentions ``json`` at all.
"""

from __future__ import annotations

import ast
import importlib.machinery
import sys
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Closure", "ClosureError", "SourceModule", "resolve_closure"]

SDK_DIR = Path(__file__).resolve().parents[2] / "sdk" / "proxywasm"
#: Lazy imports of the SDK frozen when the filter's own modules mention the name
#: (``get_plugin_configuration_json()``, ``body.json()`` import ``json`` on use).
SDK_LAZY_ON_MENTION = ("json",)
#: Never frozen: the native test harness and the SDK's native host stand-in.
EXCLUDED = ("proxywasm.testing", "proxywasm._nullhost")
#: Modules libpython keeps frozen itself or that have no use inside Envoy.
SKIPPED = frozenset(
    {"__main__", "_frozen_importlib", "_frozen_importlib_external", "_proxywasm", "_pw_boot"}
)


class ClosureError(RuntimeError):
    """A module cannot be frozen; the message names it and its importer."""


@dataclass(frozen=True)
class SourceModule:
    """One module to freeze."""

    name: str
    path: Path
    is_package: bool
    origin: str  # "filter", "sdk", "stdlib", "site-packages"


@dataclass
class Closure:
    """The modules found, in discovery order, and the optional ones skipped."""

    modules: dict[str, SourceModule] = field(default_factory=dict)
    builtins_used: set[str] = field(default_factory=set)
    #: C modules imported lazily or guarded by the stdlib (accelerators such as
    #: _json): linked in when present, never required.
    optional_builtins: set[str] = field(default_factory=set)
    skipped_optional: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Import:
    name: str
    optional: bool
    line: int
    fromlist: tuple[str, ...] = ()


def _is_import_error_handler(handler: ast.ExceptHandler) -> bool:
    names: list[str] = []
    t = handler.type
    if t is None:
        return True
    for node in t.elts if isinstance(t, ast.Tuple) else [t]:
        if isinstance(node, ast.Name):
            names.append(node.id)
        elif isinstance(node, ast.Attribute):
            names.append(node.attr)
    return any(
        n in ("ImportError", "ModuleNotFoundError", "Exception", "BaseException") for n in names
    )


def _imports(tree: ast.Module, package: str | None) -> list[_Import]:
    """Imports of a module, each marked optional when it may legitimately fail."""
    out: list[_Import] = []

    def resolve(module: str | None, level: int) -> str | None:
        if level == 0:
            return module
        if package is None:
            return None
        parts = package.split(".")
        if level - 1 > len(parts) - 1 and level > 1:
            return None
        base = parts[: len(parts) - (level - 1)] if level > 1 else parts
        return ".".join(base + ([module] if module else []))

    def visit(node: ast.AST, optional: bool) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                out.append(_Import(alias.name, optional, node.lineno))
            return
        if isinstance(node, ast.ImportFrom):
            target = resolve(node.module, node.level)
            if target:
                out.append(
                    _Import(target, optional, node.lineno, tuple(a.name for a in node.names))
                )
            return
        if isinstance(node, ast.Try):
            guarded = any(_is_import_error_handler(h) for h in node.handlers)
            for stmt in node.body:
                visit(stmt, optional or guarded)
            for part in [*node.handlers, *node.orelse, *node.finalbody]:
                visit(part, optional)
            return
        if isinstance(node, ast.If):
            test = node.test
            is_tc = (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
                isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
            )
            if is_tc:
                for other in node.orelse:
                    visit(other, optional)
                return
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            for inner in ast.iter_child_nodes(node):
                visit(inner, True)
            return
        for child in ast.iter_child_nodes(node):
            visit(child, optional)

    for stmt in tree.body:
        visit(stmt, False)
    return out


def _host_stdlib_dirs() -> list[Path]:
    paths = sysconfig.get_paths()
    return [Path(paths[k]).resolve() for k in ("stdlib", "platstdlib") if k in paths]


class _Finder:
    def __init__(self, filter_dir: Path, stdlib_dir: Path, builtins: frozenset[str]) -> None:
        self.filter_dir = filter_dir
        self.stdlib_dir = stdlib_dir
        self.builtins = builtins
        host_std = _host_stdlib_dirs()
        self.site_paths = [
            Path(p)
            for p in sys.path
            if p
            and Path(p).is_dir()
            and Path(p).resolve() not in host_std
            and not any(
                Path(p).resolve().is_relative_to(h) and "site-packages" not in p for h in host_std
            )
        ]

    @staticmethod
    def _in(root: Path, name: str) -> tuple[Path, bool] | None:
        base = root.joinpath(*name.split("."))
        if (base / "__init__.py").is_file():
            return base / "__init__.py", True
        if base.with_suffix(".py").is_file():
            return base.with_suffix(".py"), False
        return None

    def find(self, name: str) -> SourceModule | str | None:
        """A SourceModule; "builtin"; an error string for a C extension; None if missing."""
        top = name.split(".")[0]
        if name in self.builtins:
            return "builtin"
        if top == "proxywasm":
            if name.startswith(EXCLUDED):
                return None
            found = self._in(SDK_DIR.parent, name)
            return SourceModule(name, found[0], found[1], "sdk") if found else None
        found = self._in(self.filter_dir, name)
        if found:
            return SourceModule(name, found[0], found[1], "filter")
        ext = self._extension(self.filter_dir, name)
        if ext:
            return ext
        found = self._in(self.stdlib_dir, name)
        if found:
            return SourceModule(name, found[0], found[1], "stdlib")
        if top in sys.stdlib_module_names:
            return None  # a stdlib module the wasm CPython does not have (e.g. _socket)
        for root in self.site_paths:
            found = self._in(root, name)
            if found:
                return SourceModule(name, found[0], found[1], "site-packages")
            ext = self._extension(root, name)
            if ext:
                return ext
        return None

    @staticmethod
    def _extension(root: Path, name: str) -> str | None:
        """An error message if ``name`` is a compiled extension under ``root``."""
        base = root.joinpath(*name.split("."))
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            for candidate in (base.with_name(base.name + suffix), base / f"__init__{suffix}"):
                if candidate.is_file():
                    return (
                        f"{name} is a C extension ({candidate}); only pure-Python modules can be "
                        "frozen into a module (look for a pure-Python alternative)"
                    )
        return None


#: Module names a filter file may not take: the SDK's own packages.
SDK_MODULES = frozenset({"proxywasm", "proxywasm_abi", "proxywasm_compiler", "_proxywasm_glue"})


def filter_module_name(filter_path: Path, builtins: frozenset[str] = frozenset()) -> str:
    """The module name of a filter file, refused (:class:`ClosureError`) when it cannot be one.

    Inside the module the filter is imported by its file's stem, beside the
    standard library and the SDK: ``json.py`` would shadow ``json`` for the
    SDK too, ``class.py`` cannot be imported at all. The message names the fix.
    """
    import keyword

    name = filter_path.stem
    fix = f"rename the file, e.g. to {_suggest(name)}.py"
    if not name.isidentifier() or keyword.iskeyword(name):
        raise ClosureError(f"{filter_path.name}: {name!r} is not a valid Python module name: {fix}")
    if name in sys.stdlib_module_names or name in builtins:
        raise ClosureError(
            f"{filter_path.name}: the filter's module name {name!r} would shadow the standard library "
            f"module {name!r} inside the module (the SDK imports it too): {fix}"
        )
    if name in SDK_MODULES:
        raise ClosureError(f"{filter_path.name}: the module name {name!r} is the SDK's own: {fix}")
    return name


def _suggest(name: str) -> str:
    import keyword
    import re

    cleaned = re.sub(r"\W+", "_", name).strip("_") or "my"
    if cleaned[0].isdigit():
        cleaned = "f_" + cleaned
    if (
        cleaned != name
        and not keyword.iskeyword(cleaned)
        and cleaned not in sys.stdlib_module_names
    ):
        return cleaned
    return f"{cleaned}_filter"


def resolve_closure(
    filter_path: Path, stdlib_dir: Path, builtins: frozenset[str], extra: tuple[str, ...] = ()
) -> tuple[str, Closure]:
    """Walk the imports of ``filter_path``; returns (the filter's module name, the closure)."""
    filter_path = filter_path.resolve()
    if not filter_path.is_file():
        raise ClosureError(f"no such filter file: {filter_path}")
    if filter_path.suffix != ".py":
        raise ClosureError(f"{filter_path} is not a .py file")
    modname = filter_module_name(filter_path, builtins)
    finder = _Finder(filter_path.parent, stdlib_dir, builtins)
    closure = Closure()
    root = SourceModule(modname, filter_path, False, "filter")
    queue: list[tuple[SourceModule, str]] = [(root, "")]
    closure.modules[modname] = root
    for name in extra:
        queue.append((_require(finder, closure, name, f"the build ({name})"), ""))

    mentioned: set[str] = set()
    while queue:
        mod, _ = queue.pop(0)
        source = mod.path.read_bytes()
        if mod.origin == "filter":
            mentioned.update(n for n in SDK_LAZY_ON_MENTION if n.encode() in source)
        try:
            tree = ast.parse(source, filename=str(mod.path))
        except SyntaxError as exc:
            raise ClosureError(
                f"{exc.filename}:{exc.lineno}:{exc.offset or 0}: syntax error: {exc.msg}"
            ) from None
        package = mod.name if mod.is_package else mod.name.rpartition(".")[0] or None
        # a submodule needs its parent packages
        parents = mod.name.split(".")[:-1]
        wanted: list[_Import] = [
            _Import(".".join(parents[: i + 1]), False, 0) for i in range(len(parents))
        ]
        found_imports = _imports(tree, package)
        if mod.origin in ("stdlib", "sdk"):
            # Their lazy imports (inside functions, or guarded) serve features a
            # filter rarely reaches; following them freezes most of the stdlib.
            # Guarded C accelerators (`try: from _json import ...`) are kept.
            for imp in found_imports:
                if imp.optional and imp.name in builtins:
                    closure.optional_builtins.add(imp.name)
            keep = mentioned if mod.origin == "sdk" else set()
            found_imports = [i for i in found_imports if not i.optional or i.name in keep]
        wanted += found_imports
        for imp in wanted:
            names = [imp.name] + [f"{imp.name}.{n}" for n in imp.fromlist if n != "*"]
            parts = imp.name.split(".")
            names = [".".join(parts[: i + 1]) for i in range(len(parts) - 1)] + names
            for i, name in enumerate(names):
                if name in closure.modules or name in closure.builtins_used or name in SKIPPED:
                    continue
                if name.startswith(EXCLUDED):
                    continue
                found = finder.find(name)
                is_fromlist_member = i >= len(parts)  # `from pkg import name` may be an attribute
                if found == "builtin":
                    closure.builtins_used.add(name)
                    continue
                if isinstance(found, SourceModule):
                    closure.modules[name] = found
                    queue.append((found, mod.name))
                    continue
                if is_fromlist_member:
                    continue
                where = f"{mod.path}:{imp.line}" if imp.line else str(mod.path)
                # The stdlib guards its platform-specific imports itself (nt, _winapi...).
                if imp.optional or mod.origin == "stdlib":
                    closure.skipped_optional[name] = where
                    continue
                reason = (
                    found
                    if isinstance(found, str)
                    else f"no module named {name!r} (not in the filter's folder, the CPython 3.11 stdlib for wasm, or the active environment)"
                )
                raise ClosureError(
                    f"cannot freeze {name!r}, imported by {mod.name} ({where}): {reason}"
                )
        if not queue and "proxywasm" in closure.modules:
            # A filter module read after the SDK may have mentioned a lazy SDK import.
            for name in sorted(mentioned - set(closure.modules)):
                queue.append((_require(finder, closure, name, "the SDK (a lazy import)"), ""))
    return modname, closure


def _require(finder: _Finder, closure: Closure, name: str, who: str) -> SourceModule:
    found = finder.find(name)
    if not isinstance(found, SourceModule):
        raise ClosureError(f"cannot freeze {name!r}, needed by {who}")
    closure.modules[name] = found
    return found
