"""Application factory. Routers live in ``server/routes/<area>.py`` (each exposes ``router``)
and are included automatically, so areas never edit this file to add routes."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

import server.routes as routes_pkg
from lifecert.config import Settings, get_settings
from lifecert.services.context import AppContext
from server.errors import install_error_handlers


def create_app(settings: Settings | None = None, ctx: AppContext | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if getattr(app.state, "ctx", None) is None:
            app.state.ctx = AppContext(settings or get_settings())
        for hook in app.state.startup_hooks:
            await hook(app)
        yield
        for hook in app.state.shutdown_hooks:
            await hook(app)

    app = FastAPI(title="lifecert", version="0.1.0", lifespan=lifespan)
    app.state.ctx = ctx
    app.state.startup_hooks = []
    app.state.shutdown_hooks = []
    install_error_handlers(app)
    for mod in sorted(pkgutil.iter_modules(routes_pkg.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"server.routes.{mod.name}")
        if hasattr(module, "router"):
            app.include_router(module.router)
        if hasattr(module, "setup"):
            module.setup(app)
    return app
