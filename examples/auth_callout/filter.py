"""auth_callout: ask an auth service about every request, through an HTTP callout.

For each request the filter reads the token header (``authorization``):

- no token: a ``401`` local reply at once, no callout;
- otherwise it sends ``GET <path>`` with the token to the cluster ``auth`` and
  returns PAUSE. Envoy holds the request (and any body) until the answer:

  - ``200``: the request goes on (``resume_http_request``). The auth service's
    ``x-user`` answer header is copied onto the request, so the upstream learns
    who the caller is. This works because request headers stay writable after
    ``on_http_request_headers`` returned PAUSE. A client-sent ``x-user`` is
    always removed first, so it cannot be spoofed;
  - a ``5xx``, or no answer at all: ``503`` (``failure_status``). Envoy
    turns a callout that timed out into a ``504`` answer and one that could
    not connect into a ``503``, both with headers; only a reset arrives with
    none. An unknown cluster fails at once, in ``dispatch_http_call``;
  - any other status: ``401`` (``403`` when the service says ``403``).

Plugin configuration (JSON, every key optional; defaults shown)::

    {"cluster": "auth", "path": "/check", "authority": "auth", "timeout_ms": 1000,
     "token_header": "authorization", "user_header": "x-user", "failure_status": 503}

``"user_header": ""`` turns the copy off. Counters: ``auth_callout.allowed``,
``auth_callout.denied`` (no token, or refused), ``auth_callout.failed``
(the service did not answer).
"""

import json
from typing import Any

import proxywasm
from proxywasm import Action, HostCallError, HttpContext, RootContext


class ConfigError(ValueError):
    """The plugin configuration does not follow the documented shape."""


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


class AuthCallout(HttpContext):
    root: "Root"

    def __init__(self, context_id: int, root: "Root") -> None:
        super().__init__(context_id, root)
        self.token_id = 0

    def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
        config = self.root.config
        if config["user_header"]:
            self.remove_http_request_header(config["user_header"])  # only the auth service sets it
        token = self.get_http_request_header(config["token_header"])
        if not token:
            DENIED.increment()
            self.deny(401, "missing credentials")
            return Action.PAUSE
        headers = [
            (":method", "GET"),
            (":path", config["path"]),
            (":authority", config["authority"]),
            (config["token_header"], token),
        ]
        request_id = self.get_http_request_header("x-request-id")
        if request_id:
            headers.append(("x-request-id", request_id))
        try:
            self.token_id = self.dispatch_http_call(
                config["cluster"], headers, timeout_ms=config["timeout_ms"]
            )
        except HostCallError as exc:  # e.g. no such cluster
            FAILED.increment()
            proxywasm.log_error(f"auth_callout: cannot call {config['cluster']!r}: {exc}")
            self.fail()
            return Action.PAUSE
        return Action.PAUSE  # wait for on_http_call_response

    def on_http_call_response(
        self, token_id: int, num_headers: int, body_size: int, num_trailers: int
    ) -> None:
        if token_id != self.token_id:
            return
        config = self.root.config
        status = self.get_http_call_response_header(":status") if num_headers else None
        if status is None or status.startswith("5"):
            # Envoy answers a callout that timed out with a 504 of its own, and one
            # that could not connect with a 503; a reset arrives with no headers.
            FAILED.increment()
            proxywasm.log_warn(
                f"auth_callout: {config['cluster']!r} failed ({status or 'no answer'})"
            )
            self.fail()
            return
        if status == "200":
            ALLOWED.increment()
            if config["user_header"]:
                user = self.get_http_call_response_header(config["user_header"])
                if user:
                    self.set_http_request_header(config["user_header"], user)
            self.resume_http_request()
            return
        DENIED.increment()
        self.deny(
            403 if status == "403" else 401,
            "forbidden" if status == "403" else "invalid credentials",
        )

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


class Root(RootContext):
    def __init__(self, context_id: int) -> None:
        super().__init__(context_id)
        self.config: dict[str, Any] = dict(DEFAULTS)

    def on_vm_start(self, vm_configuration_size: int) -> bool:
        for counter in (ALLOWED, DENIED, FAILED):
            counter.define()  # now, so Envoy's /stats lists it from the start, at 0
        return True

    def on_configure(self, plugin_configuration_size: int) -> bool:
        raw = self.get_plugin_configuration()
        config = dict(DEFAULTS)
        try:
            given = json.loads(raw) if raw else {}
            if not isinstance(given, dict):
                raise ConfigError("the configuration must be a JSON object")
            unknown = set(given) - set(DEFAULTS)
            if unknown:
                raise ConfigError(f"unknown keys {sorted(unknown)}")
            config.update(given)
            for key in ("cluster", "path", "authority", "token_header"):
                if not isinstance(config[key], str) or not config[key]:
                    raise ConfigError(f"{key} must be a non-empty string")
            if not isinstance(config["user_header"], str):
                raise ConfigError("user_header must be a string")
            for key, low, high in (("timeout_ms", 1, 600_000), ("failure_status", 200, 599)):
                value = config[key]
                if (
                    not isinstance(value, int)
                    or isinstance(value, bool)
                    or not low <= value <= high
                ):
                    raise ConfigError(f"{key} must be an integer in [{low}, {high}]")
        except ValueError as exc:
            proxywasm.log_error(f"auth_callout: invalid configuration: {exc}")
            return False
        config["token_header"] = config["token_header"].lower()
        config["user_header"] = config["user_header"].lower()
        self.config = config
        return True

    def create_http_context(self, context_id: int) -> HttpContext:
        return AuthCallout(context_id, self)


proxywasm.set_root_context(Root)
