"""The ``proxywasm`` command.

proxywasm new my_filter                # scaffold: filter.py, test_filter.py, envoy.yaml
proxywasm build filter.py -o filter.wasm
proxywasm run filter.py                # real Envoy on 127.0.0.1, echo upstream
proxywasm demo                         # build add_header, serve it, show the header
proxywasm envoy-config filter.wasm     # print an Envoy bootstrap (YAML)
proxywasm istio filter.wasm --image REF   # print an Istio WasmPlugin
proxywasm oci filter.wasm -o DIR       # write a Wasm OCI image layout
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.request
from pathlib import Path

__all__ = ["main"]

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
        return _err(str(exc))
    return 0


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


def _parse_upstream(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"--upstream must be HOST:PORT, got {text!r}")
    return host, int(port)


def _wasm_for(path: Path) -> Path:
    if path.suffix == ".wasm":
        if not path.is_file():
            raise FileNotFoundError(f"no such module: {path}")
        return path
    return _build(path, None)


def cmd_run(args: argparse.Namespace) -> int:
    from .build import BuildError
    from .echo import EchoServer
    from .envoy import Envoy, EnvoyError, FilterSpec, envoy_config

    try:
        wasm = _wasm_for(Path(args.file))
    except (BuildError, FileNotFoundError) as exc:
        return _err(str(exc))
    echo = None
    if args.upstream:
        upstream = _parse_upstream(args.upstream)
    else:
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
    envoy = Envoy(config, concurrency=args.concurrency)
    try:
        envoy.start(timeout=300)
        print(
            f"envoy listening on http://127.0.0.1:{envoy.port}  (admin http://127.0.0.1:{envoy.admin_port})"
        )
        print(
            f"upstream {upstream[0]}:{upstream[1]}{' (echo)' if echo else ''}; log {envoy.log_path}; Ctrl-C stops"
        )
        sys.stdout.flush()
        offset = 0
        while envoy.process is not None and envoy.process.poll() is None:
            text = envoy.log_text()
            if len(text) > offset:
                sys.stdout.write(text[offset:])
                sys.stdout.flush()
                offset = len(text)
            time.sleep(0.3)
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


def cmd_demo(args: argparse.Namespace) -> int:
    from .build import BuildError
    from .echo import EchoServer
    from .envoy import Envoy, EnvoyError, FilterSpec, envoy_config

    if not DEMO_FILTER.is_file():
        return _err(f"the add_header example is not at {DEMO_FILTER} (run from a source checkout)")
    out = Path(args.output) if args.output else Path.cwd() / "add_header.wasm"
    try:
        wasm = _build(DEMO_FILTER, out)
    except BuildError as exc:
        return _err(str(exc))
    with EchoServer() as echo:
        envoy = Envoy(
            envoy_config(
                [FilterSpec(wasm, configuration='{"value": "world"}')], ("127.0.0.1", echo.port)
            )
        )
        try:
            envoy.start(timeout=300)
            print(
                f"Envoy {envoy.port} ready in {envoy.ready_after:.1f} s with {wasm.name}; GET /hello:"
            )
            with urllib.request.urlopen(envoy.url("/hello"), timeout=30) as resp:
                print(f"HTTP {resp.status}")
                for name, value in resp.headers.items():
                    print(f"{name}: {value}")
                body = json.loads(resp.read())
            print(f"(upstream saw {body['method']} {body['path']})")
            if resp.headers.get("x-hello") != "world":
                return _err("the response lacks x-hello: world; see " + str(envoy.log_path))
            print(
                "\nx-hello: world was added by the Python filter, compiled to wasm, running in Envoy."
            )
            return 0
        except (EnvoyError, OSError) as exc:
            return _err(f"{exc}\n{envoy.log_tail()}")
        finally:
            envoy.stop()


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
        choices=("cpython", "compact"),
        default="cpython",
        help="cpython (default: any Python, CPython inside the module) or compact "
        "(typed Python compiled to wasm, no interpreter: ~100x smaller; a subset, refused with file:line outside it)",
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
    p.add_argument("--upstream", help="HOST:PORT of the upstream (default: a local echo server)")
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
        "-o", "--output", help="where to write add_header.wasm (default: ./add_header.wasm)"
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
