"""``async def`` callbacks for the compact backend's state machines (``test_async_machines.py``).

``x-plan`` picks what the request-headers coroutine does: loops of awaits
with locals of every kind kept across them, awaits under ``try`` with the
handler after, ``return await``, a three-way ``gather``; the response
headers and a TCP connection have coroutines too.
"""

from __future__ import annotations

import json

import proxywasm
from proxywasm import Action, HttpCall, HttpContext, RootContext, StreamContext, gather


class Gate(HttpContext["Root"]):
    """Each plan awaits callouts in another shape."""

    async def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action | None:
        h = self.request.headers
        plan = h.get("x-plan", "")
        rounds = int(h.get("x-rounds", "2"))
        if plan == "loop":
            total = 0
            ratio = 0.5
            seen = ""
            ok = True
            i = 0
            while i < rounds:
                answer = await self.http_call("loop", path=f"/{i}", headers={"x-i": str(i)})
                total += answer.status
                ratio = ratio * 2.0 + 0.25
                seen += answer.text()
                ok = ok and answer.status == 200
                i += 1
            h["x-total"] = str(total)
            h["x-ratio"] = str(ratio)
            h["x-seen"] = seen
            h["x-ok"] = str(ok)
            return Action.CONTINUE
        if plan == "try":
            try:
                answer = await self.http_call("a")
                if answer.status >= 500:
                    raise ValueError(f"upstream said {answer.status}")
                h["x-body"] = answer.body.decode("utf-8", "replace")
            except ValueError as exc:
                h["x-error"] = str(exc)
                self.send_http_response(502, body=str(exc))
                return Action.PAUSE
            finally:
                self.root.finished += 1
            h["x-finished"] = str(self.root.finished)
            return None
        if plan == "helper":
            decided = await self.decide()
            if decided.status == 403:
                self.send_http_response(403, body=decided.body)
                return Action.PAUSE
            h["x-decided"] = decided.text()
            return Action.CONTINUE
        if plan == "three":
            a, b, c = await gather(
                self.http_call("a", path="/a"),
                self.http_call("b", path="/b", body=b"B"),
                self.http_call("c", method="POST", timeout_ms=50, authority="cee"),
            )
            h["x-three"] = ",".join([str(a.status), str(b.status), str(c.status)])
            h["x-user"] = c.headers.get("x-user", "?")
            h["x-names"] = ",".join(sorted(c.headers.keys()))
            return Action.CONTINUE
        if plan == "raise":
            answer = await self.http_call("a")
            if answer.status == 200:
                raise KeyError(answer.text())
            return Action.CONTINUE
        if plan == "bad":
            await self.http_call("a")
            bad: Action | None = json.loads(h.get("x-bad", "7"))  # checked by the driver
            return bad
        return Action.CONTINUE

    def decide(self) -> HttpCall:
        """A plain method that returns the call: the coroutine awaits it."""
        return self.http_call("decide", path="/d")

    async def on_http_response_headers(self, num_headers: int, end_of_stream: bool) -> None:
        r = self.response.headers
        if r.get("x-ask") is None:
            return
        answer = await self.http_call("resp")
        r["x-answer"] = answer.text()


class Conn(StreamContext["Root"]):
    """A TCP connection that asks a callout before its first bytes go on."""

    async def on_downstream_data(self, data_size: int, end_of_stream: bool) -> Action:
        if data_size == 0:
            return Action.CONTINUE
        answer = await self.http_call("tcp")
        proxywasm.log_info(f"tcp {data_size} {answer.status}")
        if answer.status != 200:
            return Action.PAUSE
        return Action.CONTINUE


class Root(RootContext):
    """Counts the finally blocks that ran."""

    http_context = Gate
    stream_context = Conn

    def __init__(self, context_id: int) -> None:
        super().__init__(context_id)
        self.finished = 0


proxywasm.set_root_context(Root)
