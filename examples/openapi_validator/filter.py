"""openapi_validator: check live traffic against an OpenAPI 3.0 / 3.1 specification.

The idea of Yaroslav Skopets' KubeCon EU 2020 talk ("Envoy looks to
WebAssembly to extend microservices monitoring"): Envoy sees every request,
so a filter can answer "is the API specification complete and up to date?"
and "do the implementations match it?" by validating traffic against the
spec and reporting violations as metrics.

Plugin configuration (JSON)::

    {"spec": <OpenAPI document: a JSON object, or a string holding JSON or YAML>,
     "mode": "monitor" | "enforce",      # default "monitor"
     "log_limit": 10,                    # violations logged per VM (default 10)
     "max_body_bytes": 1048576}          # larger bodies are not validated

For every request the filter finds the operation (servers' base path, path
template, method), validates path, query, header and cookie parameters and a
JSON request body, and remembers the operation so that the response status
can be checked against the documented responses.

- ``monitor``: traffic is never changed; violations are counted and logged.
- ``enforce``: a request with violations gets a ``400`` with an
  ``application/problem+json`` body (RFC 9457) listing them. To validate the
  body first, the filter buffers it (``PAUSE`` on body chunks until the last).

Counters (each counts requests with at least one violation of that kind):
``openapi_validator.requests``, ``openapi_validator.violations.unknown_path``,
``.unknown_method``, ``.bad_parameter``, ``.bad_body``, ``.undocumented_status``.
"""

import json
from typing import Any

import openapi
import proxywasm
from proxywasm import Action, ConfigError, HttpContext, RootContext

PREFIX = "openapi_validator"
KINDS = ("unknown_path", "unknown_method", "bad_parameter", "bad_body", "undocumented_status")
PROBLEM_TYPE = "urn:proxy-wasm-python:openapi-validator:request-violation"
DEFAULT_LOG_LIMIT = 10
DEFAULT_MAX_BODY_BYTES = 1 << 20

requests_total = proxywasm.Counter(f"{PREFIX}.requests")
violations_total = {kind: proxywasm.Counter(f"{PREFIX}.violations.{kind}") for kind in KINDS}


def parse_config(config: Any) -> dict[str, Any]:
    """The checked plugin configuration (parsed JSON): ``spec`` (an :class:`openapi.Spec`),
    ``mode``, limits. Raises :class:`proxywasm.ConfigError` saying what is wrong."""
    if config is None:
        raise ConfigError(
            'no plugin configuration: {"spec": ..., "mode": "monitor" | "enforce"} is required'
        )
    if not isinstance(config, dict):
        raise ConfigError("plugin configuration must be a JSON object")
    unknown = sorted(set(config) - {"spec", "mode", "log_limit", "max_body_bytes"})
    if unknown:
        raise ConfigError(f"unknown configuration field(s): {', '.join(unknown)}")
    mode = config.get("mode", "monitor")
    if mode not in ("monitor", "enforce"):
        raise ConfigError(f'bad mode {mode!r}: use "monitor" or "enforce"')
    limits = {}
    for name, default in (
        ("log_limit", DEFAULT_LOG_LIMIT),
        ("max_body_bytes", DEFAULT_MAX_BODY_BYTES),
    ):
        value = config.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigError(f"bad {name} {value!r}: a non-negative integer is required")
        limits[name] = value
    if "spec" not in config:
        raise ConfigError("no 'spec' in the plugin configuration")
    try:
        spec = openapi.Spec(openapi.load_document(config["spec"]))
    except openapi.SpecError as exc:
        raise ConfigError(f"bad spec: {exc}") from None
    return {"spec": spec, "mode": mode, **limits}


class Validate(HttpContext["Root"]):
    """One request: find its operation, validate it, check the response status."""

    def __init__(self, context_id: int, root: "Root") -> None:
        super().__init__(context_id, root)
        self.method = ""
        self.path = ""
        self.operation: openapi.Operation | None = None  # kept for the response
        self.body_plan: dict[str, Any] | None = None  # set while a JSON body is to be validated
        self.chunks: list[bytes] | None = None  # monitor mode: copies of the body chunks
        self.body_size = 0
        self.counted: set[str] = set()
        self.replied = False

    # -- request --------------------------------------------------------------------------

    def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
        requests_total.increment()
        spec = self.root.spec
        headers: dict[str, list[str]] = {}
        for name, value in self.request.headers.multi_items():
            headers.setdefault(name, []).append(value)
        self.method = (headers.get(":method") or ["GET"])[0]
        raw_path = (headers.get(":path") or ["/"])[0]
        path, _, query = raw_path.partition("?")
        self.path = path
        op, path_values, violations = spec.match(self.method, path)
        if op is not None:
            self.operation = op
            violations = spec.check_parameters(op, path_values, query, headers)
            content_type = headers["content-type"][0] if "content-type" in headers else None
            body_violations, plan = spec.body_plan(op, content_type, has_body=not end_of_stream)
            violations += body_violations
            enforce_now = violations and self.root.mode == "enforce"
            encoding = (headers.get("content-encoding") or ["identity"])[0].strip().lower()
            if encoding != "identity":
                plan = None  # a compressed body: not decoded, not validated
            if plan is not None and not enforce_now:
                self.body_plan = plan
                if self.root.mode == "monitor":
                    self.chunks = []
        if violations:
            return self.report(violations)
        return Action.CONTINUE

    def on_http_request_body(self, body_size: int, end_of_stream: bool) -> Action:
        if self.body_plan is None:
            return Action.CONTINUE
        if self.root.mode == "enforce":
            # Buffer in Envoy until the last chunk; then body_size is the whole body.
            if not end_of_stream:
                if body_size > self.root.max_body_bytes:
                    return self.skip_body(body_size)
                return Action.PAUSE
            if body_size > self.root.max_body_bytes:
                return self.skip_body(body_size)
            return self.finish_body(self.request.body.read())
        # monitor: never hold the request; keep a copy of each chunk as it passes.
        if self.chunks is not None:
            self.body_size += body_size
            if self.body_size > self.root.max_body_bytes:
                return self.skip_body(self.body_size)
            if body_size:
                self.chunks.append(self.request.body.read())
        if end_of_stream:
            return self.finish_body(b"".join(self.chunks or ()))
        return Action.CONTINUE

    def on_http_request_trailers(self, num_trailers: int) -> Action:
        if self.body_plan is None:
            return Action.CONTINUE
        if self.root.mode == "enforce":
            data = self.request.body.read()  # still buffered: we paused on it
        else:
            data = b"".join(self.chunks or ())
        return self.finish_body(data)

    def skip_body(self, size: int) -> Action:
        proxywasm.log_debug(
            f"{PREFIX}: {self.method} {self.path}: body of {size}+ bytes not validated (max_body_bytes)"
        )
        self.body_plan = None
        self.chunks = None
        return Action.CONTINUE

    def finish_body(self, data: bytes) -> Action:
        plan, self.body_plan, self.chunks = self.body_plan, None, None
        violations = self.root.spec.check_body(plan, data)
        if violations:
            return self.report(violations)
        return Action.CONTINUE

    # -- response -------------------------------------------------------------------------

    def on_http_response_headers(self, num_headers: int, end_of_stream: bool) -> Action:
        if self.operation is None or self.replied:
            return Action.CONTINUE
        status = self.response.headers.get(":status", "")
        if not self.operation.documents_status(status):
            documented = ", ".join(sorted(self.operation.responses or ())) or "none"
            self.report(
                [
                    openapi.Violation(
                        "undocumented_status",
                        "response",
                        f"status {status} is not documented for {self.operation.method.upper()} {self.operation.template} (documented: {documented})",
                    )
                ],
                response=True,
            )
        return Action.CONTINUE

    # -- reporting -----------------------------------------------------------------------

    def report(self, violations: list[openapi.Violation], response: bool = False) -> Action:
        """Count, log and (enforce mode, request side) reject."""
        root = self.root
        for violation in violations:
            if violation.kind not in self.counted:
                self.counted.add(violation.kind)
                violations_total[violation.kind].increment()
            if root.logged < root.log_limit:
                root.logged += 1
                proxywasm.log_warn(
                    f"{PREFIX}: {self.method} {self.path}: {violation.kind}: {violation.where()}: {violation.detail}"
                )
                if root.logged == root.log_limit:
                    proxywasm.log_warn(
                        f"{PREFIX}: log_limit ({root.log_limit}) reached: further violations are only counted"
                    )
        if response or root.mode != "enforce":
            return Action.CONTINUE
        first = violations[0]
        detail = f"{first.where()}: {first.detail}"
        if len(violations) > 1:
            detail += f" (and {len(violations) - 1} more)"
        problem = {
            "type": PROBLEM_TYPE,
            "title": "Request does not match the API specification",
            "status": 400,
            "detail": detail,
            "method": self.method,
            "path": self.path,
        }
        if self.operation is not None:
            problem["operation"] = (
                self.operation.operation_id
                or f"{self.operation.method.upper()} {self.operation.template}"
            )
        problem["errors"] = [v.as_problem() for v in violations]
        self.replied = True
        self.body_plan = None
        self.send_http_response(
            400, [("content-type", "application/problem+json")], json.dumps(problem).encode()
        )
        return Action.PAUSE


class Root(RootContext):
    #: The validator only observes: a bug in it must never take traffic down.
    fail_open = True
    http_context = Validate
    spec: openapi.Spec
    mode = "monitor"
    log_limit = DEFAULT_LOG_LIMIT
    max_body_bytes = DEFAULT_MAX_BODY_BYTES
    logged = 0

    def on_configure(self, plugin_configuration_size: int) -> bool:
        # A ConfigError is logged as one line and the configuration is refused.
        config = parse_config(self.get_plugin_configuration_json())
        for counter in (requests_total, *violations_total.values()):
            counter.increment(
                0
            )  # define every counter now: all of them show in Envoy's /stats from the start
        self.spec = config["spec"]
        self.mode = config["mode"]
        self.log_limit = config["log_limit"]
        self.max_body_bytes = config["max_body_bytes"]
        title = f" {self.spec.title!r}" if self.spec.title else ""
        proxywasm.log_info(
            f"{PREFIX}: OpenAPI {self.spec.version}{title}: {len(self.spec.operations)} operations, mode {self.mode}"
        )
        return True


proxywasm.set_root_context(Root)
