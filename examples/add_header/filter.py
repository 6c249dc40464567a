"""add_header: add ``x-hello: world`` to every response, and echo the request path.

The smallest useful filter: one HTTP context, one root context, no state.
Plugin configuration (optional, JSON): ``{"value": "..."}`` overrides ``world``.
"""

import proxywasm
from proxywasm import Action, ConfigError, HttpContext, RootContext


class AddHeader(HttpContext["Root"]):
    def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
        self.path = self.request.headers.get(":path") or "/"
        proxywasm.log_debug(f"add_header: request {self.path}")
        return Action.CONTINUE

    def on_http_response_headers(self, num_headers: int, end_of_stream: bool) -> Action:
        headers = self.response.headers
        headers["x-hello"] = self.root.value  # replaces any value the upstream sent
        headers["x-request-path"] = getattr(self, "path", "")
        return Action.CONTINUE


class Root(RootContext):
    http_context = AddHeader
    value = "world"

    def on_configure(self, plugin_configuration_size: int) -> bool:
        config = self.get_plugin_configuration_json()  # None without a configuration
        if config is None:
            return True
        if not isinstance(config, dict):
            raise ConfigError('add_header: expected a JSON object, {"value": "..."}')
        self.value = str(config.get("value", self.value))
        return True


proxywasm.set_root_context(Root)
