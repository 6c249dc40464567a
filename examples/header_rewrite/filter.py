"""header_rewrite: rewrite request and response headers from a JSON configuration.

Plugin configuration (JSON; every key optional)::

    {
      "request":  {"rename": {"x-old": "x-new"},
                   "remove": ["x-internal"],
                   "set":    {"x-env": "prod"},
                   "add":    [["x-via", "header_rewrite"]]},
      "response": {"remove": ["server", "x-powered-by"],
                   "set":    {"x-frame-options": "DENY"}}
    }

Each direction applies its rules in a fixed order: ``rename`` (every value of
the old header moves to the new name), then ``remove``, then ``set`` (replace
or create one value), then ``add`` (append a value, keeping existing ones).
``set`` and ``add`` take an object or a list of ``[name, value]`` pairs (a
list may name a header twice); ``rename`` takes an object or a list of
``[from, to]`` pairs. Header names are matched case-insensitively.
Pseudo-headers (``:path``, ``:status``...) may be ``set`` but not renamed,
removed or added. A configuration that breaks these rules is rejected
(a ``ConfigError``: one error line, ``on_configure`` returns False, so
Envoy refuses the plugin).
"""

from typing import Any

import proxywasm
from proxywasm import Action, ConfigError, HeaderMap, HttpContext, RootContext

DIRECTIONS = ("request", "response")
OPERATIONS = ("rename", "remove", "set", "add")


def _pairs(value: Any, what: str) -> list[tuple[str, str]]:
    """An object or a list of 2-item lists -> list of (str, str), names lower-cased."""
    if isinstance(value, dict):
        items = list(value.items())
    elif isinstance(value, list):
        items = []
        for item in value:
            if not (isinstance(item, list) and len(item) == 2):
                raise ConfigError(f"{what}: expected [name, value] pairs, got {item!r}")
            items.append((item[0], item[1]))
    else:
        raise ConfigError(
            f"{what}: expected an object or a list of pairs, got {type(value).__name__}"
        )
    out = []
    for name, val in items:
        if not isinstance(name, str) or not name or not isinstance(val, str):
            raise ConfigError(
                f"{what}: names and values must be non-empty strings, got {name!r}: {val!r}"
            )
        out.append((name.lower(), val))
    return out


class Rules:
    """The rules of one direction, validated."""

    def __init__(self, spec: Any, what: str) -> None:
        if not isinstance(spec, dict):
            raise ConfigError(f"{what}: expected an object")
        unknown = set(spec) - set(OPERATIONS)
        if unknown:
            raise ConfigError(
                f"{what}: unknown keys {sorted(unknown)} (allowed: {', '.join(OPERATIONS)})"
            )
        self.rename = [(a, b.lower()) for a, b in _pairs(spec.get("rename", {}), what + ".rename")]
        remove = spec.get("remove", [])
        if not isinstance(remove, list) or not all(isinstance(n, str) and n for n in remove):
            raise ConfigError(f"{what}.remove: expected a list of header names")
        self.remove = [n.lower() for n in remove]
        self.set = _pairs(spec.get("set", {}), what + ".set")
        self.add = _pairs(spec.get("add", []), what + ".add")
        for name in (
            [n for pair in self.rename for n in pair] + self.remove + [n for n, _ in self.add]
        ):
            if name.startswith(":"):
                raise ConfigError(f"{what}: pseudo-header {name!r} can only be set")

    def __bool__(self) -> bool:
        return bool(self.rename or self.remove or self.set or self.add)

    def apply(self, headers: HeaderMap) -> None:
        """Apply the rules to one direction's live, case-insensitive header map."""
        for old, new in self.rename:
            values = headers.get_all(old)
            if not values:
                continue
            headers.pop(old, None)
            headers.pop(new, None)  # the new name replaces any header already there
            for value in values:
                headers.add(new, value)
        for name in self.remove:
            headers.pop(name, None)
        for name, value in self.set:
            headers[name] = value
        for name, value in self.add:
            headers.add(name, value)


class HeaderRewrite(HttpContext["Root"]):
    def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
        rules = self.root.request
        if rules:
            rules.apply(self.request.headers)
        return Action.CONTINUE

    def on_http_response_headers(self, num_headers: int, end_of_stream: bool) -> Action:
        rules = self.root.response
        if rules:
            rules.apply(self.response.headers)
        return Action.CONTINUE


class Root(RootContext):
    http_context = HeaderRewrite

    def __init__(self, context_id: int) -> None:
        super().__init__(context_id)
        self.request = Rules({}, "request")
        self.response = Rules({}, "response")

    def on_configure(self, plugin_configuration_size: int) -> bool:
        config = self.get_plugin_configuration_json()  # None without a configuration
        if config is None:
            config = {}
        if not isinstance(config, dict):
            raise ConfigError("header_rewrite: the configuration must be a JSON object")
        unknown = set(config) - set(DIRECTIONS)
        if unknown:
            raise ConfigError(
                f"header_rewrite: unknown keys {sorted(unknown)} (allowed: request, response)"
            )
        # Both directions are validated before either replaces the rules in force.
        request = Rules(config.get("request", {}), "header_rewrite: request")
        response = Rules(config.get("response", {}), "header_rewrite: response")
        self.request, self.response = request, response
        return True


proxywasm.set_root_context(Root)
