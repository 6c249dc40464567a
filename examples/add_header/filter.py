"""add_header: add ``x-hello: world`` to every response, and echo the request path.

The smallest useful filter: one HTTP context, one root context, no state.
Plugin configuration (optional, JSON): ``{"value": "..."}`` overrides ``world``.
"""

import json

import proxywasm
from proxywasm import Action, HttpContext, RootContext


class AddHeader(HttpContext["Root"]):
    def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
        self.path = self.get_http_request_header(":path") or "/"
        proxywasm.log_debug(f"add_header: request {self.path}")
        return Action.CONTINUE

    def on_http_response_headers(self, num_headers: int, end_of_stream: bool) -> Action:
        self.set_http_response_header("x-hello", self.root.value)
        self.set_http_response_header("x-request-path", getattr(self, "path", ""))
        return Action.CONTINUE


class Root(RootContext):
    value = "world"

    def on_configure(self, plugin_configuration_size: int) -> bool:
        config = self.get_plugin_configuration()
        if config:
            self.value = str(json.loads(config).get("value", self.value))
        return True

    def create_http_context(self, context_id: int) -> HttpContext:
        return AddHeader(context_id, self)


proxywasm.set_root_context(Root)
