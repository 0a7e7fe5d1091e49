"""``/metrics`` (Prometheus text format), request ids and per-route latency.

Every request gets a request id (the caller's ``X-Request-ID`` when it is a short token,
else a new one), echoed in the response header and put on every log line written while it
is served (lifecert.services.logs). Latency is recorded per route *template*
(``/api/v1/sessions/{session_id}/steps/{step}/frames``), never per concrete path, so the label set stays
small and holds no identifiers. ``/metrics`` carries no personal data; the reverse proxy
keeps it internal (deploy/nginx.conf).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable

from fastapi import APIRouter, FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from lifecert.services.context import AppContext
from lifecert.services.logs import request_id_var
from lifecert.services.metrics import Metrics, new_registry

log = logging.getLogger(__name__)
router = APIRouter(tags=["ops"])

_RID_RE = re.compile(r"[A-Za-z0-9._-]{1,64}")
INDEX_REFRESH_SECONDS = 2.0


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    reg = getattr(request.app.state, "metrics_registry", None)
    body = generate_latest(reg) if reg is not None else b""
    return Response(body, media_type=CONTENT_TYPE_LATEST)


def setup(app: FastAPI) -> None:
    app.state.metrics = None
    app.state.metrics_registry = None

    async def start(app: FastAPI) -> None:
        ctx: AppContext = app.state.ctx
        reg, m = new_registry(ctx)
        app.state.metrics, app.state.metrics_registry = m, reg
        svc = getattr(app.state, "verification", None)
        if svc is not None:
            svc.metrics = m
        app.state.index_refresher = asyncio.create_task(_refresh_index(app))

    async def stop(app: FastAPI) -> None:
        task = getattr(app.state, "index_refresher", None)
        if task is not None:
            task.cancel()

    app.state.startup_hooks.append(start)
    app.state.shutdown_hooks.append(stop)

    @app.middleware("http")
    async def request_context(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        given = request.headers.get("x-request-id", "")
        rid = given if _RID_RE.fullmatch(given) else uuid.uuid4().hex
        token = request_id_var.set(rid)
        t0 = time.perf_counter()
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
            response.headers["X-Request-ID"] = rid
            return response
        finally:
            m: Metrics | None = request.app.state.metrics
            if m is not None:
                route = request.scope.get("route")
                path = getattr(route, "path", None) or "other"
                m.http_seconds.labels(path, request.method, f"{status // 100}xx").observe(time.perf_counter() - t0)
            request_id_var.reset(token)


async def _refresh_index(app: FastAPI) -> None:
    """Keep this node's 1:N index in step with the shared database: every INDEX_REFRESH_SECONDS the
    template stamp is compared and the index rebuilt when another node (or a batch job) changed
    the templates. Searches check the stamp themselves too, so this only moves the rebuild off
    the first search; the loop runs in the inference pool and never blocks the event loop."""
    ctx: AppContext = app.state.ctx

    def once() -> bool:
        with ctx.db.session() as s:
            return ctx.index.refresh(s, ctx.model.key)

    while True:
        await asyncio.sleep(INDEX_REFRESH_SECONDS)
        if not app.state.ready:
            continue
        try:
            if await app.state.pool.run(once):
                log.info("1:N index reloaded: templates changed in the database")
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("1:N index refresh failed; searches still check the stamp themselves")
