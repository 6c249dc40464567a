"""probe: one filter that exercises what tests/test_envoy_filters.py checks in a real Envoy.

Behaviour, per request (the test drives it by path and request headers):

- every request: counter ``probe_requests`` +1 (Envoy stat ``wasmcustom.probe_requests``);
- ``/boom...``: ``on_http_request_headers`` raises ``RuntimeError("probe boom at <path>")``;
- request headers (as the upstream sees them): add ``x-probe-added: yes``,
  replace ``x-probe-replace`` with ``new``, remove ``x-probe-remove``;
- ``x-probe-print: <text>``: ``print("probe print: <text>")`` (reaches Envoy's log at info);
- the configured ``local_reply_path``: a 418 local reply with ``x-probe-local: teapot``;
- ``/rewrite/sized...`` and ``/rewrite/chunked...``: the request body is buffered
  (PAUSE until end_of_stream) and replaced by ``rewritten(<BODY UPPER-CASED>)``;
- response headers (as the client sees them): add ``x-probe-added: yes``,
  add ``x-upstream: probe`` next to the upstream's own value, replace
  ``content-type``, remove the header the client names in ``x-probe-drop-response``,
  ``x-probe-greeting`` from the plugin configuration, ``x-probe-body-chunks``
  (how many body callbacks the request took).

Plugin configuration (JSON, optional): ``{"greeting": str, "local_reply_path": str}``.

Two root contexts: ``Root`` (any root_id, fails closed: the default) and
``FailOpenRoot`` (Envoy ``root_id: "open"``, ``fail_open = True``), so one
module serves both failure policies and the Envoy configuration picks one.
"""

import json

import proxywasm
from proxywasm import Action, HttpContext, RootContext

REQUESTS = proxywasm.Counter("probe_requests")

PREFIX = b"rewritten("
SUFFIX = b")"


def rewrite(body: bytes) -> bytes:
    """The new request body. Its size is the old size + len(PREFIX) + len(SUFFIX)."""
    return PREFIX + body.upper() + SUFFIX


class Probe(HttpContext):
    root: "Root"

    def __init__(self, context_id: int, root: "Root") -> None:
        super().__init__(context_id, root)
        self.rewrite_body = False
        self.body_chunks = 0
        self.drop_response = ""

    def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
        REQUESTS.increment()
        path = self.get_http_request_header(":path") or "/"
        if path.startswith("/boom"):
            raise RuntimeError(f"probe boom at {path}")

        text = self.get_http_request_header("x-probe-print")
        if text is not None:
            print(f"probe print: {text}")

        if self.root.local_reply_path and path == self.root.local_reply_path:
            self.send_http_response(418, [("x-probe-local", "teapot")], b"I'm a teapot\n")
            return Action.PAUSE

        self.add_http_request_header("x-probe-added", "yes")
        if self.get_http_request_header("x-probe-replace") is not None:
            self.set_http_request_header("x-probe-replace", "new")
        self.remove_http_request_header("x-probe-remove")
        self.drop_response = self.get_http_request_header("x-probe-drop-response") or ""

        if path.startswith("/rewrite/") and not end_of_stream:
            self.rewrite_body = True
            # Content-length when the body changes size. These headers leave for
            # the upstream when this callback returns, so the header must be
            # fixed HERE; in on_http_request_body it is too late (Envoy answers
            # proxy_replace_header_map_value with BAD_ARGUMENT once the headers
            # went on). Returning PAUSE here to fix it later does not work
            # either: proxy-wasm-cpp-host turns a paused request-headers
            # callback into StopAllIterationAndWatermark, so
            # on_http_request_body is never called and the request hangs
            # (proxy-wasm/proxy-wasm-cpp-host#143). Leaving the old value is
            # the worst choice: the upstream reads only content-length bytes
            # and the rest of the new body is parsed as the next request on the
            # pooled upstream connection. What works (Envoy 1.40):
            if path.startswith("/rewrite/sized"):
                # 1. the new size is known from the old one: fix the header now.
                length = self.get_http_request_header("content-length")
                if length is not None:
                    new_length = int(length) + len(PREFIX) + len(SUFFIX)
                    self.set_http_request_header("content-length", str(new_length))
            else:
                # 2. the general case: remove it; Envoy then frames the request
                # to an HTTP/1.1 upstream with transfer-encoding: chunked.
                self.remove_http_request_header("content-length")
        return Action.CONTINUE

    def on_http_request_body(self, body_size: int, end_of_stream: bool) -> Action:
        self.body_chunks += 1
        if not self.rewrite_body:
            return Action.CONTINUE
        if not end_of_stream:
            return Action.PAUSE  # buffer: the next call sees the whole body so far
        body = self.get_http_request_body(0, body_size) or b""
        self.set_http_request_body(rewrite(body))
        return Action.CONTINUE

    def on_http_response_headers(self, num_headers: int, end_of_stream: bool) -> Action:
        self.add_http_response_header("x-probe-added", "yes")
        self.add_http_response_header("x-upstream", "probe")
        self.set_http_response_header("content-type", "application/probe+json")
        if self.drop_response:
            self.remove_http_response_header(self.drop_response)
        self.set_http_response_header("x-probe-greeting", self.root.greeting)
        self.set_http_response_header("x-probe-body-chunks", str(self.body_chunks))
        return Action.CONTINUE


class Root(RootContext):
    greeting = "default"
    local_reply_path = ""

    def on_configure(self, plugin_configuration_size: int) -> bool:
        config = self.get_plugin_configuration()
        if config:
            data = json.loads(config)
            self.greeting = str(data.get("greeting", self.greeting))
            self.local_reply_path = str(data.get("local_reply_path", self.local_reply_path))
        return True

    def create_http_context(self, context_id: int) -> HttpContext:
        return Probe(context_id, self)


class FailOpenRoot(Root):
    fail_open = True


proxywasm.set_root_context(Root)
proxywasm.set_root_context(FailOpenRoot, root_id="open")
