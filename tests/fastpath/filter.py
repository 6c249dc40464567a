"""Filter of tests/test_glue_fastpath.py: every way a per-request callback can answer.

``:path`` picks what ``on_http_request_headers`` returns or raises; the plugin
configuration's ``kind`` picks the context class: one that keeps the SDK's
``on_delete``, one that overrides it, one that inherits the override, one whose
``on_delete`` raises, one with a ``__del__``, one that answers in its body and
trailer callbacks too (``bodies``), or a creation that fails (``broken``).
"""

from __future__ import annotations

import proxywasm
from proxywasm import Action, HttpContext, RootContext, StreamContext

#: What the request-headers callback does, by :path.
_ANSWERS: dict[str, object] = {
    "/none": None,
    "/continue": Action.CONTINUE,
    "/pause": Action.PAUSE,
    "/int-pause": 1,
    "/int-continue": 0,
    "/true": True,
    "/bad": "nope",
}


class Plain(HttpContext):
    """Keeps the SDK's on_delete (the dispatcher does not call it)."""

    def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
        path = self.get_http_request_header(":path") or ""
        self.root.created.append(self.context_id)
        if path == "/raise":
            raise ValueError("request headers refused")
        if path == "/reply":
            self.send_http_response(403, body=b"no")
            return Action.PAUSE
        if path == "/async":
            return self._later()  # type: ignore[return-value]
        return _ANSWERS[path]  # type: ignore[return-value]

    async def _later(self) -> Action:
        return Action.PAUSE

    def on_http_response_headers(self, num_headers: int, end_of_stream: bool) -> Action:
        self.add_http_response_header("x-fast", str(self.context_id))
        return Action.CONTINUE


class Deleting(Plain):
    """Overrides on_delete."""

    def on_delete(self) -> None:
        proxywasm.log_info(f"deleted {type(self).__name__}")


class InheritsDelete(Deleting):
    """Inherits the override."""


class RaisingDelete(Plain):
    """on_delete raises: the barrier logs it."""

    def on_delete(self) -> None:
        raise RuntimeError("on_delete failed")


class Freed(Plain):
    """Keeps the SDK's on_delete, says when the dispatcher lets go of it."""

    def __del__(self) -> None:
        try:
            proxywasm.log_info(f"freed {self.context_id}")
        except proxywasm.NotInCallbackError:  # freed with the host, after the test
            pass


class Bodies(Plain):
    """The other HTTP callbacks: the response headers' ``x-do`` picks what
    ``on_http_response_headers`` does; the body and the trailers say what they got."""

    def on_http_response_headers(self, num_headers: int, end_of_stream: bool) -> Action:
        do = self.get_http_response_header("x-do") or ""
        self.add_http_response_header("x-fast", str(self.context_id))
        if do == "raise":
            raise KeyError("response headers refused")
        if do == "async":
            return self._later()  # type: ignore[return-value]
        return {"pause": Action.PAUSE, "bad": "nope", "none": None}.get(  # type: ignore[return-value]
            do, Action.CONTINUE
        )

    def on_http_response_body(self, body_size: int, end_of_stream: bool) -> Action:
        proxywasm.log_info(f"body {body_size} {end_of_stream}")
        if self.get_http_response_body() == b"raise":
            raise RuntimeError("response body refused")
        return Action.CONTINUE if end_of_stream else Action.PAUSE

    def on_http_request_trailers(self, num_trailers: int) -> Action:
        proxywasm.log_info(f"trailers {num_trailers}")
        return Action.CONTINUE


class Echo(StreamContext):
    """A TCP stream: created pending like an HTTP one, made at its first callback."""

    def on_downstream_data(self, data_size: int, end_of_stream: bool) -> Action:
        proxywasm.log_info(f"tcp {data_size}")
        return Action.CONTINUE


class Root(RootContext):
    """Makes the HTTP context class the configuration names (``kind``)."""

    def __init__(self, context_id: int) -> None:
        super().__init__(context_id)
        self.created: list[int] = []
        #: The class of the next HTTP streams, set through the plugin configuration.
        self.kind = "plain"

    def on_configure(self, plugin_configuration_size: int) -> bool:
        config = self.get_plugin_configuration_json() or {}
        self.kind = str(config.get("kind", "plain"))
        self.fail_open = bool(config.get("fail_open", False))
        return True

    def create_http_context(self, context_id: int) -> HttpContext:
        if self.kind == "broken":
            raise LookupError("no context for you")
        classes = {
            "plain": Plain,
            "deleting": Deleting,
            "inherits": InheritsDelete,
            "raising": RaisingDelete,
            "freed": Freed,
            "bodies": Bodies,
        }
        return classes[self.kind](context_id, self)

    def create_stream_context(self, context_id: int) -> StreamContext:
        return Echo(context_id, self)


proxywasm.set_root_context(Root)
