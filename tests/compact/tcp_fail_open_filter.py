"""A fail-open TCP filter whose async callback raises after its callout (the failure policy
must then resume the connection, as if the callback had returned CONTINUE)."""

import proxywasm
from proxywasm import Action, RootContext, StreamContext


class Conn(StreamContext["Root"]):
    """Asks cluster ``tcp`` before the first bytes go on; a non-200 answer raises."""

    async def on_downstream_data(self, data_size: int, end_of_stream: bool) -> Action:
        if data_size == 0:
            return Action.CONTINUE
        answer = await self.http_call("tcp")
        if answer.status != 200:
            raise RuntimeError("tcp refused with " + str(answer.status))
        return Action.CONTINUE


class Root(RootContext):
    """Fails open."""

    fail_open = True
    stream_context = Conn


proxywasm.set_root_context(Root)
