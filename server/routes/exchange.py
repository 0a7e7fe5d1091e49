"""Department exchange API: a department uploads an extract over HTTPS and gets a receipt.

Authentication (lifecert/services/exchange.py): a client certificate verified by uvicorn (mutual
TLS, ``server/tls.py``) or by a trusted reverse proxy, and/or an HMAC-signed request with a
department API key. The body is the extract file itself (CSV or XLSX bytes), streamed to a private
temporary file while it is hashed — never held in memory — then imported by the CLI's code path in a
one-thread pool of its own (an import never occupies the face-inference workers).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from lifecert.domain.errors import ErrorCode, LifecertError
from lifecert.services import exchange
from lifecert.services.context import AppContext
from server.deps import ClientAddr, Ctx, DbId, InferencePool, is_trusted_proxy
from server.tls import client_cert_der

router = APIRouter(prefix="/api/v1/exchange", tags=["exchange"])

Department = Annotated[str | None, Query(pattern=r"^[a-z0-9][a-z0-9_\-]{1,63}$")]
Period = Annotated[str | None, Query(pattern=r"^\d{4}-\d{2}$")]
FileName = Annotated[str, Query(max_length=200)]
_WRITE_BLOCK = 1 << 20


def exchange_pool(request: Request) -> InferencePool:
    """One worker: imports run one at a time, off the event loop and off the inference pool."""
    pool: InferencePool | None = getattr(request.app.state, "exchange_pool", None)
    if pool is None:
        pool = request.app.state.exchange_pool = InferencePool(1, max_waiting=16)
    return pool


STALE_UPLOAD_S = 24 * 3600


def new_upload_folder(ctx: AppContext, prefix: str) -> Path:
    """A fresh private folder under ``data_dir/incoming`` for one upload (blocking: call in a thread).
    Folders left by a killed process more than a day ago are removed first."""
    d = ctx.settings.data_dir / "incoming"
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    cutoff = time.time() - STALE_UPLOAD_S
    for old in d.iterdir():
        try:
            if old.is_dir() and old.stat().st_mtime < cutoff:
                shutil.rmtree(old, ignore_errors=True)
        except OSError:
            continue
    return Path(tempfile.mkdtemp(prefix=prefix, dir=d))


def _peer_is_trusted_proxy(request: Request, ctx: AppContext) -> bool:
    return is_trusted_proxy(request.client.host if request.client else "", ctx.settings.trusted_proxy_networks)


def authenticate(ctx: AppContext, request: Request, path: str) -> tuple[exchange.Caller, str | None]:
    """(caller, declared body sha256 or None). Runs in a worker thread (database work)."""
    headers = {k.lower(): v for k, v in request.headers.items()}
    der = client_cert_der(request.scope)
    subject = fingerprint = None
    via = ""
    if der is not None:
        subject, fingerprint = exchange.cert_identity(der)
        via = "mtls"
    elif _peer_is_trusted_proxy(request, ctx):
        subject, fingerprint = exchange.proxy_certificate(headers, ctx.settings)
        via = "proxy" if subject or fingerprint else ""
    signed = exchange.HEADER_SIGNATURE in headers
    if not via and not signed:
        raise exchange.ExchangeAuthError("present a department client certificate or sign the request "
                                         "with a department API key")
    with ctx.db.session() as s:
        by_cert = (exchange.authenticate_certificate(s, subject=subject, fingerprint=fingerprint, via=via)
                   if via else None)
        declared = None
        if signed:
            by_key, declared = exchange.authenticate_signature(s, ctx.cipher, ctx.settings, request.method, path,
                                                               headers)
            if by_cert is not None and by_cert.department != by_key.department:
                raise exchange.ExchangeAuthError("the client certificate and the API key name different departments")
            return by_cert or by_key, declared
        if by_cert is None:  # pragma: no cover - via is set, so a certificate was checked
            raise exchange.ExchangeAuthError("no client certificate")
        return by_cert, None


async def receive_to_file(request: Request, path: Path, limit: int) -> tuple[str, int, bytes]:
    """Stream the body into a new 0600 file ``path``: (sha256 hex, size, first bytes). Writes go to a
    thread in 1 MiB blocks; the body limit middleware already bounds the size."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    h = hashlib.sha256()
    size = 0
    head = b""
    buf = bytearray()
    try:
        with os.fdopen(fd, "wb") as fh:
            async for chunk in request.stream():
                if not chunk:
                    continue
                h.update(chunk)
                size += len(chunk)
                if size > limit:
                    raise LifecertError(f"the extract is larger than {limit} bytes", code=ErrorCode.PAYLOAD_TOO_LARGE,
                                        limit=limit)
                if len(head) < 8:
                    head = (head + chunk)[:8]
                buf += chunk
                if len(buf) >= _WRITE_BLOCK:
                    await asyncio.to_thread(fh.write, bytes(buf))
                    buf.clear()
            if buf:
                await asyncio.to_thread(fh.write, bytes(buf))
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return h.hexdigest(), size, head


@router.post(
    "/extracts",
    summary="Upload one department extract (CSV or XLSX as the request body); returns the import receipt",
    responses={401: {"description": "UNAUTHENTICATED"}, 403: {"description": "FORBIDDEN"},
               409: {"description": "NONCE_USED (replayed signature), CONFLICT"},
               413: {"description": "PAYLOAD_TOO_LARGE"}, 422: {"description": "BAD_EXTRACT, BAD_MAPPING"}},
    openapi_extra={"requestBody": {"required": True, "description": "the extract file itself (streamed)", "content": {
        "text/csv": {"schema": {"type": "string", "format": "binary"}},
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {
            "schema": {"type": "string", "format": "binary"}},
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
        "parameters": [{"name": h, "in": "header", "required": False, "schema": {"type": "string"}}
                       for h in ("X-Lifecert-Key-Id", "X-Lifecert-Timestamp", "X-Lifecert-Content-SHA256",
                                 "X-Lifecert-Signature")]},
)
async def upload_extract(
    request: Request, ctx: Ctx, client: ClientAddr, department: Department = None, period: Period = None,
    file_name: FileName = "extract.csv",
) -> JSONResponse:
    pool = exchange_pool(request)
    path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    caller, declared = await pool.run(authenticate, ctx, request, path)
    exchange.check_department_matches(caller, department)
    folder = await asyncio.to_thread(new_upload_folder, ctx, "extract-")
    tmp = folder / exchange.safe_file_name(file_name)
    try:
        sha, size, head = await receive_to_file(request, tmp, ctx.settings.exchange.max_upload_bytes)
        if size == 0:
            raise LifecertError("the request body is empty; send the extract file as the body",
                                code=ErrorCode.BAD_EXTRACT)
        if declared is not None and declared != sha:
            raise exchange.ExchangeAuthError("the body does not match the signed X-Lifecert-Content-SHA256",
                                             reason="body_hash")
        named = folder / exchange.safe_file_name(file_name, head)
        if named != tmp:
            tmp = tmp.rename(named)
        receipt = await pool.run(exchange.import_extract, ctx.settings, ctx.db, caller, tmp, period=period,
                                 client_addr=client)
    finally:
        await asyncio.to_thread(shutil.rmtree, folder, True)
    body: dict[str, Any] = receipt.as_dict()
    return JSONResponse(body, status_code=200 if receipt.summary.already_imported else 201)


@router.get("/extracts", summary="This department's own imports, newest first (at most 100)")
async def list_extracts(request: Request, ctx: Ctx) -> JSONResponse:
    pool = exchange_pool(request)
    path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    caller, _ = await pool.run(authenticate, ctx, request, path)
    rows = await pool.run(exchange.department_history, ctx.db, caller)
    return JSONResponse({"department": caller.department, "imports": rows})


@router.get("/extracts/{import_id}", summary="The receipt of an earlier upload by the same department")
async def get_receipt(import_id: DbId, request: Request, ctx: Ctx) -> JSONResponse:
    pool = exchange_pool(request)
    caller, _ = await pool.run(authenticate, ctx, request, request.url.path)
    receipt = await pool.run(exchange.get_receipt, ctx.db, caller, import_id)
    return JSONResponse(receipt.as_dict())
