"""The null runtime: run and test proxy-wasm filters natively, or compiled under wasmtime.

>>> from proxywasm.testing import HostEmulator
>>> host = HostEmulator(Root, plugin_configuration=b'{"x": 1}')   # doctest: +SKIP
>>> host.start_vm(); host.start_plugin()                           # doctest: +SKIP
>>> ctx = host.initialize_http_context()                           # doctest: +SKIP
>>> host.call_on_request_headers(ctx, [(":path", "/")], end_of_stream=True)  # doctest: +SKIP
>>> ex = host.http([(":path", "/"), (":method", "GET")])          # doctest: +SKIP

Never frozen into a compiled module.
"""

from .abi_host import AbiHost, encode_property
from .client import HttpExchange
from .emulator import HostEmulator
from .loader import filter_roots, load_filter
from .state import (
    GrpcCallAttributes,
    HttpCallAttributes,
    HttpStream,
    LocalResponse,
    Metric,
    SharedQueue,
    TcpConnection,
)

__all__ = [
    "AbiHost",
    "GrpcCallAttributes",
    "HostEmulator",
    "HttpCallAttributes",
    "HttpExchange",
    "HttpStream",
    "LocalResponse",
    "Metric",
    "SharedQueue",
    "TcpConnection",
    "encode_property",
    "filter_roots",
    "load_filter",
]
