"""Fixtures of the compact backend's tests: modules built once per session.

Building needs zig (the ``ziglang`` package) but not CPython for wasm; a
build takes about a second after zig's libc is cached.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from proxywasm_compiler.backends.compact import build_compact

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
ADD_HEADER = REPO / "examples" / "add_header" / "filter.py"
PROBE = HERE / "probe_filter.py"


@pytest.fixture(scope="session")
def add_header_wasm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """examples/add_header/filter.py built with the compact backend."""
    out = tmp_path_factory.mktemp("compact") / "add_header.wasm"
    build_compact(ADD_HEADER, out)
    return out


@pytest.fixture(scope="session")
def probe_wasm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/compact/probe_filter.py built with the compact backend."""
    out = tmp_path_factory.mktemp("compact") / "probe.wasm"
    build_compact(PROBE, out)
    return out


PROBE2 = HERE / "probe2_filter.py"


@pytest.fixture(scope="session")
def probe2_wasm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/compact/probe2_filter.py built with the compact backend."""
    out = tmp_path_factory.mktemp("compact") / "probe2.wasm"
    build_compact(PROBE2, out)
    return out


TCP_PROBE = HERE / "tcp_probe_filter.py"


@pytest.fixture(scope="session")
def tcp_probe_wasm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/compact/tcp_probe_filter.py built with the compact backend."""
    out = tmp_path_factory.mktemp("compact") / "tcp_probe.wasm"
    build_compact(TCP_PROBE, out)
    return out
