"""Tests of the tcp_byte_counter example, run natively and compiled.

As in ``examples/add_header``: every test takes its host from ``make_host`` /
``host``, parametrised over ``BACKENDS``. Connections are driven with
``initialize_connection`` / ``call_on_downstream_data`` / ``call_on_upstream_data``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from proxywasm import Action, LogLevel
from proxywasm.testing import HostEmulator, load_filter

HERE = Path(__file__).resolve().parent
#: The filter the plugin's proxywasm_filter_host runs, natively and compiled.
PROXYWASM_FILTER = HERE / "filter.py"
PROXYWASM_BACKENDS = ("cpython", "compact")


filter_module = load_filter(PROXYWASM_FILTER)
MakeHost = Callable[..., HostEmulator]

P = "tcp_byte_counter"


@pytest.fixture
def make_host(proxywasm_filter_host: MakeHost) -> MakeHost:
    """Hosts running the filter natively and compiled (the plugin's proxywasm_filter_host)."""
    return proxywasm_filter_host


@pytest.fixture
def host(make_host: MakeHost) -> HostEmulator:
    return make_host()


def metrics(host: HostEmulator) -> dict[str, int]:
    names = ("connections", "active_connections", "downstream_bytes", "upstream_bytes")
    return {name: host.get_metric(f"{P}.{name}") for name in names}


def test_metrics_start_at_zero(host: HostEmulator) -> None:
    assert metrics(host) == {
        "connections": 0,
        "active_connections": 0,
        "downstream_bytes": 0,
        "upstream_bytes": 0,
    }


def test_counts_bytes_both_ways_and_forwards_them_unchanged(host: HostEmulator) -> None:
    ctx, action = host.initialize_connection()
    assert action == Action.CONTINUE
    assert metrics(host)["active_connections"] == 1
    assert host.call_on_downstream_data(ctx, b"hello ") == Action.CONTINUE
    assert host.call_on_downstream_data(ctx, b"world\n") == Action.CONTINUE
    assert host.call_on_upstream_data(ctx, b"HELLO WORLD\n") == Action.CONTINUE
    assert host.call_on_upstream_data(ctx, b"", end_of_stream=True) == Action.CONTINUE
    conn = host.get_connection(ctx)
    assert bytes(conn.forwarded_downstream) == b"hello world\n"
    assert bytes(conn.forwarded_upstream) == b"HELLO WORLD\n"
    assert metrics(host) == {
        "connections": 1,
        "active_connections": 1,
        "downstream_bytes": 12,
        "upstream_bytes": 12,
    }
    assert host.get_logs(LogLevel.INFO) == []  # nothing logged before the close


def test_close_logs_the_totals(make_host: MakeHost) -> None:
    host = make_host(properties={"source.address": "192.0.2.1:40000"})
    ctx, _ = host.initialize_connection()
    host.call_on_downstream_data(ctx, b"x" * 1000)
    host.call_on_upstream_data(ctx, b"y" * 10)
    host.call_on_downstream_close(ctx)
    host.call_on_upstream_close(ctx)
    host.complete_connection(ctx)
    assert host.get_logs(LogLevel.INFO) == [
        f"tcp_byte_counter: connection {ctx} from 192.0.2.1:40000 closed: 1000 bytes in, 10 bytes out"
    ]
    assert metrics(host)["active_connections"] == 0
    assert host.get_logs(LogLevel.ERROR) == []


def test_connections_are_counted_apart(host: HostEmulator) -> None:
    a, _ = host.initialize_connection()
    b, _ = host.initialize_connection()
    host.call_on_downstream_data(a, b"aaa")
    host.call_on_downstream_data(b, b"bbbbb")
    host.call_on_upstream_data(b, b"B")
    assert metrics(host) == {
        "connections": 2,
        "active_connections": 2,
        "downstream_bytes": 8,
        "upstream_bytes": 1,
    }
    host.complete_connection(b)
    assert metrics(host)["active_connections"] == 1
    host.complete_connection(a)
    assert host.get_logs(LogLevel.INFO) == [
        f"tcp_byte_counter: connection {b} from unknown closed: 5 bytes in, 1 bytes out",
        f"tcp_byte_counter: connection {a} from unknown closed: 3 bytes in, 0 bytes out",
    ]
    assert metrics(host)["active_connections"] == 0


def test_many_chunks(host: HostEmulator) -> None:
    ctx, _ = host.initialize_connection()
    for size in range(1, 101):
        host.call_on_downstream_data(ctx, b"d" * size)
    assert metrics(host)["downstream_bytes"] == 5050
    host.complete_connection(ctx)
    assert host.get_logs(LogLevel.INFO)[0].endswith("5050 bytes in, 0 bytes out")


def test_http_streams_are_not_counted(host: HostEmulator) -> None:
    # The same module loaded as an HTTP filter: the default HttpContext lets traffic through.
    ctx = host.initialize_http_context()
    assert (
        host.call_on_request_headers(ctx, [(":path", "/")], end_of_stream=True) == Action.CONTINUE
    )
    host.complete_http_context(ctx)
    assert metrics(host)["connections"] == 0
    assert host.get_logs(LogLevel.ERROR) == []
