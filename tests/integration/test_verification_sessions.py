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
        sets = [tuple(svc.create_session(p.id_number, p.name, f"10.0.0.{i}").challenges) for i in range(8)]
    finally:
        c.close()
    assert all(policy_violation(s) is None for s in sets), sets
    assert len(set(sets)) > 1  # with no lifetime to share, each session draws anew


def test_given_a_recent_session_when_the_same_id_starts_again_then_the_same_challenge_set(
    svc: VerificationService, pensioner: Pensioner
) -> None:
    first = svc.create_session(pensioner.id_number, pensioner.name, "10.0.0.1")
    second = svc.create_session(pensioner.id_number, pensioner.name, "10.0.0.2")
    assert sorted(second.challenges) == sorted(first.challenges)
    assert second.session_id != first.session_id and second.nonce != first.nonce


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


def test_given_staging_when_a_one_shot_session_is_asked_then_refused_before_any_lookup(tmp_path: Path) -> None:
    import base64
    import secrets

    from lifecert.config import Settings

    s = Settings(
        env="staging",
        data_dir=tmp_path / "data",
        template_key=base64.b64encode(secrets.token_bytes(32)).decode(),  # type: ignore[arg-type]
        session_secret=secrets.token_urlsafe(32),  # type: ignore[arg-type]
        audit_key=secrets.token_urlsafe(32),  # type: ignore[arg-type]
    )
    with AppContext(s) as c:
        svc = VerificationService(c, engine_factory=lambda: (_ for _ in ()).throw(AssertionError("no engine")))
        with pytest.raises(LifecertError) as err:
            svc.create_session("110101195003010217", "王秀英", "10.0.0.9", protocol="oneshot")
        assert err.value.code == ErrorCode.BAD_REQUEST
        with pytest.raises(LifecertError) as paced_err:  # the paced protocol goes on to the lookup
            svc.create_session("110101195003010217", "王秀英", "10.0.0.9", protocol="paced")
        assert paced_err.value.code in (ErrorCode.NOT_FOUND, ErrorCode.BAD_ID_NUMBER)
