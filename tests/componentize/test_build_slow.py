"""The componentize-py backend end to end (slow tier): filters built, run compiled, compared.

Each filter is built once per session (``proxywasm_build``, 10-45 s a build):

* ``pep695/filter.py`` (PEP 695 and PEP 701 syntax, CPython 3.14 only) in the
  wasm harness against ``pep695/twin.py``, the same filter in 3.11 syntax run
  natively, and against concrete headers;
* ``tests/gateway/filter.py`` against its native run on hypothesis-drawn
  request sequences and configurations, with ``test_gateway``'s helpers;
* the same gateway module in Envoy 1.40, by ``test_gateway``'s Envoy check.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from os import PathLike
from pathlib import Path
from typing import Any

import pytest
import test_gateway as gw  # tests/ is on pythonpath: the gateway's helpers, shared
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from proxywasm.testing import HostEmulator, load_filter
from proxywasm.testing.pytest_plugin import BuildFactory
from proxywasm_compiler.echo import EchoServer
from proxywasm_compiler.envoy import Envoy, FilterSpec, envoy_config

pytestmark = pytest.mark.slow

BACKEND = "componentize-py"
PEP695 = Path(__file__).resolve().parent / "pep695"


@pytest.fixture(scope="module")
def pep695_wasm(proxywasm_build: BuildFactory) -> PathLike[str]:
    return proxywasm_build(PEP695 / "filter.py", BACKEND)


@pytest.fixture(scope="module")
def gateway_wasm(proxywasm_build: BuildFactory) -> PathLike[str]:
    return proxywasm_build(gw.FILTER, BACKEND)


def _pep695_run(host: HostEmulator, paths: list[str]) -> list[Any]:
    assert host.start_vm() and host.start_plugin()
    seen: list[Any] = []
    for path in paths:
        ex = host.http([(":method", "GET"), (":path", path), (":authority", "x")])
        seen.append((ex.status, ex.upstream_headers, ex.response_body))
    seen.append(host.get_all_logs())
    return seen


def test_the_pep695_filter_runs_compiled_as_its_311_twin_natively(
    pep695_wasm: PathLike[str],
) -> None:
    paths = ["/a/b", "/a/b", "/", "/c?d", "/a/b"]
    compiled = _pep695_run(HostEmulator.from_wasm(pep695_wasm), paths)
    native = _pep695_run(HostEmulator(load_filter(PEP695 / "twin.py")), paths)
    assert compiled == native
    # colorsys is imported inside the callback: only the target-grammar closure put it in.
    headers = [dict(upstream)["x-pep695"] for _, upstream, _ in compiled[:-1]]
    assert headers == ["a:1:0.500", "a:2:0.500", "-:1:0.500", "c?d:1:0.500", "a:3:0.500"]
    assert compiled[-1] == []  # no error logged


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(config=gw.CONFIGS, sequence=st.lists(gw.requests(), min_size=1, max_size=6))
def test_the_gateway_compiled_agrees_with_its_native_run(
    gateway_wasm: Path, config: Any, sequence: list[Any]
) -> None:
    native, compiled = gw.host_pair(gateway_wasm, config)
    assert gw.effects(compiled, sequence) == gw.effects(native, sequence)


@pytest.fixture(scope="module")
def gateway_envoy(gateway_wasm: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Envoy]:
    echo = EchoServer()
    service = gw.AuthService()
    config = envoy_config(
        [FilterSpec(Path(gateway_wasm), configuration=json.dumps(gw.CONFIG))],
        ("127.0.0.1", echo.port),
        clusters={"auth": ("127.0.0.1", service.port)},
    )
    proxy = Envoy(config, workdir=tmp_path_factory.mktemp("envoy-gateway-componentize"))
    try:
        proxy.start(timeout=180)
        yield proxy
    finally:
        proxy.stop()
        echo.close()
        service.close()


def test_envoy_serves_the_componentize_gateway_as_the_native_run_predicts(
    gateway_envoy: Envoy,
) -> None:
    gw.test_envoy_serves_what_the_native_run_predicts(gateway_envoy)
