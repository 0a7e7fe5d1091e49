"""Paced verification with the fusion installed (real EdgeFace + YuNet weights, the talking-head video
acting the challenges on a virtual clock): the session is decided on the fused 1:1 score and the
fused 1:N fraud check; someone claiming another pensioner is caught by the fused 1:N."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from lifecert import cli_models
from lifecert.domain.errors import ErrorCode
from lifecert.engine.base import FaceEngine
from lifecert.engine.fusion import fusion_spec
from lifecert.engine.image import read_image_file
from lifecert.services.context import AppContext
from lifecert.services.rebuild import rebuild_second_templates
from lifecert.services.verification import VerificationService
from lifecert.storage.models_verification import VerificationSession
from tests.integration.verification_support import TEMPLATE_FRAME, enroll, verification_ctx
from tests.paced_client import Clip, Phone, SimClock, VirtualTime, service_sender, step_of


@pytest.fixture
def fctx(tmp_path: Path, face_engine: FaceEngine, shared_models_dir: Path) -> Iterator[AppContext]:
    for ctx in verification_ctx(tmp_path, face_engine, inference_threads=1):
        for pack in ("edgeface", "yunet"):
            cli_models.install_models(ctx.settings, shared_models_dir / pack, pack)
        yield ctx


def _session(ctx: AppContext, frame_engine: FaceEngine, id_number: str, name: str, clip: Clip) -> dict[str, Any]:
    clock = VirtualTime()
    svc = VerificationService(ctx, engine_factory=lambda: frame_engine, clock=clock)
    assert svc.fusion is not None, "fusion on: packs installed and calibrated"
    start = svc.create_session(id_number, name, "10.1.1.1")
    sim = SimClock(clock)
    phone = Phone(service_sender(svc, start.session_id, sim), step_of(start.step), clip, sim, act=False,
                  session_id=start.session_id)
    phone.neutral(1500)
    phone.run_step(clip.actions["blink"], reaction_ms=1200)
    r = phone.run_step(clip.actions["open_mouth"], reaction_ms=1200)
    assert r.status == "decided" and r.result is not None
    with ctx.db.session() as s:
        vs = s.get(VerificationSession, start.session_id)
        assert vs is not None
        return {"result": r.result, "scores": dict(vs.scores or {})}


def test_given_fusion_when_the_pensioner_verifies_then_confirmed_on_the_fused_score(
    fctx: AppContext, frame_engine: FaceEngine, video: list[NDArray[np.uint8]], clip: Clip, faces_dir: Path
) -> None:
    me = enroll(fctx, video[TEMPLATE_FRAME], seq=71)
    enroll(fctx, read_image_file(sorted((faces_dir / "photos").glob("*/*"))[0]), seq=72, name="周淑珍")
    assert rebuild_second_templates(fctx) == {"added edgeface": 2}

    out = _session(fctx, frame_engine, me.id_number, me.name, clip)

    assert (out["result"]["decision"], out["result"]["reason_code"]) == ("CONFIRMED", None), out["result"]
    fz = out["scores"]["fusion"]
    spec = fusion_spec(fctx.settings)
    assert spec is not None and fz["model"] == spec.name and fz["threshold"] == spec.model.threshold("verify")
    assert fz["score"] >= fz["threshold"] and fz["second_match"] > 0.3
    assert all(o["fused"] for o in fz["one_to_n"]) and all(x < fz["score"] for x in fz["other_fused"])


def test_given_fusion_when_someone_claims_another_pensioner_then_the_fused_1n_names_the_real_one(
    fctx: AppContext, frame_engine: FaceEngine, video: list[NDArray[np.uint8]], clip: Clip, faces_dir: Path
) -> None:
    me = enroll(fctx, video[TEMPLATE_FRAME], seq=73)
    victim = enroll(fctx, read_image_file(sorted((faces_dir / "photos").glob("*/*"))[0]), seq=74, name="周淑珍")
    rebuild_second_templates(fctx)

    out = _session(fctx, frame_engine, victim.id_number, victim.name, clip)

    assert (out["result"]["decision"], out["result"]["reason_code"]) == (
        "REVIEW", ErrorCode.MATCHES_OTHER_PENSIONER), out["result"]
    fz = out["scores"]["fusion"]
    top = fz["one_to_n"][0]
    assert top["pensioner_id"] == me.id and top["fused"] and top["score"] >= fz["threshold"] > fz["score"]
