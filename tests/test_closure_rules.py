"""Rules of the import closure, on small filter trees (no toolchain needed: the host stdlib)."""

from __future__ import annotations

import sys
import sysconfig
from pathlib import Path

from proxywasm_compiler.closure import resolve_closure

STDLIB = Path(sysconfig.get_paths()["stdlib"])
BUILTINS = frozenset(sys.builtin_module_names)

PLAIN = """
import proxywasm
from proxywasm import RootContext

class Root(RootContext):
    pass

proxywasm.set_root_context(Root)
"""


def closure_of(tmp_path: Path, source: str, **local: str) -> set[str]:
    (tmp_path / "my_filter.py").write_text(source)
    for name, text in local.items():
        (tmp_path / f"{name}.py").write_text(text)
    _, closure = resolve_closure(tmp_path / "my_filter.py", STDLIB, BUILTINS)
    return set(closure.modules)


def test_the_sdks_lazy_json_is_not_frozen_unless_the_filter_mentions_it(tmp_path: Path) -> None:
    modules = closure_of(tmp_path, PLAIN)
    assert "proxywasm.contexts" in modules
    assert "json" not in modules


def test_get_plugin_configuration_json_freezes_json(tmp_path: Path) -> None:
    source = PLAIN.replace(
        "    pass",
        "    def on_configure(self, n: int) -> bool:\n"
        "        return self.get_plugin_configuration_json() is not None",
    )
    modules = closure_of(tmp_path, source)
    assert {"json", "json.decoder"} <= modules


def test_a_mention_in_a_module_read_after_the_sdk_counts_too(tmp_path: Path) -> None:
    # my_filter -> mid -> helper: the SDK's modules are read before helper
    modules = closure_of(
        tmp_path,
        PLAIN + "import mid\n",
        mid="import helper\n",
        helper="def parse(r):\n    return r.body.json()\n",
    )
    assert "helper" in modules and "json" in modules
