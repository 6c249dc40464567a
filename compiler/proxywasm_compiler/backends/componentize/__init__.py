"""The componentize-py backend: CPython 3.14 from componentize-py, fused into one core module.

Pipeline (each stage a module of this package; docs/componentize.md says why):

1. :mod:`.wit` - the WIT world generated from ``abi-stubs/abi.toml``: host
   functions are imports, callbacks exports, with types whose canonical
   lowering is the proxy-wasm ABI itself;
2. :mod:`.pyglue` - ``_proxywasm`` written in Python over the world's
   bindings, and the app module that imports the filter and answers the
   callbacks through the SDK's dispatcher;
3. componentize-py (the ``componentize`` extra) builds the component and
   pre-initialises it (component-init: the filter is imported at build time);
4. :mod:`.fuse` with :mod:`.host` - the component's core modules merged into
   one proxy-wasm module on the project's own wasm reader (:mod:`.core`,
   :mod:`.component`); WASI 0.2 is served by the WASI preview 1 functions
   Envoy provides; :mod:`.dce` then drops the functions nothing reaches;
5. the module is written atomically.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from ...build import BuildError, BuildResult, _Progress, write_module
from .dce import prune_functions
from .fuse import FuseError, FuseResult, fuse
from .host import ProxyWasmHost, abi_exports, callback_export_name
from .pyglue import APP_MODULE, render_app, render_host_module
from .wit import WORLD, render_wit

__all__ = ["build_componentize", "componentize", "fuse_component", "import_closure"]


def fuse_component(component: bytes, *, prune: bool = True) -> FuseResult:
    """Fuse a componentize-py component of our WIT world into one proxy-wasm module.

    `prune` drops the functions nothing can reach (:mod:`.dce`): about 2,000
    functions and 1 MB of code for a filter.
    """
    host = ProxyWasmHost()
    result = fuse(component, host, exports=callback_export_name, extra_exports=abi_exports(host))
    if prune:
        pruned = prune_functions(result.wasm)
        result.wasm = pruned.wasm
        result.functions -= pruned.removed
        result.pruned = pruned.removed
    return result


def _sdk_dir() -> Path:
    import proxywasm

    return Path(proxywasm.__file__).resolve().parent.parent


def import_closure(source: Path, progress: _Progress | None) -> list[str]:
    """The filter's import closure (module names), on the host's stdlib, in 3.14's grammar.

    The cpython backend's resolver, reading every source with the target's
    grammar (:func:`~proxywasm_compiler.grammar.target_parse`: PEP 695, PEP
    701, PEP 750, PEP 758 parse), on the host's standard library: a module
    that only CPython 3.14 has and that the filter imports lazily is missed.
    """
    from ...closure import ClosureError, resolve_closure
    from ...grammar import target_parse

    stdlib = Path(sysconfig.get_paths()["stdlib"])
    # The host's C extension modules of the stdlib (binascii, _json...) stand
    # for the target's: componentize-py's CPython has them built in.
    dynload = stdlib / "lib-dynload"
    extensions = {f.name.split(".", 1)[0] for f in dynload.glob("*.so")}
    import _imp

    frozen = set(_imp._frozen_module_names())  # type: ignore[attr-defined]  # os.path...
    builtins = frozenset(sys.builtin_module_names) | extensions | frozen
    try:
        modname, closure = resolve_closure(source, stdlib, builtins, parse=target_parse)
    except ClosureError as exc:
        if progress is not None:
            progress.note(f"import closure not preloaded: {exc}")
        return []
    names = [name for name in closure.modules if name != modname]
    names += sorted(closure.builtins_used | closure.optional_builtins)
    return names


def componentize(source: Path, work: Path, *, progress: _Progress | None = None) -> bytes:
    """Run componentize-py on the filter `source` with the generated glue; the component."""
    if importlib.util.find_spec("componentize_py") is None:
        raise BuildError(
            "the componentize-py backend needs componentize-py: "
            "pip install 'proxy-wasm-python[componentize]'"
        )
    wit_dir = work / "wit"
    wit_dir.mkdir(parents=True, exist_ok=True)
    (wit_dir / "world.wit").write_text(render_wit())
    glue = work / "glue"
    glue.mkdir(exist_ok=True)
    (glue / "_proxywasm.py").write_text(render_host_module())
    preload = import_closure(source, progress)
    (glue / f"{APP_MODULE}.py").write_text(render_app(source.stem, source.name, preload))
    out = work / "component.wasm"
    argv = [
        "componentize-py",
        "-d", str(wit_dir),
        "-w", WORLD,
        "componentize",
        "-p", str(glue),
        "-p", str(source.parent),
        "-p", str(_sdk_dir()),
        APP_MODULE,
        "-o", str(out),
    ]  # fmt: skip
    script = "import sys, componentize_py; sys.argv = sys.argv[1:]; componentize_py.script()"
    env = dict(os.environ)
    env.pop("VIRTUAL_ENV", None)  # else the whole venv lands on the target's sys.path
    if progress is not None:
        progress.note(" ".join(argv))
    proc = subprocess.run(
        [sys.executable, "-c", script, *argv],
        capture_output=True,
        text=True,
        env=env,
        cwd=work,
        check=False,
    )
    if proc.returncode != 0 or not out.is_file():
        raise BuildError(f"componentize-py failed:\n{(proc.stderr or proc.stdout)[-4000:]}")
    return out.read_bytes()


def build_componentize(
    source: Path | str,
    output: Path | str | None = None,
    *,
    progress: IO[str] | None = None,
    hash_seed: int | None = None,
    keep_compiler: bool = False,
    include: Sequence[str] = (),
) -> BuildResult:
    """Compile the filter ``source`` with componentize-py into one proxy-wasm module.

    ``hash_seed`` and ``keep_compiler`` are accepted for the common backend
    signature and have no effect yet; ``include`` is not supported yet.
    """
    del hash_seed, keep_compiler
    source = Path(source).resolve()
    out = Path(output) if output else source.with_suffix(".wasm")
    if include:
        raise BuildError("--include is not supported by the componentize-py backend yet")
    if not source.is_file():
        raise BuildError(f"{source}: no such filter file")
    p = _Progress(progress)
    with tempfile.TemporaryDirectory(prefix="pw-componentize-") as td:
        work = Path(os.environ.get("PROXYWASM_BUILD_DIR") or td)
        p.stage(
            "componentize", "componentize-py: CPython 3.14, the filter imported (component-init)"
        )
        component = componentize(source, work, progress=p)
        p.stage("fuse", f"{len(component) / 1e6:.1f} MB component into one core module")
        try:
            result = fuse_component(component)
        except FuseError as exc:
            raise BuildError(f"cannot fuse the component: {exc}") from None
        p.note(
            f"{result.modules} core modules, {result.functions} functions "
            f"({result.pruned} unreachable ones dropped), "
            f"{len(result.imports)} imports, {len(result.trapping)} WASI 0.2 functions trap"
        )
        p.stage("write", str(out))
        write_module(out, result.wasm)
    seconds = p.finish()
    return BuildResult(out, len(result.wasm), seconds, result.modules, dict(p.stages))
