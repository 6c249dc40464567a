"""tests/pythonic/filter.py built by the compact backend, in a real Envoy.

The tests of ``tests/test_envoy_pythonic.py`` run here again with their own
assertions, against the compact module: views, callouts awaited by the
compiled state machines against real local upstreams (Envoy's 504 on a
timeout included), the failure policy after an await, and ``on_tick``.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from proxywasm_compiler.build import build_filter
from proxywasm_compiler.echo import EchoServer
from proxywasm_compiler.envoy import Envoy, FilterSpec, envoy_config

pytestmark = pytest.mark.slow

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location(
    "_compact_envoy_pythonic_tests", HERE.parent / "test_envoy_pythonic.py"
)
assert _spec is not None and _spec.loader is not None
_suite = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_suite)


@pytest.fixture(scope="module")
def envoy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Envoy]:
    """One Envoy serving the compact module, its callouts on the suite's local services."""
    work = tmp_path_factory.mktemp("pythonic-compact")
    wasm = build_filter(_suite.FILTER, work / "pythonic.wasm", backend="compact").output
    assert wasm.stat().st_size < 200_000  # no interpreter inside
    callee = _suite.Callee()
    upstream = EchoServer()
    proxy: Envoy | None = None
    try:
        address = ("127.0.0.1", callee.port)
        config = envoy_config(
            [FilterSpec(wasm, configuration=json.dumps({"tag": "blue"}), vm_id="pythonic")],
            ("127.0.0.1", upstream.port),
            clusters={name: address for name in ("auth", "a", "b", "stats")},
        )
        proxy = Envoy(config, workdir=work)
        proxy.start(timeout=120)
        yield proxy
    finally:
        if proxy is not None:
            proxy.stop()
        upstream.close()
        callee.close()


test_header_views = _suite.test_header_views
test_response_view_sees_the_status = _suite.test_response_view_sees_the_status
test_body_view_buffers_the_whole_body_then_rewrites_it = (
    _suite.test_body_view_buffers_the_whole_body_then_rewrites_it
)
test_awaited_auth_allows_with_the_answers_header = (
    _suite.test_awaited_auth_allows_with_the_answers_header
)
test_awaited_auth_denies_with_the_answers_body = (
    _suite.test_awaited_auth_denies_with_the_answers_body
)
test_a_callout_timeout_arrives_as_envoys_504 = _suite.test_a_callout_timeout_arrives_as_envoys_504
test_awaits_in_sequence = _suite.test_awaits_in_sequence
test_gather = _suite.test_gather
test_an_exception_after_an_await_fails_closed = _suite.test_an_exception_after_an_await_fails_closed
test_a_refused_dispatch_raises_host_call_error = (
    _suite.test_a_refused_dispatch_raises_host_call_error
)
test_on_tick_awaits_a_callout = _suite.test_on_tick_awaits_a_callout
