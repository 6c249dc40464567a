"""Tests of the jwt_hs256 example, run natively and compiled (cpython backend).

Every test takes its host from ``make_host`` (the plugin's
``proxywasm_filter_host``: native, then compiled in the slow tier). The host
clock is fixed at ``NOW`` so that expiry is tested to the second. Tokens are
made here with ``hmac`` independently of the filter; hypothesis draws them,
natively, and through both the native filter and the compiled module at once
(their answers must be the same).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from proxywasm import LogLevel
from proxywasm.testing import HostEmulator, HttpExchange, load_filter

HERE = Path(__file__).resolve().parent
#: The filter the plugin's proxywasm_filter_host runs, natively and compiled.
PROXYWASM_FILTER = HERE / "filter.py"

filter_module = load_filter(PROXYWASM_FILTER)
MakeHost = Callable[..., HostEmulator]

NOW = 1_800_000_000  # seconds since the epoch: the host clock in every test
SECRET = "correct horse battery staple"
CONFIG: dict[str, Any] = {  # envoy.yaml's, and the README's
    "secret": SECRET,
    "issuer": "https://issuer.example",
    "audience": "orders",
    "leeway_s": 30,
    "claims_to_headers": {"sub": "x-jwt-sub", "scope": "x-jwt-scope"},
}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_token(
    claims: dict[str, Any],
    key: bytes | str = SECRET,
    header: dict[str, Any] | None = None,
) -> str:
    """An HS256 JWT signed with ``key`` (the JOSE header can be replaced)."""
    key = key.encode() if isinstance(key, str) else key
    head = b64url(json.dumps(header or {"alg": "HS256", "typ": "JWT"}).encode())
    body = b64url(json.dumps(claims).encode())
    sig = hmac.new(key, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64url(sig)}"


def good_claims(**extra: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "sub": "ann",
        "iss": "https://issuer.example",
        "aud": "orders",
        "exp": NOW + 600,
        "iat": NOW - 10,
    }
    claims.update(extra)
    return {k: v for k, v in claims.items() if v is not None}


@pytest.fixture
def make_host(proxywasm_filter_host: MakeHost) -> MakeHost:
    """Started hosts (native and compiled) with the clock at ``NOW``."""

    def make(**kwargs: Any) -> HostEmulator:
        kwargs.setdefault("plugin_configuration", CONFIG)
        host = proxywasm_filter_host(**kwargs)
        host.now_ns = NOW * 10**9
        return host

    return make


@pytest.fixture
def host(make_host: MakeHost) -> HostEmulator:
    return make_host()


def send(host: HostEmulator, *headers: tuple[str, str], path: str = "/orders/7") -> HttpExchange:
    return host.http([(":method", "GET"), (":path", path), (":authority", "api"), *headers])


def bearer(token: str) -> tuple[str, str]:
    return ("authorization", f"Bearer {token}")


def assert_refused(ex: HttpExchange, error: str) -> None:
    """A 401 with ``{"error": error}`` and a Bearer challenge; nothing went upstream."""
    assert ex.upstream_headers is None
    assert ex.status == 401
    assert ex.header("content-type") == "application/json"
    assert json.loads(ex.response_body) == {"error": error}
    challenge = ex.header("www-authenticate")
    if error == "missing token":
        assert challenge == 'Bearer realm="api"'
    else:
        assert challenge == (
            f'Bearer realm="api", error="invalid_token", error_description="{error}"'
        )


def test_envoy_yaml_configuration() -> None:
    text = (HERE / "envoy.yaml").read_text()
    match = re.search(r"^\s*value: '(.*)'\s*$", text, re.MULTILINE)
    assert match, "no plugin configuration in envoy.yaml"
    assert json.loads(match.group(1)) == CONFIG


def test_valid_token_passes_claims_upstream(host: HostEmulator) -> None:
    ex = send(host, bearer(make_token(good_claims(scope="read write"))))
    assert ex.status == 200 and ex.local_response is None
    assert ex.upstream_header("x-jwt-sub") == "ann"
    assert ex.upstream_header("x-jwt-scope") == "read write"
    assert ex.upstream_header("authorization") is None  # forward_token is false
    assert ex.upstream_header(":path") == "/orders/7"
    assert host.get_metric("jwt_hs256.accepted") == 1
    assert host.get_metric("jwt_hs256.rejected") == 0
    assert host.get_logs(LogLevel.ERROR) == []


def test_claims_absent_from_the_token_give_no_header(host: HostEmulator) -> None:
    ex = send(host, bearer(make_token(good_claims())))
    assert ex.upstream_header("x-jwt-sub") == "ann"
    assert ex.upstream_header("x-jwt-scope") is None


def test_client_cannot_forge_claim_headers(host: HostEmulator) -> None:
    forged = [("x-jwt-sub", "root"), ("X-JWT-Scope", "admin")]
    ex = send(host, *forged, bearer(make_token(good_claims())))
    assert [v for k, v in ex.upstream_headers or [] if k == "x-jwt-sub"] == ["ann"]
    assert ex.upstream_header("x-jwt-scope") is None
    # Refused requests do not get that far either way.
    assert_refused(send(host, *forged), "missing token")


def test_missing_token(host: HostEmulator) -> None:
    assert_refused(send(host), "missing token")
    assert host.get_metric("jwt_hs256.rejected") == 1


@pytest.mark.parametrize(
    "value",
    ["", "Bearer", "Bearer   ", "Basic dXNlcjpwYXNz", "bearer-token", "Token abc.def.ghi"],
)
def test_no_bearer_token_is_missing(host: HostEmulator, value: str) -> None:
    assert_refused(send(host, ("authorization", value)), "missing token")


def test_two_authorization_headers_are_refused(host: HostEmulator) -> None:
    token = make_token(good_claims())
    assert_refused(send(host, bearer(token), bearer(token)), "missing token")


def test_scheme_is_case_insensitive(host: HostEmulator) -> None:
    ex = send(host, ("authorization", f"bEaReR {make_token(good_claims())}"))
    assert ex.status == 200


GOOD = make_token(good_claims())
HEAD, BODY, SIG = GOOD.split(".")


@pytest.mark.parametrize(
    "token",
    [
        "abc",
        f"{HEAD}.{BODY}",
        f"{HEAD}.{BODY}.{SIG}.x",
        f"{HEAD}.{BODY}.{SIG}=",  # padding is not base64url's
        f"{HEAD}.{BODY}.{SIG[:-2]}+/",
        f"{HEAD}.!!.{SIG}",
        f"{HEAD}.{BODY[:-1]}.{SIG}" if len(BODY) % 4 == 2 else f"{HEAD}.{BODY}A.{SIG}",
        f"{b64url(b'not json')}.{BODY}.{SIG}",
        f"{b64url(b'[1, 2]')}.{BODY}.{SIG}",
        f"{HEAD}.{b64url(bytes([0xFF, 0xFE]))}.{SIG}",
        f"{HEAD}.{b64url(b'42')}.{SIG}",
    ],
)
def test_malformed_tokens(host: HostEmulator, token: str) -> None:
    assert_refused(send(host, bearer(token)), "malformed token")


@pytest.mark.parametrize(
    "header",
    [{"alg": "none"}, {"alg": "HS512"}, {"alg": "RS256"}, {"typ": "JWT"}, {"alg": "hs256"}],
)
def test_other_algorithms_are_refused(host: HostEmulator, header: dict[str, Any]) -> None:
    token = make_token(good_claims(), header=header)
    assert_refused(send(host, bearer(token)), "unsupported alg: HS256 only")


def test_unsigned_token_is_refused(host: HostEmulator) -> None:
    head = b64url(b'{"alg":"none"}')
    assert_refused(send(host, bearer(f"{head}.{BODY}.")), "unsupported alg: HS256 only")


def test_wrong_key(host: HostEmulator) -> None:
    token = make_token(good_claims(), key="another secret")
    assert_refused(send(host, bearer(token)), "bad signature")


def test_tampered_claims(host: HostEmulator) -> None:
    forged = b64url(json.dumps(good_claims(sub="root")).encode())
    assert_refused(send(host, bearer(f"{HEAD}.{forged}.{SIG}")), "bad signature")


def test_non_canonical_signature_encoding(host: HostEmulator) -> None:
    # 32 bytes -> 43 characters, the last carrying 2 unused bits: flipping them decodes
    # to the same bytes, but is not the signature's encoding.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet[alphabet.index(SIG[-1]) ^ 1]
    assert base64.urlsafe_b64decode(SIG[:-1] + last + "=") == base64.urlsafe_b64decode(SIG + "=")
    assert_refused(send(host, bearer(f"{HEAD}.{BODY}.{SIG[:-1]}{last}")), "bad signature")


@pytest.mark.parametrize(
    ("exp", "accepted"),
    [(NOW, True), (NOW - 30, True), (NOW - 30.5, False), (NOW - 31, False), (NOW - 3600, False)],
)
def test_expiry_with_leeway(host: HostEmulator, exp: float, accepted: bool) -> None:
    ex = send(host, bearer(make_token(good_claims(exp=exp))))
    if accepted:
        assert ex.status == 200
    else:
        assert_refused(ex, "token expired")


def test_expiry_without_leeway(make_host: MakeHost) -> None:
    host = make_host(plugin_configuration={"secret": SECRET})
    assert send(host, bearer(make_token({"sub": "a", "exp": NOW}))).status == 200
    assert_refused(send(host, bearer(make_token({"sub": "a", "exp": NOW - 1}))), "token expired")


def test_the_host_clock_decides(host: HostEmulator) -> None:
    token = make_token(good_claims(exp=NOW + 100))
    assert send(host, bearer(token)).status == 200
    host.now_ns = (NOW + 131) * 10**9  # past exp + leeway
    assert_refused(send(host, bearer(token)), "token expired")


@pytest.mark.parametrize("exp", [None, "soon", True, [NOW + 10]])
def test_exp_must_be_a_number(host: HostEmulator, exp: Any) -> None:
    claims = good_claims()
    del claims["exp"]
    if exp is not None:
        claims["exp"] = exp
    error = "missing exp claim" if exp is None else "malformed token"
    assert_refused(send(host, bearer(make_token(claims))), error)


@pytest.mark.parametrize(
    ("nbf", "accepted"), [(NOW, True), (NOW + 30, True), (NOW + 31, False), ("x", None)]
)
def test_not_before(host: HostEmulator, nbf: Any, accepted: bool | None) -> None:
    ex = send(host, bearer(make_token(good_claims(nbf=nbf))))
    if accepted is None:
        assert_refused(ex, "malformed token")
    elif accepted:
        assert ex.status == 200
    else:
        assert_refused(ex, "token not yet valid")


@pytest.mark.parametrize("iss", ["https://evil.example", "", None])
def test_wrong_issuer(host: HostEmulator, iss: str | None) -> None:
    claims = good_claims()
    claims.pop("iss")
    if iss is not None:
        claims["iss"] = iss
    assert_refused(send(host, bearer(make_token(claims))), "wrong issuer")


@pytest.mark.parametrize(
    ("aud", "accepted"),
    [
        ("orders", True),
        (["billing", "orders"], True),
        ("billing", False),
        ([], False),
        (None, False),
    ],
)
def test_audience(host: HostEmulator, aud: Any, accepted: bool) -> None:
    claims = good_claims()
    claims.pop("aud")
    if aud is not None:
        claims["aud"] = aud
    ex = send(host, bearer(make_token(claims)))
    if accepted:
        assert ex.status == 200
    else:
        assert_refused(ex, "wrong audience")


def test_non_text_claims_go_as_json(make_host: MakeHost) -> None:
    config = {
        "secret": SECRET,
        "claims_to_headers": {"sub": "x-user", "roles": "x-roles", "admin": "X-Admin", "n": "x-n"},
    }
    host = make_host(plugin_configuration=config)
    claims = {"sub": "line\nbreak", "roles": ["a", "b"], "admin": False, "n": 7, "exp": NOW}
    ex = send(host, bearer(make_token(claims)))
    assert ex.upstream_header("x-user") == '"line\\nbreak"'  # never a raw control character
    assert ex.upstream_header("x-roles") == '["a","b"]'
    assert ex.upstream_header("x-admin") == "false"
    assert ex.upstream_header("x-n") == "7"
    assert ex.upstream_header("x-jwt-sub") is None  # the default map was replaced


def test_forward_token_and_other_header(make_host: MakeHost) -> None:
    config = {"secret": SECRET, "header": "x-token", "forward_token": True, "realm": "shop"}
    host = make_host(plugin_configuration=config)
    token = make_token({"sub": "bob", "exp": NOW + 5})
    ex = send(host, ("x-token", f"Bearer {token}"))
    assert ex.upstream_header("x-token") == f"Bearer {token}"
    assert ex.upstream_header("x-jwt-sub") == "bob"
    refused = send(host, bearer(token))  # authorization is not the configured header
    assert refused.status == 401
    assert refused.header("www-authenticate") == 'Bearer realm="shop"'


def test_base64url_secret(make_host: MakeHost) -> None:
    key = bytes(range(32))
    host = make_host(plugin_configuration={"secret_base64url": b64url(key)})
    assert send(host, bearer(make_token({"exp": NOW}, key=key))).status == 200
    assert send(host, bearer(make_token({"exp": NOW}, key=SECRET))).status == 401


def test_refusals_are_logged_at_debug(host: HostEmulator) -> None:
    ex = send(host, path="/secret?x=1")
    assert ex.messages(LogLevel.DEBUG) == ["jwt_hs256: 401 missing token on /secret?x=1"]


@pytest.mark.parametrize(
    ("configuration", "message"),
    [
        (None, 'expected a JSON object with a "secret"'),
        (b"[1]", 'expected a JSON object with a "secret"'),
        ({}, 'give exactly one of "secret" and "secret_base64url"'),
        ({"secret": "a", "secret_base64url": "YQ"}, 'give exactly one of "secret" and'),
        ({"secret": ""}, "secret must be a non-empty string"),
        ({"secret": 7}, "secret must be a non-empty string"),
        ({"secret_base64url": "a+b/"}, "secret_base64url is not base64url"),
        ({"secret_base64url": ""}, "secret_base64url must not be empty"),
        ({"secret": "k", "leeway": 3}, "unknown keys ['leeway']"),
        ({"secret": "k", "leeway_s": -1}, "leeway_s must be a number"),
        ({"secret": "k", "leeway_s": True}, "leeway_s must be a number"),
        ({"secret": "k", "issuer": 1}, "issuer must be a non-empty string"),
        ({"secret": "k", "claims_to_headers": ["sub"]}, "claims_to_headers must map"),
        ({"secret": "k", "claims_to_headers": {"sub": ":path"}}, "claims_to_headers must map"),
        (
            {"secret": "k", "claims_to_headers": {"sub": "Authorization"}},
            "claims_to_headers must not write the token header authorization",
        ),
        ({"secret": "k", "forward_token": "yes"}, "forward_token must be true or false"),
        ({"secret": "k", "realm": 'a"b'}, "realm must not contain quotes"),
    ],
)
def test_bad_configuration_is_rejected(
    proxywasm_filter_host: MakeHost, configuration: Any, message: str
) -> None:
    host = proxywasm_filter_host(plugin_configuration=configuration, start=False)
    assert host.start_vm()
    assert host.start_plugin() is False  # Envoy would refuse the plugin
    [error] = host.get_logs(LogLevel.ERROR)
    assert error.startswith(f"on_configure rejected the configuration: {message}")
    assert "Traceback" not in error


def test_invalid_json_configuration(proxywasm_filter_host: MakeHost) -> None:
    host = proxywasm_filter_host(plugin_configuration=b'{"secret": ', start=False)
    assert host.start_vm() and host.start_plugin() is False
    [error] = host.get_logs(LogLevel.ERROR)
    assert error == (
        "on_configure rejected the configuration: "
        "plugin configuration is not valid JSON: Expecting value (line 1, column 12)"
    )


# -- drawn tokens ---------------------------------------------------------------------------

#: What a drawn request does to a good token before sending it.
TAMPERINGS = ("none", "wrong_key", "expired", "early", "resign_sub", "flip_char", "alg_none")
EXPECTED = {
    "wrong_key": "bad signature",
    "expired": "token expired",
    "early": "token not yet valid",
    "resign_sub": "bad signature",
    "alg_none": "unsupported alg: HS256 only",
}
#: Claim text that goes into a header as is: printable, no surrounding blanks (Envoy trims).
claim_text = (
    st.text(
        st.characters(min_codepoint=0x21, max_codepoint=0x7E) | st.just(" "),
        min_size=1,
        max_size=40,
    )
    .map(str.strip)
    .filter(bool)
)


@st.composite
def drawn_requests(draw: st.DrawFn) -> tuple[str, str, dict[str, Any]]:
    """(tampering, token, claims): a token for ``CONFIG``, tampered as drawn."""
    tampering = draw(st.sampled_from(TAMPERINGS))
    claims = good_claims(
        sub=draw(claim_text),
        scope=draw(st.none() | claim_text),
        exp=NOW + draw(st.integers(-30, 10**6)),
        nbf=draw(st.none() | st.integers(NOW - 10**6, NOW + 30)),
        extra=draw(st.dictionaries(st.text(max_size=5), st.integers() | st.text(), max_size=3)),
    )
    key: str = SECRET
    header: dict[str, Any] | None = None
    if tampering == "wrong_key":
        key = draw(st.text(min_size=1).filter(lambda k: k != SECRET))
    elif tampering == "expired":
        claims["exp"] = NOW - 31 - draw(st.integers(0, 10**6))
    elif tampering == "early":
        claims["nbf"] = NOW + 31 + draw(st.integers(0, 10**6))
    elif tampering == "alg_none":
        header = {"alg": draw(st.sampled_from(["none", "HS384", "HS512", "RS256", ""]))}
    token = make_token(claims, key=key, header=header)
    if tampering == "resign_sub":  # claims changed after signing
        head, _, sig = token.split(".")
        token = ".".join([head, b64url(json.dumps({**claims, "sub": "root"}).encode()), sig])
    elif tampering == "flip_char":
        index = draw(st.integers(0, len(token) - 1))
        replacement = draw(st.sampled_from("A_-.=9z").filter(lambda c: c != token[index]))
        token = token[:index] + replacement + token[index + 1 :]
    return tampering, token, claims


def outcome(host: HostEmulator, token: str) -> tuple[int, str | None, str | None, bytes]:
    ex = send(host, bearer(token))
    return (
        ex.status,
        ex.upstream_header("x-jwt-sub"),
        ex.upstream_header("x-jwt-scope"),
        ex.response_body,
    )


@settings(max_examples=150, deadline=None)
@given(drawn=drawn_requests())
def test_drawn_tokens_natively(drawn: tuple[str, str, dict[str, Any]]) -> None:
    tampering, token, claims = drawn
    host = HostEmulator(filter_module, plugin_configuration=CONFIG)
    assert host.start_vm() and host.start_plugin()
    host.now_ns = NOW * 10**9
    ex = send(host, bearer(token))
    if tampering == "none":
        assert ex.status == 200
        assert ex.upstream_header("x-jwt-sub") == claims["sub"]
        assert ex.upstream_header("x-jwt-scope") == claims.get("scope")
    elif tampering == "flip_char":
        # Any changed character changes the signed text or the signature's text (compared
        # as text, so even a flip of the unused bits of the last character is caught).
        assert ex.status == 401 and ex.upstream_headers is None
        assert json.loads(ex.response_body)["error"] in (
            "malformed token",
            "bad signature",
            "unsupported alg: HS256 only",
        )
    else:
        assert_refused(ex, EXPECTED[tampering])


@pytest.fixture(scope="module")
def native_and_compiled(proxywasm_build: Any) -> Iterator[list[HostEmulator]]:
    """One native host and one compiled (cpython backend) host, shared by the drawn examples."""
    wasm = proxywasm_build(PROXYWASM_FILTER)
    hosts = [
        HostEmulator(filter_module, plugin_configuration=CONFIG),
        HostEmulator.from_wasm(str(wasm), plugin_configuration=CONFIG),
    ]
    for h in hosts:
        assert h.start_vm() and h.start_plugin()
        h.now_ns = NOW * 10**9
    try:
        yield hosts
    finally:
        for h in hosts:
            close = getattr(h, "close", None)
            if callable(close):
                close()


@pytest.mark.slow
@settings(max_examples=60, deadline=None)
@given(drawn=drawn_requests())
def test_drawn_tokens_native_equals_compiled(
    native_and_compiled: list[HostEmulator], drawn: tuple[str, str, dict[str, Any]]
) -> None:
    _, token, _ = drawn
    native, compiled = (outcome(h, token) for h in native_and_compiled)
    assert native == compiled
    assert native[0] in (200, 401)
