"""jwt_hs256: check an HS256 JSON Web Token on every request, with the standard library only.

- No token, or one that is malformed, signed with another key or algorithm,
  expired, not yet valid, or from the wrong issuer or audience: a local ``401``
  with a JSON body ``{"error": "..."}`` and a ``www-authenticate: Bearer ...``
  header (RFC 6750). The request never reaches the upstream.
- A valid token: the configured claims go upstream as headers (``sub`` ->
  ``x-jwt-sub`` by default). Those headers are always removed from what the
  client sent first, so a client cannot forge them; the token itself is
  removed too unless ``forward_token`` is set.

Plugin configuration (JSON), every key but the secret optional::

    {"secret": "<shared key>",            # or "secret_base64url": "<key, base64url>"
     "issuer": "https://issuer.example",  # iss must equal it
     "audience": "orders",                # aud (a string or a list) must name it
     "leeway_s": 30,                      # clock skew allowed on exp / nbf
     "header": "authorization",           # where the token is ("Bearer <token>")
     "claims_to_headers": {"sub": "x-jwt-sub"},
     "forward_token": false,
     "realm": "api"}

Time is the host's clock (``proxy_get_current_time_nanoseconds``): in Envoy
the wall clock, in tests one the test sets.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import proxywasm
from proxywasm import Action, ConfigError, HttpContext, RootContext

ACCEPTED = proxywasm.Counter("jwt_hs256.accepted")
REJECTED = proxywasm.Counter("jwt_hs256.rejected")

#: The base64url alphabet: ``base64.urlsafe_b64decode`` skips other characters
#: silently, so a segment is checked against it first.
B64URL = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
CONFIG_KEYS = {
    "secret",
    "secret_base64url",
    "issuer",
    "audience",
    "leeway_s",
    "header",
    "claims_to_headers",
    "forward_token",
    "realm",
}


class InvalidToken(Exception):
    """Why a token is refused; the message goes to the client."""


def b64url_decode(segment: str) -> bytes:
    """Decode unpadded base64url (RFC 7515 section 2); ``InvalidToken`` if it is not."""
    if not set(segment) <= B64URL or len(segment) % 4 == 1:
        raise InvalidToken("malformed token")
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def b64url_encode(data: bytes) -> str:
    """Unpadded base64url."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def json_object(segment: str) -> dict[str, Any]:
    """A JOSE header or claims set: a base64url JSON object."""
    try:
        value = json.loads(b64url_decode(segment))
    except (ValueError, RecursionError):  # not UTF-8, not JSON
        raise InvalidToken("malformed token") from None
    if not isinstance(value, dict):
        raise InvalidToken("malformed token")
    return value


def is_number(value: object) -> bool:
    """A JSON number (``bool`` is an ``int`` in Python, not in JSON)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def header_value(claim: object) -> str:
    """A claim as a header value: text as is, anything else (and text with controls) as JSON."""
    if isinstance(claim, str) and not any(c < " " or c == "\x7f" for c in claim):
        return claim
    return json.dumps(claim, separators=(",", ":"))


class Settings:
    """The plugin configuration, checked."""

    def __init__(self, config: object) -> None:
        if not isinstance(config, dict):
            raise ConfigError('expected a JSON object with a "secret"')
        unknown = sorted(set(config) - CONFIG_KEYS)
        if unknown:
            raise ConfigError(f"unknown keys {unknown}")
        self.key = self._key(config)
        self.issuer = self._optional_text(config, "issuer")
        self.audience = self._optional_text(config, "audience")
        leeway = config.get("leeway_s", 0)
        if not is_number(leeway) or not 0 <= leeway <= 86_400:
            raise ConfigError("leeway_s must be a number of seconds between 0 and 86400")
        self.leeway_s: float = leeway
        self.header = self._optional_text(config, "header") or "authorization"
        claims = config.get("claims_to_headers", {"sub": "x-jwt-sub"})
        if not isinstance(claims, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and k and v and not v.startswith(":")
            for k, v in claims.items()
        ):
            raise ConfigError("claims_to_headers must map claim names to header names")
        self.claims_to_headers: dict[str, str] = {k: v.lower() for k, v in claims.items()}
        if self.header.lower() in self.claims_to_headers.values():
            raise ConfigError(f"claims_to_headers must not write the token header {self.header}")
        forward = config.get("forward_token", False)
        if not isinstance(forward, bool):
            raise ConfigError("forward_token must be true or false")
        self.forward_token = forward
        realm = self._optional_text(config, "realm") or "api"
        if '"' in realm or "\\" in realm:
            raise ConfigError("realm must not contain quotes or backslashes")
        self.realm = realm

    @staticmethod
    def _key(config: dict[str, Any]) -> bytes:
        text, encoded = config.get("secret"), config.get("secret_base64url")
        if (text is None) == (encoded is None):
            raise ConfigError('give exactly one of "secret" and "secret_base64url"')
        if text is not None:
            if not isinstance(text, str) or not text:
                raise ConfigError("secret must be a non-empty string")
            return text.encode()
        if not isinstance(encoded, str):
            raise ConfigError("secret_base64url must be a string")
        try:
            key = b64url_decode(encoded.rstrip("="))
        except InvalidToken:
            raise ConfigError("secret_base64url is not base64url") from None
        if not key:
            raise ConfigError("secret_base64url must not be empty")
        return key

    @staticmethod
    def _optional_text(config: dict[str, Any], name: str) -> str | None:
        value = config.get(name)
        if value is not None and (not isinstance(value, str) or not value):
            raise ConfigError(f"{name} must be a non-empty string")
        return value

    def verify(self, token: str, now_s: float) -> dict[str, Any]:
        """The claims of a valid token; ``InvalidToken`` saying what is wrong otherwise."""
        parts = token.split(".")
        if len(parts) != 3:
            raise InvalidToken("malformed token")
        header, claims = json_object(parts[0]), json_object(parts[1])
        b64url_decode(parts[2])  # the signature's alphabet is checked like the rest
        if header.get("alg") != "HS256":
            raise InvalidToken("unsupported alg: HS256 only")
        signed = f"{parts[0]}.{parts[1]}".encode("ascii")
        expected = b64url_encode(hmac.new(self.key, signed, hashlib.sha256).digest())
        # Compared as text: a signature with non-canonical base64 (other trailing bits) fails.
        if not hmac.compare_digest(expected, parts[2]):
            raise InvalidToken("bad signature")
        exp, nbf = claims.get("exp"), claims.get("nbf")
        if exp is None:
            raise InvalidToken("missing exp claim")
        if not is_number(exp) or (nbf is not None and not is_number(nbf)):
            raise InvalidToken("malformed token")
        if now_s > exp + self.leeway_s:
            raise InvalidToken("token expired")
        if nbf is not None and now_s + self.leeway_s < nbf:
            raise InvalidToken("token not yet valid")
        if self.issuer is not None and claims.get("iss") != self.issuer:
            raise InvalidToken("wrong issuer")
        if self.audience is not None:
            aud = claims.get("aud")
            audiences = aud if isinstance(aud, list) else [aud]
            if self.audience not in audiences:
                raise InvalidToken("wrong audience")
        return claims


class CheckToken(HttpContext["Root"]):
    def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
        settings = self.root.settings
        headers = self.request.headers
        for name in settings.claims_to_headers.values():
            headers.pop(name, None)  # only this filter writes them
        values = headers.get_all(settings.header)
        scheme, _, token = (values[0] if len(values) == 1 else "").strip().partition(" ")
        try:
            if scheme.lower() != "bearer" or not token.strip():
                raise InvalidToken("missing token")
            claims = settings.verify(token.strip(), self.get_current_time_nanoseconds() / 1e9)
        except InvalidToken as refused:
            return self.refuse(str(refused))
        ACCEPTED.increment()
        for claim, name in settings.claims_to_headers.items():
            if claim in claims:
                headers[name] = header_value(claims[claim])
        if not settings.forward_token:
            del headers[settings.header]
        return Action.CONTINUE

    def refuse(self, reason: str) -> Action:
        """Answer 401 with a JSON body and a Bearer challenge."""
        REJECTED.increment()
        realm = self.root.settings.realm
        challenge = f'Bearer realm="{realm}"'
        if reason != "missing token":  # RFC 6750 3.1: no error code for a request without one
            challenge += f', error="invalid_token", error_description="{reason}"'
        proxywasm.log_debug(f"jwt_hs256: 401 {reason} on {self.request.path}")
        self.send_http_response(
            401,
            {"content-type": "application/json", "www-authenticate": challenge},
            json.dumps({"error": reason}),
        )
        return Action.PAUSE


class Root(RootContext):
    http_context = CheckToken
    settings: Settings

    def on_vm_start(self, vm_configuration_size: int) -> bool:
        for counter in (ACCEPTED, REJECTED):
            counter.define()  # listed by Envoy's /stats from the start, at 0
        return True

    def on_configure(self, plugin_configuration_size: int) -> bool:
        self.settings = Settings(self.get_plugin_configuration_json())
        return True


proxywasm.set_root_context(Root)
