"""The benchmark's filter: read ``:path`` and ``x-custom``, one debug log, add ``x-hello``.

Built twice from this one file (``--backend cpython`` and ``--backend
compact``); ``as_bench_filter.ts`` beside it does the same work with the
AssemblyScript SDK.
"""

from __future__ import annotations

import proxywasm
from proxywasm import Action, HttpContext, RootContext


class Bench(HttpContext):
    """Reads two request headers, logs them at debug level, adds one response header."""

    def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
        path = self.get_http_request_header(":path")
        custom = self.get_http_request_header("x-custom")
        proxywasm.log_debug(f"bench: {path} {custom}")
        return Action.CONTINUE

    def on_http_response_headers(self, num_headers: int, end_of_stream: bool) -> Action:
        self.add_http_response_header("x-hello", "world")
        return Action.CONTINUE


class Root(RootContext):
    """One HTTP context per stream."""

    def create_http_context(self, context_id: int) -> HttpContext:
        return Bench(context_id, self)


proxywasm.set_root_context(Root)
