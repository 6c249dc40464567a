"""Fail closed, whatever a callback raises: the fault filter natively and compiled.

The subject is ``tests/envoy_faults/faults.py`` (the filter the Envoy fault
suite also runs): a request header names the fault and the callback it
happens in. Every fault that does not trap the VM must stop the stream with
the 500 local reply and exactly one error entry, natively and in the compiled
module alike (``proxywasm_filter_host`` runs each test both ways), and the VM
must serve the next request.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from proxywasm import Action, LogLevel
from proxywasm.testing import HostEmulator
from proxywasm.testing.pytest_plugin import BuildFactory, HostFactory

HERE = Path(__file__).resolve().parent
PROXYWASM_FILTER = HERE / "envoy_faults" / "faults.py"

MakeHost = Callable[..., HostEmulator]

#: Faults that raise (the VM lives on). ``memory`` and ``escape`` are tested
#: compiled only, below: natively the first would fill this process's heap and
#: the second hands the exception to the test on purpose (the pdb switch).
RAISING = ["value", "keyboard", "base", "exit", "generator_exit", "recursion"]

#: Stream callbacks in which a fault stops the request with the 500.
STREAM_CALLBACKS = ["request_headers", "request_body", "request_trailers"]
RESPONSE_CALLBACKS = ["response_headers", "response_body", "response_trailers"]

OK_REQUEST = [(":method", "GET"), (":path", "/ok"), (":authority", "example.com")]


def request(fault: str, where: str = "request_headers") -> list[tuple[str, str]]:
    return [*OK_REQUEST, ("x-fault", fault), ("x-fault-in", where)]


def drive(host: HostEmulator, ctx: int, where: str, headers: list[tuple[str, str]]) -> Action:
    """Run the stream up to and including the callback ``where``; its action."""
    action = host.call_on_request_headers(ctx, headers, end_of_stream=False)
    if where == "request_headers":
        return action
    action = host.call_on_request_body(ctx, b"body", end_of_stream=False)
    if where == "request_body":
        return action
    action = host.call_on_request_trailers(ctx, [("x-t", "1")])
    if where == "request_trailers":
        return action
    action = host.call_on_response_headers(ctx, [(":status", "200")], end_of_stream=False)
    if where == "response_headers":
        return action
    action = host.call_on_response_body(ctx, b"body", end_of_stream=False)
    if where == "response_body":
        return action
    return host.call_on_response_trailers(ctx, [("x-t", "1")])


def assert_serves(host: HostEmulator) -> None:
    """The VM lives on: a clean request passes and adds its header."""
    ctx = host.initialize_http_context()
    assert host.call_on_request_headers(ctx, OK_REQUEST, end_of_stream=True) == Action.CONTINUE
    assert host.call_on_response_headers(ctx, [(":status", "200")], end_of_stream=True) == (
        Action.CONTINUE
    )
    assert ("x-faults", "ok") in host.get_current_response_headers(ctx)
    assert host.get_sent_local_response(ctx) is None
    host.complete_http_context(ctx)


@pytest.mark.parametrize("where", STREAM_CALLBACKS + RESPONSE_CALLBACKS)
@pytest.mark.parametrize("fault", RAISING)
def test_a_raising_callback_fails_closed(
    proxywasm_filter_host: MakeHost, fault: str, where: str
) -> None:
    host = proxywasm_filter_host()
    ctx = host.initialize_http_context()
    before = len(host.get_logs(LogLevel.ERROR))
    assert drive(host, ctx, where, request(fault, where)) == Action.PAUSE
    reply = host.get_sent_local_response(ctx)
    assert reply is not None and reply.status_code == 500
    errors = host.get_logs(LogLevel.ERROR)[before:]
    assert len(errors) == 1, errors
    assert f"on_http_{where}" in errors[0]
    host.complete_http_context(ctx)
    assert_serves(host)


@pytest.mark.parametrize("fault", ["value", "keyboard", "base"])
def test_on_log_and_root_callbacks_log_once_and_live_on(
    proxywasm_filter_host: MakeHost, fault: str
) -> None:
    """Where there is no stream to stop (on_log, tick, queue), one entry and the VM lives."""
    host = proxywasm_filter_host()
    for where in ("log", "tick", "queue"):
        ctx = host.initialize_http_context()
        before = len(host.get_logs(LogLevel.ERROR))
        host.call_on_request_headers(ctx, request(fault, where), end_of_stream=True)
        host.call_on_response_headers(ctx, [(":status", "200")], end_of_stream=True)
        host.complete_http_context(ctx)
        if where == "tick":
            host.tick()
        errors = host.get_logs(LogLevel.ERROR)[before:]
        assert len(errors) == 1, (where, errors)
        assert f"on_{where if where != 'queue' else 'queue_ready'}" in errors[0]
        assert_serves(host)


def test_a_failing_callout_answer_fails_closed(proxywasm_filter_host: MakeHost) -> None:
    host = proxywasm_filter_host()
    ctx = host.initialize_http_context()
    assert host.call_on_request_headers(ctx, request("value", "callout")) == Action.PAUSE
    host.call_on_http_call_response(host.get_http_call_attributes()[0].token, [(":status", "200")])
    reply = host.get_sent_local_response(ctx)
    assert reply is not None and reply.status_code == 500
    assert "on_http_call_response" in host.get_logs(LogLevel.ERROR)[-1]
    host.complete_http_context(ctx)
    assert_serves(host)


def test_a_failing_tcp_callback_closes_the_connection(proxywasm_filter_host: MakeHost) -> None:
    host = proxywasm_filter_host(root_id="tcp")
    ctx, action = host.initialize_connection()
    assert action == Action.CONTINUE
    assert host.call_on_downstream_data(ctx, b"tcp-fault") == Action.PAUSE
    connection = host.get_connection(ctx)
    assert connection.downstream_closed
    assert connection.forwarded_downstream == b""
    errors = host.get_logs(LogLevel.ERROR)
    assert len(errors) == 1 and "on_downstream_data" in errors[0], errors


# -- compiled only ----------------------------------------------------------


@pytest.fixture
def compiled(proxywasm_build: BuildFactory, proxywasm_host: HostFactory) -> HostEmulator:
    return proxywasm_host(wasm=proxywasm_build(PROXYWASM_FILTER))


@pytest.mark.slow
def test_a_full_heap_still_fails_closed_compiled(compiled: HostEmulator) -> None:
    """MemoryError while the barrier reports: the preallocated path still sends the 500."""
    ctx = compiled.initialize_http_context()
    assert compiled.call_on_request_headers(ctx, request("memory"), end_of_stream=True) == (
        Action.PAUSE
    )
    reply = compiled.get_sent_local_response(ctx)
    assert reply is not None and reply.status_code == 500
    compiled.complete_http_context(ctx)
    assert_serves(compiled)


@pytest.mark.slow
@pytest.mark.parametrize("where", STREAM_CALLBACKS + RESPONSE_CALLBACKS)
def test_an_exception_escaping_the_dispatcher_fails_closed_in_c(
    compiled: HostEmulator, where: str
) -> None:
    """The glue's last resort: a fixed entry from a static buffer, the 500 sent from C."""
    ctx = compiled.initialize_http_context()
    assert drive(compiled, ctx, where, request("escape", where)) == Action.PAUSE
    reply = compiled.get_sent_local_response(ctx)
    assert reply is not None and reply.status_code == 500
    assert reply.body == b"Internal Server Error\n"
    last = compiled.get_logs(LogLevel.ERROR)[-1]
    assert last == (
        f"python callback proxy_on_{where} failed outside the exception barrier "
        "(KeyboardInterrupt): the stream fails closed"
    )
    compiled.complete_http_context(ctx)  # on_log turns the escape switch off again
    assert_serves(compiled)
