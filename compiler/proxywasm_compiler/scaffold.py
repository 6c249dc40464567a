"""``proxywasm new NAME``: a folder with a working filter, its tests and an Envoy config.

The files are string templates here (no package data). ``__NAME__`` is the
folder's name, ``__HEADER__`` the header the filter adds (``x-`` + the name
with ``_`` turned into ``-``), ``__MODULE__`` the unique module name the test
imports ``filter.py`` under.
"""

from __future__ import annotations

import keyword
import os
import re
import shutil
import tempfile
from pathlib import Path

__all__ = ["FILES", "ScaffoldError", "scaffold", "validate_name"]


class ScaffoldError(RuntimeError):
    """The name is not usable, or the folder already has content."""


_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,62}$")

FILTER_PY = '''\
"""__NAME__: a proxy-wasm HTTP filter written in Python.

It adds one header to every response, ``__HEADER__: hello`` unless the plugin
configuration says otherwise, and logs each request path at debug level.

Plugin configuration (optional, JSON): ``{"header": "x-name", "value": "text"}``.
A configuration that is not a JSON object makes ``on_configure`` return
False, so Envoy refuses the plugin instead of running it half-configured.

    pytest                                           # native tests (null runtime)
    proxywasm build filter.py -o __NAME__.wasm       # one proxy-wasm module
    proxywasm run __NAME__.wasm                      # in a real Envoy on 127.0.0.1
"""

import json

import proxywasm
from proxywasm import Action, HttpContext, RootContext


class Filter(HttpContext):
    """One instance per HTTP stream; ``self.root`` is the configured :class:`Root`."""

    root: "Root"

    def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
        path = self.get_http_request_header(":path") or "/"
        proxywasm.log_debug(f"__NAME__: request {path}")
        return Action.CONTINUE

    def on_http_response_headers(self, num_headers: int, end_of_stream: bool) -> Action:
        self.set_http_response_header(self.root.header, self.root.value)
        return Action.CONTINUE


class Root(RootContext):
    """One per plugin (per VM and worker): reads the configuration once."""

    header = "__HEADER__"
    value = "hello"

    def on_configure(self, plugin_configuration_size: int) -> bool:
        raw = self.get_plugin_configuration()  # bytes, or None without configuration
        if not raw:
            return True
        try:
            config = json.loads(raw)
        except ValueError as exc:
            proxywasm.log_error(f"__NAME__: the configuration is not JSON: {exc}")
            return False
        if not isinstance(config, dict):
            proxywasm.log_error("__NAME__: the configuration must be a JSON object")
            return False
        self.header = str(config.get("header", self.header)).lower()
        self.value = str(config.get("value", self.value))
        proxywasm.log_info(f"__NAME__: adding {self.header}: {self.value}")
        return True

    def create_http_context(self, context_id: int) -> HttpContext:
        return Filter(context_id, self)


proxywasm.set_root_context(Root)
'''

TEST_FILTER_PY = '''\
"""Tests of __NAME__: natively (null runtime) and, marked slow, compiled.

``pytest -m "not slow"`` runs the filter's Python classes in this process
(pdb and coverage work: put ``breakpoint()`` in a callback and run
``pytest -s``). ``pytest`` also builds ``filter.py`` once with
``proxywasm build`` and runs the same tests against the module under
wasmtime.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from proxywasm import Action, LogLevel
from proxywasm.testing import HostEmulator, load_filter

HERE = Path(__file__).resolve().parent
#: Run by the proxywasm_filter_host fixture, natively and (marked slow) compiled.
PROXYWASM_FILTER = HERE / "filter.py"
filter_module = load_filter(PROXYWASM_FILTER)

MakeHost = Callable[..., HostEmulator]


@pytest.fixture
def make_host(proxywasm_filter_host: MakeHost) -> MakeHost:
    """``make_host(plugin_configuration=...)`` -> a started host, native or compiled."""
    return proxywasm_filter_host


def roundtrip(host: HostEmulator, path: str = "/hello") -> tuple[int, list[tuple[str, str]]]:
    """One request and its response through the filter: (context id, response headers)."""
    ctx = host.initialize_http_context()
    request = [(":path", path), (":method", "GET"), (":authority", "example.com")]
    assert host.call_on_request_headers(ctx, request, end_of_stream=True) == Action.CONTINUE
    response = [(":status", "200")]
    assert host.call_on_response_headers(ctx, response, end_of_stream=True) == Action.CONTINUE
    return ctx, host.get_current_response_headers(ctx)


def test_adds_the_default_header(make_host: MakeHost) -> None:
    host = make_host()
    ctx, response = roundtrip(host)
    assert ("__HEADER__", "hello") in response
    assert host.get_sent_local_response(ctx) is None
    assert host.get_logs(LogLevel.DEBUG) == ["__NAME__: request /hello"]
    assert host.get_logs(LogLevel.ERROR) == []


def test_configured_header(make_host: MakeHost) -> None:
    host = make_host(plugin_configuration=b'{"header": "X-Greeting", "value": "hi"}')
    _, response = roundtrip(host)
    assert ("x-greeting", "hi") in response
    assert ("__HEADER__", "hello") not in response
    assert host.get_logs(LogLevel.INFO) == ["__NAME__: adding x-greeting: hi"]


def test_configuration_of_envoy_yaml(make_host: MakeHost) -> None:
    host = make_host(plugin_configuration=b'{"value": "from-envoy"}')
    _, response = roundtrip(host)
    assert ("__HEADER__", "from-envoy") in response


@pytest.mark.parametrize("configuration", [b"not json", b"[1, 2]"])
def test_bad_configuration_is_refused(configuration: bytes) -> None:
    host = HostEmulator(filter_module, plugin_configuration=configuration)
    assert host.start_vm()
    assert host.start_plugin() is False  # Envoy would refuse the plugin
    [error] = host.get_logs(LogLevel.ERROR)
    assert error.startswith("__NAME__: the configuration")
'''

ENVOY_YAML = """\
# Envoy 1.40 bootstrap for __NAME__ (run from this folder):
#
#   proxywasm build filter.py -o __NAME__.wasm
#   python -m http.server 8080 &          # any upstream on 127.0.0.1:8080
#   envoy -c envoy.yaml                   # or: envoy --mode validate -c envoy.yaml
#   curl -si http://127.0.0.1:10000/ | grep -i '^__HEADER__'
#
# Listener 127.0.0.1:10000 -> wasm filter -> router -> cluster "upstream" at
# 127.0.0.1:8080. Admin interface on 127.0.0.1:9901. `proxywasm run
# __NAME__.wasm` does the same with a built-in echo upstream.
static_resources:
  listeners:
    - name: ingress
      address:
        socket_address: { address: 127.0.0.1, port_value: 10000 }
      filter_chains:
        - filters:
            - name: envoy.filters.network.http_connection_manager
              typed_config:
                "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                stat_prefix: ingress_http
                codec_type: AUTO
                route_config:
                  name: local_route
                  virtual_hosts:
                    - name: backend
                      domains: ["*"]
                      routes:
                        - match: { prefix: "/" }
                          route: { cluster: upstream }
                http_filters:
                  - name: envoy.filters.http.wasm
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
                      config:
                        name: __NAME__
                        root_id: ""
                        # RootContext.get_plugin_configuration() returns these bytes.
                        configuration:
                          "@type": type.googleapis.com/google.protobuf.StringValue
                          value: '{"value": "hello"}'
                        # A VM that fails to load fails closed (Envoy's default).
                        failure_policy: FAIL_CLOSED
                        vm_config:
                          vm_id: __NAME__
                          runtime: envoy.wasm.runtime.v8
                          code:
                            local:
                              filename: __NAME__.wasm
                  - name: envoy.filters.http.router
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
    - name: upstream
      type: STATIC
      connect_timeout: 1s
      load_assignment:
        cluster_name: upstream
        endpoints:
          - lb_endpoints:
              - endpoint:
                  address:
                    socket_address: { address: 127.0.0.1, port_value: 8080 }
admin:
  address:
    socket_address: { address: 127.0.0.1, port_value: 9901 }
"""

README_MD = """\
# __NAME__

A proxy-wasm HTTP filter in Python, made by `proxywasm new __NAME__`.
It adds `__HEADER__: hello` to every response; the plugin configuration
(JSON, optional) changes the header and its value:
`{"header": "x-name", "value": "text"}`.

| file | what |
|---|---|
| `filter.py` | the filter: a `RootContext` reading the configuration, an `HttpContext` adding the header |
| `test_filter.py` | its tests, natively (null runtime) and compiled (marked `slow`) |
| `envoy.yaml` | an Envoy 1.40 bootstrap loading `__NAME__.wasm` with the V8 runtime |
| `pytest.ini` | registers the `slow` marker |

## Test

```sh
pytest -m "not slow"     # native: seconds; put breakpoint() in a callback and use -s
pytest                   # also builds filter.py once and runs the tests on the module
```

## Build and run

```sh
proxywasm build filter.py -o __NAME__.wasm
proxywasm run __NAME__.wasm --config '{"value": "hi"}'   # Envoy + an echo upstream
```

or with the Envoy config of this folder (an upstream must listen on 127.0.0.1:8080):

```sh
python -m http.server 8080 &
envoy -c envoy.yaml
curl -si http://127.0.0.1:10000/ | grep -i '^__HEADER__'
```

## Deploy

```sh
proxywasm envoy-config __NAME__.wasm --config '{"value": "hi"}' > bootstrap.yaml
proxywasm oci __NAME__.wasm -o __NAME__-oci --tag v1      # then push it with oras or crane
proxywasm istio __NAME__.wasm --image registry.example.com/__NAME__:v1 --selector app=web
```

See the project's docs/deploy.md for the details.
"""

PYTEST_INI = """\
[pytest]
addopts = -ra --strict-markers --import-mode=importlib
markers =
    slow: builds filter.py with proxywasm build (deselect with -m "not slow")
"""

GITIGNORE = """\
*.wasm
__pycache__/
.pytest_cache/
"""

#: file name -> template, in the order they are written.
FILES = {
    "filter.py": FILTER_PY,
    "test_filter.py": TEST_FILTER_PY,
    "envoy.yaml": ENVOY_YAML,
    "README.md": README_MD,
    "pytest.ini": PYTEST_INI,
    ".gitignore": GITIGNORE,
}


def validate_name(name: str) -> str:
    """The filter's name (the folder's last component) if it is usable, else :class:`ScaffoldError`."""
    if not _NAME.match(name):
        raise ScaffoldError(
            f"invalid name {name!r}: use a letter followed by letters, digits or '_' "
            "(at most 63 characters), e.g. my_filter"
        )
    if keyword.iskeyword(name):
        raise ScaffoldError(f"invalid name {name!r}: it is a Python keyword")
    return name


def render(name: str) -> dict[str, str]:
    """The scaffold's files for ``name``: file name -> text."""
    validate_name(name)
    values = {
        "__NAME__": name,
        "__HEADER__": "x-" + name.lower().replace("_", "-"),
        "__MODULE__": f"_proxywasm_filter_{name}",
    }
    out = {}
    for file, template in FILES.items():
        text = template
        for key, value in values.items():
            text = text.replace(key, value)
        out[file] = text
    return out


def scaffold(path: Path) -> Path:
    """Create the folder ``path`` with a working filter; returns it.

    The name is ``path``'s last component. ``path`` must not exist or be an
    empty directory; its parent must exist. The files are written into a
    temporary sibling folder that is then renamed, so a failure leaves
    nothing half-made behind.
    """
    path = Path(path)
    name = validate_name(path.name)
    if path.exists():
        if not path.is_dir():
            raise ScaffoldError(f"{path} exists and is not a directory")
        if any(path.iterdir()):
            raise ScaffoldError(
                f"{path} already exists and is not empty; choose another name or remove it"
            )
    parent = path.resolve().parent
    if not parent.is_dir():
        raise ScaffoldError(f"the parent directory of {path} does not exist")
    files = render(name)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".tmp", dir=parent))
    try:
        for file, text in files.items():
            (tmp / file).write_text(text, encoding="utf-8")
        os.chmod(tmp, 0o755)
        if path.is_dir():
            path.rmdir()
        os.rename(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path
