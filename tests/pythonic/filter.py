"""A filter written only with the Pythonic layer; ``x-case`` picks what it does.

Run natively and compiled by tests/test_pythonic.py.
"""

from __future__ import annotations

import proxywasm
from proxywasm import Action, ConfigError, HttpContext, RootContext, gather


class Gate(HttpContext["Root"]):
    """Each case reads or changes the stream through the views."""

    async def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action | None:
        h = self.request.headers
        case = h.get("x-case", "")
        if case == "views":
            h["x-path-len"] = str(len(self.request.path))
            h.add("x-tag", "a")
            h.add("X-Tag", "b")
            h["x-tags"] = ",".join(h.get_all("x-tag"))
            # the Rust-named spelling reaches the same map
            self.set_http_request_header("x-rust", "1")
            h["x-seen-rust"] = h.get("x-rust", "missing")
            h["x-seen-upper"] = h.get("X-Rust", "missing")  # the host matches any case
            h["x-method"] = self.request.method
            h["x-has-secret"] = str("x-secret" in h)
            h["x-popped"] = h.pop("x-secret", "none")
            del h["x-drop"]
            h["x-names"] = str(len(h))
            h["x-root"] = self.root.tag
            return None
        if case == "auth":
            answer = await self.http_call(
                "auth", path="/check", headers={"authorization": h.get("authorization", "")}
            )
            if answer.status != 200:
                self.send_http_response(403, body=b"denied: " + answer.body)
                return Action.PAUSE
            h["x-user"] = answer.headers.get("x-user", "?")
            return Action.CONTINUE
        if case == "sequence":
            first = await self.http_call("a", path="/1")
            second = await self.http_call("b", path="/2", body=first.body)
            h["x-answers"] = first.text() + second.text()
            return Action.CONTINUE
        if case == "gather":
            a, b = await gather(self.http_call("a", path="/a"), self.http_call("b", path="/b"))
            h["x-answers"] = f"{a.status}:{a.text()},{b.status}:{b.text()}"
            return Action.CONTINUE
        if case == "raise-after-await":
            await self.http_call("a")
            raise ValueError("after the callout")
        if case == "cancel":
            try:
                await self.http_call("slow")
            finally:
                self.root.closed += 1
            return Action.CONTINUE
        if case == "body":
            # The body will change length: Envoy forwards content-length as it was.
            h.pop("content-length", None)
            return None
        if case == "refused":
            try:
                await self.http_call("nowhere")
            except proxywasm.HostCallError as exc:
                self.send_http_response(502, body=f"refused: {exc.function}")
            return Action.PAUSE
        return Action.CONTINUE

    def on_http_request_body(self, body_size: int, end_of_stream: bool) -> Action:
        if not end_of_stream:
            return Action.PAUSE  # buffer until the whole body is in
        body = self.request.body
        text = body.text()
        body.replace(text.upper())
        body.append(b"!")
        body.prepend(b"<")
        return Action.CONTINUE

    def on_http_response_headers(self, num_headers: int, end_of_stream: bool) -> Action:
        r = self.response
        r.headers["x-status-seen"] = str(r.status)
        r.headers.pop("server", None)
        return Action.CONTINUE


class Root(RootContext):
    """Configured with JSON: ``{"tag": str}``."""

    http_context = Gate

    def __init__(self, context_id: int) -> None:
        super().__init__(context_id)
        self.tag = ""
        self.closed = 0
        self.ticked = ""

    def on_configure(self, plugin_configuration_size: int) -> bool:
        config = self.get_plugin_configuration_json()
        if not isinstance(config, dict):
            raise ConfigError(f"expected a JSON object, got {type(config).__name__}")
        tag = config.get("tag", "")
        if not isinstance(tag, str):
            raise ConfigError("tag must be a string")
        self.tag = tag
        self.set_tick_period_ms(1000)
        return True

    async def on_tick(self) -> None:
        answer = await self.http_call("stats", path="/tick")
        self.ticked = answer.text()
        self.log(proxywasm.LogLevel.INFO, f"tick answered {answer.status} {self.ticked}")


proxywasm.set_root_context(Root)
