"""Filter file names that cannot be the module's name are refused before any build work."""

from __future__ import annotations

from pathlib import Path

import pytest
from proxywasm_compiler.build import BuildError, build_filter

FILTER = (
    Path(__file__).resolve().parent.parent / "examples" / "add_header" / "filter.py"
).read_text()

CASES = {
    "json.py": ("would shadow the standard library module 'json'", "json_filter.py"),
    "random.py": ("would shadow the standard library module 'random'", "random_filter.py"),
    "sys.py": ("would shadow the standard library module 'sys'", "sys_filter.py"),
    "class.py": ("'class' is not a valid Python module name", "class_filter.py"),
    "my-filter.py": ("'my-filter' is not a valid Python module name", "my_filter.py"),
    "2fast.py": ("'2fast' is not a valid Python module name", "f_2fast.py"),
    "proxywasm.py": ("the module name 'proxywasm' is the SDK's own", "proxywasm_filter.py"),
}


@pytest.mark.parametrize("backend", ["cpython", "compact"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_refused_with_the_fix_named(tmp_path: Path, name: str, backend: str) -> None:
    src = tmp_path / name
    src.write_text(FILTER)
    reason, suggestion = CASES[name]
    with pytest.raises(BuildError) as info:
        build_filter(src, backend=backend)
    message = str(info.value)
    assert message.startswith(f"{name}: "), message
    assert reason in message
    assert message.endswith(f"rename the file, e.g. to {suggestion}")
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


def test_an_ordinary_name_is_accepted(tmp_path: Path) -> None:
    src = tmp_path / "json_filter.py"
    src.write_text(FILTER)
    assert build_filter(src, backend="compact").output.is_file()
