"""dataclass_redactor: redact JSON bodies, configured by a validated ``@dataclass``.

The plugin configuration is parsed into :class:`RedactorConfig`, a frozen
dataclass whose ``__post_init__`` checks every field; a bad configuration is a
``ConfigError`` naming the field, and Envoy rejects it. Defaults::

    {"fields": ["password", "token"],      # key names, matched at any depth
     "replacement": "[REDACTED]",          # a string, or null
     "directions": ["request", "response"],
     "case_sensitive": false}

For each direction it redacts, and each JSON body (``application/json``,
``application/*+json``; no ``content-encoding``):

- the headers callback removes ``content-length`` (the new body's length will
  differ, and Envoy forwards headers before the body) and returns CONTINUE, so
  that the body callbacks run;
- the body callbacks return PAUSE until ``end_of_stream`` (each then sees the
  whole body so far), then parse it, replace every configured field's value,
  and replace the body (compact JSON, UTF-8). A body that ends with trailers
  is redacted in the trailers callback instead;
- a body that is not JSON passes untouched, as does one with nothing to
  redact (byte for byte).

Counters: ``dataclass_redactor.bodies`` (bodies changed),
``dataclass_redactor.fields`` (values replaced),
``dataclass_redactor.unparsable``. The whole body is buffered, so Envoy's
buffer limit (``per_connection_buffer_limit_bytes``, 1 MiB by default) bounds it.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

import proxywasm
from proxywasm import Action, Body, ConfigError, HeaderMap, HttpContext, RootContext

BODIES = proxywasm.Counter("dataclass_redactor.bodies")
FIELDS = proxywasm.Counter("dataclass_redactor.fields")
UNPARSABLE = proxywasm.Counter("dataclass_redactor.unparsable")
DIRECTIONS = ("request", "response")


@dataclass(frozen=True)
class RedactorConfig:
    """What to redact, and where. Build it with :meth:`from_json`; fields are checked."""

    #: Key names whose values are replaced, at any depth of the document.
    fields: tuple[str, ...] = ("password", "token")
    #: What replaces them (``None``: JSON ``null``).
    replacement: str | None = "[REDACTED]"
    #: The bodies redacted: ``"request"`` (before the upstream), ``"response"`` (before the client).
    directions: tuple[str, ...] = DIRECTIONS
    #: Whether ``Password`` is a different key from ``password``.
    case_sensitive: bool = False

    def __post_init__(self) -> None:
        if not self.fields or not all(isinstance(f, str) and f for f in self.fields):
            raise ConfigError("fields: a non-empty list of non-empty key names")
        if self.replacement is not None and not isinstance(self.replacement, str):
            raise ConfigError("replacement: a string or null")
        if not all(d in DIRECTIONS for d in self.directions) or not self.directions:
            raise ConfigError('directions: a non-empty list of "request" and "response"')
        if not isinstance(self.case_sensitive, bool):
            raise ConfigError("case_sensitive: true or false")

    @classmethod
    def from_json(cls, data: object) -> RedactorConfig:
        """The configuration from parsed JSON (``None``: every default)."""
        if data is None:
            return cls()
        if not isinstance(data, dict):
            raise ConfigError("expected a JSON object")
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ConfigError(f"unknown keys {unknown} (known: {sorted(known)})")
        values: dict[str, Any] = {}
        for name, value in data.items():
            if name in ("fields", "directions"):  # JSON lists -> the tuples a frozen class keeps
                if not isinstance(value, list):
                    raise ConfigError(f"{name}: a list")
                value = tuple(value)
            values[name] = value
        return cls(**values)

    def names(self) -> frozenset[str]:
        """The key names to match, folded unless ``case_sensitive``."""
        return frozenset(self.fields if self.case_sensitive else (f.lower() for f in self.fields))


def is_json(content_type: str) -> bool:
    """``application/json`` or ``application/*+json``, with parameters or not."""
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def redact(document: Any, config: RedactorConfig, names: frozenset[str]) -> int:
    """Replace the configured keys' values in ``document``, in place; how many were replaced.

    Iterative: any depth ``json.loads`` accepts is walked without recursion.
    """
    count = 0
    stack: list[Any] = [document]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                if (key if config.case_sensitive else key.lower()) in names:
                    node[key] = config.replacement
                    count += 1
                elif isinstance(value, (dict, list)):
                    stack.append(value)
        elif isinstance(node, list):
            stack.extend(item for item in node if isinstance(item, (dict, list)))
    return count


class Redact(HttpContext["Root"]):
    def __init__(self, context_id: int, root: Root) -> None:
        super().__init__(context_id, root)
        #: Directions whose JSON body is being buffered.
        self.buffering: set[str] = set()

    def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
        return self.headers("request", self.request.headers, end_of_stream)

    def on_http_response_headers(self, num_headers: int, end_of_stream: bool) -> Action:
        return self.headers("response", self.response.headers, end_of_stream)

    def on_http_request_body(self, body_size: int, end_of_stream: bool) -> Action:
        return self.body("request", self.request.body, end_of_stream)

    def on_http_response_body(self, body_size: int, end_of_stream: bool) -> Action:
        return self.body("response", self.response.body, end_of_stream)

    def on_http_request_trailers(self, num_trailers: int) -> Action:
        return self.body("request", self.request.body, True)

    def on_http_response_trailers(self, num_trailers: int) -> Action:
        return self.body("response", self.response.body, True)

    def headers(self, direction: str, headers: HeaderMap, end_of_stream: bool) -> Action:
        """Decide whether to buffer this direction's body; drop its length if so."""
        if end_of_stream or direction not in self.root.config.directions:
            return Action.CONTINUE  # no body, or not ours
        encoding = headers.get("content-encoding", "identity").lower()
        if is_json(headers.get("content-type", "")) and encoding == "identity":
            self.buffering.add(direction)
            headers.pop("content-length", None)  # last chance: headers go on when this returns
        return Action.CONTINUE

    def body(self, direction: str, body: Body, end_of_stream: bool) -> Action:
        """PAUSE until the whole body is buffered, then redact it."""
        if direction not in self.buffering:
            return Action.CONTINUE
        if not end_of_stream:
            return Action.PAUSE  # the next callback sees every chunk so far
        self.buffering.discard(direction)
        raw = body.read()
        if not raw:
            return Action.CONTINUE
        try:
            document = json.loads(raw)
        except (ValueError, RecursionError):  # not JSON, not UTF-8, absurdly deep
            UNPARSABLE.increment()
            return Action.CONTINUE
        count = redact(document, self.root.config, self.root.names)
        if count:
            BODIES.increment()
            FIELDS.increment(count)
            body.replace(json.dumps(document, ensure_ascii=False, separators=(",", ":")))
            proxywasm.log_debug(f"dataclass_redactor: {count} fields in the {direction} body")
        return Action.CONTINUE


class Root(RootContext):
    http_context = Redact
    config = RedactorConfig()
    names = config.names()

    def on_vm_start(self, vm_configuration_size: int) -> bool:
        for counter in (BODIES, FIELDS, UNPARSABLE):
            counter.define()  # listed by Envoy's /stats from the start, at 0
        return True

    def on_configure(self, plugin_configuration_size: int) -> bool:
        self.config = RedactorConfig.from_json(self.get_plugin_configuration_json())
        self.names = self.config.names()
        return True


proxywasm.set_root_context(Root)
