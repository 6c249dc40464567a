"""Stand-in for the ``_proxywasm`` host module when running natively.

Inside a compiled module ``_proxywasm`` is the generated C glue. Natively the
null runtime (``proxywasm.testing.HostEmulator``) sets :data:`active` to itself
for the duration of each callback, and every host function resolves to the
emulator's method of the same name. Outside a callback there is no host, and
the call fails with a clear :class:`~proxywasm.types.NotInCallbackError`.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

from .types import NotInCallbackError

#: The emulator running the current callback, or None.
active: Any = None


def __getattr__(name: str) -> Any:
    host = active
    if host is None:
        if name.startswith("proxy_"):
            raise NotInCallbackError(
                f"{name}: the proxy-wasm host API was called outside a callback. "
                "Natively, drive the filter through proxywasm.testing.HostEmulator "
                "(e.g. host.call_on_request_headers(...)); inside a module, host "
                "calls are not available at import time."
            )
        raise AttributeError(name)
    return getattr(host, name)
