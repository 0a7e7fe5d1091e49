"""The console's photo fix runs the face pipeline once: one decode, one recogniser pass per view."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import select

from lifecert.engine.base import FaceEngine
from lifecert.engine.types import Face, ImageBGR
from lifecert.engine.views import profile_views
from lifecert.services import review, staff
from lifecert.services.context import AppContext
from lifecert.storage.models import ReviewKind, StaffUser
from tests.integration.console_support import case_row, make_case, make_pensioner, make_user


class CountingEngine(FaceEngine):
    """Delegates to the real engine and counts detector runs and recogniser passes."""

    def __init__(self, inner: FaceEngine) -> None:
        super().__init__(inner.detect_max_side)
        self.inner, self.info = inner, inner.info
        self.detects = 0
        self.passes = 0

    def detect(self, image: ImageBGR) -> list[Face]:
        self.detects += 1
        return self.inner.detect(image)

    def align(self, image: ImageBGR, face: Face) -> ImageBGR:
        return self.inner.align(image, face)

    def align_views(self, image: ImageBGR, face: Face, views):  # type: ignore[no-untyped-def]
        return self.inner.align_views(image, face, views)

    def quality(self, image: ImageBGR, face: Face, aligned: ImageBGR, num_faces: int = 1):  # type: ignore[no-untyped-def]
        return self.inner.quality(image, face, aligned, num_faces)

    def embed_aligned(self, crops: list[ImageBGR]) -> NDArray[np.float32]:
        self.passes += len(crops)
        return self.inner.embed_aligned(crops)


def test_given_an_enrollment_case_when_a_photo_is_fixed_then_one_detection_and_one_pass_per_view(
    ctx: AppContext, faces_dir: Path
) -> None:
    counting = CountingEngine(ctx.engine)
    ctx.set_engine(counting)
    make_user(ctx, "enr", "enrollment_staff")
    with ctx.db.session() as s:
        who = staff.principal_for(s.scalars(select(StaffUser).where(StaffUser.username == "enr")).one(), "cli")
    pid = make_pensioner(ctx)
    cid = make_case(ctx, pid, kind=ReviewKind.ENROLLMENT, reason="NO_FACE")
    good = (faces_dir / "lfw/images/Tony_Blair/Tony_Blair_0003.jpg").read_bytes()
    with ctx.db.session() as s:
        review.fix_photo(ctx, s, cid, who, good, filename="new.jpg")
    assert case_row(ctx, cid).decision == "photo_fixed"
    assert counting.detects == 1
    assert counting.passes == len(profile_views(ctx.settings.embedding.enroll_profile))  # 8, was 16
