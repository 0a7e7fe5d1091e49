"""Request dependencies (context, database unit of work, client address), the bounded
inference thread pool, thread-count configuration and the early request-body limit."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Path, Query, Request
from sqlalchemy.orm import Session

from lifecert.services.context import AppContext
from lifecert.services.verification import VerificationService

T = TypeVar("T")

THREAD_ENV_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "ORT_NUM_THREADS")


def configure_threads(intra_op: int = 1) -> None:
    """Intra-op threads per inference call (OpenMP/BLAS/ONNX Runtime/OpenCV).

    Parallelism comes from the pool (``settings.inference_threads`` workers, one call
    each), so each call runs single-threaded by default: total busy threads = workers,
    no oversubscription on small machines. Must run before the libraries start their
    thread pools to take full effect (``lifecert serve`` calls it first thing).
    """
    for var in THREAD_ENV_VARS:
        os.environ[var] = str(intra_op)
    import cv2

    cv2.setNumThreads(intra_op)


class InferencePool:
    """Bounded pool for blocking work (decode, detect, embed, database). ``workers`` threads;
    at most ``max_waiting`` calls queue behind them, further callers wait on the semaphore
    (back-pressure on the event loop instead of an unbounded executor queue)."""

    def __init__(self, workers: int, max_waiting: int | None = None) -> None:
        self.workers = max(1, workers)
        self._ex = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="inference")
        self._sem = asyncio.Semaphore(self.workers + (max_waiting if max_waiting is not None else 4 * self.workers))

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        async with self._sem:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._ex, partial(fn, *args, **kwargs))

    def submit_sync(self, fn: Callable[..., T], *args: Any) -> T:
        return self._ex.submit(fn, *args).result()

    def shutdown(self) -> None:
        self._ex.shutdown(wait=False, cancel_futures=True)


def get_ctx(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


def get_session(ctx: Annotated[AppContext, Depends(get_ctx)]) -> Iterator[Session]:
    """The request's unit of work: committed (or rolled back) when the endpoint returns, BEFORE the response
    is sent (``DbSession`` declares ``scope="function"``; see there)."""
    with ctx.db.session() as s:
        yield s


def client_addr(request: Request) -> str:
    """The client's address: the peer, or — when the peer is a configured trusted proxy
    (``LIFECERT_TRUSTED_PROXIES``) — the nearest untrusted address in ``X-Forwarded-For``."""
    peer = request.client.host if request.client else ""
    ctx: AppContext | None = getattr(request.app.state, "ctx", None)
    if ctx is None:
        return peer
    return resolve_client_addr(peer, request.headers.getlist("x-forwarded-for"), ctx.settings.trusted_proxy_networks)


def is_trusted_proxy(addr: str, trusted: list[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    """Whether ``addr`` (a peer address) lies in one of the configured trusted proxy networks."""
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        return False
    return any(ip in net for net in trusted)


def resolve_client_addr(
    peer: str, forwarded_for: list[str], trusted: list[ipaddress.IPv4Network | ipaddress.IPv6Network]
) -> str:
    """Walk ``X-Forwarded-For`` from the right (the hop our proxy appended) while the hop is a
    trusted proxy; the first untrusted hop is the client. Anything a client writes into the
    header itself sits further left and is never reached past an untrusted hop. A malformed
    hop ends the walk at the last trusted address seen (it is not believed)."""

    def is_trusted(addr: str) -> bool:
        return is_trusted_proxy(addr, trusted)

    if not trusted or not is_trusted(peer):
        return peer
    hops = [h.strip() for line in forwarded_for for h in line.split(",") if h.strip()]
    current = peer
    for hop in reversed(hops):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return current
        current = hop
        if not is_trusted(hop):
            return hop
    return current


def get_pool(request: Request) -> InferencePool:
    pool: InferencePool = request.app.state.pool
    return pool


def get_password_pool(request: Request) -> InferencePool:
    """Small pool for argon2 (CPU and 64 MiB per hash): at most ``PASSWORD_WORKERS`` hashes at once,
    off the event loop, so a login flood can neither freeze other requests nor exhaust memory."""
    pool: InferencePool | None = getattr(request.app.state, "password_pool", None)
    if pool is None:  # made on first use: an app may be started and stopped several times (tests)
        pool = request.app.state.password_pool = InferencePool(PASSWORD_WORKERS, max_waiting=256)
    return pool


PASSWORD_WORKERS = 2


def get_verification(request: Request) -> VerificationService:
    svc: VerificationService = request.app.state.verification
    return svc


# Row ids and paging numbers in URLs: bounded, so 2**64 or -1 is a 422 and never reaches the
# database driver (which raised OverflowError -> 500 on SQLite, DataError on PostgreSQL).
MAX_DB_INT = 2**63 - 1
DbId = Annotated[int, Path(ge=1, le=MAX_DB_INT)]
PageNo = Annotated[int, Query(ge=1, le=1_000_000)]
Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0, le=100_000_000)]

Ctx = Annotated[AppContext, Depends(get_ctx)]
# scope="function": the session's commit runs when the endpoint returns, before the response starts. With
# FastAPI's default ("request", FastAPI >= 0.118) it ran after the response was sent: a browser following a
# decision's 303 could load the case page before the decision was committed (seen on a real uvicorn: 4 of 750
# followed redirects showed the undecided case), and a commit that failed was a decision lost after the
# caseworker had been sent to the page as if it were done.
DbSession = Annotated[Session, Depends(get_session, scope="function")]
ClientAddr = Annotated[str, Depends(client_addr)]
Pool = Annotated[InferencePool, Depends(get_pool)]
PasswordPool = Annotated[InferencePool, Depends(get_password_pool)]
Verification = Annotated[VerificationService, Depends(get_verification)]


# -- request body limit ---------------------------------------------------------------

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class _TooLarge(Exception):
    pass


class BodyLimitMiddleware:
    """Reject oversize request bodies EARLY with 413 PAYLOAD_TOO_LARGE.

    ``limit_for(path)`` gives the byte limit of a path (None: no limit). A declared
    Content-Length above the limit is refused before any byte of the body is read;
    a body without one (chunked) is counted while it streams and refused as soon as
    it passes the limit — it is never read whole.
    """

    def __init__(
        self, app: Callable[[Scope, Receive, Send], Awaitable[None]], limit_for: Callable[[str], int | None]
    ) -> None:
        self.app = app
        self.limit_for = limit_for

    async def _reject(self, send: Send, limit: int) -> None:
        body = json.dumps(
            {
                "error": {
                    "code": "PAYLOAD_TOO_LARGE",
                    "message": f"request body is larger than {limit} bytes",
                    "details": {"limit": limit},
                }
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope.get("path", ""))
        if limit is None:
            await self.app(scope, receive, send)
            return
        for k, v in scope.get("headers", []):
            if k == b"content-length":
                try:
                    declared = int(v)
                except ValueError:
                    declared = 0
                if declared > limit:
                    await self._reject(send, limit)
                    return
        state = {"seen": 0, "over": False, "started": False}

        async def limited_receive() -> Message:
            msg = await receive()
            if msg["type"] == "http.request":
                state["seen"] += len(msg.get("body", b""))
                if state["seen"] > limit:
                    state["over"] = True
                    raise _TooLarge
            return msg

        async def guarded_send(msg: Message) -> None:
            if state["over"]:
                return  # the app's error response for the aborted read is replaced by ours
            if msg["type"] == "http.response.start":
                state["started"] = True
            await send(msg)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except _TooLarge:
            pass
        except Exception:
            if not state["over"]:
                raise
        if state["over"] and not state["started"]:
            await self._reject(send, limit)
