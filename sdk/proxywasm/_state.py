"""Per-VM bookkeeping shared by the dispatcher and the contexts.

Inside a compiled module there is one VM per interpreter. Natively, several
``HostEmulator`` instances live in one process; each one makes its own
:class:`~proxywasm.dispatcher.Dispatcher` current for the duration of a
callback, so these globals always describe the VM being driven.
"""

from __future__ import annotations

TYPE_CHECKING = False

if TYPE_CHECKING:
    from .dispatcher import Dispatcher

#: The dispatcher of the VM running the current callback.
vm: Dispatcher | None = None
#: A number unique to that VM (metrics bind lazily, once per VM).
vm_key: int = 0
#: The context the host applies stream host calls to right now.
effective_context_id: int = 0
#: Bumped at every callback and every host call that changes a header map:
#: a header view's cached copy is valid while the epoch it was read at lasts.
map_epoch: int = 0
#: The context the last local reply was sent from (an async callback's end
#: must not resume a stream it answered).
replied_context: int = 0
