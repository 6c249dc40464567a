"""json_redaction: hide sensitive fields of JSON responses before they leave the proxy.

A response whose ``content-type`` is JSON (``application/json``,
``application/problem+json``, ``...; charset=utf-8``) and is not compressed is
buffered whole: ``on_http_response_body`` returns PAUSE until
``end_of_stream``, then the filter parses it, replaces the configured fields'
values with ``replacement`` and writes the new body. Because the new body may
be shorter or longer, ``on_http_response_headers`` removes
``content-length`` (the response headers leave Envoy when that callback
returns, so this is the last moment); Envoy then frames the response itself
(chunked for HTTP/1.1). A body that does not parse as JSON passes through
untouched, and so does every non-JSON response (its ``content-length`` kept).

Fields (``fields``) are matched two ways:

- a bare name (``"password"``) matches that key at any depth;
- a dotted path (``"user.profile.ssn"``) matches from the top of the document
  only; ``*`` matches any key, and a list on the way applies the rest of the
  path to each element (``"accounts.iban"`` reaches ``{"accounts": [{"iban": ..}]}``).

Plugin configuration (JSON, every key optional; defaults shown)::

    {"fields": ["password", "ssn"], "replacement": "[REDACTED]"}

Counters: ``json_redaction.responses`` (JSON bodies redacted, at least one
field), ``json_redaction.fields`` (values replaced), ``json_redaction.unparsable``
(bodies labelled JSON that did not parse).
"""

import json
from typing import Any

import proxywasm
from proxywasm import Action, ConfigError, HttpContext, RootContext

RESPONSES = proxywasm.Counter("json_redaction.responses")
FIELDS = proxywasm.Counter("json_redaction.fields")
UNPARSABLE = proxywasm.Counter("json_redaction.unparsable")


def is_json(content_type: str) -> bool:
    """``application/json``, ``application/*+json``, ``text/json``, with parameters or not."""
    media = content_type.split(";", 1)[0].strip().lower()
    return media in ("application/json", "text/json") or (
        media.startswith("application/") and media.endswith("+json")
    )


class Redactor:
    """Replaces the values of bare names anywhere and of dotted paths from the root."""

    def __init__(self, fields: list[str], replacement: Any) -> None:
        self.names = {f for f in fields if "." not in f}
        self.paths = [f.split(".") for f in fields if "." in f]
        self.replacement = replacement

    def redact(self, document: Any) -> int:
        """Redact ``document`` in place; returns how many values were replaced.

        Iterative, not recursive: any document ``json.loads`` accepted can be
        walked, however deep.
        """
        count = self._names(document) if self.names else 0
        for path in self.paths:
            count += self._path(document, path)
        return count

    def _names(self, document: Any) -> int:
        count = 0
        stack: list[Any] = [document]
        while stack:
            node = stack.pop()
            if isinstance(node, dict):
                for key, value in node.items():
                    if key in self.names:
                        node[key] = self.replacement
                        count += 1
                    elif isinstance(value, (dict, list)):
                        stack.append(value)
            elif isinstance(node, list):
                stack.extend(item for item in node if isinstance(item, (dict, list)))
        return count

    def _path(self, document: Any, path: list[str]) -> int:
        count = 0
        last = len(path) - 1
        stack: list[tuple[Any, int]] = [(document, 0)]
        while stack:
            node, depth = stack.pop()
            if isinstance(node, list):
                stack.extend((item, depth) for item in node)
                continue
            if not isinstance(node, dict):
                continue
            head = path[depth]
            for key in list(node) if head == "*" else [head] if head in node else []:
                if depth < last:
                    stack.append((node[key], depth + 1))
                elif node[key] != self.replacement:
                    node[key] = self.replacement
                    count += 1
        return count


class JsonRedaction(HttpContext["Root"]):
    def __init__(self, context_id: int, root: "Root") -> None:
        super().__init__(context_id, root)
        self.buffering = False

    def on_http_response_headers(self, num_headers: int, end_of_stream: bool) -> Action:
        if end_of_stream:
            return Action.CONTINUE  # no body
        headers = self.response.headers  # read from the host once for both lookups
        content_type = headers.get("content-type") or ""
        encoding = headers.get("content-encoding") or "identity"
        if is_json(content_type) and encoding.lower() == "identity":
            self.buffering = True
            headers.pop("content-length", None)
        return Action.CONTINUE

    def on_http_response_body(self, body_size: int, end_of_stream: bool) -> Action:
        if not self.buffering:
            return Action.CONTINUE
        if not end_of_stream:
            return Action.PAUSE  # keep buffering; the next call sees everything so far
        self.buffering = False
        body = self.response.body  # the whole buffered body, body_size bytes
        data = body.read()
        if not data:
            return Action.CONTINUE
        try:
            document = json.loads(data)
        except (
            ValueError,
            RecursionError,
        ):  # not JSON (or not UTF-8, or absurdly deep): leave it alone
            UNPARSABLE.increment()
            proxywasm.log_debug(
                f"json_redaction: body of {body_size} bytes is not JSON, passed through"
            )
            return Action.CONTINUE
        count = self.root.redactor.redact(document)
        if count:
            RESPONSES.increment()
            FIELDS.increment(count)
            body.replace(json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode())
        return Action.CONTINUE


class Root(RootContext):
    http_context = JsonRedaction

    def __init__(self, context_id: int) -> None:
        super().__init__(context_id)
        self.redactor = Redactor(["password", "ssn"], "[REDACTED]")

    def on_vm_start(self, vm_configuration_size: int) -> bool:
        for counter in (RESPONSES, FIELDS, UNPARSABLE):
            counter.define()  # now, so Envoy's /stats lists it from the start, at 0
        return True

    def on_configure(self, plugin_configuration_size: int) -> bool:
        config = self.get_plugin_configuration_json()  # None without a configuration
        if config is None:
            config = {}
        if not isinstance(config, dict):
            raise ConfigError("json_redaction: the configuration must be a JSON object")
        unknown = set(config) - {"fields", "replacement"}
        if unknown:
            raise ConfigError(f"json_redaction: unknown keys {sorted(unknown)}")
        fields = config.get("fields", ["password", "ssn"])
        if not isinstance(fields, list) or not all(
            isinstance(f, str) and f and "" not in f.split(".") for f in fields
        ):
            raise ConfigError("json_redaction: fields must be a list of names or dotted paths")
        self.redactor = Redactor(fields, config.get("replacement", "[REDACTED]"))
        return True


proxywasm.set_root_context(Root)
