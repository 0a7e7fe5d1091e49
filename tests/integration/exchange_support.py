"""Real TLS for the exchange tests: a CA, a server certificate for 127.0.0.1, client certificates, and
the lifecert app under uvicorn on 127.0.0.1 with client-certificate verification (``CERT_OPTIONAL``
or ``CERT_REQUIRED``). All keys are made in the test's temporary directory; nothing is committed.
This module holds no tests (the year-long cycle test of issue 15 uses it too).
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from ipaddress import ip_address
from pathlib import Path

import httpx
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from lifecert.services.context import AppContext
from server.app import create_app
from server.tls import TLSH11Protocol
from tests.integration.live_server import free_port


@dataclass(frozen=True)
class Issued:
    cert: Path
    key: Path
    subject: str  # RFC 4514
    der: bytes


def _name(cn: str, org: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


class TestCA:
    """A certificate authority living in ``folder`` (EC P-256 keys, one hour of validity around now)."""

    __test__ = False

    def __init__(self, folder: Path, name: str) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.name = _name(name, "lifecert test CA")
        now = datetime.now(UTC)
        self.cert = (
            x509.CertificateBuilder().subject_name(self.name).issuer_name(self.name)
            .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(hours=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False),
                           critical=True)
            .sign(self.key, hashes.SHA256())
        )
        self.pem = folder / f"{name}.pem"
        self.pem.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))

    def issue(self, stem: str, cn: str, *, server: bool = False, org: str = "Department") -> Issued:
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.now(UTC)
        b = (
            x509.CertificateBuilder().subject_name(_name(cn, org)).issuer_name(self.name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(hours=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH if server
                                                  else ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        )
        if server:
            b = b.add_extension(x509.SubjectAlternativeName([x509.IPAddress(ip_address("127.0.0.1"))]),
                                critical=False)
        cert = b.sign(self.key, hashes.SHA256())
        cert_path, key_path = self.folder / f"{stem}.crt", self.folder / f"{stem}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        key_path.chmod(0o600)
        return Issued(cert_path, key_path, cert.subject.rfc4514_string(),
                      cert.public_bytes(serialization.Encoding.DER))


@dataclass
class TLSServer:
    base_url: str
    ca: TestCA

    def client(self, cert: Issued | None = None, timeout: float = 120.0) -> httpx.Client:
        """An HTTPS client trusting the test CA, presenting ``cert`` (or no certificate)."""
        ctx = ssl.create_default_context(cafile=str(self.ca.pem))
        if cert is not None:
            ctx.load_cert_chain(str(cert.cert), str(cert.key))
        return httpx.Client(base_url=self.base_url, verify=ctx, timeout=timeout)


@contextmanager
def tls_server(ctx: AppContext, ca: TestCA, *, require_cert: bool = True,
               start_timeout: float = 60.0) -> Iterator[TLSServer]:
    """The lifecert app (``ctx``, no face warm-up) under uvicorn with TLS on 127.0.0.1, verifying client
    certificates against ``ca``. Stopped (bounded) when the block ends."""
    server_cert = ca.issue("server", "127.0.0.1", server=True, org="lifecert")
    with _uvicorn(ctx, start_timeout, http=TLSH11Protocol, ssl_certfile=str(server_cert.cert),
                  ssl_keyfile=str(server_cert.key), ssl_ca_certs=str(ca.pem),
                  ssl_cert_reqs=ssl.CERT_REQUIRED if require_cert else ssl.CERT_OPTIONAL) as port:
        yield TLSServer(f"https://127.0.0.1:{port}", ca)


@contextmanager
def plain_server(ctx: AppContext, start_timeout: float = 60.0) -> Iterator[str]:
    """The app over plain HTTP on 127.0.0.1 (behind a test reverse proxy); yields its base URL."""
    with _uvicorn(ctx, start_timeout) as port:
        yield f"http://127.0.0.1:{port}"


@contextmanager
def _uvicorn(ctx: AppContext, start_timeout: float, **options: object) -> Iterator[int]:
    app = create_app(ctx.settings, ctx)

    async def no_face_warmup(a: object) -> None:  # exchange needs no face engine
        app.state.warmups.clear()

    app.state.startup_hooks.append(no_face_warmup)
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on",
                            timeout_graceful_shutdown=5, **options)  # type: ignore[arg-type]
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, name="tls-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout
    while not srv.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            srv.should_exit = True
            raise RuntimeError("uvicorn with TLS did not start")
        time.sleep(0.05)
    try:
        yield port
    finally:
        srv.should_exit = True
        thread.join(timeout=30)
