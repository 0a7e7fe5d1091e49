"""Session creation rules: challenge policy and redraws, the per-ID limiter (issue 11 M1, issue 12 item 3)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from lifecert.config import VerificationSettings
from lifecert.domain.challenges import policy_violation
from lifecert.domain.errors import ErrorCode, LifecertError
from lifecert.engine.base import FaceEngine
from lifecert.services.context import AppContext
from lifecert.services.verification import VerificationService
from lifecert.storage.models import Pensioner
from lifecert.storage.models_verification import VerificationSession
from tests.conftest import make_settings
from tests.integration.verification_support import TEMPLATE_FRAME, VIDEO, enroll, read_video


@pytest.fixture(scope="module")
def video(faces_dir: Path) -> list[NDArray[np.uint8]]:
    return read_video(faces_dir / VIDEO)


@pytest.fixture
def vctx(tmp_path: Path, face_engine: FaceEngine) -> Iterator[AppContext]:
    c = AppContext(make_settings(tmp_path, verification=VerificationSettings(rate_limit_per_id_per_hour=2)))
    c.set_engine(face_engine)
    yield c
    c.close()


@pytest.fixture
def svc(vctx: AppContext, frame_engine: FaceEngine) -> VerificationService:
    return VerificationService(vctx, engine_factory=lambda: frame_engine)


@pytest.fixture
def pensioner(vctx: AppContext, video: list[NDArray[np.uint8]]) -> Pensioner:
    return enroll(vctx, video[TEMPLATE_FRAME], seq=31)


def _challenges(ctx: AppContext, session_id: str) -> list[str]:
    """The drawn set as stored (the client never sees it in advance)."""
    with ctx.db.session() as s:
        vs = s.get(VerificationSession, session_id)
        assert vs is not None
        return list(vs.challenges)


def _fullwidth(s: str) -> str:
    return "".join(chr(ord(c) - ord("0") + 0xFF10) if c.isdigit() else c for c in s)


def test_given_random_draws_when_sessions_start_then_every_set_obeys_the_policy(
    tmp_path: Path, face_engine: FaceEngine, frame_engine: FaceEngine, video: list[NDArray[np.uint8]]
) -> None:
    c = AppContext(make_settings(tmp_path, verification=VerificationSettings(session_ttl_seconds=0)))
    c.set_engine(face_engine)
    try:
        svc = VerificationService(c, engine_factory=lambda: frame_engine)
        p = enroll(c, video[TEMPLATE_FRAME], seq=33)
        ids = [svc.create_session(p.id_number, p.name, f"10.0.0.{i}").session_id for i in range(8)]
        sets = [tuple(_challenges(c, sid)) for sid in ids]
    finally:
        c.close()
    assert all(policy_violation(s) is None for s in sets), sets
    assert len(set(sets)) > 1  # with no lifetime to share, each session draws anew


def test_given_a_recent_session_when_the_same_id_starts_again_then_the_same_challenge_set(
    svc: VerificationService, pensioner: Pensioner
) -> None:
    first = svc.create_session(pensioner.id_number, pensioner.name, "10.0.0.1")
    second = svc.create_session(pensioner.id_number, pensioner.name, "10.0.0.2")
    assert sorted(_challenges(svc.ctx, second.session_id)) == sorted(_challenges(svc.ctx, first.session_id))
    assert second.session_id != first.session_id and second.step.nonce != first.step.nonce


def test_given_a_recent_set_of_an_older_policy_when_the_same_id_starts_again_then_a_fresh_draw(
    svc: VerificationService, pensioner: Pensioner
) -> None:
    first = svc.create_session(pensioner.id_number, pensioner.name, "10.0.0.1")
    with svc.ctx.db.session() as s:  # as drawn before session 11: a head motion + a blink, no open_mouth
        vs = s.get(VerificationSession, first.session_id)
        assert vs is not None
        vs.challenges = ["turn_left", "blink"]
        s.commit()
    second = svc.create_session(pensioner.id_number, pensioner.name, "10.0.0.2")
    assert "open_mouth" in _challenges(svc.ctx, second.session_id)


def test_given_full_width_digits_when_starting_then_the_same_per_id_bucket(
    svc: VerificationService, pensioner: Pensioner
) -> None:
    idn = pensioner.id_number
    svc.create_session(idn, pensioner.name, "10.0.0.1")
    svc.create_session(" " + _fullwidth(idn).lower() + "\u3000", pensioner.name, "10.0.0.1")
    with pytest.raises(LifecertError) as err:
        svc.create_session(_fullwidth(idn), pensioner.name, "10.0.0.1")
    assert err.value.code == ErrorCode.RATE_LIMITED


def test_given_a_stranger_exhausting_an_id_when_the_pensioner_starts_from_elsewhere_then_allowed(
    svc: VerificationService, pensioner: Pensioner
) -> None:
    for _ in range(2):
        svc.create_session(pensioner.id_number, pensioner.name, "203.0.113.9")
    with pytest.raises(LifecertError):
        svc.create_session(pensioner.id_number, pensioner.name, "203.0.113.9")
    # The pensioner's own phone has its own bucket for the ID (limit 2 per client, 6 over all).
    assert svc.create_session(pensioner.id_number, pensioner.name, "198.51.100.7").session_id


def test_given_many_clients_when_one_id_is_hammered_then_the_global_cap_holds(
    svc: VerificationService, pensioner: Pensioner
) -> None:
    codes = []
    for i in range(8):
        try:
            svc.create_session(pensioner.id_number, pensioner.name, f"192.0.2.{i}")
            codes.append("ok")
        except LifecertError as exc:
            codes.append(str(exc.code))
    assert codes == ["ok"] * 6 + ["RATE_LIMITED"] * 2
