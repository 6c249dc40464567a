"""No class here overrides on_log or the body callbacks at import: the glue skips them.

The context class made on the first request (after start-up, inside the module)
does override ``on_log`` and ``on_http_request_body``: the dispatcher must turn
those callbacks back on, or its log line and body header would be lost.
"""

from __future__ import annotations

import proxywasm
from proxywasm import Action, HttpContext, RootContext


class Plain(HttpContext):
    def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
        self.request.headers["x-plain"] = "1"
        return Action.CONTINUE


def _late_class() -> type[HttpContext]:
    def on_log(self: HttpContext) -> None:
        proxywasm.log_info("late on_log")

    def on_http_request_body(self: HttpContext, body_size: int, end_of_stream: bool) -> Action:
        proxywasm.log_info(f"late body {body_size}")
        return Action.CONTINUE

    made: type[HttpContext] = type(
        "Late", (Plain,), {"on_log": on_log, "on_http_request_body": on_http_request_body}
    )
    return made


class Root(RootContext):
    late: type[HttpContext] | None = None

    def create_http_context(self, context_id: int) -> HttpContext:
        if self.late is None and context_id > 3:
            Root.late = _late_class()
        return (self.late or Plain)(context_id, self)


proxywasm.set_root_context(Root)
