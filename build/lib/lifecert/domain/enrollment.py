"""Per-row outcomes of enrollment: a success (:class:`ItemOutcome`) or an :class:`ErrorCode`.

The failures are not a second list of strings: they are the error catalogue's own codes, and
:data:`ROW_ERRORS` names the ones an enrollment row can end with (the README lists them).
"""

from __future__ import annotations

from enum import StrEnum
from typing import TypeAlias

from lifecert.domain.errors import ErrorCode


class ItemOutcome(StrEnum):
    ENROLLED = "ENROLLED"
    REPLACED = "REPLACED"  # enrolled; a newer photo of the same face superseded the person's older template
    ALREADY_ENROLLED = "ALREADY_ENROLLED"  # same photo + model already enrolled: skipped (idempotent rerun)


ItemReason: TypeAlias = ItemOutcome | ErrorCode

# Error codes an enrollment row can end with, in the order reports and the README list them.
ROW_ERRORS: tuple[ErrorCode, ...] = (
    ErrorCode.NO_FACE,
    ErrorCode.MULTIPLE_FACES,
    ErrorCode.FACE_TOO_SMALL,
    ErrorCode.BLURRY,
    ErrorCode.TOO_DARK,
    ErrorCode.TOO_BRIGHT,
    ErrorCode.LOW_CONTRAST,
    ErrorCode.POSE_TOO_LARGE,
    ErrorCode.EYES_CLOSED,
    ErrorCode.BAD_ID_NUMBER,
    ErrorCode.UNREADABLE_IMAGE,
    ErrorCode.UNSUPPORTED_FORMAT,
    ErrorCode.IMAGE_TOO_LARGE,
    ErrorCode.FILE_MISSING,
    ErrorCode.DUPLICATE_ROW,
    ErrorCode.DUPLICATE_FACE,
    ErrorCode.ID_COLLISION,
)

# Rejects that go to the enrollment review queue (staff fix the photo, confirm a duplicate,
# or accept a new face for an ID number); a repeated manifest row is the manifest's problem.
REVIEWABLE: frozenset[ErrorCode] = frozenset(ROW_ERRORS) - {ErrorCode.DUPLICATE_ROW}


def item_reason(code: str) -> ItemReason:
    """Parse a stored reason code (a ValueError for anything else)."""
    if code in ItemOutcome.__members__:
        return ItemOutcome(code)
    err = ErrorCode(code)
    if err not in ROW_ERRORS:
        raise ValueError(f"{code} is not an enrollment row reason")
    return err


def is_success(reason: ItemReason) -> bool:
    return isinstance(reason, ItemOutcome)
