"""The service's warm-up loads what the first CONFIRMED session would otherwise load inside its request: with
template refresh on, the enrollment engine the refresh embeds with (benchmarks/README.md, verify_latency session
12: loaded lazily it stalled each server process once for ~1.5 s)."""

from __future__ import annotations

from pathlib import Path

from lifecert.engine.base import FaceEngine
from lifecert.services.context import AppContext
from lifecert.services.verification import VerificationService
from tests.conftest import make_settings


def _warmed(tmp_path: Path, frame_engine: FaceEngine, refresh: bool) -> AppContext:
    ctx = AppContext(make_settings(tmp_path, refresh={"enabled": refresh}))
    VerificationService(ctx, engine_factory=lambda: frame_engine).warm_up()
    return ctx


def test_given_template_refresh_on_when_the_service_warms_up_then_the_enrollment_engine_is_loaded(
    tmp_path: Path, frame_engine: FaceEngine
) -> None:
    ctx = _warmed(tmp_path, frame_engine, refresh=True)
    try:
        assert ctx.engine_loaded
    finally:
        ctx.close()


def test_given_template_refresh_off_when_the_service_warms_up_then_no_enrollment_engine_is_loaded(
    tmp_path: Path, frame_engine: FaceEngine
) -> None:
    ctx = _warmed(tmp_path, frame_engine, refresh=False)
    try:
        assert not ctx.engine_loaded
    finally:
        ctx.close()
