"""The benchmark's work with the Pythonic views (compare rust_named.py)."""

from __future__ import annotations

import proxywasm
from proxywasm import HttpContext, RootContext


class Bench(HttpContext):
    def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> None:
        h = self.request.headers
        proxywasm.log_debug(f"bench: {h.get(':path')} {h.get('x-custom')}")

    def on_http_response_headers(self, num_headers: int, end_of_stream: bool) -> None:
        self.response.headers.add("x-hello", "world")


class Root(RootContext):
    http_context = Bench


proxywasm.set_root_context(Root)
