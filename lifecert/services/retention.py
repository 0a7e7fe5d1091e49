"""Retention inside the service: verification frames, scores and best-frame photos past
``review_retention_days`` are purged by a background loop of the running service, not only when
someone remembers ``lifecert purge`` (issue 11 M9/Low). Each run is bounded
(``retention_purge_batch`` sessions), runs in a worker thread and is logged; a failing run is
logged and retried at the next interval, never crashing the service.
"""

from __future__ import annotations

import asyncio
import logging

from lifecert.services.context import AppContext
from lifecert.services.verification import purge_expired
from lifecert.services.verification.store import PurgeReport

log = logging.getLogger(__name__)


def purge_once(ctx: AppContext) -> PurgeReport:
    r = purge_expired(ctx, limit=ctx.settings.retention_purge_batch)
    log.info("retention purge: %d sessions (%d frame files, %d best-frame photos), %d held for open review",
             r.sessions, r.blobs_deleted, r.photos_deleted, r.held_open_review)
    return r


async def retention_loop(ctx: AppContext, *, first_delay_s: float = 60.0, max_runs: int | None = None) -> int:
    """Purge every ``settings.retention_purge_interval_s`` seconds until cancelled (or ``max_runs``
    runs, for tests). A run that purged a full batch is followed at once by the next one. Returns
    the number of runs."""
    interval = ctx.settings.retention_purge_interval_s
    if interval <= 0:
        log.warning("retention purge is off (LIFECERT_RETENTION_PURGE_INTERVAL_S=0): run 'lifecert purge' yourself")
        return 0
    runs = 0
    await asyncio.sleep(first_delay_s)
    while max_runs is None or runs < max_runs:
        try:
            r = await asyncio.to_thread(purge_once, ctx)
            full = r.sessions >= ctx.settings.retention_purge_batch
        except Exception:  # the service keeps running; the next interval retries
            log.exception("retention purge failed; retrying in %.0f s", interval)
            full = False
        runs += 1
        if not full and (max_runs is None or runs < max_runs):
            await asyncio.sleep(interval)
    return runs
