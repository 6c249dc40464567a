"""host_rules: a filter that reports what the host did in the corners the emulator models.

Each scenario is picked by the request path; the filter answers with a JSON
record of what it observed (raw host-call statuses, callback arguments), so
the same request can be sent to a real Envoy and to ``HostEmulator`` and the
two records compared (tests/test_envoy_host_rules.py).

- ``/callout/<cluster>``: an HTTP callout to ``<cluster>`` (timeout 300 ms);
  ``on_http_call_response`` records its arguments, ``proxy_get_status``, and
  what the response maps and body answer, then replies 200 with the record.
- ``/body/...``: records ``(body_size, end_of_stream)`` of every request-body
  callback, returns CONTINUE; the record goes back in response header
  ``x-body-calls``; those of the response body are logged from ``on_log``
  (``host_rules response body <path>: ...``).
- ``/twice``: two ``send_http_response`` calls in one callback (403 then 418);
  the status each returned is logged (``host_rules twice: ...``).
- ``/twice-later``: a 403 reply from the request headers, then a second
  reply (418) from the response headers of that 403 (logged
  ``host_rules twice-later: ...``); ``/reply-then-raise``: the same 403, then
  the response-headers callback raises (the failure policy meets a stream
  that has its answer).
- ``/config``: whether the plugin configuration can be read outside
  ``on_configure``; replies 200 with the record.
"""

from __future__ import annotations

import json

import proxywasm
from proxywasm import Action, BufferType, HostCallError, HttpContext, MapType, RootContext
from proxywasm import hostcalls as hc


def _status_of(error: HostCallError) -> int:
    return int(error.status)


def map_record(map_type: MapType) -> object:
    """``["ok", pairs]`` or ``["error", status]`` for one header map."""
    try:
        return ["ok", [[k, v] for k, v in hc.get_map(map_type)]]
    except HostCallError as e:
        return ["error", _status_of(e)]


def buffer_record(buffer: BufferType) -> object:
    """``["ok", size]`` or ``["missing"]`` for one buffer."""
    status = hc.get_buffer_status(buffer)
    return ["missing"] if status is None else ["ok", status[0]]


class Probe(HttpContext):
    """One stream; what it records depends on the path."""

    def __init__(self, context_id: int, root: RootContext) -> None:
        super().__init__(context_id, root)
        self.path = ""
        self.body_calls: list[list[object]] = []
        self.response_body_calls: list[list[object]] = []

    def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
        self.path = self.get_http_request_header(":path") or "/"
        if self.path.startswith("/callout/"):
            cluster = self.path.split("/")[2]
            self.dispatch_http_call(
                cluster,
                [(":method", "GET"), (":path", "/"), (":authority", cluster)],
                timeout_ms=300,
            )
            return Action.PAUSE
        if self.path == "/twice":
            first = self._reply(403, b"first")
            second = self._reply(418, b"second")
            proxywasm.log_info(f"host_rules twice: {json.dumps([first, second])}")
            return Action.PAUSE
        if self.path in ("/twice-later", "/reply-then-raise"):
            self.send_http_response(403, body=b"first")
            return Action.PAUSE
        if self.path == "/config":
            record = {
                "status": buffer_record(BufferType.PLUGIN_CONFIGURATION),
                "bytes": (hc.get_buffer_bytes(BufferType.PLUGIN_CONFIGURATION) or b"").decode(),
            }
            self.send_http_response(200, body=json.dumps(record).encode())
            return Action.PAUSE
        return Action.CONTINUE

    def _reply(self, status: int, body: bytes) -> object:
        try:
            self.send_http_response(status, body=body)
        except HostCallError as e:
            return ["error", _status_of(e)]
        return ["ok"]

    def on_http_request_body(self, body_size: int, end_of_stream: bool) -> Action:
        self.body_calls.append([body_size, end_of_stream])
        return Action.CONTINUE

    def on_http_response_headers(self, num_headers: int, end_of_stream: bool) -> Action:
        if self.path == "/twice-later":
            later = self._reply(418, b"later")
            proxywasm.log_info(f"host_rules twice-later: {json.dumps(later)}")
        if self.path == "/reply-then-raise":
            raise RuntimeError("host_rules raised after its reply")
        if self.path.startswith("/body/"):
            self.add_http_response_header("x-body-calls", json.dumps(self.body_calls))
        return Action.CONTINUE

    def on_http_response_body(self, body_size: int, end_of_stream: bool) -> Action:
        self.response_body_calls.append([body_size, end_of_stream])
        return Action.CONTINUE

    def on_log(self) -> None:
        if self.path.startswith("/body/"):
            calls = json.dumps(self.response_body_calls)
            proxywasm.log_info(f"host_rules response body {self.path}: {calls}")

    def on_http_call_response(
        self, token: int, num_headers: int, body_size: int, num_trailers: int
    ) -> None:
        code, message = hc.get_status()
        record = {
            "args": [num_headers, body_size, num_trailers],
            "status": [code, message],
            "headers": map_record(MapType.HTTP_CALL_RESPONSE_HEADERS),
            "body": buffer_record(BufferType.HTTP_CALL_RESPONSE_BODY),
        }
        headers = record["headers"]
        if isinstance(headers, list) and headers[0] == "ok":
            # Only the status: the rest (date, server) differs from run to run.
            record["headers"] = ["ok", [p for p in headers[1] if p[0] == ":status"]]
        self.send_http_response(200, body=json.dumps(record).encode())


class Root(RootContext):
    """Hands every stream a :class:`Probe`."""

    def create_http_context(self, context_id: int) -> HttpContext:
        return Probe(context_id, self)


proxywasm.set_root_context(Root)
