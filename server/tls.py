"""Mutual TLS in uvicorn itself: hand the verified client certificate to the app.

uvicorn verifies the client certificate when started with ``ssl_cert_reqs=CERT_REQUIRED`` (or
``CERT_OPTIONAL``) and ``ssl_ca_certs``, but does not put it into the ASGI scope. These protocol
classes (``uvicorn.run(..., http=TLSH11Protocol)``) add the ASGI TLS extension,
``scope["extensions"]["tls"]["client_cert_chain"]`` (PEM) and ``client_cert_name`` (RFC 4514),
for every request on a connection whose peer presented a certificate the handshake verified.
"""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

Scope = dict[str, Any]
App = Callable[[Scope, Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Awaitable[None]]


class _WithClientCert:
    """ASGI wrapper adding the ``tls`` extension for one connection's peer certificate."""

    def __init__(self, app: App, pem: str, name: str) -> None:
        self.app = app
        self.tls = {"client_cert_chain": [pem], "client_cert_name": name, "client_cert_error": None}

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope.get("type") == "http":
            scope = dict(scope)
            scope["extensions"] = {**(scope.get("extensions") or {}), "tls": dict(self.tls)}
        await self.app(scope, receive, send)


def _peer(transport: Any) -> tuple[str, str] | None:
    obj: ssl.SSLObject | None = transport.get_extra_info("ssl_object")
    der = obj.getpeercert(binary_form=True) if obj is not None else None
    if not der:
        return None
    from cryptography import x509

    name = x509.load_der_x509_certificate(der).subject.rfc4514_string()
    return ssl.DER_cert_to_PEM_cert(der), name


class TLSH11Protocol(H11Protocol):
    def connection_made(self, transport: Any) -> None:  # type: ignore[override]
        super().connection_made(transport)
        peer = _peer(transport)
        if peer is not None:
            self.app = _WithClientCert(self.app, *peer)  # type: ignore[assignment]


def client_cert_der(scope: MutableMapping[str, Any]) -> bytes | None:
    """The DER of the client certificate uvicorn verified for this request, or None."""
    chain = ((scope.get("extensions") or {}).get("tls") or {}).get("client_cert_chain") or []
    return ssl.PEM_cert_to_DER_cert(chain[0]) if chain else None
