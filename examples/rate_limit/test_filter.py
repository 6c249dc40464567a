"""Tests of the rate_limit example, run natively and compiled.

As in ``examples/add_header``: every test takes its host from ``make_host`` /
``host``, parametrised over ``BACKENDS``. Time is the emulator's fixed clock
(``host.now_ns``); the client address is the ``source.address`` property.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from proxywasm import Action, LogLevel
from proxywasm.testing import HostEmulator, load_filter
from proxywasm.testing.pytest_plugin import HostFactory

HERE = Path(__file__).resolve().parent
#: The filter the plugin's proxywasm_filter_host runs, natively and compiled.
PROXYWASM_FILTER = HERE / "filter.py"
PROXYWASM_BACKENDS = ("cpython", "compact")


filter_module = load_filter(PROXYWASM_FILTER)
MakeHost = Callable[..., HostEmulator]

ENVOY_CONFIG = {"requests_per_second": 5, "burst": 10, "key_header": "x-client-id"}
T0 = 1_700_000_000 * 10**9  # a fixed wall clock, ns
S = 10**9


@pytest.fixture
def make_host(proxywasm_filter_host: MakeHost) -> MakeHost:
    """Hosts running the filter natively and compiled (the plugin's proxywasm_filter_host)."""
    return proxywasm_filter_host


@pytest.fixture
def host(make_host: MakeHost) -> HostEmulator:
    """rate 1/s, burst 3, keyed by x-client-id; the clock stands still at T0."""
    host = make_host(
        plugin_configuration={"requests_per_second": 1, "burst": 3, "key_header": "x-client-id"}
    )
    host.now_ns = T0
    return host


def envoy_yaml_configuration() -> Any:
    """The plugin configuration envoy.yaml passes (its one-line ``value: '...'``)."""
    match = re.search(r"^\s*value: '(.*)'\s*$", (HERE / "envoy.yaml").read_text(), re.MULTILINE)
    assert match, "no plugin configuration in envoy.yaml"
    return json.loads(match.group(1))


def request(
    host: HostEmulator, client: str | None = "a", address: str | None = None
) -> tuple[int, int, dict[str, str]]:
    """One request through the filter; returns (context id, status, response headers)."""
    ctx = host.initialize_http_context()
    if address is not None:
        host.get_http_stream(ctx).properties[("source", "address")] = address.encode()
    headers = [(":method", "GET"), (":path", "/"), (":authority", "api")]
    if client is not None:
        headers.append(("x-client-id", client))
    action = host.call_on_request_headers(ctx, headers, end_of_stream=True)
    reply = host.get_sent_local_response(ctx)
    if reply is None:
        assert action == Action.CONTINUE
        host.call_on_response_headers(ctx, [(":status", "200")], end_of_stream=True)
        status, response = 200, dict(host.get_current_response_headers(ctx))
    else:
        assert action == Action.PAUSE
        status, response = reply.status_code, dict(reply.headers)
    host.complete_http_context(ctx)
    return ctx, status, response


def statuses(host: HostEmulator, n: int, **kwargs: Any) -> list[int]:
    return [request(host, **kwargs)[1] for _ in range(n)]


def bucket(host: HostEmulator, key: str) -> tuple[float, int]:
    value, _ = host.get_shared_data(key)
    assert value is not None
    tokens, last = value.decode().split(" ")
    return float(tokens), int(last)


def test_envoy_yaml_configuration() -> None:
    assert envoy_yaml_configuration() == ENVOY_CONFIG


def test_burst_then_429(host: HostEmulator) -> None:
    assert statuses(host, 5) == [200, 200, 200, 429, 429]
    assert host.get_metric("rate_limit.allowed") == 3
    assert host.get_metric("rate_limit.limited") == 2
    assert host.get_metric("rate_limit.contended") == 0
    assert host.get_logs(LogLevel.ERROR) == []


def test_headers_on_allowed_and_limited_responses(host: HostEmulator) -> None:
    remaining = [request(host)[2]["x-ratelimit-remaining"] for _ in range(3)]
    assert remaining == ["2", "1", "0"]
    _, status, headers = request(host)
    assert status == 429
    assert headers["retry-after"] == "1"
    assert headers["x-ratelimit-limit"] == "3"
    assert headers["x-ratelimit-remaining"] == "0"
    assert headers["content-type"] == "text/plain"


def test_tokens_come_back_with_time(host: HostEmulator) -> None:
    assert statuses(host, 4) == [200, 200, 200, 429]
    host.now_ns = T0 + S // 2
    assert statuses(host, 1) == [429]  # half a token
    host.now_ns = T0 + S
    assert statuses(host, 2) == [200, 429]
    host.now_ns = T0 + 100 * S  # a long pause refills up to the burst, no more
    assert statuses(host, 4) == [200, 200, 200, 429]


def test_retry_after_rounds_up(make_host: MakeHost) -> None:
    host = make_host(
        plugin_configuration={"requests_per_second": 0.25, "burst": 1, "key_header": "x-client-id"}
    )
    host.now_ns = T0
    assert statuses(host, 1) == [200]
    assert request(host)[2]["retry-after"] == "4"
    host.now_ns = T0 + S  # 0.25 token: 3 s to go
    assert request(host)[2]["retry-after"] == "3"
    host.now_ns = T0 + 2 * S + S // 2  # 0.625 token: 1.5 s -> 2
    assert request(host)[2]["retry-after"] == "2"
    host.now_ns = T0 + 3 * S + 1  # a hair over 0.75 token: just under 1 s -> 1
    assert request(host)[2]["retry-after"] == "1"
    host.now_ns = T0 + 4 * S
    assert statuses(host, 1) == [200]


def test_clients_have_their_own_buckets(host: HostEmulator) -> None:
    assert statuses(host, 4, client="a") == [200, 200, 200, 429]
    assert statuses(host, 4, client="b") == [200, 200, 200, 429]
    assert bucket(host, "rate_limit:h:a") == (0.0, T0)


def test_without_header_the_client_ip_is_the_key(host: HostEmulator) -> None:
    # Ports differ per connection: only the address counts.
    results = [
        request(host, client=None, address=f"10.0.0.1:{port}")[1]
        for port in (1000, 1001, 1002, 1003)
    ]
    assert results == [200, 200, 200, 429]
    assert request(host, client=None, address="[2001:db8::1]:443")[1] == 200
    assert bucket(host, "rate_limit:ip:10.0.0.1")[0] == 0.0
    assert bucket(host, "rate_limit:ip:2001:db8::1")[0] == 2.0


def test_no_key_header_configured_uses_the_address(make_host: MakeHost) -> None:
    host = make_host(
        plugin_configuration={"burst": 1}, properties={"source.address": "192.0.2.7:4242"}
    )
    host.now_ns = T0
    assert statuses(host, 2, client="ignored") == [200, 429]
    assert host.get_shared_data("rate_limit:ip:192.0.2.7")[0] is not None


def test_no_address_at_all_shares_one_bucket(host: HostEmulator) -> None:
    assert statuses(host, 4, client=None) == [200, 200, 200, 429]
    assert bucket(host, "rate_limit:unknown")[0] == 0.0


def test_clock_going_back_earns_nothing(host: HostEmulator) -> None:
    assert statuses(host, 3) == [200, 200, 200]
    host.now_ns = T0 - 10 * S
    assert statuses(host, 1) == [429]


def test_bucket_is_shared_by_every_vm(make_host: MakeHost) -> None:
    # Another worker's VM wrote this bucket: this VM starts from it, not from a full one.
    host = make_host(
        plugin_configuration={"requests_per_second": 1, "burst": 3, "key_header": "x-client-id"}
    )
    host.now_ns = T0
    host.set_shared_data("rate_limit:h:a", f"1.0 {T0}")
    assert statuses(host, 2) == [200, 429]


def test_unreadable_bucket_starts_over(host: HostEmulator) -> None:
    host.set_shared_data("rate_limit:h:a", "garbage")
    assert statuses(host, 4) == [200, 200, 200, 429]


class ContendedHost(HostEmulator):
    """A host where another worker takes a token from the bucket right after each of
    the filter's next ``interfere`` reads, so the filter's compare-and-swap fails."""

    interfere = 0

    def proxy_get_shared_data(self, key: bytes) -> tuple[int, bytes, int]:
        status, value, cas = super().proxy_get_shared_data(key)
        if self.interfere and value:
            self.interfere -= 1
            tokens, last = value.decode().split(" ")
            self.shared_data[bytes(key)] = (
                f"{float(tokens) - 1.0!r} {last}".encode(),
                next(self._cas),
            )
        return status, value, cas


def started(
    request: pytest.FixtureRequest, proxywasm_host: HostFactory, cls: type[HostEmulator]
) -> Any:
    """A started host of subclass ``cls``, native or compiled as ``request.param`` says."""
    config = {"requests_per_second": 1, "burst": 5, "key_header": "x-client-id"}
    host: HostEmulator
    if request.param == "native":
        host = cls(filter_module, plugin_configuration=config)
    else:
        wasm = request.getfixturevalue("proxywasm_build")(PROXYWASM_FILTER)
        host = cls.from_wasm(str(wasm), plugin_configuration=config)
    assert isinstance(host, cls)
    proxywasm_host.hosts.append(host)  # cleaned up with the fixture's hosts
    assert host.start_vm() and host.start_plugin()
    host.now_ns = T0
    return host


@pytest.fixture(params=["native", pytest.param("wasm", marks=pytest.mark.slow)])
def contended(request: pytest.FixtureRequest, proxywasm_host: HostFactory) -> ContendedHost:
    host: ContendedHost = started(request, proxywasm_host, ContendedHost)
    return host


def test_cas_mismatch_is_retried(contended: ContendedHost) -> None:
    assert statuses(contended, 1) == [200]  # creates the bucket: 4 left
    contended.interfere = 2  # two other requests sneak in while this one decides
    assert statuses(contended, 1) == [200]
    assert contended.interfere == 0
    assert bucket(contended, "rate_limit:h:a")[0] == 1.0  # 4 - 2 - 1
    assert statuses(contended, 2) == [200, 429]
    assert contended.get_metric("rate_limit.contended") == 0


def test_endless_contention_lets_the_request_through(contended: ContendedHost) -> None:
    assert statuses(contended, 1) == [200]
    contended.interfere = 2 * filter_module.MAX_ATTEMPTS + 10
    _, status, headers = request(contended)
    assert status == 200 and headers["x-ratelimit-remaining"] == "0"
    assert contended.interfere == filter_module.MAX_ATTEMPTS + 10  # one read per attempt
    assert contended.get_metric("rate_limit.contended") == 1
    assert contended.get_logs(LogLevel.WARN) == [
        "rate_limit: bucket 'rate_limit:h:a' too contended, request let through"
    ]


@pytest.mark.parametrize(
    ("config", "burst"),
    [({"requests_per_second": 2.5, "burst": 1}, 1), ({"key_header": "X-Key"}, 20), ({}, 20)],
)
def test_valid_configurations(make_host: MakeHost, config: dict[str, Any], burst: int) -> None:
    """Each accepted configuration takes effect: its burst, then 429; its key header, lower-cased."""
    host = make_host(plugin_configuration=config)
    host.now_ns = T0
    assert statuses(host, burst + 1) == [200] * burst + [429]
    _, _, headers = request(host)
    assert headers["x-ratelimit-limit"] == str(burst)
    if "key_header" in config:
        ctx = host.initialize_http_context()
        host.call_on_request_headers(ctx, [(":path", "/"), ("x-key", "k1")], end_of_stream=True)
        host.complete_http_context(ctx)
        assert host.get_shared_data("rate_limit:h:k1")[0] is not None


RATE_RULE = "rate_limit: requests_per_second must be a number > 0"
BURST_RULE = "rate_limit: burst must be an integer >= 1"


@pytest.mark.parametrize(
    ("configuration", "message"),
    [
        (
            b"{",
            (
                "plugin configuration is not valid JSON: "
                "Expecting property name enclosed in double quotes (line 1, column 2)"
            ),
        ),
        (b"[1]", "rate_limit: the configuration must be a JSON object"),
        ({"rps": 1}, "rate_limit: unknown keys ['rps']"),
        ({"requests_per_second": 0}, RATE_RULE),
        ({"requests_per_second": -1}, RATE_RULE),
        ({"requests_per_second": "5"}, RATE_RULE),
        ({"requests_per_second": True}, RATE_RULE),
        ({"burst": 0}, BURST_RULE),
        ({"burst": 1.5}, BURST_RULE),
        ({"key_header": 7}, "rate_limit: key_header must be a string"),
    ],
)
def test_invalid_configuration_is_rejected(
    make_host: MakeHost, configuration: Any, message: str
) -> None:
    host = make_host(plugin_configuration=configuration, start=False)
    assert host.start_vm()
    assert host.start_plugin() is False
    # A ConfigError: the SDK logs its message as one line, without a traceback.
    assert host.get_logs(LogLevel.ERROR) == [f"on_configure rejected the configuration: {message}"]


class RacingHost(HostEmulator):
    """Another worker creates the client's bucket (taking a token) right after this
    VM found it missing: the moment two workers serve a new client at once."""

    race_key = b"rate_limit:h:a"
    raced = False

    def proxy_get_shared_data(self, key: bytes) -> tuple[int, bytes, int]:
        status, value, cas = super().proxy_get_shared_data(key)
        if bytes(key) == self.race_key and not value and not self.raced:
            self.raced = True
            self.shared_data[self.race_key] = (f"{4.0!r} {T0}".encode(), next(self._cas))
        return status, value, cas


@pytest.fixture(params=["native", pytest.param("wasm", marks=pytest.mark.slow)])
def racing(request: pytest.FixtureRequest, proxywasm_host: HostFactory) -> RacingHost:
    host: RacingHost = started(request, proxywasm_host, RacingHost)
    return host


def test_concurrent_first_requests_of_a_client_both_count(racing: RacingHost) -> None:
    """Envoy ignores the CAS of a missing key: the bucket is created under the lock,
    so the other worker's token is not overwritten (4 - 1, not 5 - 1)."""
    assert statuses(racing, 1) == [200]
    assert racing.raced
    assert bucket(racing, "rate_limit:h:a")[0] == 3.0
    assert racing.get_shared_data("rate_limit:lock")[0] == b""  # the lock was let go
    assert statuses(racing, 4) == [200, 200, 200, 429]
