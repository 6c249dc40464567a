"""Import a filter file by path, keeping its root-context registration to itself.

Every example (and every user project with several filters) has a
``filter.py``; importing them by path under unique names keeps them from
shadowing each other, and capturing what each registered with
``proxywasm.set_root_context`` keeps one filter's root from serving another's
test.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from .. import dispatcher

__all__ = ["filter_roots", "load_filter"]

_ROOTS_ATTR = "__proxywasm_roots__"


def load_filter(path: str | Path) -> ModuleType:
    """Import ``path`` (once per process) and return the module.

    The roots it registered are kept on the module (see :func:`filter_roots`)
    and removed from the global registry again.
    """
    path = Path(path).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"no filter file at {path}")
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:10]
    name = f"_proxywasm_filter_{path.stem}_{digest}"
    module = sys.modules.get(name)
    if module is not None:
        return module
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    before = dispatcher.registered_roots()
    modules_before = set(sys.modules)
    # Sibling modules of the filter (helpers next to filter.py) import by name.
    sys.path.insert(0, str(path.parent))
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException as exc:
        del sys.modules[name]
        if isinstance(exc, SyntaxError):
            _refuse_newer_syntax(exc)
        raise
    finally:
        sys.path.remove(str(path.parent))
        # Helper modules beside filter.py (e.g. `openapi.py`) stay referenced by
        # the filter but leave sys.modules: another filter may have its own.
        for other in set(sys.modules) - modules_before - {name}:
            origin = getattr(sys.modules[other], "__file__", None)
            if origin and Path(origin).resolve().is_relative_to(path.parent):
                del sys.modules[other]
        after = dispatcher.registered_roots()
        dispatcher._registry.clear()
        dispatcher._registry.update(before)
    roots = {k: v for k, v in after.items() if before.get(k) is not v}
    if not roots:
        del sys.modules[name]
        raise LookupError(f"{path} never calls proxywasm.set_root_context(...)")
    setattr(module, _ROOTS_ATTR, roots)
    return module


def _refuse_newer_syntax(exc: SyntaxError) -> None:
    """Say so when this Python is too old for the filter's syntax (PEP 695 on 3.11...)."""
    if sys.version_info >= (3, 12) or not exc.filename:
        return
    try:
        from proxywasm_compiler.grammar import newer_construct

        newer = newer_construct(Path(exc.filename).read_bytes(), exc)
    except (ImportError, OSError):
        return
    if newer is None:
        return  # a plain syntax error
    what, line, column = newer
    version = ".".join(map(str, sys.version_info[:3]))
    err = SyntaxError(
        f"{what} needs Python 3.12 or newer to run natively, and this is Python {version}: "
        "run the native tests on Python >= 3.12, or build the filter with `proxywasm build "
        "--backend componentize-py` (CPython 3.14) and test the compiled module with "
        "HostEmulator.from_wasm"
    )
    err.filename, err.lineno, err.offset = exc.filename, line, column
    raise err from None


def filter_roots(module: ModuleType) -> dict[str | None, dispatcher.RootFactory]:
    """The roots a module loaded with :func:`load_filter` registered (root id -> factory)."""
    roots = getattr(module, _ROOTS_ATTR, None)
    if roots is None:
        raise TypeError(f"{module.__name__} was not loaded with proxywasm.testing.load_filter")
    return dict(roots)
