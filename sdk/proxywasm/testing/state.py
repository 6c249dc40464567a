"""The host state the null runtime keeps: streams, connections, callouts, data.

Plain records; the behaviour lives in :mod:`.abi_host` (host functions) and
:mod:`.emulator` (the test driver).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..types import Action, MetricType

__all__ = [
    "GrpcCallAttributes",
    "HttpCallAttributes",
    "HttpStream",
    "LocalResponse",
    "Metric",
    "Pairs",
    "SharedQueue",
    "TcpConnection",
]

#: Header pairs as the host keeps them: lower-case names, raw bytes.
Pairs = list[tuple[bytes, bytes]]


def _text(pairs: Sequence[tuple[bytes, bytes]] | None) -> list[tuple[str, str]]:
    """Pairs as ``str`` (bytes that are not UTF-8 as lone surrogates); ``None`` as no pairs."""
    return [
        (k.decode("utf-8", "surrogateescape"), v.decode("utf-8", "surrogateescape"))
        for k, v in pairs or []
    ]


@dataclass
class LocalResponse:
    """A response the filter sent with ``send_http_response``."""

    status_code: int
    headers: list[tuple[str, str]]
    body: bytes
    details: str
    grpc_status: int


@dataclass
class HttpStream:
    """One HTTP request/response pair as the host sees it."""

    context_id: int
    root_context_id: int
    request_headers: Pairs = field(default_factory=list)
    request_trailers: Pairs | None = None
    response_headers: Pairs | None = None
    response_trailers: Pairs | None = None
    request_body: bytearray = field(default_factory=bytearray)
    response_body: bytearray = field(default_factory=bytearray)
    #: Bytes passed on (CONTINUE) upstream / downstream so far.
    forwarded_request_body: bytearray = field(default_factory=bytearray)
    forwarded_response_body: bytearray = field(default_factory=bytearray)
    request_action: Action = Action.CONTINUE
    response_action: Action = Action.CONTINUE
    #: Action the stream is in now: the last callback's, updated by resumes.
    action: Action = Action.CONTINUE
    request_body_paused: bool = False
    response_body_paused: bool = False
    #: PAUSE from a headers callback stops that whole direction (proxy-wasm-cpp-host turns it
    #: into StopAllIterationAndWatermark): body and trailers wait in the host until a resume.
    request_headers_paused: bool = False
    response_headers_paused: bool = False
    #: Envoy keeps a stream's header / trailer maps reachable only while their
    #: callback runs, or for good once that callback returned PAUSE (and in on_log).
    kept_maps: set[int] = field(default_factory=set)
    held_request_body: bytearray | None = None
    held_request_end: bool = False
    held_request_trailers: Pairs | None = None
    held_response_body: bytearray | None = None
    held_response_end: bool = False
    held_response_trailers: Pairs | None = None
    local_response: LocalResponse | None = None
    #: A local reply sent during the running callback, delivered when it returns.
    pending_local_response: LocalResponse | None = None
    #: True while the local reply runs through the filter's own response callbacks
    #: (a reply sent then replaces it, as in Envoy).
    replying: bool = False
    request_ended: bool = False
    reset: bool = False
    done: bool = False
    #: Filter state written with ``set_property`` on this stream.
    properties: dict[tuple[str, ...], bytes] = field(default_factory=dict)


@dataclass
class TcpConnection:
    """One TCP connection through a network filter."""

    context_id: int
    root_context_id: int
    downstream_data: bytearray = field(default_factory=bytearray)
    upstream_data: bytearray = field(default_factory=bytearray)
    forwarded_downstream: bytearray = field(default_factory=bytearray)
    forwarded_upstream: bytearray = field(default_factory=bytearray)
    downstream_paused: bool = False
    upstream_paused: bool = False
    action: Action = Action.CONTINUE
    downstream_closed: bool = False
    upstream_closed: bool = False
    done: bool = False
    properties: dict[tuple[str, ...], bytes] = field(default_factory=dict)


@dataclass
class HttpCallAttributes:
    """An HTTP callout the filter dispatched and the test has not answered yet."""

    token: int
    upstream: str
    headers: list[tuple[str, str]]
    body: bytes
    trailers: list[tuple[str, str]]
    timeout_ms: int
    root_context_id: int
    #: The context that was effective when the call was made.
    context_id: int


@dataclass
class GrpcCallAttributes:
    """A gRPC call or stream the filter opened."""

    token: int
    upstream: str
    service: str
    method: str
    initial_metadata: list[tuple[str, str]]
    messages: list[bytes]
    timeout_ms: int
    is_stream: bool
    root_context_id: int
    context_id: int
    closed_by_filter: bool = False


@dataclass
class Metric:
    """A metric the filter defined."""

    metric_id: int
    metric_type: MetricType
    name: str
    value: int = 0
    #: The most recent histogram samples (the host bounds how many, see ``AbiHost``).
    samples: deque[int] = field(default_factory=deque)
    #: Every histogram sample ever recorded, including those no longer in ``samples``.
    sample_count: int = 0


@dataclass
class SharedQueue:
    """A shared queue and the root context that registered it."""

    queue_id: int
    vm_id: str
    name: str
    owner_context_id: int
    items: deque[bytes] = field(default_factory=deque)
