"""Helpers the Envoy test modules share: build an example, start Envoy, wait, name things.

Every wait here is bounded; Envoy processes are stopped by their fixtures.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from proxywasm_compiler.build import build_filter
from proxywasm_compiler.envoy import Envoy

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
#: The bound of every request, socket and wait in the Envoy tests.
TIMEOUT = 10.0


def build_example(
    name: str, tmp_path_factory: pytest.TempPathFactory, backend: str = "cpython"
) -> Path:
    """Compile ``examples/<name>/filter.py`` into a fresh temporary folder."""
    out = tmp_path_factory.mktemp(name) / f"{name}.wasm"
    build_filter(EXAMPLES / name / "filter.py", out, backend=backend)
    return out


def start_envoy(config: dict[str, Any], workdir: Path, concurrency: int = 1) -> Envoy:
    """Start one Envoy and wait until it listens (stopped on failure to start)."""
    envoy = Envoy(config, workdir=workdir, concurrency=concurrency)
    envoy.start(timeout=120)
    return envoy


def wait_for(condition: Callable[[], Any], what: str, timeout: float = TIMEOUT) -> Any:
    """Poll ``condition`` until it returns something truthy; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() > deadline:
            assert value, f"timed out waiting for {what}"
            return value
        time.sleep(0.05)


def unique(prefix: str) -> str:
    """A name no other test uses (request ids, client keys)."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"
