"""``lifecert exchange ...``: department credentials for the exchange API, and its mutual-TLS listener."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    from lifecert.cli import friendly_errors

    ex = typer.Typer(no_args_is_help=True, help="Department exchange API: API keys, client certificates, TLS listener")
    app.add_typer(ex, name="exchange")

    @ex.command("key-create")
    @friendly_errors
    def key_create(department: Annotated[str, typer.Argument(help="department code (its mapping file name)")]) -> None:
        """A new API key for a department. The secret is printed ONCE; rotate = create, switch, revoke the old."""
        from lifecert.services import audit, exchange
        from lifecert.services.context import AppContext

        with AppContext() as ctx, ctx.db.session() as s:
            k = exchange.create_api_key(s, ctx.cipher, department, actor=audit.cli_actor())
        typer.echo(f"key id: {k.key_id}\nsecret: {k.secret}\n(hand the secret to the department over a separate "
                   "channel; it is not shown again)")

    @ex.command("cert-add")
    @friendly_errors
    def cert_add(
        department: Annotated[str, typer.Argument(help="department code")],
        subject: Annotated[str | None, typer.Option(help="RFC 4514 subject, e.g. 'CN=police,O=...,C=CN'")] = None,
        fingerprint: Annotated[str | None, typer.Option(help="sha256 of the DER certificate (hex)")] = None,
        cert_file: Annotated[Path | None, typer.Option(help="the department's PEM certificate: map its fingerprint")]
        = None,
    ) -> None:
        """Map a department's client certificate (mutual TLS) to the department."""
        from lifecert.services import audit, exchange
        from lifecert.services.context import AppContext

        if cert_file is not None:
            _, fingerprint = exchange.cert_identity(exchange.pem_to_der(cert_file.read_text()))
        with AppContext() as ctx, ctx.db.session() as s:
            c = exchange.add_certificate(s, department, subject=subject, fingerprint=fingerprint,
                                         actor=audit.cli_actor())
            typer.echo(f"{c.key_id}: {c.kind} {c.match} -> {department}")

    @ex.command("revoke")
    @friendly_errors
    def revoke(key_id: Annotated[str, typer.Argument(help="xk_... or xc_... from 'list'")]) -> None:
        """Revoke an API key or a certificate mapping (takes effect on the next request)."""
        from lifecert.services import audit, exchange
        from lifecert.services.context import AppContext

        with AppContext() as ctx, ctx.db.session() as s:
            c = exchange.revoke(s, key_id, actor=audit.cli_actor())
            typer.echo(f"{c.key_id} of {c.department} revoked")

    @ex.command("list")
    @friendly_errors
    def list_() -> None:
        """Every department credential (secrets are never shown)."""
        from lifecert.services import exchange
        from lifecert.services.context import AppContext

        with AppContext() as ctx, ctx.db.session() as s:
            for c in exchange.list_credentials(s):
                state = f"revoked {c.revoked_at:%Y-%m-%d}" if c.revoked_at else "active"
                used = f"last used {c.last_used_at:%Y-%m-%d %H:%M}" if c.last_used_at else "never used"
                typer.echo(f"{c.key_id}  {c.department:<28} {c.kind:<17} {state:<18} {used}  {c.match}")

    @ex.command("upload")
    @friendly_errors
    def upload(
        file: Annotated[Path, typer.Argument(help="the extract (CSV or XLSX)")],
        url: Annotated[str, typer.Option(help="the agency's base URL, e.g. https://lifecert.example.gov.cn:8443")],
        department: Annotated[str, typer.Option(help="your department code")],
        period: Annotated[str | None, typer.Option(help="month covered, YYYY-MM")] = None,
        key_id: Annotated[str | None, typer.Option(help="API key id (xk_...); the secret is read from "
                                                   "LIFECERT_EXCHANGE_SECRET")] = None,
        cert: Annotated[Path | None, typer.Option(help="client certificate (PEM) for mutual TLS")] = None,
        key: Annotated[Path | None, typer.Option(help="its private key (PEM)")] = None,
        ca: Annotated[Path | None, typer.Option(help="CA bundle that issued the agency's server certificate")] = None,
        timeout: Annotated[float, typer.Option(help="seconds the whole upload may take")] = 1800.0,
    ) -> None:
        """The reference client a department runs: streams FILE to the exchange API (signed with an API key
        and/or over mutual TLS) and prints the receipt (JSON). Exit code 2 on a refusal."""
        import hashlib
        import json
        import ssl
        from collections.abc import Iterator
        from urllib.parse import urlencode

        import httpx

        from lifecert.domain.errors import ErrorCode, LifecertError
        from lifecert.services import exchange

        if not file.is_file():
            raise LifecertError(f"{file} does not exist", code=ErrorCode.FILE_MISSING)
        q = {"department": department, "file_name": file.name} | ({"period": period} if period else {})
        path = f"/api/v1/exchange/extracts?{urlencode(q)}"
        headers: dict[str, str] = {"Content-Type": "application/octet-stream"}
        if key_id:
            secret = os.environ.get("LIFECERT_EXCHANGE_SECRET", "")
            if not secret:
                raise LifecertError("set LIFECERT_EXCHANGE_SECRET to the API key's secret", code=ErrorCode.CONFIG_ERROR)
            h = hashlib.sha256()
            with file.open("rb") as fh:
                while block := fh.read(1 << 20):
                    h.update(block)
            headers |= exchange.signed_headers(key_id, secret, "POST", path, h.hexdigest())
        ctx = ssl.create_default_context(cafile=str(ca) if ca else None)
        if cert is not None:
            ctx.load_cert_chain(str(cert), str(key) if key else None)

        def body() -> Iterator[bytes]:
            with file.open("rb") as fh:
                while block := fh.read(1 << 20):
                    yield block

        with httpx.Client(base_url=url, verify=ctx, timeout=timeout) as c:
            r = c.post(path, content=body(), headers=headers)
        typer.echo(json.dumps(r.json() if r.headers.get("content-type", "").startswith("application/json")
                              else {"status": r.status_code, "body": r.text[:500]}, ensure_ascii=False, indent=1))
        if r.status_code >= 400:
            raise typer.Exit(2)

    @ex.command("serve")
    @friendly_errors
    def serve(
        certfile: Annotated[Path, typer.Option(help="server certificate (PEM, with chain)")],
        keyfile: Annotated[Path, typer.Option(help="server private key (PEM)")],
        ca_certs: Annotated[Path, typer.Option(help="CA bundle that issues department client certificates")],
        host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
        port: Annotated[int, typer.Option(help="TCP port")] = 8443,
        require_client_cert: Annotated[bool, typer.Option(help="refuse the TLS handshake without a client "
                                                          "certificate (off: API keys alone also work)")] = True,
        warm_faces: Annotated[bool, typer.Option(help="also warm up the face engine (only when this listener "
                                                 "serves pensioners too; the exchange needs none)")] = False,
    ) -> None:
        """The service over HTTPS with client-certificate verification (mutual TLS in uvicorn itself).
        The certificate's subject or fingerprint must be mapped with 'cert-add'."""
        import ssl

        import uvicorn

        from lifecert.domain.errors import ErrorCode, LifecertError
        from server.app import create_app
        from server.deps import configure_threads
        from server.tls import TLSH11Protocol

        if not os.environ.get("LIFECERT_ENV"):
            raise LifecertError("set LIFECERT_ENV before serving; the service does not guess",
                                code=ErrorCode.CONFIG_ERROR)
        configure_threads(1)
        app = create_app()
        if not warm_faces:
            async def no_face_warmup(a: object) -> None:
                app.state.warmups.clear()  # the face engine still loads on first use, if ever

            app.state.startup_hooks.append(no_face_warmup)
        uvicorn.run(app, host=host, port=port, log_config=None, proxy_headers=False, http=TLSH11Protocol,
                    ssl_certfile=str(certfile), ssl_keyfile=str(keyfile), ssl_ca_certs=str(ca_certs),
                    ssl_cert_reqs=ssl.CERT_REQUIRED if require_client_cert else ssl.CERT_OPTIONAL)
