"""A filter written with the SDK's Pythonic layer, for the compact backend's differential tests.

Each request carries its program as JSON in headers: ``x-ops`` (run on the
request headers), ``x-trailer-ops``, ``x-body-ops`` and ``x-response-ops``.
An op is a list ``[name, arg...]``; :func:`run` applies it to a header view
(or the body view) and records what it returned, or the exception it raised,
in the ``x-results`` header (or the log). ``boom`` ops let an exception out of
the callback, to compare tracebacks and the failure policy.
"""

from __future__ import annotations

import json
from typing import Any

import proxywasm
from proxywasm import Action, ConfigError, HeaderMap, HttpContext, RootContext


def run(h: HeaderMap, op: Any, gate: Gate) -> Any:
    """Apply one op to the header view ``h``; what it returns is recorded."""
    name = op[0]
    if name == "get":
        return h.get(op[1])
    if name == "getd":
        return h.get(op[1], "dflt")
    if name == "index":
        return h[op[1]]
    if name == "set":
        h[op[1]] = op[2]
        return None
    if name == "setb":
        h[op[1]] = str(op[2]).encode()
        return None
    if name == "add":
        h.add(op[1], op[2])
        return None
    if name == "del":
        del h[op[1]]
        return None
    if name == "pop":
        return h.pop(op[1])
    if name == "popd":
        return h.pop(op[1], None)
    if name == "in":
        return op[1] in h
    if name == "get_all":
        return h.get_all(op[1])
    if name == "len":
        return len(h)
    if name == "bool":
        return bool(h)
    if name == "iter":
        return [k for k in h]
    if name == "keys":
        return list(h.keys())
    if name == "values":
        return list(h.values())
    if name == "items":
        return [[k, v] for k, v in h.items()]
    if name == "dict":
        return [[k, v] for k, v in dict(h).items()]
    if name == "isinstance":
        return [isinstance(h, HeaderMap), isinstance(op, HeaderMap), str(h)]
    if name == "multi":
        return [[k, v] for k, v in h.multi_items()]
    if name == "setdefault":
        return h.setdefault(op[1], op[2])
    if name == "update":
        h.update({op[1]: op[2]})
        return None
    if name == "get_bytes":
        raw = h.get_bytes(op[1])
        return None if raw is None else raw.decode()
    if name == "get_all_bytes":
        return [b.decode() for b in h.get_all_bytes(op[1])]
    if name == "replace_all":
        h.replace_all([(op[1], op[2]), ("x-replaced", "1")])
        return None
    if name == "clear":
        h.clear()
        return len(h)
    if name == "rust_set":  # the Rust-named spelling reaches the same host map
        gate.set_http_request_header(op[1], op[2])
        return None
    if name == "rust_remove":
        gate.remove_http_request_header(op[1])
        return None
    if name == "rust_get":
        return gate.get_http_request_header(op[1])
    if name == "method":
        return [gate.request.method, gate.request.path, gate.request.authority, gate.request.scheme]
    if name == "boom":
        raise ValueError(f"boom {op[1]}")
    return "unknown op " + str(name)


def run_all(h: HeaderMap, ops: Any, gate: Gate) -> list[Any]:
    """Every op in turn; an expected error is recorded as ``Type:message``, ``boom`` escapes."""
    out: list[Any] = []
    for op in ops:
        try:
            out.append(run(h, op, gate))
        except (KeyError, TypeError, proxywasm.HostCallError) as exc:
            out.append(type(exc).__name__ + ":" + str(exc))
    return out


class Gate(HttpContext["Root"]):
    """Runs the request's programs on its views."""

    def __init__(self, context_id: int, root: Root) -> None:
        super().__init__(context_id, root)
        self.body_ops: Any = []
        self.response_ops: Any = []
        self.trailer_ops: Any = []
        self.saved: HeaderMap | None = None

    def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action | None:
        h = self.request.headers
        self.saved = h
        self.body_ops = json.loads(h.get("x-body-ops", "[]"))
        self.response_ops = json.loads(h.get("x-response-ops", "[]"))
        self.trailer_ops = json.loads(h.get("x-trailer-ops", "[]"))
        results = run_all(h, json.loads(h.get("x-ops", "[]")), self)
        h["x-results"] = json.dumps(results)
        h["x-root"] = self.root.tag
        if h.get("x-return") == "pause":
            return Action.PAUSE
        if h.get("x-return") == "bad":
            bad: Action | None = json.loads(h.get("x-bad", "7"))  # checked by the dispatcher
            return bad
        return None

    def on_http_request_trailers(self, num_trailers: int) -> Action:
        t = self.request.trailers
        results = run_all(t, self.trailer_ops, self)
        proxywasm.log_info("trailers " + json.dumps(results) + " " + str(len(t)))
        return Action.CONTINUE

    def on_http_request_body(self, body_size: int, end_of_stream: bool) -> Action:
        if not end_of_stream:
            return Action.PAUSE
        body = self.request.body
        out: list[Any] = [len(body), bool(body)]
        for op in self.body_ops:
            name = op[0]
            try:
                if name == "read":
                    out.append(body.read().hex())
                elif name == "text":
                    out.append(body.text())
                elif name == "json":
                    out.append(body.json())
                elif name == "replace":
                    body.replace(op[1])
                elif name == "replace_bytes":
                    body.replace(str(op[1]).encode())
                elif name == "append":
                    body.append(op[1])
                elif name == "prepend":
                    body.prepend(op[1])
                elif name == "len":
                    out.append(len(body))
                elif name == "boom":
                    raise KeyError(op[1])
            except ValueError as exc:
                out.append("ValueError:" + str(exc))
            except TypeError as exc:
                out.append("TypeError:" + str(exc))
        proxywasm.log_info("body " + json.dumps(out))
        if self.saved is not None:
            # kept from the headers callback: the map is fetched afresh in this callback
            try:
                proxywasm.log_info("saved " + str(len(self.saved.get_all("x-late"))))
            except proxywasm.HostCallError as exc:
                proxywasm.log_info("saved " + str(exc))
        return Action.CONTINUE

    def on_http_response_headers(self, num_headers: int, end_of_stream: bool) -> Action:
        r = self.response
        out = run_all(r.headers, self.response_ops, self)
        r.headers["x-status-seen"] = str(r.status)
        r.headers["x-results"] = json.dumps(out)
        r.headers.pop("server", None)
        return Action.CONTINUE

    def on_http_response_body(self, body_size: int, end_of_stream: bool) -> None:
        if end_of_stream and self.response.headers.get("x-shout") is not None:
            self.response.body.replace(self.response.body.text().upper())


class Root(RootContext):
    """Configured with JSON: ``{"tag": str}``; anything else is a ConfigError."""

    http_context = Gate

    def __init__(self, context_id: int) -> None:
        super().__init__(context_id)
        self.tag = ""

    def on_configure(self, plugin_configuration_size: int) -> bool:
        config = self.get_plugin_configuration_json()
        if config is None:
            return True
        if not isinstance(config, dict):
            raise ConfigError(f"expected a JSON object, got {type(config).__name__}")
        tag = config.get("tag", "")
        if not isinstance(tag, str):
            raise ConfigError("tag must be a string")
        if tag == "crash":
            raise RuntimeError("not a ConfigError: logged with its traceback")
        self.tag = tag
        return True


proxywasm.set_root_context(Root)
