"""benchmarks/draw_hook.py: verify_latency's sessions (all one enrolled person) get production's draw each time."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from benchmarks.draw_hook import install
from lifecert.config import VerificationSettings
from lifecert.domain.challenges import drawable
from lifecert.engine.base import FaceEngine
from lifecert.services.context import AppContext
from lifecert.services.verification import VerificationService
from lifecert.storage.models_verification import VerificationSession
from tests.conftest import make_settings
from tests.integration.verification_support import TEMPLATE_FRAME, VIDEO, enroll, read_video


def test_given_the_draw_hook_when_one_pensioner_starts_sessions_within_their_lifetime_then_each_is_a_fresh_draw(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, face_engine: FaceEngine, frame_engine: FaceEngine,
    faces_dir: Path
) -> None:
    # restored after the test: install() replaces the method on the class
    monkeypatch.setattr(VerificationService, "_challenges_for", VerificationService._challenges_for)
    install()
    c = AppContext(make_settings(tmp_path, verification=VerificationSettings(rate_limit_per_id_per_hour=100)))
    c.set_engine(face_engine)
    try:
        svc = VerificationService(c, engine_factory=lambda: frame_engine)
        svc.rng = random.Random(7)  # pinned: the same eight draws every run
        p = enroll(c, read_video(faces_dir / VIDEO)[TEMPLATE_FRAME], seq=35)
        sets = []
        for i in range(8):  # production would give the first session's set again (within the 300 s lifetime)
            sid = svc.create_session(p.id_number, p.name, f"10.0.0.{i}").session_id
            with c.db.session() as s:
                vs = s.get(VerificationSession, sid)
                assert vs is not None
                sets.append(tuple(vs.challenges))
    finally:
        c.close()
    assert all(drawable(s) for s in sets), sets
    assert len({frozenset(s) for s in sets}) > 1, sets
