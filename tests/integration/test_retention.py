"""Issue 11 Low "frames kept until someone runs lifecert purge": the service purges by itself,
in bounded runs."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from lifecert.services.context import AppContext
from lifecert.services.retention import retention_loop
from lifecert.services.verification import sessions_dir
from lifecert.storage.models_verification import VerificationSession
from server.app import create_app
from tests.integration.console_support import make_pensioner


def _old_session(ctx: AppContext, sid: str, days_old: int) -> None:
    pid = make_pensioner(ctx, len(sid))
    sessions_dir(ctx).mkdir(parents=True, exist_ok=True)
    (sessions_dir(ctx) / f"{sid}.bin").write_bytes(b"sealed frames")
    at = datetime.now(UTC) - timedelta(days=days_old)
    with ctx.db.session() as s:
        s.add(VerificationSession(id=sid, pensioner_id=pid, nonce_hash="0" * 64, challenges=["blink"], lead_in_ms=0,
                                  challenge_window_ms=1000, created_at=at, expires_at=at, frames_blob=f"{sid}.bin",
                                  decision="RETRY", scores={"match": 0.3}))


def _run_loop_once(ctx: AppContext) -> int:
    """One pass of the service's purge loop on its own event loop in a fresh thread: a browser test
    earlier in the session (Playwright's sync API) may leave a loop running in the main thread, where
    ``asyncio.run`` refuses to start."""
    with ThreadPoolExecutor(max_workers=1) as ex:
        return ex.submit(asyncio.run, retention_loop(ctx, first_delay_s=0, max_runs=1)).result(timeout=120)


def test_given_sessions_past_retention_when_the_service_loop_runs_then_frames_go_in_bounded_batches(
        data_ctx: AppContext) -> None:
    for i in range(3):
        _old_session(data_ctx, f"old{i}" + "x" * i, days_old=200)
    _old_session(data_ctx, "recent", days_old=1)
    settings = data_ctx.settings.model_copy(update={"retention_purge_batch": 2, "retention_purge_interval_s": 0.01})
    data_ctx.settings = settings

    runs = _run_loop_once(data_ctx)

    assert runs == 1
    left = sorted(p.name for p in sessions_dir(data_ctx).iterdir())
    assert len(left) == 2 and "recent.bin" in left  # one run: two of the three old sessions
    _run_loop_once(data_ctx)
    assert sorted(p.name for p in sessions_dir(data_ctx).iterdir()) == ["recent.bin"]
    with data_ctx.db.session() as s:
        assert s.get(VerificationSession, "recent").scores == {"match": 0.3}


def test_given_the_app_when_created_then_its_lifespan_starts_the_retention_loop(data_ctx: AppContext) -> None:
    app = create_app(ctx=data_ctx)

    assert "server.maintenance" in {getattr(h, "__module__", "") for h in app.state.startup_hooks}
