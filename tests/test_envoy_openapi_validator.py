"""The openapi_validator example compiled and served by a real Envoy.

``examples/openapi_validator/filter.py`` is built once (the session's
``proxywasm_build`` fixture, shared with the example's own compiled tests) and
loaded by two Envoys started side by side, both with ``petstore.yaml`` as the
spec (YAML text inside the JSON plugin configuration):

- ``monitor``: traffic is never changed; violations show as counters in
  Envoy's admin ``/stats`` (``wasmcustom.openapi_validator.*``);
- ``enforce``: requests with violations get a 400 ``application/problem+json``.

Upstream: the echo server of ``proxywasm_compiler.echo``. It answers 200 with
what it received, and ``/status/NNN`` with status NNN, which drives the
``undocumented_status`` counter (``/status/{code}`` documents 200 and 4XX).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Self

import pytest
from proxywasm.testing.pytest_plugin import BuildFactory
from proxywasm_compiler.echo import EchoServer
from proxywasm_compiler.envoy import Envoy, FilterSpec, envoy_config, start_all
from proxywasm_compiler.envoy import Reply as HarnessReply

pytestmark = pytest.mark.slow

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "openapi_validator"
SPEC_YAML = (EXAMPLE / "petstore.yaml").read_text()
TIMEOUT = 10.0
PREFIX = "wasmcustom.openapi_validator."
NAMES = ["requests"] + [
    f"violations.{kind}"
    for kind in (
        "unknown_path",
        "unknown_method",
        "bad_parameter",
        "bad_body",
        "undocumented_status",
    )
]


@pytest.fixture(scope="module")
def envoys(
    proxywasm_build: BuildFactory, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Envoy]]:
    wasm = Path(proxywasm_build(EXAMPLE / "filter.py"))
    upstream = EchoServer()
    proxies = {
        mode: Envoy(
            envoy_config(
                [
                    FilterSpec(
                        wasm,
                        configuration=json.dumps(
                            {"spec": SPEC_YAML, "mode": mode, "log_limit": 100}
                        ),
                    )
                ],
                ("127.0.0.1", upstream.port),
            ),
            workdir=tmp_path_factory.mktemp(f"envoy-openapi-{mode}"),
        )
        for mode in ("monitor", "enforce")
    }
    try:
        start_all(proxies.values(), timeout=120)
        yield proxies
    finally:
        for proxy in proxies.values():
            proxy.stop()
        upstream.close()


@pytest.fixture(scope="module")
def monitor(envoys: dict[str, Envoy]) -> Envoy:
    return envoys["monitor"]


@pytest.fixture(scope="module")
def enforce(envoys: dict[str, Envoy]) -> Envoy:
    return envoys["enforce"]


# -- helpers ----------------------------------------------------------------------------------------


class Reply(HarnessReply):
    def problem(self) -> dict[str, Any]:
        """The filter's problem+json answer."""
        assert self.status == 400, self
        assert self.headers.get("content-type") == "application/problem+json", self
        assert self.headers.get("x-upstream") is None  # answered by the filter, not the upstream
        data: dict[str, Any] = json.loads(self.body)
        return data


def send(
    envoy: Envoy,
    method: str,
    path: str,
    body: bytes | list[bytes] | None = None,
    headers: dict[str, str] | None = None,
) -> Reply:
    """One request; a list body is sent in separate writes (several body callbacks)."""
    if body is not None:
        headers = {"content-type": "application/json", **(headers or {})}
    reply = envoy.request(path, method=method, headers=headers, body=body, timeout=TIMEOUT)
    return Reply(reply.status, reply.headers, reply.body)


def counters(envoy: Envoy) -> dict[str, int]:
    stats = envoy.stats()
    return {name: stats.get(PREFIX + name, 0) for name in NAMES}


class Delta:
    """Counter changes across a block: ``with Delta(envoy) as d: ...; d.changes``."""

    def __init__(self, envoy: Envoy) -> None:
        self.envoy = envoy
        self.changes: dict[str, int] = {}

    def __enter__(self) -> Self:
        self.before = counters(self.envoy)
        return self

    def __exit__(self, *exc: object) -> None:
        after = counters(self.envoy)
        self.changes = {k: after[k] - self.before[k] for k in NAMES if after[k] != self.before[k]}


def log_has(envoy: Envoy, needle: str, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if needle in envoy.log_text():
            return True
        time.sleep(0.05)
    return False


GOOD_PET = json.dumps(
    {"name": "Rex", "status": "available", "owner": {"email": "ann@example.com"}}
).encode()
BAD_PET = json.dumps({"name": "Rex", "weight": -1, "color": "red"}).encode()


# -- both modes -------------------------------------------------------------------------------------


def test_every_counter_is_listed_from_the_start(envoys: dict[str, Envoy]) -> None:
    for envoy in envoys.values():
        stats = envoy.stats()
        assert all(PREFIX + name in stats for name in NAMES), sorted(
            k for k in stats if k.startswith(PREFIX)
        )
        assert log_has(envoy, "openapi_validator: OpenAPI 3.0.3 'Petstore': 10 operations, mode")


@pytest.mark.parametrize("mode", ["monitor", "enforce"])
def test_valid_requests_pass(envoys: dict[str, Envoy], mode: str) -> None:
    envoy = envoys[mode]
    with Delta(envoy) as d:
        reply = send(
            envoy,
            "GET",
            "/pets?limit=5&tags=a&tags=b",
            headers={"x-request-id": "123e4567-e89b-12d3-a456-426614174000"},
        )
        assert reply.status == 200
        assert reply.echoed()["path"] == "/pets?limit=5&tags=a&tags=b"
        reply = send(envoy, "GET", "/status/404")  # documented by 4XX
        assert reply.status == 404
    assert d.changes == {"requests": 2}


@pytest.mark.parametrize("mode", ["monitor", "enforce"])
def test_undocumented_status_from_the_upstream(envoys: dict[str, Envoy], mode: str) -> None:
    envoy = envoys[mode]
    with Delta(envoy) as d:
        assert send(envoy, "GET", "/status/503").status == 503  # passed on untouched in both modes
    assert d.changes == {"requests": 1, "violations.undocumented_status": 1}
    assert log_has(
        envoy,
        "openapi_validator: GET /status/503: undocumented_status: response: status 503 is not documented",
    )


# -- monitor ---------------------------------------------------------------------------------------


def test_monitor_counts_but_never_changes_traffic(monitor: Envoy) -> None:
    with Delta(monitor) as d:
        reply = send(monitor, "GET", "/pets?limit=0")
        assert reply.status == 200 and reply.echoed()["path"] == "/pets?limit=0"
        reply = send(monitor, "GET", "/nowhere")
        assert reply.status == 200 and reply.echoed()["path"] == "/nowhere"
        reply = send(monitor, "PATCH", "/pets/1", body=b"{}")
        assert reply.status == 200 and reply.echoed()["method"] == "PATCH"
    assert d.changes == {
        "requests": 3,
        "violations.bad_parameter": 1,
        "violations.unknown_path": 1,
        "violations.unknown_method": 1,
    }
    assert log_has(
        monitor,
        "openapi_validator: GET /pets: bad_parameter: query parameter 'limit': 0 is less than the minimum 1",
    )


def test_monitor_validates_a_body_sent_in_pieces_without_holding_it(monitor: Envoy) -> None:
    pieces = [BAD_PET[:10], BAD_PET[10:25], BAD_PET[25:]]
    with Delta(monitor) as d:
        reply = send(monitor, "POST", "/pets", body=pieces)
    assert reply.status == 200
    assert reply.echoed()["body"] == BAD_PET.decode()  # reached the upstream unchanged
    # The echo upstream answers 200, which POST /pets does not document (201, 4XX):
    # exactly what the talk's "do the implementations match the spec?" is about.
    assert d.changes == {
        "requests": 1,
        "violations.bad_body": 1,
        "violations.undocumented_status": 1,
    }
    assert log_has(
        monitor,
        "openapi_validator: POST /pets: bad_body: body #/weight: -1 is not greater than the exclusive minimum 0",
    )


# -- enforce ---------------------------------------------------------------------------------------


def test_enforce_rejects_bad_parameters(enforce: Envoy) -> None:
    with Delta(enforce) as d:
        reply = send(enforce, "GET", "/pets/0?x=1")
    body = reply.problem()
    assert body["type"] == "urn:proxy-wasm-python:openapi-validator:request-violation"
    assert body["title"] == "Request does not match the API specification"
    assert body["status"] == 400
    assert body["operation"] == "showPet"
    assert body["errors"] == [
        {
            "kind": "bad_parameter",
            "in": "path",
            "name": "petId",
            "detail": "0 is less than the minimum 1",
        }
    ]
    assert d.changes == {
        "requests": 1,
        "violations.bad_parameter": 1,
    }  # our 400 is not an undocumented status


def test_enforce_rejects_unknown_paths(enforce: Envoy) -> None:
    body = send(enforce, "GET", "/admin").problem()
    assert body["errors"][0]["kind"] == "unknown_path"
    body = send(enforce, "DELETE", "/pets").problem()
    assert body["errors"][0]["kind"] == "unknown_method"


def test_enforce_buffers_and_rejects_a_bad_body(enforce: Envoy) -> None:
    pieces = [BAD_PET[:10], BAD_PET[10:25], BAD_PET[25:]]
    with Delta(enforce) as d:
        reply = send(enforce, "POST", "/pets", body=pieces)
    body = reply.problem()
    assert body["operation"] == "createPet"
    assert body["errors"] == [
        {
            "kind": "bad_body",
            "in": "body",
            "pointer": "#/weight",
            "detail": "-1 is not greater than the exclusive minimum 0",
        },
        {
            "kind": "bad_body",
            "in": "body",
            "pointer": "#/color",
            "detail": 'property "color" is not allowed (additionalProperties: false)',
        },
    ]
    assert d.changes == {"requests": 1, "violations.bad_body": 1}


def test_enforce_buffers_and_forwards_a_good_body(enforce: Envoy) -> None:
    pieces = [GOOD_PET[:7], GOOD_PET[7:30], GOOD_PET[30:]]
    reply = send(enforce, "POST", "/pets", body=pieces)
    assert reply.status == 200
    seen = reply.echoed()
    assert seen["body"] == GOOD_PET.decode()
    assert seen["headers"]["content-length"] == str(len(GOOD_PET))


def test_enforce_rejects_a_missing_required_body_and_bad_json(enforce: Envoy) -> None:
    body = send(enforce, "PUT", "/pets/1").problem()
    assert body["errors"] == [
        {"kind": "bad_body", "in": "body", "detail": "required, but the request has none"}
    ]
    body = send(enforce, "PUT", "/pets/1", body=b'{"name": "Rex"').problem()
    assert body["errors"][0]["detail"].startswith("not valid JSON: ")
