"""zig's caches live under the project's cache dir and stay bounded."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from proxywasm_compiler.toolchain import prune_zig_cache, zig_argv


@pytest.mark.slow
def test_zig_compiles_into_our_cache_only(tmp_path: Path) -> None:
    cache, home, work = tmp_path / "cache", tmp_path / "home", tmp_path / "work"
    for d in (home, work):
        d.mkdir()
    (work / "a.c").write_text("int pw_a(int x) { return x * 2; }\n")
    env = {
        **os.environ,
        "PROXYWASM_CACHE_DIR": str(cache),
        "HOME": str(home),
        "XDG_CACHE_HOME": str(home),
    }
    env.pop("ZIG_GLOBAL_CACHE_DIR", None)
    env.pop("ZIG_LOCAL_CACHE_DIR", None)
    subprocess.run(
        [*zig_argv(), "cc", "-target", "wasm32-wasi", "-Oz", "-c", "a.c", "-o", "a.o"],
        cwd=work,
        env=env,
        check=True,
        timeout=600,
        capture_output=True,
    )
    assert (work / "a.o").read_bytes()[:4] == b"\0asm"
    assert sorted(p.name for p in work.iterdir()) == [
        "a.c",
        "a.o",
    ]  # no zig-cache beside the sources
    assert list(home.iterdir()) == []  # nothing in ~/.cache/zig
    assert any((cache / "zig").rglob("*"))


def _entry(base: Path, name: str, size: int, mtime: float) -> Path:
    path = base / name
    path.mkdir(parents=True)
    (path / "obj").write_bytes(b"x" * size)
    os.utime(path, (mtime, mtime))
    return path


def test_prune_removes_the_oldest_until_half_the_limit(tmp_path: Path) -> None:
    old = [_entry(tmp_path / "o", f"old{i}", 100, 1000 + i) for i in range(6)]
    new = [_entry(tmp_path / "o", f"new{i}", 100, 5000 + i) for i in range(4)]
    freed = prune_zig_cache(limit=800, cache=tmp_path)  # 1000 bytes > 800: down to <= 400
    assert freed == 600
    assert [p.exists() for p in old] == [False] * 6
    assert all(p.exists() for p in new)


def test_prune_leaves_a_cache_under_the_limit(tmp_path: Path) -> None:
    kept = [_entry(tmp_path / "o", f"e{i}", 100, 1000 + i) for i in range(3)]
    assert prune_zig_cache(limit=300, cache=tmp_path) == 0
    assert all(p.exists() for p in kept)
    assert prune_zig_cache(limit=300, cache=tmp_path / "missing") == 0


def test_prune_keeps_entries_a_running_build_may_use(tmp_path: Path) -> None:
    import time

    old = [_entry(tmp_path / "o", f"old{i}", 100, 1000 + i) for i in range(2)]
    now = time.time()
    fresh = [_entry(tmp_path / "o", f"fresh{i}", 100, now - 5) for i in range(8)]
    freed = prune_zig_cache(limit=800, cache=tmp_path)  # over the limit, but only old ones go
    assert freed == 200
    assert not any(p.exists() for p in old) and all(p.exists() for p in fresh)


def test_prune_skips_an_entry_that_vanishes_while_it_walks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from proxywasm_compiler import toolchain

    gone = _entry(tmp_path / "o", "gone", 100, 1000)
    kept = _entry(tmp_path / "o", "kept", 100, 1001)
    real_size = toolchain._size

    def racing(entry: Path) -> int:
        if entry == gone:  # another build removes it between iterdir() and stat()
            raise FileNotFoundError(entry)
        return real_size(entry)

    monkeypatch.setattr(toolchain, "_size", racing)
    assert prune_zig_cache(limit=50, cache=tmp_path) == 100
    assert not kept.exists()
