"""The benchmark's work with the Rust-named methods (compare views.py)."""

from __future__ import annotations

import proxywasm
from proxywasm import Action, HttpContext, RootContext


class Bench(HttpContext):
    def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
        path = self.get_http_request_header(":path")
        custom = self.get_http_request_header("x-custom")
        proxywasm.log_debug(f"bench: {path} {custom}")
        return Action.CONTINUE

    def on_http_response_headers(self, num_headers: int, end_of_stream: bool) -> Action:
        self.add_http_response_header("x-hello", "world")
        return Action.CONTINUE


class Root(RootContext):
    http_context = Bench


proxywasm.set_root_context(Root)
