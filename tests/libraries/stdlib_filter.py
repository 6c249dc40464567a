"""One filter exercising the stdlib modules a filter might use (tests/test_libraries.py).

Each ``@check`` function exercises one module the way a filter would and
returns plain values; on a request the filter runs every check and logs one
line per check, ``check NAME VALUE`` (VALUE: the ``repr`` of the result, or
the exception). The test runs the filter natively and compiled and compares
the lines. Results are deterministic: random generators are seeded, and what
cannot be (``secrets``, ``uuid4``, clocks) is reduced to its shape.

Each check imports its modules itself: an import in a function is optional
to the build, so a module that cannot be frozen (zlib) is skipped and the
rest still builds; the test then builds ``import zlib`` alone for the error.

The first line of a check's docstring is what docs/libraries.md says it exercises.
"""

from collections.abc import Callable, Iterator

import proxywasm
from proxywasm import Action, HttpContext, RootContext

CHECKS: dict[str, Callable[[], object]] = {}


def check(name: str) -> Callable[[Callable[[], object]], Callable[[], object]]:
    """Register a check of the stdlib module ``name``."""

    def register(fn: Callable[[], object]) -> Callable[[], object]:
        CHECKS[name] = fn
        return fn

    return register


@check("json")
def check_json() -> object:
    """`loads` (str and UTF-16 bytes), `dumps` with `sort_keys`, `indent`, non-ASCII."""
    import json

    doc = json.loads('{"b": [1, 2.5, null, "\\u00e9"], "a": true}')
    utf16 = json.loads('{"k": "v"}'.encode("utf-16"))
    return (
        json.dumps(doc, sort_keys=True, ensure_ascii=False),
        json.dumps(doc, indent=1, sort_keys=True),
        utf16,
    )


@check("re")
def check_re() -> object:
    """`compile` with named groups and flags, `sub` with a function, `findall`, `split`."""
    import re

    route = re.compile(r"^/api/(?P<version>v\d+)/users/(?P<id>\d+)$", re.ASCII)
    m = route.match("/api/v2/users/42")
    assert m is not None
    return (
        m.groupdict(),
        re.sub(r"\d+", lambda d: str(int(d.group()) * 2), "a1b22c333"),
        re.findall(r"(?i)[a-z]+", "Hello, World 42"),
        re.split(r"[,;]\s*", "a, b;c"),
        bool(re.fullmatch(r"[\w.-]+@[\w-]+\.\w+", "a.b@example.org")),
    )


@check("base64")
def check_base64() -> object:
    """`b64encode`, `urlsafe_b64decode`, `b32encode`, `b16decode`."""
    import base64

    return (
        base64.b64encode(b"\x00\xffhello"),
        base64.urlsafe_b64decode("aGk_Pz8-"),
        base64.b32encode(b"abc"),
        base64.b16decode("CAFE"),
    )


@check("hashlib")
def check_hashlib() -> object:
    """`sha256`, `md5`, `sha1`, `sha3_256`, `blake2b`, `new("sha512")`."""
    import hashlib

    data = b"proxy-wasm"
    return (
        hashlib.sha256(data).hexdigest(),
        hashlib.md5(data).hexdigest(),
        hashlib.sha1(data).hexdigest(),
        hashlib.sha3_256(data).hexdigest(),
        hashlib.blake2b(data, digest_size=16).hexdigest(),
        hashlib.new("sha512", data).hexdigest()[:32],
    )


@check("hmac")
def check_hmac() -> object:
    """`hmac.new(key, msg, "sha256")`, `hmac.digest`, `compare_digest`."""
    import hashlib
    import hmac

    mac = hmac.new(b"secret", b"message", "sha256").hexdigest()
    return (
        mac,
        hmac.digest(b"k", b"m", hashlib.sha1).hex(),
        hmac.compare_digest(mac, hmac.new(b"secret", b"message", hashlib.sha256).hexdigest()),
    )


@check("secrets")
def check_secrets() -> object:
    """`token_hex`, `token_urlsafe`, `choice`, `randbelow` (their shape: values are random)."""
    import secrets
    import string

    return (
        len(secrets.token_hex(16)),
        all(c in string.hexdigits for c in secrets.token_hex(8)),
        len(secrets.token_bytes(12)),
        len(secrets.token_urlsafe(12)) >= 16,
        secrets.choice("ab") in "ab",
        0 <= secrets.randbelow(10) < 10,
    )


@check("uuid")
def check_uuid() -> object:
    """`uuid5`, `uuid3`, `UUID(str)`, `uuid4` (its version)."""
    import uuid

    u = uuid.UUID("12345678-1234-5678-1234-567812345678")
    return (
        str(uuid.uuid5(uuid.NAMESPACE_DNS, "example.com")),
        str(uuid.uuid3(uuid.NAMESPACE_URL, "https://example.com/")),
        (u.version, u.hex, u.int % 1000),
        uuid.uuid4().version,
    )


@check("datetime")
def check_datetime() -> object:
    """aware `datetime`, `timedelta` arithmetic, `isoformat`, `fromisoformat`, `strftime`, `strptime`."""
    import datetime

    dt = datetime.datetime(2024, 2, 29, 12, 30, tzinfo=datetime.UTC)
    later = dt + datetime.timedelta(days=1, hours=13)
    return (
        later.isoformat(),
        datetime.datetime.fromisoformat("2024-03-01T08:00:00+02:00").astimezone(datetime.UTC),
        dt.strftime("%a, %d %b %Y %H:%M:%S GMT"),
        datetime.datetime.strptime("2024-01-02 03:04", "%Y-%m-%d %H:%M"),
        datetime.date(2024, 12, 31).isocalendar(),
        dt.timestamp(),
    )


@check("zoneinfo")
def check_zoneinfo() -> object:
    """`ZoneInfo("Europe/Paris")` and `("America/New_York")` offsets, with DST."""
    import datetime
    import zoneinfo

    paris = zoneinfo.ZoneInfo("Europe/Paris")
    ny = zoneinfo.ZoneInfo("America/New_York")
    winter = datetime.datetime(2024, 1, 15, 12, tzinfo=paris)
    summer = datetime.datetime(2024, 7, 15, 12, tzinfo=paris)
    return (
        str(winter.utcoffset()),
        str(summer.utcoffset()),
        summer.tzname(),
        summer.astimezone(ny).isoformat(),
    )


@check("time")
def check_time() -> object:
    """`gmtime`, `strftime`, `strptime`, `time`, `monotonic`, `time_ns` (clocks: their shape)."""
    import time

    t0 = time.monotonic()
    return (
        tuple(time.gmtime(86400 * 365)),
        time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(1_700_000_000)),
        time.strptime("2024-02-29", "%Y-%m-%d")[:3],
        time.time() > 1_600_000_000,
        time.monotonic() >= t0,
        isinstance(time.time_ns(), int),
    )


@check("calendar")
def check_calendar() -> object:
    """`monthrange`, `isleap`, `timegm`, `weekday`, `month_abbr`."""
    import calendar

    return (
        calendar.monthrange(2024, 2),
        calendar.isleap(2100),
        calendar.timegm((2024, 1, 1, 0, 0, 0)),
        calendar.weekday(2024, 7, 14),
        calendar.month_abbr[3],
    )


@check("urllib.parse")
def check_urllib_parse() -> object:
    """`urlsplit`, `parse_qs`, `quote`/`unquote`, `urlencode`, `urljoin`."""
    import urllib.parse

    parts = urllib.parse.urlsplit("https://user@example.com:8443/a/b?x=1&y=2&x=3#frag")
    return (
        (parts.scheme, parts.hostname, parts.port, parts.path, parts.fragment),
        urllib.parse.parse_qs(parts.query),
        urllib.parse.quote("a b/é?"),
        urllib.parse.unquote("%E2%82%AC%20"),
        urllib.parse.urlencode({"q": "a&b", "n": 2}),
        urllib.parse.urljoin("https://h/a/b/c", "../d"),
    )


@check("ipaddress")
def check_ipaddress() -> object:
    """`ip_address in ip_network`, IPv6 compression, `is_private`, `hosts()`."""
    import ipaddress

    net = ipaddress.ip_network("10.0.0.0/30")
    return (
        ipaddress.ip_address("10.0.0.2") in net,
        [str(h) for h in net.hosts()],
        ipaddress.ip_address("2001:0db8:0000:0000:0000:0000:0000:0001").compressed,
        ipaddress.ip_address("192.168.1.1").is_private,
        str(ipaddress.ip_interface("192.0.2.5/24").network),
    )


@check("fnmatch")
def check_fnmatch() -> object:
    """`fnmatch`, `fnmatchcase`, `filter`, `translate`."""
    import fnmatch

    return (
        fnmatch.fnmatch("/static/app.js", "/static/*.js"),
        fnmatch.fnmatchcase("A.PY", "*.py"),
        fnmatch.filter(["a.py", "b.txt", "c.py"], "*.py"),
        fnmatch.translate("*.j?"),
    )


@check("string")
def check_string() -> object:
    """`Template.substitute`, `Formatter().format`, the character constants."""
    import string

    return (
        string.Template("Hello $name, ${n}x").substitute(name="you", n=3),
        string.Formatter().format("{0:>5}|{k!r}", "ab", k="v"),
        len(string.ascii_letters + string.digits + string.punctuation),
        string.capwords("hello   proxy wasm"),
    )


@check("textwrap")
def check_textwrap() -> object:
    """`wrap`, `dedent`, `shorten`, `indent`."""
    import textwrap

    return (
        textwrap.wrap("the quick brown fox jumps over the lazy dog", width=12),
        textwrap.dedent("    a\n      b\n"),
        textwrap.shorten("Hello  world, this is long", width=15),
        textwrap.indent("x\ny", "> "),
    )


@check("struct")
def check_struct() -> object:
    """`pack`/`unpack` in both byte orders, `calcsize`, `iter_unpack`."""
    import struct

    packed = struct.pack(">IhQ?", 1, -2, 2**40, True)
    return (
        packed,
        struct.unpack("<Hd", struct.pack("<Hd", 7, 1.5)),
        struct.calcsize("!I2sx"),
        list(struct.iter_unpack(">H", b"\x00\x01\x00\x02")),
    )


@check("zlib")
def check_zlib() -> object:
    """`compress` / `decompress`, `crc32`, `adler32`."""
    import zlib

    data = b"proxy-wasm " * 20
    return (
        len(zlib.compress(data)) < len(data),
        zlib.decompress(zlib.compress(data)) == data,
        (
            zlib.crc32(data),
            zlib.adler32(data),
        ),
    )


@check("gzip")
def check_gzip() -> object:
    """`gzip.compress` / `decompress` (mtime fixed)."""
    import gzip

    blob = gzip.compress(b"hello " * 10, mtime=0)
    return blob[:4], gzip.decompress(blob)


@check("binascii")
def check_binascii() -> object:
    """`hexlify`, `unhexlify`, `crc32`, `a2b_base64`, `crc_hqx`."""
    import binascii

    return (
        binascii.hexlify(b"\x01\xfe", "-"),
        binascii.unhexlify("cafe"),
        binascii.crc32(b"hello world"),
        binascii.a2b_base64(b"aGVsbG8="),
        binascii.crc_hqx(b"abc", 0),
    )


@check("html")
def check_html() -> object:
    """`escape`, `unescape` (named and numeric references)."""
    import html

    return (
        html.escape("<a href='x'>&</a>"),
        html.unescape("&lt;p&gt;caf&eacute; &#x263A; &amp;amp;"),
    )


@check("http")
def check_http() -> object:
    """`HTTPStatus` lookups, `http.cookies.SimpleCookie` parse and output."""
    import http
    import http.cookies

    cookie = http.cookies.SimpleCookie()
    cookie.load('session=abc123; theme="dark mode"')
    cookie["session"]["httponly"] = True
    cookie["session"]["path"] = "/"
    return (
        (http.HTTPStatus(404).phrase, int(http.HTTPStatus.TOO_MANY_REQUESTS)),
        http.HTTPStatus.SERVICE_UNAVAILABLE.description,
        {k: m.value for k, m in sorted(cookie.items())},
        cookie["session"].OutputString(),
    )


@check("email.utils")
def check_email_utils() -> object:
    """`parseaddr`, `formataddr`, `formatdate(usegmt=True)`, `parsedate_to_datetime`."""
    import email.utils

    return (
        email.utils.parseaddr("Jane Doe <jane@example.com>"),
        email.utils.formataddr(("Bob", "bob@example.org")),
        email.utils.formatdate(1_700_000_000, usegmt=True),
        email.utils.parsedate_to_datetime("Tue, 14 Nov 2023 22:13:20 GMT").isoformat(),
    )


@check("dataclasses")
def check_dataclasses() -> object:
    """A frozen `@dataclass` with `field(default_factory=...)`, `asdict`, `replace`, `fields`."""
    import dataclasses

    @dataclasses.dataclass(frozen=True)
    class _Route:
        prefix: str
        upstream: str = "default"
        tags: list[str] = dataclasses.field(default_factory=list)

    r = _Route("/api", tags=["a"])
    try:
        r.prefix = "/x"  # type: ignore[misc]
        frozen = False
    except dataclasses.FrozenInstanceError:
        frozen = True
    return (
        dataclasses.asdict(r),
        repr(dataclasses.replace(r, upstream="b")),
        [f.name for f in dataclasses.fields(r)],
        frozen,
        r == _Route("/api", tags=["a"]),
    )


@check("enum")
def check_enum() -> object:
    """`Enum` with `auto()`, lookup by value and name, `IntFlag` operations."""
    import enum

    class _Color(enum.Enum):
        RED = "r"
        GREEN = enum.auto()

    class _Perm(enum.IntFlag):
        R = 4
        W = 2
        X = 1

    return (
        _Color("r").name,
        _Color["GREEN"].value,
        [c.name for c in _Color],
        int(_Perm.R | _Perm.W),
        _Perm.W in (_Perm.R | _Perm.W),
        repr(_Perm(5)),
    )


@check("typing")
def check_typing() -> object:
    """`NamedTuple`, `TypedDict`, `get_origin`/`get_args`, `get_type_hints`, `cast`."""
    import typing

    class _Point(typing.NamedTuple):
        x: int
        y: int = 0

    class _Doc(typing.TypedDict, total=False):
        name: str

    alias = dict[str, list[int]]
    return (
        _Point(1)._asdict(),
        _Doc(name="x"),
        (typing.get_origin(alias), typing.get_args(alias)),
        typing.get_args(typing.Optional[int]),  # noqa: UP045 -- typing.Optional is the point
        typing.get_args(int | None),
        sorted(typing.get_type_hints(_Point)),
        typing.cast(int, "not checked"),
    )


@check("functools")
def check_functools() -> object:
    """`lru_cache`, `reduce`, `partial`, `cached_property`, `total_ordering`, `singledispatch`."""
    import functools
    import operator

    @functools.lru_cache(maxsize=8)
    def fib(n: int) -> int:
        return n if n < 2 else fib(n - 1) + fib(n - 2)

    @functools.singledispatch
    def kind(x: object) -> str:
        return "object"

    @kind.register
    def _(x: int) -> str:
        return "int"

    @functools.total_ordering
    class V:
        def __init__(self, v: int) -> None:
            self.v = v

        def __eq__(self, other: object) -> bool:
            return isinstance(other, V) and self.v == other.v

        def __lt__(self, other: "V") -> bool:
            return self.v < other.v

        @functools.cached_property
        def double(self) -> int:
            return self.v * 2

    return (
        fib(30),
        fib.cache_info().hits > 0,
        functools.reduce(operator.mul, range(1, 7)),
        functools.partial(int, base=16)("ff"),
        (kind(1), kind("a")),
        V(1) >= V(0),
        V(3).double,
    )


@check("itertools")
def check_itertools() -> object:
    """`groupby`, `accumulate`, `permutations`, `islice`/`count`, `chain`, `pairwise`, `product`."""
    import itertools

    return (
        [(k, len(list(g))) for k, g in itertools.groupby("aaabccdd")],
        list(itertools.accumulate([1, 2, 3, 4])),
        list(itertools.permutations("abc", 2))[:4],
        list(itertools.islice(itertools.count(10, 5), 3)),
        list(itertools.chain.from_iterable([[1], [2, 3]])),
        list(itertools.pairwise([1, 2, 3])),
        len(list(itertools.product(range(3), repeat=2))),
    )


@check("collections")
def check_collections() -> object:
    """`Counter.most_common`, `deque` rotation, `defaultdict`, `OrderedDict`, `ChainMap`, `namedtuple`."""
    import collections

    d = collections.deque([1, 2, 3, 4], maxlen=4)
    d.rotate(1)
    dd: collections.defaultdict[str, list[int]] = collections.defaultdict(list)
    dd["a"].append(1)
    od = collections.OrderedDict(a=1, b=2)
    od.move_to_end("a")
    Pair = collections.namedtuple("Pair", "left right")
    return (
        collections.Counter("mississippi").most_common(2),
        list(d),
        dict(dd),
        list(od),
        collections.ChainMap({"a": 1}, {"a": 2, "b": 3})["b"],
        Pair(1, 2)._replace(right=5),
    )


@check("heapq")
def check_heapq() -> object:
    """`heappush`/`heappop`, `nlargest`, `nsmallest` with a key, `merge`."""
    import heapq

    heap: list[int] = []
    for v in (5, 1, 4, 2):
        heapq.heappush(heap, v)
    return (
        [heapq.heappop(heap) for _ in range(4)],
        heapq.nlargest(2, [3, 9, 1, 7]),
        heapq.nsmallest(2, ["ccc", "a", "bb"], key=len),
        list(heapq.merge([1, 4], [2, 3])),
    )


@check("bisect")
def check_bisect() -> object:
    """`bisect_left`, `bisect_right` with a key, `insort`."""
    import bisect

    xs = [1, 3, 3, 7]
    bisect.insort(xs, 5)
    return (
        bisect.bisect_left(xs, 3),
        bisect.bisect_right([(1, "a"), (3, "b")], 2, key=lambda t: t[0]),
        xs,
    )


@check("decimal")
def check_decimal() -> object:
    """`Decimal` arithmetic, `quantize` with `ROUND_HALF_UP`, a local context's precision."""
    import decimal

    with decimal.localcontext() as ctx:
        ctx.prec = 5
        third = decimal.Decimal(1) / decimal.Decimal(3)
    return (
        str(decimal.Decimal("1.1") + decimal.Decimal("2.2")),
        str(decimal.Decimal("2.675").quantize(decimal.Decimal("0.01"), decimal.ROUND_HALF_UP)),
        str(third),
        decimal.Decimal("1e3").to_integral_value(),
    )


@check("fractions")
def check_fractions() -> object:
    """`Fraction` arithmetic, `limit_denominator`, from a string and a float."""
    import fractions

    return (
        fractions.Fraction(1, 3) + fractions.Fraction(1, 6),
        fractions.Fraction("3.1415926535").limit_denominator(100),
        fractions.Fraction(0.25),
    )


@check("math")
def check_math() -> object:
    """`sqrt`, `isclose`, `gcd`, `comb`, `log`, `floor`/`ceil`, `fsum`, `inf`."""
    import math

    return (
        math.sqrt(2),
        math.isclose(0.1 + 0.2, 0.3),
        math.gcd(84, 36),
        math.comb(10, 3),
        math.log(1000),
        (math.floor(-1.5), math.ceil(1.2)),
        math.fsum([0.1] * 10),
        math.isinf(math.inf),
    )


@check("statistics")
def check_statistics() -> object:
    """`mean`, `median`, `stdev`, `quantiles`, `mode`."""
    import statistics

    data = [2, 4, 4, 4, 5, 5, 7, 9]
    return (
        statistics.mean(data),
        statistics.median(data),
        statistics.stdev(data),
        statistics.quantiles(data, n=4),
        statistics.mode(data),
    )


@check("random")
def check_random() -> object:
    """A seeded `Random`: `random`, `randint`, `choice`, `shuffle`, `sample`, `gauss`."""
    import random

    rng = random.Random(42)
    xs = list(range(6))
    rng.shuffle(xs)
    return (
        rng.random(),
        rng.randint(1, 100),
        rng.choice("abcdef"),
        xs,
        rng.sample(range(100), 3),
        round(rng.gauss(0, 1), 12),
    )


@check("copy")
def check_copy() -> object:
    """`deepcopy` of a nested structure (shared references kept), `copy`."""
    import copy

    shared = [1, 2]
    original = {"a": shared, "b": shared, "c": {"d": [3]}}
    clone = copy.deepcopy(original)
    shallow = copy.copy(original)
    return (
        clone == original,
        clone["a"] is clone["b"],
        clone["a"] is not shared,
        shallow["c"] is original["c"],
    )


@check("pprint")
def check_pprint() -> object:
    """`pformat` of a nested structure at a narrow width."""
    import pprint

    return pprint.pformat({"b": list(range(12)), "a": {"x": "y" * 20}}, width=30)


@check("logging")
def check_logging() -> object:
    """A `Logger` with a `StreamHandler` into `io.StringIO` and a `Formatter`."""
    import io
    import logging

    stream = io.StringIO()
    logger = logging.getLogger("libraries-check")
    logger.propagate = False
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.info("hello %s", "world")
    logger.debug("hidden")
    logger.warning("careful")
    logger.removeHandler(handler)
    return stream.getvalue()


@check("csv")
def check_csv() -> object:
    """`reader` with quoting, `DictWriter` into a `StringIO`."""
    import csv
    import io

    rows = list(csv.reader(io.StringIO('a,"b,c",d\r\n1,2,3\r\n')))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=["k", "v"])
    writer.writeheader()
    writer.writerow({"k": "x", "v": 'say "hi"'})
    return rows, out.getvalue()


@check("io")
def check_io() -> object:
    """`BytesIO`, `StringIO`, `TextIOWrapper` decoding UTF-16."""
    import io

    b = io.BytesIO()
    b.write(b"abc")
    b.seek(1)
    wrapped = io.TextIOWrapper(io.BytesIO("héllo\nwörld\n".encode("utf-16")), encoding="utf-16")
    return b.read(), io.StringIO("l1\nl2\n").readlines(), wrapped.read()


@check("contextlib")
def check_contextlib() -> object:
    """`contextmanager`, `suppress`, `ExitStack` callbacks and contexts."""
    import contextlib

    events: list[str] = []

    @contextlib.contextmanager
    def span(name: str) -> Iterator[str]:
        events.append(f"enter {name}")
        yield name
        events.append(f"exit {name}")

    with contextlib.ExitStack() as stack:
        stack.callback(events.append, "callback")
        stack.enter_context(span("a"))
        with contextlib.suppress(KeyError):
            raise KeyError("x")
    return events


@check("operator")
def check_operator() -> object:
    """`itemgetter`, `attrgetter`, `methodcaller`, operator functions."""
    import operator

    rows = [{"n": 2, "s": "b"}, {"n": 1, "s": "a"}]
    return (
        sorted(rows, key=operator.itemgetter("n")),
        operator.attrgetter("real", "imag")(3 + 4j),
        operator.methodcaller("upper")("abc"),
        operator.add(2, 3),
    )


@check("unicodedata")
def check_unicodedata() -> object:
    """`name`, `lookup`, `normalize` (NFD/NFKC), `category`, `east_asian_width`."""
    import unicodedata

    return (
        unicodedata.name("é"),
        unicodedata.lookup("SNOWMAN"),
        [hex(ord(c)) for c in unicodedata.normalize("NFD", "é")],
        unicodedata.normalize("NFKC", "ﬁ①"),
        unicodedata.category("A"),
        unicodedata.east_asian_width("中"),
        unicodedata.unidata_version,
    )


@check("difflib")
def check_difflib() -> object:
    """`unified_diff`, `SequenceMatcher.ratio`, `get_close_matches`."""
    import difflib

    return (
        list(difflib.unified_diff(["a\n", "b\n"], ["a\n", "c\n"], "old", "new")),
        difflib.SequenceMatcher(None, "proxy wasm", "proxy-wasm").ratio(),
        difflib.get_close_matches("applr", ["apple", "ample", "maple"]),
    )


@check("xml.etree")
def check_xml_etree() -> object:
    """`fromstring`, `find`/`findall`, `SubElement`, `tostring` (default `us-ascii` and `unicode`)."""
    import xml.etree.ElementTree as ET

    root = ET.fromstring('<r a="1"><item id="x">é</item><item id="y"/></r>')
    ET.SubElement(root, "new", name="z").text = "t"
    return (
        [i.get("id") for i in root.findall("item")],
        root.find("item").text,  # type: ignore[union-attr]
        ET.tostring(root),
        ET.tostring(root, encoding="unicode"),
    )


@check("codecs")
def check_codecs() -> object:
    """Codecs by name: `utf-16-le`, `cp1252`, `utf-8-sig`, `latin-1`, `idna`, `codecs.lookup`, `hex`."""
    import codecs

    return (
        "hé".encode("utf-16-le"),
        "€".encode("cp1252"),
        b"\xef\xbb\xbfhi".decode("utf-8-sig"),
        "ÿ".encode("latin-1"),
        "bücher.example".encode("idna"),
        codecs.lookup("UTF8").name,
        codecs.encode(b"\x01\xab", "hex"),
        codecs.decode(b"68656c6c6f", "hex"),
    )


def run_checks() -> list[str]:
    """Every check's log line: ``check NAME VALUE``."""
    lines = []
    for name, fn in CHECKS.items():
        try:
            value = repr(fn())
        except Exception as exc:  # noqa: BLE001 -- the failure is the result
            value = f"raised {type(exc).__name__}: {exc}"
        lines.append(f"check {name} {value}")
    return lines


class Checks(HttpContext):
    def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
        for line in run_checks():
            proxywasm.log_info(line)
        return Action.CONTINUE


class Root(RootContext):
    def create_http_context(self, context_id: int) -> HttpContext:
        return Checks(context_id, self)


proxywasm.set_root_context(Root)
