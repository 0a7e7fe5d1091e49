"""Per-item outcomes of batch enrollment."""

from __future__ import annotations

from enum import StrEnum


class ItemReason(StrEnum):
    ENROLLED = "ENROLLED"
    REPLACED = "REPLACED"  # enrolled; a newer photo superseded the person's older template
    ALREADY_ENROLLED = "ALREADY_ENROLLED"  # same photo + model already enrolled: skipped (idempotent rerun)
    NO_FACE = "NO_FACE"
    MULTIPLE_FACES = "MULTIPLE_FACES"
    FACE_TOO_SMALL = "FACE_TOO_SMALL"
    BLURRY = "BLURRY"
    TOO_DARK = "TOO_DARK"
    TOO_BRIGHT = "TOO_BRIGHT"
    LOW_CONTRAST = "LOW_CONTRAST"
    POSE_TOO_LARGE = "POSE_TOO_LARGE"
    EYES_CLOSED = "EYES_CLOSED"
    BAD_ID_NUMBER = "BAD_ID_NUMBER"
    UNREADABLE_IMAGE = "UNREADABLE_IMAGE"
    UNSUPPORTED_FORMAT = "UNSUPPORTED_FORMAT"
    IMAGE_TOO_LARGE = "IMAGE_TOO_LARGE"
    FILE_MISSING = "FILE_MISSING"
    DUPLICATE_ROW = "DUPLICATE_ROW"
    DUPLICATE_FACE = "DUPLICATE_FACE"  # matches another person's template: flagged for review, not merged

    @property
    def is_success(self) -> bool:
        return self in (ItemReason.ENROLLED, ItemReason.REPLACED, ItemReason.ALREADY_ENROLLED)


# Rejects that go to the enrollment review queue (staff can fix the photo or confirm a duplicate).
REVIEWABLE = frozenset(
    r for r in ItemReason if not r.is_success and r not in (ItemReason.DUPLICATE_ROW,)
)
