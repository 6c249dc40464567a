"""ssl inside a proxy-wasm module: the names, without TLS.

The wasm CPython has no ``_ssl`` (no OpenSSL, no sockets): Envoy terminates
TLS, and a filter reaches other services through the host
(``dispatch_http_call`` / ``await self.http_call(...)``), which Envoy sends
with its own TLS settings. Importing this module works; making a context or
wrapping a socket raises :class:`SSLError` saying so.
"""

from __future__ import annotations

from typing import NoReturn

REASON = (
    "there is no TLS inside a proxy-wasm filter: Envoy terminates TLS, and a filter "
    "calls other services through the host (dispatch_http_call / self.http_call), "
    "with the cluster's TLS settings"
)

OPENSSL_VERSION = "none (proxy-wasm filter)"
OPENSSL_VERSION_INFO = (0, 0, 0, 0, 0)
HAS_SNI = HAS_ALPN = HAS_NPN = HAS_ECDH = False
HAS_TLSv1_3 = False
CERT_NONE, CERT_OPTIONAL, CERT_REQUIRED = 0, 1, 2
PROTOCOL_TLS = PROTOCOL_SSLv23 = 2
PROTOCOL_TLS_CLIENT, PROTOCOL_TLS_SERVER = 16, 17


class SSLError(OSError):
    """TLS is not available here (see the module docstring)."""


class SSLZeroReturnError(SSLError):
    """Kept for ``except`` clauses that name it."""


class SSLWantReadError(SSLError):
    """Kept for ``except`` clauses that name it."""


class SSLWantWriteError(SSLError):
    """Kept for ``except`` clauses that name it."""


class SSLEOFError(SSLError):
    """Kept for ``except`` clauses that name it."""


class SSLCertVerificationError(SSLError, ValueError):
    """Kept for ``except`` clauses that name it."""


CertificateError = SSLCertVerificationError


def _refuse(*args: object, **kwargs: object) -> NoReturn:
    raise SSLError(REASON)


class Purpose:
    """``ssl.Purpose.SERVER_AUTH`` / ``CLIENT_AUTH`` as values to pass around."""

    SERVER_AUTH = "serverAuth"
    CLIENT_AUTH = "clientAuth"


class SSLContext:
    """Refused on creation."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        _refuse()


class SSLSocket:
    """Refused on creation."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        _refuse()


class SSLObject:
    """Refused on creation."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        _refuse()


def create_default_context(*args: object, **kwargs: object) -> NoReturn:
    """Refused: no TLS inside a filter."""
    _refuse()


def wrap_socket(*args: object, **kwargs: object) -> NoReturn:
    """Refused: no TLS inside a filter."""
    _refuse()


_create_default_https_context = create_default_context
_create_unverified_context = create_default_context
