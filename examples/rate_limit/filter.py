"""rate_limit: a token bucket per client, shared by every worker through shared data.

Each client (the value of ``key_header``, or the client IP from the
``source.address`` property when that header is absent or not configured) owns
a bucket of at most ``burst`` tokens that refills at ``requests_per_second``.
A request takes one token; with none left it gets a ``429`` local reply with
``retry-after`` (whole seconds until a token is back).

The buckets live in Envoy's shared data, which every VM of the plugin (one per
worker thread) sees. A bucket is the text ``"<tokens> <last refill, ns>"``
under the key ``rate_limit:<client>``. Refill is lazy: each request adds the
tokens earned since the bucket's last update (``get_current_time_nanoseconds``),
so idle clients cost nothing and no timer is needed. The update is
:func:`proxywasm.shared.update_shared_data`: a compare-and-swap that reads
again when another worker wrote first (up to ``MAX_ATTEMPTS`` times, then the
request is let through and ``rate_limit.contended`` counts it). A client's
first bucket is created under the lock key ``rate_limit:lock`` (made in
``on_configure``): Envoy ignores the CAS of a key that does not exist yet, so
two workers creating the same bucket at once would otherwise lose a token.

Plugin configuration (JSON, every key optional; defaults shown)::

    {"requests_per_second": 10, "burst": 20, "key_header": ""}

Counters: ``rate_limit.allowed``, ``rate_limit.limited``, ``rate_limit.contended``.
Allowed responses carry ``x-ratelimit-limit`` (burst) and
``x-ratelimit-remaining`` (whole tokens left after this request).
"""

import proxywasm
from proxywasm import Action, ConfigError, HttpContext, RootContext
from proxywasm.shared import SharedDataContendedError, ensure_shared_data, update_shared_data

ALLOWED = proxywasm.Counter("rate_limit.allowed")
LIMITED = proxywasm.Counter("rate_limit.limited")
CONTENDED = proxywasm.Counter("rate_limit.contended")

MAX_ATTEMPTS = 64
LOCK_KEY = "rate_limit:lock"
NS_PER_S = 1_000_000_000


def client_ip(address: str) -> str:
    """``"10.0.0.1:5555"`` -> ``"10.0.0.1"``, ``"[::1]:5555"`` -> ``"::1"``; anything else as is."""
    if address.startswith("["):
        end = address.find("]")
        return address[1:end] if end > 0 else address
    if address.count(":") == 1:
        return address.split(":", 1)[0]
    return address


def refill(value: bytes | None, now_ns: int, rate: float, burst: int) -> float:
    """Tokens in a bucket stored as ``value`` (None: a new, full bucket) at ``now_ns``."""
    if value is None:
        return float(burst)
    try:
        tokens_text, last_text = value.decode().split(" ")
        tokens, last_ns = float(tokens_text), int(last_text)
    except ValueError:
        return float(burst)  # unreadable: start over
    elapsed_ns = max(0, now_ns - last_ns)  # a clock that went back earns nothing
    return min(float(burst), tokens + elapsed_ns * rate / NS_PER_S)


class RateLimit(HttpContext["Root"]):
    def __init__(self, context_id: int, root: "Root") -> None:
        super().__init__(context_id, root)
        self.remaining = -1
        self.allowed = False
        self.tokens = 0.0

    def client_key(self) -> str:
        header = self.root.key_header
        if header:
            value = self.request.headers.get(header)
            if value:
                return "h:" + value
        address = self.get_property_str(["source", "address"])
        return "ip:" + client_ip(address) if address else "unknown"

    def take(self, value: bytes | None) -> bytes:
        """The bucket ``value`` after this request took a token (if one is there)."""
        now = self.get_current_time_nanoseconds()
        tokens = refill(value, now, self.root.rate, self.root.burst)
        self.allowed = tokens >= 1.0
        self.tokens = tokens - 1.0 if self.allowed else tokens
        return f"{self.tokens!r} {now}".encode()

    def take_token(self, key: str) -> tuple[bool, float]:
        """``(allowed, tokens left)``, updating the shared bucket with compare-and-swap."""
        try:
            update_shared_data(key, self.take, lock_key=LOCK_KEY, attempts=MAX_ATTEMPTS)
        except SharedDataContendedError:
            CONTENDED.increment()
            proxywasm.log_warn(f"rate_limit: bucket {key!r} too contended, request let through")
            return True, 0.0
        return self.allowed, self.tokens

    def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
        key = "rate_limit:" + self.client_key()
        allowed, tokens = self.take_token(key)
        if allowed:
            ALLOWED.increment()
            self.remaining = int(tokens)
            return Action.CONTINUE
        LIMITED.increment()
        wait_s = (1.0 - tokens) / self.root.rate
        retry_after = max(1, int(wait_s) + (wait_s > int(wait_s)))  # ceil, at least 1
        self.send_http_response(
            429,
            [
                ("retry-after", str(retry_after)),
                ("x-ratelimit-limit", str(self.root.burst)),
                ("x-ratelimit-remaining", "0"),
                ("content-type", "text/plain"),
            ],
            b"too many requests\n",
            details="rate_limited",
        )
        return Action.PAUSE

    def on_http_response_headers(self, num_headers: int, end_of_stream: bool) -> Action:
        if self.remaining >= 0:  # not for our own 429
            headers = self.response.headers
            headers["x-ratelimit-limit"] = str(self.root.burst)
            headers["x-ratelimit-remaining"] = str(self.remaining)
        return Action.CONTINUE


class Root(RootContext):
    http_context = RateLimit
    rate = 10.0
    burst = 20
    key_header = ""

    def on_vm_start(self, vm_configuration_size: int) -> bool:
        for counter in (ALLOWED, LIMITED, CONTENDED):
            counter.define()  # now, so Envoy's /stats lists it from the start, at 0
        return True

    def on_configure(self, plugin_configuration_size: int) -> bool:
        config = self.get_plugin_configuration_json()  # None without a configuration
        if config is None:
            config = {}
        if not isinstance(config, dict):
            raise ConfigError("rate_limit: the configuration must be a JSON object")
        unknown = set(config) - {"requests_per_second", "burst", "key_header"}
        if unknown:
            raise ConfigError(f"rate_limit: unknown keys {sorted(unknown)}")
        rate = config.get("requests_per_second", self.rate)
        burst = config.get("burst", self.burst)
        key_header = config.get("key_header", self.key_header)
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not rate > 0:
            raise ConfigError("rate_limit: requests_per_second must be a number > 0")
        if isinstance(burst, bool) or not isinstance(burst, int) or burst < 1:
            raise ConfigError("rate_limit: burst must be an integer >= 1")
        if not isinstance(key_header, str):
            raise ConfigError("rate_limit: key_header must be a string")
        self.rate, self.burst, self.key_header = float(rate), burst, key_header.lower()
        ensure_shared_data(LOCK_KEY)  # every VM configures before it serves
        return True


proxywasm.set_root_context(Root)
