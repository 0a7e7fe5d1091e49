"""Application factory. Routers live in ``server/routes/<area>.py`` (each exposes ``router``)
and are included automatically, so areas never edit this file to add routes.

Start-up (lifespan): the context (settings, database, engine) is built once; a bounded
inference pool of ``settings.inference_threads`` workers is created; models are warmed up
in the background — ``/healthz`` answers at once, ``/readyz`` turns 200 only after the
warm-up (engine loaded, each stage run once, 1:N index built). The pensioner's page
(``mobile-web/``) is served at ``/``.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import pkgutil
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

import server.routes as routes_pkg
from lifecert.config import Settings, get_settings
from lifecert.engine.manifest import installed_data
from lifecert.engine.pad import PadStatus, startup_pad
from lifecert.services.context import AppContext
from server import maintenance
from server.deps import BodyLimitMiddleware, InferencePool, configure_threads
from server.errors import install_error_handlers
from server.hardening import body_limit, install_headers

log = logging.getLogger(__name__)

def mobile_web_dir() -> Path | None:
    """The pensioner page: ``mobile-web/`` of a source checkout, else the copy a wheel installs
    under ``<prefix>/share/lifecert/mobile-web`` (pyproject's data-files); None if neither."""
    places = [Path(__file__).resolve().parents[1] / "mobile-web", *installed_data("mobile-web")]
    return next((d for d in places if (d / "index.html").is_file()), None)


def create_app(settings: Settings | None = None, ctx: AppContext | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if getattr(app.state, "ctx", None) is None:
            app.state.ctx = AppContext(settings or get_settings())
        c: AppContext = app.state.ctx
        configure_threads(1)
        # PAD (MiniFASNet pack): loaded once, or off with a logged reason; production refuses to
        # start without it unless LIFECERT_LIVENESS__ALLOW_NO_PAD=1 (lifecert.engine.pad.startup_pad).
        if getattr(app.state, "pad", None) is None:
            app.state.pad = await asyncio.to_thread(startup_pad, c.settings)
        if app.state.pad.model is not None:
            app.state.warmups.append(app.state.pad.model.warm_up)
        app.state.pool = InferencePool(c.settings.inference_threads)
        from lifecert.services.verification import VerificationService
        from lifecert.services.verification.sessions import utcnow

        app.state.verification = VerificationService(
            c, engine_factory=app.state.engine_factory, pad=app.state.pad.model, clock=app.state.clock or utcnow
        )
        app.state.warmups.insert(0, app.state.verification.warm_up)
        for hook in app.state.startup_hooks:
            await hook(app)
        task = asyncio.create_task(_warm_up(app))
        yield
        task.cancel()
        for hook in app.state.shutdown_hooks:
            await hook(app)
        app.state.pool.shutdown()

    # Interactive docs load third-party scripts: off unless LIFECERT_API_DOCS=true (/openapi.json stays).
    docs = (settings or (ctx.settings if ctx else None) or get_settings()).api_docs
    app = FastAPI(
        title="lifecert",
        version="0.1.0",
        lifespan=lifespan,
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
        description='Proof of life for pension agencies. Errors: {"error": {"code", "message", "details"}}.',
    )
    app.state.ctx = ctx
    app.state.ready = False
    app.state.pad = None  # PadStatus, set at start-up
    app.state.engine_factory = None  # tests may share an already loaded engine (one inference thread)
    app.state.clock = None  # tests of the paced timeline may pass a virtual UTC clock
    app.state.startup_hooks = []
    app.state.shutdown_hooks = []
    warmups: list[Callable[[], None]] = []
    app.state.warmups = warmups
    install_error_handlers(app)
    maintenance.install(app)  # scheduled retention purge

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"])
    async def readyz() -> JSONResponse:
        pad: PadStatus | None = app.state.pad
        extra = {"pad": pad.as_dict()["pad"], "pad_reason": pad.reason} if pad is not None else {}
        svc = getattr(app.state, "verification", None)
        if svc is not None:  # caseworker spot checks: whether the PAD grey band is on (values in the start-up log)
            extra["audit_band"] = "on" if svc.spot_checks.band is not None else "off"
        if app.state.ready:
            return JSONResponse({"status": "ready", **extra})
        return JSONResponse({"status": "starting", **extra}, status_code=503)

    for mod in sorted(pkgutil.iter_modules(routes_pkg.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"server.routes.{mod.name}")
        if hasattr(module, "router"):
            app.include_router(module.router)
        if hasattr(module, "setup"):
            module.setup(app)

    def settings_now() -> Settings | None:
        c: AppContext | None = app.state.ctx
        return c.settings if c else settings

    def limit_for(path: str) -> int | None:
        return body_limit(settings_now(), path)  # every path has a limit, checked before routes and auth

    install_headers(app, settings_now)
    app.add_middleware(BodyLimitMiddleware, limit_for=limit_for)
    page = mobile_web_dir()
    if page is not None:
        # Last: the catch-all mount must not shadow API routes.
        app.mount("/", StaticFiles(directory=page, html=True), name="mobile-web")
    else:
        log.warning("pensioner page not found (no mobile-web/ here and none installed): / is not served")
    return app


async def _warm_up(app: FastAPI) -> None:
    """Run every warm-up step once on EVERY pool thread (each thread holds its own engine);
    a barrier makes the pool start all its threads instead of reusing the first one."""
    pool: InferencePool = app.state.pool
    barrier = threading.Barrier(pool.workers)

    def on_each_thread(fn: Callable[[], None]) -> None:
        barrier.wait(timeout=600)
        fn()

    for fn in list(app.state.warmups):
        try:
            await asyncio.gather(*(pool.run(on_each_thread, fn) for _ in range(pool.workers)))
        except Exception:  # readiness stays false; the log says why
            log.exception("warm-up step %s failed", getattr(fn, "__qualname__", fn))
            return
        barrier.reset()
    app.state.ready = True
    log.info("warm-up done; ready")
