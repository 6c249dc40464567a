"""Callbacks no context class overrides are answered by the compiled glue without Python.

tests/skips/filter.py overrides neither ``on_log`` nor the body callbacks at
import, so the module skips them; the class it makes on the third request
overrides both, and from then on they must run. Natively nothing is skipped;
the results must be the same both ways.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from proxywasm import LogLevel
from proxywasm.testing import HostEmulator

PROXYWASM_FILTER = Path(__file__).parent / "skips" / "filter.py"


def exchange(host: HostEmulator) -> list[str]:
    before = len(host.get_logs(LogLevel.INFO))
    ctx = host.initialize_http_context()
    host.call_on_request_headers(ctx, [(":path", "/")], end_of_stream=False)
    host.call_on_request_body(ctx, b"abc", end_of_stream=True)
    host.call_on_response_headers(ctx, [(":status", "200")], end_of_stream=True)
    assert ("x-plain", "1") in host.get_current_request_headers(ctx)
    host.complete_http_context(ctx)
    return host.get_logs(LogLevel.INFO)[before:]


def test_a_class_made_later_turns_its_callbacks_back_on(
    proxywasm_filter_host: Callable[..., HostEmulator],
) -> None:
    host = proxywasm_filter_host()
    assert exchange(host) == []
    assert exchange(host) == []
    assert exchange(host) == ["late body 3", "late on_log"]
    assert exchange(host) == ["late body 3", "late on_log"]


def test_glue_skips_names_only_callbacks_nobody_overrides() -> None:
    from proxywasm import HttpContext
    from proxywasm.dispatcher import Dispatcher

    class LogsOnly(HttpContext):
        def on_log(self) -> None:
            pass

    skips = Dispatcher().glue_skips()
    assert "proxy_on_log" not in skips  # LogsOnly (and other test classes) override it
    del LogsOnly
