"""auth_callout: ask an auth service about every request, through an awaited HTTP callout.

For each request the filter reads the token header (``authorization``):

- no token: a ``401`` local reply at once, no callout;
- otherwise it sends ``GET <path>`` with the token to the cluster ``auth``
  and awaits the answer. Envoy holds the request (and any body) meanwhile:

  - ``200``: the request goes on (the callback returns ``CONTINUE``, which
    resumes it). The auth service's ``x-user`` answer header is copied onto
    the request, so the upstream learns who the caller is; request headers
    stay writable while the request is paused. A client-sent ``x-user`` is
    always removed first, so it cannot be spoofed;
  - a ``5xx``, or no answer at all: ``503`` (``failure_status``). Envoy
    turns a callout that timed out into a ``504`` answer and one that could
    not connect into a ``503``, both with headers; only a reset arrives with
    none (``answer.status == 0``). An unknown cluster fails at once, in
    ``http_call``;
  - any other status: ``401`` (``403`` when the service says ``403``).

Plugin configuration (JSON, every key optional; defaults shown)::

    {"cluster": "auth", "path": "/check", "authority": "auth", "timeout_ms": 1000,
     "token_header": "authorization", "user_header": "x-user", "failure_status": 503}

``"user_header": ""`` turns the copy off. A configuration that does not
follow this shape is rejected (``ConfigError``: one error line, and Envoy
refuses it). Counters: ``auth_callout.allowed``, ``auth_callout.denied`` (no
token, or refused), ``auth_callout.failed`` (the service did not answer).
"""

from typing import Any

import proxywasm
from proxywasm import Action, ConfigError, HostCallError, HttpContext, RootContext

ALLOWED = proxywasm.Counter("auth_callout.allowed")
DENIED = proxywasm.Counter("auth_callout.denied")
FAILED = proxywasm.Counter("auth_callout.failed")

DEFAULTS: dict[str, Any] = {
    "cluster": "auth",
    "path": "/check",
    "authority": "auth",
    "timeout_ms": 1000,
    "token_header": "authorization",
    "user_header": "x-user",
    "failure_status": 503,
}


class AuthCallout(HttpContext["Root"]):
    async def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
        config = self.root.config
        headers = self.request.headers
        if config["user_header"]:
            headers.pop(config["user_header"], None)  # only the auth service sets it
        token = headers.get(config["token_header"])
        if not token:
            DENIED.increment()
            self.deny(401, "missing credentials")
            return Action.PAUSE
        check = {config["token_header"]: token}
        request_id = headers.get("x-request-id")
        if request_id:
            check["x-request-id"] = request_id
        try:
            call = self.http_call(
                config["cluster"],
                path=config["path"],
                authority=config["authority"],
                headers=check,
                timeout_ms=config["timeout_ms"],
            )
        except HostCallError as exc:  # e.g. no such cluster
            FAILED.increment()
            proxywasm.log_error(f"auth_callout: cannot call {config['cluster']!r}: {exc}")
            self.fail()
            return Action.PAUSE
        answer = await call
        status = answer.status
        if status == 0 or 500 <= status <= 599:
            # Envoy answers a callout that timed out with a 504 of its own, and one
            # that could not connect with a 503; a reset arrives with no headers.
            FAILED.increment()
            why = str(status) if status else "no answer"
            proxywasm.log_warn(f"auth_callout: {config['cluster']!r} failed ({why})")
            self.fail()
            return Action.PAUSE
        if status == 200:
            ALLOWED.increment()
            if config["user_header"]:
                user = answer.headers.get(config["user_header"])
                if user:
                    headers[config["user_header"]] = user
            return Action.CONTINUE
        DENIED.increment()
        if status == 403:
            self.deny(403, "forbidden")
        else:
            self.deny(401, "invalid credentials")
        return Action.PAUSE

    def deny(self, status: int, reason: str) -> None:
        headers = [("content-type", "text/plain")]
        if status == 401:
            headers.append(("www-authenticate", "Bearer"))
        self.send_http_response(
            status, headers, f"{reason}\n".encode(), details="auth_callout_denied"
        )

    def fail(self) -> None:
        self.send_http_response(
            self.root.config["failure_status"],
            [("content-type", "text/plain")],
            b"auth service unavailable\n",
            details="auth_callout_failed",
        )


def parse_config(given: Any) -> dict[str, Any]:
    """The configuration with defaults filled in; ``ConfigError`` naming what is wrong."""
    if given is None:
        given = {}
    if not isinstance(given, dict):
        raise ConfigError("auth_callout: the configuration must be a JSON object")
    unknown = set(given) - set(DEFAULTS)
    if unknown:
        raise ConfigError(f"auth_callout: unknown keys {sorted(unknown)}")
    config = dict(DEFAULTS)
    config.update(given)
    for key in ("cluster", "path", "authority", "token_header"):
        if not isinstance(config[key], str) or not config[key]:
            raise ConfigError(f"auth_callout: {key} must be a non-empty string")
    if not isinstance(config["user_header"], str):
        raise ConfigError("auth_callout: user_header must be a string")
    for key, low, high in (("timeout_ms", 1, 600_000), ("failure_status", 200, 599)):
        value = config[key]
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise ConfigError(f"auth_callout: {key} must be an integer in [{low}, {high}]")
    config["token_header"] = config["token_header"].lower()
    config["user_header"] = config["user_header"].lower()
    return config


class Root(RootContext):
    http_context = AuthCallout

    def __init__(self, context_id: int) -> None:
        super().__init__(context_id)
        self.config: dict[str, Any] = dict(DEFAULTS)

    def on_vm_start(self, vm_configuration_size: int) -> bool:
        for counter in (ALLOWED, DENIED, FAILED):
            counter.define()  # now, so Envoy's /stats lists it from the start, at 0
        return True

    def on_configure(self, plugin_configuration_size: int) -> bool:
        self.config = parse_config(self.get_plugin_configuration_json())
        return True


proxywasm.set_root_context(Root)
