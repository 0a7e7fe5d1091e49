"""Background duties of a running service (started in the lifespan, cancelled at shutdown)."""

from __future__ import annotations

import asyncio
import contextlib

from fastapi import FastAPI

from lifecert.services.retention import retention_loop

RETENTION_FIRST_DELAY_S = 60.0  # let the warm-up finish before the first purge


def install(app: FastAPI) -> None:
    async def start(app: FastAPI) -> None:
        app.state.retention_task = asyncio.create_task(
            retention_loop(app.state.ctx, first_delay_s=RETENTION_FIRST_DELAY_S), name="retention-purge")

    async def stop(app: FastAPI) -> None:
        task: asyncio.Task[int] | None = getattr(app.state, "retention_task", None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    app.state.startup_hooks.append(start)
    app.state.shutdown_hooks.append(stop)
