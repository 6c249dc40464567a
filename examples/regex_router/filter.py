"""regex_router: rewrite request paths by regular expression, with the standard library.

For each request, the first configured route whose ``pattern`` matches the
whole path (query string excluded) and whose ``methods`` (if any) include the
request's method wins:

- the path becomes the route's ``rewrite`` template, where ``{name}`` is a
  named group of the pattern, ``{1}`` a numbered one, ``{0}`` the whole match
  (``{{`` and ``}}`` are braces); without ``rewrite`` the path stays;
- the query string keeps its parameters, less the route's ``query.remove``
  names, with the route's ``query.set`` parameters replaced or added (their
  values are templates too; a group's text is percent-decoded, then encoded
  again). A route that changes no parameter leaves the query byte for byte;
- ``x-route: <name>`` tells the upstream which route matched, and the
  counter ``regex_router.routes.<name>`` counts it.

Every request also gets a request id (``uuid4``) when it has none, echoed in
the response, and the time the filter saw it (ISO 8601, UTC, milliseconds,
from the host clock). A request no route matches goes on unchanged (counted in
``regex_router.unmatched``), or is answered ``404`` with ``"unmatched":
"reject"``.

Plugin configuration (JSON)::

    {"routes": [{"name": "user", "pattern": "/api/v1/users/(?P<id>[0-9]+)",
                 "rewrite": "/users/{id}", "methods": ["GET"],
                 "query": {"remove": ["debug"], "set": {"view": "full"}}}],
     "unmatched": "pass",
     "request_id_header": "x-request-id",
     "timestamp_header": "x-routed-at",
     "route_header": "x-route"}
"""

from __future__ import annotations

import re
import string
import urllib.parse
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import proxywasm
from proxywasm import Action, ConfigError, HttpContext, RootContext

UNMATCHED = proxywasm.Counter("regex_router.unmatched")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: Route names end up in metric names: keep them to one dot-free word.
NAME = re.compile(r"[A-Za-z0-9_]+")
ROUTE_KEYS = {"name", "pattern", "rewrite", "methods", "query"}
CONFIG_KEYS = {"routes", "unmatched", "request_id_header", "timestamp_header", "route_header"}

#: A parsed template: literal text, and the group (number or name) to insert after it.
Template = list[tuple[str, int | str | None]]


def parse_template(text: str, pattern: re.Pattern[str], where: str) -> Template:
    """Split ``text`` into literals and group references; ``ConfigError`` if one is unknown.

    Parsed once, at configuration time, with ``string.Formatter``'s grammar but
    without ``str.format``: no attribute access, no format specs.
    """
    pieces: Template = []
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    for literal, field, spec, conversion in parsed:
        group: int | str | None = None
        if field is not None:
            if spec or conversion:
                raise ConfigError(f"{where}: only {{name}} or {{number}} in templates")
            if field.isdigit() and int(field) <= pattern.groups:
                group = int(field)
            elif field in pattern.groupindex:
                group = field
            else:
                raise ConfigError(f"{where}: the pattern has no group {field!r}")
        pieces.append((literal, group))
    return pieces


def expand(template: Template, match: re.Match[str], decode: bool = False) -> str:
    """The template with the match's groups (an unmatched group is empty)."""
    out = []
    for literal, group in template:
        out.append(literal)
        if group is not None:
            value = match.group(group) or ""
            out.append(urllib.parse.unquote(value) if decode else value)
    return "".join(out)


def text_list(value: object, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{where} must be a list of non-empty strings")
    return value


class Route:
    """One configured route, checked and compiled."""

    def __init__(self, config: object, index: int) -> None:
        if not isinstance(config, dict):
            raise ConfigError(f"routes[{index}] must be a JSON object")
        name = config.get("name")
        if not isinstance(name, str) or not NAME.fullmatch(name):
            raise ConfigError(f"routes[{index}]: name must be letters, digits or _")
        self.name = name
        unknown = sorted(set(config) - ROUTE_KEYS)
        if unknown:
            raise ConfigError(f"route {name}: unknown keys {unknown}")
        source = config.get("pattern")
        if not isinstance(source, str):
            raise ConfigError(f"route {name}: pattern must be a string")
        try:
            self.pattern = re.compile(source)
        except re.error as exc:
            raise ConfigError(f"route {name}: bad pattern: {exc}") from None
        rewrite = config.get("rewrite")
        self.rewrite: Template | None = None
        if rewrite is not None:
            if not isinstance(rewrite, str) or not rewrite.startswith("/") or "?" in rewrite:
                raise ConfigError(f"route {name}: rewrite must be a path starting with /, no ?")
            self.rewrite = parse_template(rewrite, self.pattern, f"route {name}: rewrite")
        methods = config.get("methods")
        self.methods = (
            None
            if methods is None
            else {m.upper() for m in text_list(methods, f"route {name}: methods")}
        )
        query = config.get("query", {})
        if not isinstance(query, dict) or set(query) - {"remove", "set"}:
            raise ConfigError(f'route {name}: query takes "remove" and "set"')
        self.remove = set(text_list(query.get("remove", []), f"route {name}: query.remove"))
        to_set = query.get("set", {})
        if not isinstance(to_set, dict) or not all(isinstance(v, str) for v in to_set.values()):
            raise ConfigError(f"route {name}: query.set must map names to strings")
        self.set = {
            key: parse_template(value, self.pattern, f"route {name}: query.set.{key}")
            for key, value in to_set.items()
        }
        self.counter = proxywasm.Counter(f"regex_router.routes.{name}")

    def route(self, method: str, path: str) -> str | None:
        """The new ``:path`` if this route takes the request, else ``None``."""
        if self.methods is not None and method not in self.methods:
            return None
        base, question, query = path.partition("?")
        match = self.pattern.fullmatch(base)
        if match is None:
            return None
        new_base = base if self.rewrite is None else expand(self.rewrite, match)
        pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
        if not self.set and not any(k in self.remove for k, _ in pairs):
            return new_base + question + query  # no parameter changes: the query as sent
        values = {key: expand(t, match, decode=True) for key, t in self.set.items()}
        kept = [(k, v) for k, v in pairs if k not in self.remove and k not in values]
        encoded = urllib.parse.urlencode(kept + list(values.items()), quote_via=urllib.parse.quote)
        return f"{new_base}?{encoded}" if encoded else new_base


def header_name(config: dict[str, Any], key: str, default: str) -> str:
    value = config.get(key, default)
    if not isinstance(value, str) or not value or value.startswith(":"):
        raise ConfigError(f"{key} must be a header name")
    return value.lower()


class RegexRoute(HttpContext["Root"]):
    #: The request's id, once its headers were seen (echoed in the response).
    request_id: str | None = None

    def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
        root = self.root
        headers = self.request.headers
        self.request_id = headers.get(root.request_id_header) or str(uuid.uuid4())
        headers[root.request_id_header] = self.request_id
        now = EPOCH + timedelta(microseconds=self.get_current_time_nanoseconds() // 1000)
        headers[root.timestamp_header] = now.isoformat(timespec="milliseconds")
        method, path = self.request.method, self.request.path
        for route in root.routes:
            new_path = route.route(method, path)
            if new_path is not None:
                route.counter.increment()
                headers[":path"] = new_path
                headers[root.route_header] = route.name
                proxywasm.log_debug(f"regex_router: {route.name}: {path} -> {new_path}")
                return Action.CONTINUE
        UNMATCHED.increment()
        headers.pop(root.route_header, None)  # only this filter names routes
        if root.reject_unmatched:
            self.send_http_response(404, {"content-type": "text/plain"}, b"no route\n")
            return Action.PAUSE
        return Action.CONTINUE

    def on_http_response_headers(self, num_headers: int, end_of_stream: bool) -> Action:
        if self.request_id is not None:  # None: no request headers were seen
            self.response.headers[self.root.request_id_header] = self.request_id
        return Action.CONTINUE


class Root(RootContext):
    http_context = RegexRoute
    routes: list[Route]
    reject_unmatched = False
    request_id_header = "x-request-id"
    timestamp_header = "x-routed-at"
    route_header = "x-route"

    def on_vm_start(self, vm_configuration_size: int) -> bool:
        UNMATCHED.define()  # listed by Envoy's /stats from the start, at 0
        return True

    def on_configure(self, plugin_configuration_size: int) -> bool:
        config = self.get_plugin_configuration_json()
        if not isinstance(config, dict):
            raise ConfigError('expected a JSON object with "routes"')
        unknown = sorted(set(config) - CONFIG_KEYS)
        if unknown:
            raise ConfigError(f"unknown keys {unknown}")
        raw = config.get("routes")
        if not isinstance(raw, list) or not raw:
            raise ConfigError("routes must be a non-empty list")
        routes = [Route(route, i) for i, route in enumerate(raw)]
        names = [r.name for r in routes]
        if len(set(names)) != len(names):
            raise ConfigError(f"route names must be unique: {names}")
        unmatched = config.get("unmatched", "pass")
        if unmatched not in ("pass", "reject"):
            raise ConfigError('unmatched must be "pass" or "reject"')
        self.request_id_header = header_name(config, "request_id_header", "x-request-id")
        self.timestamp_header = header_name(config, "timestamp_header", "x-routed-at")
        self.route_header = header_name(config, "route_header", "x-route")
        self.reject_unmatched = unmatched == "reject"
        for route in routes:
            route.counter.define()
        self.routes = routes
        return True


proxywasm.set_root_context(Root)
