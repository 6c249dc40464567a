"""The ``proxywasm`` command.

proxywasm new my_filter                # scaffold: filter.py, test_filter.py, envoy.yaml
proxywasm build filter.py -o filter.wasm
proxywasm run filter.py                # real Envoy on 127.0.0.1, echo upstream; the filter's log
proxywasm run filter.wasm --envoy-log  # ... and Envoy's whole log
proxywasm demo                         # build add_header (into the user cache), serve it, show the header
proxywasm envoy-config filter.wasm     # print an Envoy bootstrap (YAML)
proxywasm istio filter.wasm --image REF   # print an Istio WasmPlugin
proxywasm oci filter.wasm -o DIR       # write a Wasm OCI image layout
"""

from __future__ import annotations

import argparse
import codecs
import ipaddress
import itertools
import json
import re
import shutil
import socket
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from .envoy import Envoy

__all__ = ["LogFilter", "explain_build_error", "main", "parse_upstream"]

REPO = Path(__file__).resolve().parents[2]
DEMO_FILTER = REPO / "examples" / "add_header" / "filter.py"


def _err(message: str) -> int:
    print(f"proxywasm: error: {message}", file=sys.stderr)
    return 1


def _build(
    source: Path,
    out: Path | None,
    quiet: bool = False,
    keep_compiler: bool = False,
    backend: str = "cpython",
    include: tuple[str, ...] = (),
) -> Path:
    from .build import build_filter

    result = build_filter(
        source,
        out,
        backend=backend,
        progress=None if quiet else sys.stderr,
        keep_compiler=keep_compiler,
        include=include,
    )
    return result.output


def cmd_build(args: argparse.Namespace) -> int:
    from .build import BuildError

    source = Path(args.file)
    try:
        _build(
            source,
            Path(args.output) if args.output else None,
            keep_compiler=args.keep_compiler,
            backend=args.backend,
            include=tuple(args.include or ()),
        )
    except BuildError as exc:
        return _err(explain_build_error(str(exc)))
    return 0


def explain_build_error(message: str) -> str:
    """A build error as the filter author should read it (see ``build.explain_build_error``)."""
    from .build import explain_build_error as explain

    return explain(message)


def _policy(args: argparse.Namespace) -> str:
    """``--failure-policy``, with ``--fail-open`` as its older spelling."""
    return "open" if args.fail_open else str(args.failure_policy)


def _add_failure_policy(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument(
        "--failure-policy",
        choices=("closed", "open", "reload"),
        default="closed",
        help=f"when the VM fails: closed (default: every request answered 503), open (requests pass "
        f"without the filter) or reload (a fresh VM for the next request){what}",
    )
    p.add_argument("--fail-open", action="store_true", help="the same as --failure-policy open")


def parse_upstream(text: str) -> tuple[str, int]:
    """``--upstream HOST:PORT`` -> (IP address, port); a host name is resolved here.

    Envoy's static cluster takes IP addresses only (``localhost`` would be a
    ``malformed IP address``). IPv4 is preferred; ``[::1]:8080`` is IPv6.
    Raises ``ValueError`` with the one line to print.
    """
    host, _, port = text.rpartition(":")
    host = host.strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not host or not port.isdigit() or not 0 < int(port) <= 65535:
        raise ValueError(
            f"--upstream must be HOST:PORT (e.g. 127.0.0.1:8080 or localhost:8080), got {text!r}"
        )
    try:
        return str(ipaddress.ip_address(host)), int(port)
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, int(port), type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise ValueError(f"--upstream: cannot resolve {host!r}: {exc}") from None
    infos.sort(key=lambda info: info[0] != socket.AF_INET)
    return str(infos[0][4][0]), int(port)


def _wasm_for(path: Path) -> Path:
    if path.suffix == ".wasm":
        if not path.is_file():
            raise FileNotFoundError(f"no such module: {path}")
        return path
    return _build(path, None)


#: One Envoy log entry: ``[time][thread][level][component] [file:line] message``,
#: continuation lines (a filter's traceback) included.
_ENTRY = re.compile(
    r"^\[[^\]]+\]\[\d+\]\[(?P<level>\w+)\]\[(?P<component>[\w.-]+)\] \[[^\]]*\] (?P<message>.*)",
    re.DOTALL,
)
_ENTRY_START = re.compile(r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+\]", re.MULTILINE)
#: ``wasm log NAME ROOT_ID VM_ID: `` (the parts after "wasm log" may be empty).
_WASM_LOG = re.compile(r"^wasm log[^:\n]*: ")
#: Envoy warnings every ``run`` gets and the user cannot act on (our bootstrap).
_NOISE = ("There is no configured limit to the number of allowed active downstream connections",)
_SHOWN_LEVELS = ("warning", "error", "critical")


@dataclass
class LogFilter:
    """What ``proxywasm run`` shows of Envoy's log.

    By default: the filter's own lines (Envoy's ``wasm log`` entries, message
    part, with the level) and Envoy's warnings and errors; with ``full``,
    every line as Envoy wrote it. :meth:`feed` takes the log text in the
    pieces it was read in; an entry is shown once the next one starts (or at
    :meth:`flush`), so a traceback is never cut.
    """

    full: bool = False
    #: Only the filter's lines (what a failed start prints above its one error line).
    filter_only: bool = False
    _pending: str = field(default="", repr=False)

    def format(self, entry: str) -> str | None:
        """The text to show for one log entry, or ``None`` to hide it."""
        if self.full:
            return entry.rstrip("\n")
        match = _ENTRY.match(entry)
        if match is None:
            return None
        level, component = match["level"], match["component"]
        message = match["message"].rstrip("\n")
        log = _WASM_LOG.match(message) if component == "wasm" else None
        if log is not None:
            return f"[{level}] {message[log.end() :]}"
        if not self.filter_only and level in _SHOWN_LEVELS and not message.startswith(_NOISE):
            return f"[envoy {level}] {message}"
        return None

    def feed(self, text: str) -> Iterator[str]:
        """Lines to show for the complete entries in ``_pending + text``."""
        self._pending += text
        starts = [m.start() for m in _ENTRY_START.finditer(self._pending)]
        if len(starts) < 2:
            return
        complete, self._pending = self._pending[: starts[-1]], self._pending[starts[-1] :]
        yield from self._lines(complete)

    def flush(self) -> Iterator[str]:
        """Lines for whatever is left (the last entry)."""
        rest, self._pending = self._pending, ""
        yield from self._lines(rest)

    def lines(self, log: str) -> list[str]:
        """Every line to show for a whole log."""
        return [*self.feed(log), *self.flush()]

    def _lines(self, text: str) -> Iterator[str]:
        for entry in _entries(text):
            shown = self.format(entry)
            if shown is not None:
                yield shown


def _entries(text: str) -> Iterator[str]:
    """The entries of a piece of Envoy's log (text before the first entry is one too)."""
    starts = sorted({0, *(m.start() for m in _ENTRY_START.finditer(text)), len(text)})
    for a, b in itertools.pairwise(starts):
        yield text[a:b]


def startup_failure(log: str) -> str | None:
    """The one line of a failed start that matters: Envoy's first ``[error]`` or
    ``[critical]`` entry that is not the filter's own log line (those are shown
    as they are); ``None`` if there is none."""
    for entry in _entries(log):
        match = _ENTRY.match(entry)
        if match is None or match["level"] not in ("error", "critical"):
            continue
        message = match["message"]
        if match["component"] == "wasm" and _WASM_LOG.match(message):
            continue
        return message.strip().splitlines()[0].strip()
    return None


class _Tail:
    """Read Envoy's log file incrementally (the whole file is never re-read)."""

    def __init__(self, path: Path, out: TextIO, log_filter: LogFilter) -> None:
        self.path = path
        self.out = out
        self.filter = log_filter
        self.offset = 0
        # A read may end inside a UTF-8 sequence: the decoder keeps it for the next.
        self.decoder = codecs.getincrementaldecoder("utf-8")("replace")

    def poll(self) -> None:
        """Show what Envoy logged since the last poll."""
        if not self.path.exists():
            return
        with self.path.open("rb") as f:
            f.seek(self.offset)
            data = f.read()
        if data:
            self.offset += len(data)
            self._write(self.filter.feed(self.decoder.decode(data)))
        else:
            # Nothing new for a poll: the last entry is complete (Envoy writes an
            # entry, traceback and all, in one write).
            self._write(self.filter.flush())

    def flush(self) -> None:
        self.poll()
        self._write(self.filter.flush())

    def _write(self, lines: Iterator[str]) -> None:
        for line in lines:
            print(line, file=self.out)
        self.out.flush()


def _new_workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="proxywasm-envoy-"))


def _start_error(envoy: Envoy, exc: Exception, full: bool) -> int:
    """Report a failed Envoy start: the filter's own lines, then the one error line."""
    log = envoy.log_text()
    for line in LogFilter(full=full, filter_only=True).lines(log):
        print(line)
    sys.stdout.flush()
    reason = startup_failure(log) or str(exc).splitlines()[0].rstrip(":")
    more = "" if full else " (--envoy-log shows Envoy's full log)"
    return _err(f"envoy did not start: {reason}{more}")


def cmd_run(args: argparse.Namespace) -> int:
    from .build import BuildError
    from .echo import EchoServer
    from .envoy import Envoy, EnvoyError, FilterSpec, envoy_config

    upstream: tuple[str, int] | None = None
    if args.upstream:
        try:
            upstream = parse_upstream(args.upstream)
        except ValueError as exc:
            return _err(str(exc))
    try:
        wasm = _wasm_for(Path(args.file))
    except BuildError as exc:
        return _err(explain_build_error(str(exc)))
    except FileNotFoundError as exc:
        return _err(str(exc))
    echo = None
    if upstream is None:
        echo = EchoServer()
        upstream = ("127.0.0.1", echo.port)
    config = envoy_config(
        [
            FilterSpec(
                wasm,
                configuration=args.config or "",
                root_id=args.root_id,
                failure_policy=_policy(args),
            )
        ],
        upstream,
        listen=("127.0.0.1", args.port),
    )
    envoy = Envoy(config, concurrency=args.concurrency, workdir=_new_workdir())
    tail = _Tail(envoy.log_path, sys.stdout, LogFilter(full=args.envoy_log))
    try:
        try:
            envoy.start(timeout=300)
        except EnvoyError as exc:
            return _start_error(envoy, exc, args.envoy_log)
        print(
            f"envoy listening on http://127.0.0.1:{envoy.port}  (admin http://127.0.0.1:{envoy.admin_port})"
        )
        shown = "Envoy's log" if args.envoy_log else "the filter's log, Envoy's warnings and errors"
        print(
            f"upstream {upstream[0]}:{upstream[1]}{' (echo)' if echo else ''}; "
            f"showing {shown}; Ctrl-C stops"
        )
        sys.stdout.flush()
        while envoy.process is not None and envoy.process.poll() is None:
            tail.poll()
            time.sleep(0.2)
        tail.flush()
        return _err(f"envoy exited with code {envoy.process.returncode if envoy.process else '?'}")
    except EnvoyError as exc:
        return _err(str(exc))
    except KeyboardInterrupt:
        print("\nstopping envoy", file=sys.stderr)
        return 0
    finally:
        envoy.stop()
        if echo is not None:
            echo.close()
        shutil.rmtree(envoy.workdir, ignore_errors=True)


def demo_output() -> Path:
    """Where ``proxywasm demo`` writes its module by default: the user cache
    (beside the toolchain), never the current folder."""
    from .toolchain import cache_root

    return cache_root() / "demo" / "add_header.wasm"


def cmd_demo(args: argparse.Namespace) -> int:
    from .build import BuildError
    from .echo import EchoServer
    from .envoy import Envoy, EnvoyError, FilterSpec, envoy_config

    if not DEMO_FILTER.is_file():
        return _err(f"the add_header example is not at {DEMO_FILTER} (run from a source checkout)")
    out = Path(args.output) if args.output else demo_output()
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        wasm = _build(DEMO_FILTER, out)
    except (BuildError, OSError) as exc:
        return _err(str(exc))
    with EchoServer() as echo:
        envoy = Envoy(
            envoy_config(
                [FilterSpec(wasm, configuration='{"value": "world"}')], ("127.0.0.1", echo.port)
            ),
            workdir=_new_workdir(),
        )
        try:
            envoy.start(timeout=300)
            print(f"Envoy {envoy.port} ready in {envoy.ready_after:.1f} s with {wasm}; GET /hello:")
            with urllib.request.urlopen(envoy.url("/hello"), timeout=30) as resp:
                print(f"HTTP {resp.status}")
                for name, value in resp.headers.items():
                    print(f"{name}: {value}")
                body = json.loads(resp.read())
            print(f"(upstream saw {body['method']} {body['path']})")
            if resp.headers.get("x-hello") != "world":
                shown = LogFilter().lines(envoy.log_text())
                return _err("the response lacks x-hello: world\n" + "\n".join(shown))
            print(
                "\nx-hello: world was added by the Python filter, compiled to wasm, running in Envoy."
            )
            return 0
        except EnvoyError as exc:
            reason = startup_failure(envoy.log_text()) or str(exc).splitlines()[0].rstrip(":")
            return _err(f"envoy did not start: {reason}")
        except OSError as exc:
            return _err(f"the request to Envoy failed: {exc}")
        finally:
            envoy.stop()
            shutil.rmtree(envoy.workdir, ignore_errors=True)


def cmd_new(args: argparse.Namespace) -> int:
    from .scaffold import ScaffoldError, scaffold

    try:
        path = scaffold(Path(args.name))
    except (ScaffoldError, OSError) as exc:
        return _err(str(exc))
    name = path.name
    print(f"created {path}/ with filter.py, test_filter.py, envoy.yaml, README.md")
    steps = [
        (f"cd {args.name}", ""),
        ('pytest -m "not slow"', "# native tests, in seconds"),
        ("pytest", "# also builds the module and tests it"),
        (f"proxywasm build filter.py -o {name}.wasm", ""),
        (f"proxywasm run {name}.wasm", "# a real Envoy on 127.0.0.1:10000"),
    ]
    width = max(len(cmd) for cmd, _ in steps) + 2
    print("next:")
    for cmd, comment in steps:
        print(f"  {cmd:<{width}}{comment}".rstrip())
    return 0


def _print_doc(doc: object, fmt: str, header: str = "") -> None:
    from .deploy import dump_yaml

    if fmt == "json":
        print(json.dumps(doc, indent=2))
    else:
        sys.stdout.write(header + dump_yaml(doc))


def cmd_envoy_config(args: argparse.Namespace) -> int:
    from .deploy import DeployError, envoy_bootstrap

    try:
        config = envoy_bootstrap(
            Path(args.file),
            configuration=args.config or "",
            root_id=args.root_id,
            vm_id=args.vm_id,
            listen=args.listen,
            upstream=args.upstream,
            admin=args.admin,
            failure_policy=_policy(args),
        )
    except DeployError as exc:
        return _err(str(exc))
    header = (
        f"# Envoy bootstrap for {Path(args.file).name}, made by `proxywasm envoy-config`.\n"
        f"# envoy -c THIS_FILE   (listener {args.listen}, upstream {args.upstream}, admin {args.admin})\n"
    )
    _print_doc(config, args.format, header)
    return 0


def _parse_selector(items: list[str]) -> dict[str, str]:
    labels: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--selector must be KEY=VALUE, got {item!r}")
        labels[key] = value
    return labels


def cmd_istio(args: argparse.Namespace) -> int:
    from .deploy import (
        DeployError,
        default_plugin_name,
        layout_digest,
        module_sha256,
        oci_image,
        wasm_plugin,
    )

    wasm = Path(args.file)
    try:
        plugin_config = None
        if args.config is not None:
            try:
                plugin_config = json.loads(args.config)
            except ValueError as exc:
                raise DeployError(f"--config is not JSON: {exc}") from None
            if not isinstance(plugin_config, dict):
                raise DeployError(
                    "--config must be a JSON object (Istio's pluginConfig is a Struct)"
                )
        selector = _parse_selector(args.selector or [])
        if args.image:
            ref = args.image.removeprefix("oci://")
            url = f"oci://{ref}"
            # For oci:// Istio checks sha256 against the image's manifest digest,
            # not the module's: read it from the layout, or compute what
            # `proxywasm oci` writes (deterministic).
            if wasm.is_dir():
                last = ref.split("@", 1)[0].rpartition("/")[2]
                tag = last.rpartition(":")[2] if ":" in last else None
                digest = layout_digest(wasm, tag)
                what = f"the layout {wasm}"
            else:
                digest = oci_image(wasm, variant=args.variant).digest
                what = f"`proxywasm oci {wasm.name} --variant {args.variant}`"
            sha256 = digest.split(":", 1)[1]
            if "@sha256:" in ref:
                pinned = ref.rsplit("@sha256:", 1)[1]
                if pinned != sha256:
                    print(
                        f"proxywasm: warning: {ref} pins sha256:{pinned}, but {what} has "
                        f"sha256:{sha256}; using the pinned digest",
                        file=sys.stderr,
                    )
                sha256 = pinned
        else:
            if wasm.is_dir():
                raise DeployError("--url needs the .wasm module itself, not an OCI layout")
            url = args.url
            sha256 = module_sha256(wasm)  # http(s)/file: Istio checks the module's own sha256
        doc = wasm_plugin(
            url=url,
            sha256=sha256,
            name=args.name or default_plugin_name(wasm),
            namespace=args.namespace,
            plugin_config=plugin_config,
            phase=args.phase,
            priority=args.priority,
            selector=selector,
            failure_policy=_policy(args),
            root_id=args.root_id,
        )
    except (DeployError, ValueError) as exc:
        return _err(str(exc))
    _print_doc(doc, args.format)
    return 0


def cmd_oci(args: argparse.Namespace) -> int:
    from .deploy import DeployError, write_oci_layout

    try:
        image = write_oci_layout(
            Path(args.file), Path(args.output), tag=args.tag, variant=args.variant
        )
    except (DeployError, OSError) as exc:
        return _err(str(exc))
    print(image.digest)
    print(
        f"wrote an OCI image layout ({args.variant} variant) to {args.output}, tag {args.tag}; push it with e.g.\n"
        f"  oras cp --from-oci-layout {args.output}:{args.tag} REGISTRY/REPO:{args.tag}\n"
        f"  crane push {args.output} REGISTRY/REPO:{args.tag}",
        file=sys.stderr,
    )
    return 0


def _stop_on_sigterm() -> None:
    """Turn SIGTERM (e.g. from `timeout` or a process manager) into the same
    clean stop as Ctrl-C, so the Envoy we started is stopped too."""
    import signal

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="proxywasm", description="Write Envoy proxy-wasm filters in Python."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "new", help="scaffold a filter folder: filter.py, test_filter.py, envoy.yaml, README.md"
    )
    p.add_argument(
        "name", help="the folder to create (its name: a letter, then letters, digits, '_')"
    )
    p.set_defaults(func=cmd_new)

    p = sub.add_parser("build", help="compile a filter into one proxy-wasm module")
    p.add_argument("file", help="the filter's .py file")
    p.add_argument("-o", "--output", help="output .wasm (default: next to the filter)")
    p.add_argument(
        "--backend",
        choices=("cpython", "compact", "componentize-py"),
        default="cpython",
        help="cpython (default: any Python, CPython inside the module), compact "
        "(typed Python compiled to wasm, no interpreter: ~100x smaller; a subset, refused with file:line outside it) "
        "or componentize-py (CPython 3.14 via componentize-py, experimental; needs the 'componentize' extra)",
    )
    p.add_argument(
        "--keep-compiler",
        action="store_true",
        help="keep CPython's parser and compiler in the module (kept anyway when the code calls eval/exec/compile)",
    )
    p.add_argument(
        "--include",
        action="append",
        metavar="MODULE",
        help="freeze MODULE (and what it imports) into the module although no import names it, "
        "e.g. one imported by a computed name (repeatable)",
    )
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("run", help="serve a filter in a real Envoy on 127.0.0.1")
    p.add_argument("file", help="a filter .py (built first) or a .wasm")
    p.add_argument("--config", help="plugin configuration (a JSON string)")
    p.add_argument(
        "--upstream",
        help="HOST:PORT of the upstream, e.g. localhost:8080 (default: a local echo server)",
    )
    p.add_argument(
        "--envoy-log",
        action="store_true",
        help="show Envoy's whole log (default: the filter's log lines and Envoy's warnings and errors)",
    )
    p.add_argument(
        "--port", type=int, default=10000, help="listener port (default 10000; 0 picks one)"
    )
    p.add_argument("--root-id", default="", help="Envoy root_id of the plugin")
    _add_failure_policy(p, "")
    p.add_argument("--concurrency", type=int, default=1, help="Envoy worker threads (default 1)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser(
        "demo", help="build the add_header example, serve it and show the header it adds"
    )
    p.add_argument(
        "-o",
        "--output",
        help="where to write add_header.wasm (default: the user cache, beside the toolchain)",
    )
    p.set_defaults(func=cmd_demo)

    fmt_help = "output format (default yaml)"

    p = sub.add_parser("envoy-config", help="print an Envoy bootstrap that serves a module")
    p.add_argument("file", help="the .wasm module")
    p.add_argument("--config", help="plugin configuration (a string, usually JSON)")
    p.add_argument("--root-id", default="", help="Envoy root_id of the plugin")
    p.add_argument(
        "--vm-id", default="", help="Envoy vm_id (VMs with the same id and code are shared)"
    )
    p.add_argument(
        "--listen",
        default="127.0.0.1:10000",
        help="HOST:PORT of the listener (default 127.0.0.1:10000)",
    )
    p.add_argument(
        "--upstream",
        default="127.0.0.1:8080",
        help="HOST:PORT of the upstream (default 127.0.0.1:8080)",
    )
    p.add_argument(
        "--admin",
        default="127.0.0.1:9901",
        help="HOST:PORT of the admin API (default 127.0.0.1:9901)",
    )
    _add_failure_policy(p, "")
    p.add_argument("--format", choices=["yaml", "json"], default="yaml", help=fmt_help)
    p.set_defaults(func=cmd_envoy_config)

    p = sub.add_parser("istio", help="print an Istio WasmPlugin for a module")
    p.add_argument(
        "file",
        help="the .wasm module, or the OCI layout `proxywasm oci` wrote (the digest goes into spec.sha256)",
    )
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--image", help="the OCI image REF the module is pushed to (url oci://REF)")
    where.add_argument("--url", help="an http(s):// or file:// URL of the module itself")
    p.add_argument("--name", help="metadata.name (default: the module's file name)")
    p.add_argument("--namespace", help="metadata.namespace")
    p.add_argument("--config", help="pluginConfig, a JSON object")
    p.add_argument(
        "--phase", choices=["AUTHN", "AUTHZ", "STATS"], help="where Istio inserts the filter"
    )
    p.add_argument("--priority", type=int, help="order among plugins of the same phase")
    p.add_argument(
        "--selector", action="append", metavar="KEY=VALUE", help="workload label (repeatable)"
    )
    p.add_argument("--root-id", default="", help="spec.pluginName (Envoy root_id)")
    _add_failure_policy(p, "; failStrategy FAIL_CLOSE, FAIL_OPEN or FAIL_RELOAD")
    p.add_argument(
        "--variant",
        choices=["oci", "compat"],
        default="oci",
        help="the image variant `proxywasm oci` wrote (default oci)",
    )
    p.add_argument("--format", choices=["yaml", "json"], default="yaml", help=fmt_help)
    p.set_defaults(func=cmd_istio)

    p = sub.add_parser(
        "oci", help="write a Wasm OCI image layout (push it with oras, crane or skopeo)"
    )
    p.add_argument("file", help="the .wasm module")
    p.add_argument(
        "-o",
        "--output",
        required=True,
        help="the layout directory to create (must not exist or be empty)",
    )
    p.add_argument("--tag", default="latest", help="tag recorded in index.json (default latest)")
    p.add_argument(
        "--variant",
        choices=["oci", "compat"],
        default="oci",
        help="oci: wasm media types (default); compat: one tar+gzip layer with plugin.wasm",
    )
    p.set_defaults(func=cmd_oci)

    args = parser.parse_args(argv)
    if args.command in ("run", "demo"):
        _stop_on_sigterm()
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
