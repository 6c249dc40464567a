"""The pytest plugin (``proxywasm_host``, the ``filter errors`` report section), in process.

The slow tier checks the report of a compiled filter in a pytest subprocess
(tests/test_run_loop.py); these run an inner pytest session in this process
(pytester) with native filters, so they are fast and mutation testing sees
them. docs/testing.md lists the mutants they kill.
"""

from __future__ import annotations

import pytest
from proxywasm import LogLevel, RootContext, _nullhost
from proxywasm.testing import HostEmulator
from proxywasm.testing.pytest_plugin import MAX_ERROR_ENTRIES, HostFactory, filter_errors

pytest_plugins = ["pytester"]


FAILING_FILTER = """
import pytest
from proxywasm import Action, HttpContext, RootContext
from proxywasm.testing import HostEmulator


class Broken(HttpContext):
    def on_http_request_headers(self, num_headers, end_of_stream):
        raise ZeroDivisionError("the bug the report must show")


class Root(RootContext):
    def create_http_context(self, context_id):
        return Broken(context_id, self)
"""


def _run(pytester: pytest.Pytester, body: str) -> pytest.RunResult:
    pytester.makepyfile(test_inner=FAILING_FILTER + body)
    # no:faulthandler: the inner session must leave the crash-signal handlers alone
    # (wasmtime's trap handling in this process relies on them)
    return pytester.runpytest_inprocess("-p", "no:cacheprovider", "-p", "no:faulthandler", "-q")


def _sections(result: pytest.RunResult) -> str:
    return "\n".join(result.outlines)


def test_a_failed_test_gets_the_filter_errors_of_its_fixture_host(
    pytester: pytest.Pytester,
) -> None:
    result = _run(
        pytester,
        """
def test_fixture(proxywasm_host):
    host = proxywasm_host(Root)
    ctx = host.initialize_http_context()
    assert host.call_on_request_headers(ctx, [(":path", "/")]) == Action.CONTINUE


def test_passes(proxywasm_host):
    host = proxywasm_host(Root)
    host.call_on_request_headers(host.initialize_http_context(), [(":path", "/")])
""",
    )
    result.assert_outcomes(failed=1, passed=1)
    out = _sections(result)
    assert "INTERNALERROR" not in out
    assert out.count("filter errors") == 1  # the passing test gets no section
    assert "[ERROR] python exception in on_http_request_headers" in out
    assert "ZeroDivisionError: the bug the report must show" in out
    assert "host 1 of" not in out  # one host: no host numbers


def test_hosts_in_the_failing_frames_are_reported_each_with_its_number(
    pytester: pytest.Pytester,
) -> None:
    result = _run(
        pytester,
        """
def test_two_hosts():
    first = HostEmulator(Root)
    first.start_vm(); first.start_plugin()
    second = HostEmulator(Root)
    second.start_vm(); second.start_plugin()
    for host in (first, second):
        host.call_on_request_headers(host.initialize_http_context(), [(":path", "/")])
    assert False, "both failed"


def test_a_host_without_errors_adds_nothing():
    host = HostEmulator(Root)
    host.start_vm(); host.start_plugin()
    assert False, "no filter error"
""",
    )
    result.assert_outcomes(failed=2)
    out = _sections(result)
    assert "INTERNALERROR" not in out
    assert out.count("filter errors") == 1
    assert "host 1 of 2:" in out and "host 2 of 2:" in out


def test_a_failing_test_whose_host_was_never_built_is_reported_normally(
    pytester: pytest.Pytester,
) -> None:
    # The half-built host (its constructor raised) is in the failing frames; the
    # report hook must not trip over it (it used to: INTERNALERROR, no report).
    result = _run(
        pytester,
        """
def test_bad_setting():
    HostEmulator(Root, keep_finished=-1)
""",
    )
    result.assert_outcomes(failed=1)
    out = _sections(result)
    assert "INTERNALERROR" not in out
    assert "ValueError: keep_finished must be >= 0, got -1" in out
    assert "filter errors" not in out


def _logged(*messages: tuple[LogLevel, str]) -> HostEmulator:
    host = HostEmulator(RootContext, log_level=LogLevel.TRACE)
    host.logs.extend(messages)
    return host


def test_filter_errors_lists_error_and_critical_entries_only() -> None:
    host = _logged(
        (LogLevel.WARN, "w"),
        (LogLevel.ERROR, "e\n"),
        (LogLevel.CRITICAL, "c"),
        (LogLevel.INFO, "i"),
    )
    assert filter_errors([host]) == "[ERROR] e\n[CRITICAL] c"
    assert filter_errors([_logged((LogLevel.WARN, "w"))]) == ""
    assert filter_errors([]) == ""


def test_filter_errors_keeps_the_last_entries_of_a_noisy_host() -> None:
    n = MAX_ERROR_ENTRIES + 3
    host = _logged(*((LogLevel.ERROR, f"e{i}") for i in range(n)))
    lines = filter_errors([host]).splitlines()
    assert lines[0] == f"(the last {MAX_ERROR_ENTRIES} of {n} entries)"
    assert lines[1:] == [f"[ERROR] e{i}" for i in range(3, n)]
    exactly = _logged(*((LogLevel.ERROR, f"e{i}") for i in range(MAX_ERROR_ENTRIES)))
    assert filter_errors([exactly]).splitlines()[0] == "[ERROR] e0"


def test_filter_errors_numbers_only_the_hosts_with_errors() -> None:
    quiet, loud = _logged(), _logged((LogLevel.ERROR, "x"))
    assert filter_errors([quiet, loud]) == "host 2 of 2:\n[ERROR] x"


class _Refuses(RootContext):
    def on_vm_start(self, vm_configuration_size: int) -> bool:
        return False


class _RefusesConfig(RootContext):
    def on_configure(self, plugin_configuration_size: int) -> bool:
        self.log(LogLevel.ERROR, "bad config")
        return False


def test_the_factory_fails_the_test_with_why_a_host_did_not_start() -> None:
    factory = HostFactory()
    with pytest.raises(pytest.fail.Exception) as info:
        factory(_Refuses)
    assert str(info.value) == (
        "proxywasm_host: start_vm() returned False for _Refuses (on_vm_start returned False, "
        "or the root context failed to start)\nno ERROR or CRITICAL log entries"
    )
    with pytest.raises(pytest.fail.Exception) as info:
        factory(_RefusesConfig, plugin_configuration={"a": 1})
    assert str(info.value) == (
        "proxywasm_host: start_plugin() returned False for _RefusesConfig (on_configure "
        "returned False for plugin_configuration={'a': 1})\n"
        "ERROR / CRITICAL log entries:\n[ERROR] bad config"
    )
    unstarted = factory(_Refuses, start=False)
    assert unstarted.root_context_id == 0
    assert factory.hosts[-1] is unstarted and len(factory.hosts) == 3
    factory.cleanup()
    assert factory.hosts == []


def test_the_factory_refuses_a_root_and_a_module_together() -> None:
    with pytest.raises(TypeError, match="pass either a root context or wasm=, not both"):
        HostFactory()(RootContext, wasm="filter.wasm")


def test_cleanup_detaches_the_host_the_sdk_would_call() -> None:
    factory = HostFactory()
    host = factory(RootContext, root_id="r")
    with host.in_context():
        assert _nullhost.active is host
        factory.cleanup()
        assert _nullhost.active is None
