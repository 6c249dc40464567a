"""The ``proxywasm`` command: build, run, demo.

    proxywasm build filter.py -o filter.wasm
    proxywasm run filter.py                # real Envoy on 127.0.0.1, echo upstream
    proxywasm demo                         # build add_header, serve it, show the header
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


def _build(source: Path, out: Path | None, quiet: bool = False) -> Path:
    from .build import build_filter

    result = build_filter(source, out, progress=None if quiet else sys.stderr)
    return result.output


def cmd_build(args: argparse.Namespace) -> int:
    from .build import BuildError

    source = Path(args.file)
    try:
        _build(source, Path(args.output) if args.output else None)
    except BuildError as exc:
        return _err(str(exc))
    return 0


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
        [FilterSpec(wasm, configuration=args.config or "", root_id=args.root_id, fail_open=args.fail_open)],
        upstream,
        listen=("127.0.0.1", args.port),
    )
    envoy = Envoy(config, concurrency=args.concurrency)
    try:
        envoy.start(timeout=300)
        print(f"envoy listening on http://127.0.0.1:{envoy.port}  (admin http://127.0.0.1:{envoy.admin_port})")
        print(f"upstream {upstream[0]}:{upstream[1]}{' (echo)' if echo else ''}; log {envoy.log_path}; Ctrl-C stops")
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
        envoy = Envoy(envoy_config([FilterSpec(wasm, configuration='{"value": "world"}')], ("127.0.0.1", echo.port)))
        try:
            envoy.start(timeout=300)
            print(f"Envoy {envoy.port} ready in {envoy.ready_after:.1f} s with {wasm.name}; GET /hello:")
            with urllib.request.urlopen(envoy.url("/hello"), timeout=30) as resp:
                print(f"HTTP {resp.status}")
                for name, value in resp.headers.items():
                    print(f"{name}: {value}")
                body = json.loads(resp.read())
            print(f"(upstream saw {body['method']} {body['path']})")
            if resp.headers.get("x-hello") != "world":
                return _err("the response lacks x-hello: world; see " + str(envoy.log_path))
            print("\nx-hello: world was added by the Python filter, compiled to wasm, running in Envoy.")
            return 0
        except (EnvoyError, OSError) as exc:
            return _err(f"{exc}\n{envoy.log_tail()}")
        finally:
            envoy.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="proxywasm", description="Write Envoy proxy-wasm filters in Python.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("build", help="compile a filter into one proxy-wasm module")
    p.add_argument("file", help="the filter's .py file")
    p.add_argument("-o", "--output", help="output .wasm (default: next to the filter)")
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("run", help="serve a filter in a real Envoy on 127.0.0.1")
    p.add_argument("file", help="a filter .py (built first) or a .wasm")
    p.add_argument("--config", help="plugin configuration (a JSON string)")
    p.add_argument("--upstream", help="HOST:PORT of the upstream (default: a local echo server)")
    p.add_argument("--port", type=int, default=10000, help="listener port (default 10000; 0 picks one)")
    p.add_argument("--root-id", default="", help="Envoy root_id of the plugin")
    p.add_argument("--fail-open", action="store_true", help="let traffic through if the VM fails")
    p.add_argument("--concurrency", type=int, default=1, help="Envoy worker threads (default 1)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("demo", help="build the add_header example, serve it and show the header it adds")
    p.add_argument("-o", "--output", help="where to write add_header.wasm (default: ./add_header.wasm)")
    p.set_defaults(func=cmd_demo)

    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
