"""gateway: one typed filter that uses every kind of host call the compact backend's issue names.

Per request:

- ``/boom``: the request-headers callback raises ``RuntimeError`` (the
  failure policy answers 500, fail closed);
- no ``authorization`` header: a local reply ``401`` with a JSON body;
- otherwise an HTTP callout to the configured cluster (``GET /check`` with
  the token) is awaited; an answer other than ``200`` is a ``403`` reply;
- a per-client quota kept in shared data with compare-and-swap (key
  ``gateway.quota``: one counter for all clients in ``on_configure``'s key):
  past ``quota`` requests, a ``429`` reply;
- the request goes on with ``x-gateway-user`` (from the callout answer) and
  the configured extra headers; counters ``gateway_allowed`` and
  ``gateway_denied`` (label-free) count the outcomes;
- a JSON request body is buffered until its end and rewritten with
  ``"gateway": true`` added (its ``content-length`` is dropped in the
  headers callback, as Envoy forwards it unchanged otherwise); a body that
  is not a JSON object passes as it is.

Plugin configuration (JSON object): ``cluster`` (str), ``quota`` (int >= 0),
``headers`` (object of str -> str); anything else is rejected with
:class:`proxywasm.ConfigError`.
"""

from __future__ import annotations

import json

import proxywasm
from proxywasm import Action, ConfigError, HttpContext, RootContext
from proxywasm.shared import ensure_shared_data, update_shared_data

ALLOWED = proxywasm.Counter("gateway_allowed")
DENIED = proxywasm.Counter("gateway_denied")

QUOTA_KEY = "gateway.quota"


def bump(value: bytes | None) -> bytes:
    """The quota counter plus one (the key exists: ``on_configure`` made it)."""
    count = int(value.decode()) if value else 0
    return str(count + 1).encode()


class Gateway(HttpContext["Root"]):
    """One request through the gateway."""

    def __init__(self, context_id: int, root: Root) -> None:
        super().__init__(context_id, root)
        self.rewrite = False

    def deny(self, status: int, reason: str) -> Action:
        DENIED.increment(1)
        body = json.dumps({"error": reason, "status": status})
        self.send_http_response(status, [("content-type", "application/json")], body)
        return Action.PAUSE

    async def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
        headers = self.request.headers
        path = self.request.path
        if path == "/boom":
            raise RuntimeError("gateway: boom requested")
        token = headers.get("authorization")
        if token is None:
            return self.deny(401, "missing credentials")
        answer = await self.http_call(
            self.root.cluster,
            path="/check",
            headers={"authorization": token},
            timeout_ms=1000,
        )
        if answer.status != 200:
            return self.deny(403, "denied by " + self.root.cluster)
        count = int(update_shared_data(QUOTA_KEY, bump).decode())
        if count > self.root.quota:
            return self.deny(429, "quota of " + str(self.root.quota) + " used up")
        ALLOWED.increment(1)
        headers["x-gateway-user"] = answer.headers.get("x-user", "anonymous")
        for name, value in self.root.extra.items():
            headers[name] = value
        if not end_of_stream and "json" in headers.get("content-type", ""):
            self.rewrite = True
            headers.pop("content-length", None)
        return Action.CONTINUE

    def on_http_request_body(self, body_size: int, end_of_stream: bool) -> Action:
        if not self.rewrite:
            return Action.CONTINUE
        if not end_of_stream:
            return Action.PAUSE
        body = self.request.body
        try:
            data = json.loads(body.read())
        except ValueError:
            return Action.CONTINUE
        if isinstance(data, dict):
            data["gateway"] = True
            body.replace(json.dumps(data, sort_keys=True))
        return Action.CONTINUE


class Root(RootContext):
    """Holds the configuration every request reads."""

    http_context = Gateway
    cluster = "auth"
    quota = 0

    def __init__(self, context_id: int) -> None:
        super().__init__(context_id)
        self.extra: dict[str, str] = {}

    def on_configure(self, plugin_configuration_size: int) -> bool:
        config = self.get_plugin_configuration_json()
        if not isinstance(config, dict):
            raise ConfigError("expected a JSON object with cluster, quota and headers")
        cluster = config.get("cluster")
        quota = config.get("quota")
        extra = config.get("headers", {})
        if not isinstance(cluster, str) or not cluster:
            raise ConfigError("cluster must be a non-empty string")
        if not isinstance(quota, int) or isinstance(quota, bool) or quota < 0:
            raise ConfigError("quota must be an integer >= 0")
        if not isinstance(extra, dict):
            raise ConfigError("headers must be an object")
        self.extra = {}
        for name, value in extra.items():
            if not isinstance(value, str):
                raise ConfigError("header " + str(name) + " must have a string value")
            self.extra[str(name).lower()] = value
        self.cluster = cluster
        self.quota = quota
        ensure_shared_data(QUOTA_KEY, b"0")
        return True


proxywasm.set_root_context(Root)
