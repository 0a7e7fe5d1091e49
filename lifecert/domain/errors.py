"""One catalogue of typed errors with stable codes.

Codes are part of the public contract: they appear in API responses, in batch
reports and in test assertions. The server maps :class:`LifecertError` to HTTP
in exactly one place (``server/errors.py``); the core never raises HTTP errors.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class ErrorCode(StrEnum):
    # input
    BAD_ID_NUMBER = "BAD_ID_NUMBER"
    BAD_REQUEST = "BAD_REQUEST"
    UNREADABLE_IMAGE = "UNREADABLE_IMAGE"
    UNSUPPORTED_FORMAT = "UNSUPPORTED_FORMAT"
    IMAGE_TOO_LARGE = "IMAGE_TOO_LARGE"
    FILE_MISSING = "FILE_MISSING"
    BAD_MANIFEST = "BAD_MANIFEST"
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
    BAD_MAPPING = "BAD_MAPPING"
    BAD_EXTRACT = "BAD_EXTRACT"
    # face quality
    NO_FACE = "NO_FACE"
    MULTIPLE_FACES = "MULTIPLE_FACES"
    FACE_TOO_SMALL = "FACE_TOO_SMALL"
    BLURRY = "BLURRY"
    TOO_DARK = "TOO_DARK"
    TOO_BRIGHT = "TOO_BRIGHT"
    LOW_CONTRAST = "LOW_CONTRAST"
    POSE_TOO_LARGE = "POSE_TOO_LARGE"
    EYES_CLOSED = "EYES_CLOSED"
    LOW_QUALITY = "LOW_QUALITY"
    # enrollment rows (besides the input and face-quality codes above)
    DUPLICATE_ROW = "DUPLICATE_ROW"  # the ID number appears earlier in the same manifest
    DUPLICATE_FACE = "DUPLICATE_FACE"  # the face matches another pensioner's template
    ID_COLLISION = "ID_COLLISION"  # the ID number is enrolled with another face (or name): not replaced
    # verification
    LIVENESS_FAILED = "LIVENESS_FAILED"
    PRESENTATION_ATTACK = "PRESENTATION_ATTACK"  # decision reason only: the pensioner sees a neutral text
    NOT_FOUND = "NOT_FOUND"
    NO_TEMPLATE = "NO_TEMPLATE"
    SESSION_EXPIRED = "SESSION_EXPIRED"
    NONCE_USED = "NONCE_USED"
    RATE_LIMITED = "RATE_LIMITED"
    PENSIONER_SUSPENDED = "PENSIONER_SUSPENDED"
    BAD_NONCE = "BAD_NONCE"
    TOO_FEW_FRAMES = "TOO_FEW_FRAMES"
    TOO_MANY_FRAMES = "TOO_MANY_FRAMES"
    BAD_TIMESTAMPS = "BAD_TIMESTAMPS"
    FACE_NOT_CENTRED = "FACE_NOT_CENTRED"
    CHALLENGE_NOT_SEEN = "CHALLENGE_NOT_SEEN"
    LOW_MATCH = "LOW_MATCH"
    DIFFERENT_PERSONS = "DIFFERENT_PERSONS"
    MATCHES_OTHER_PENSIONER = "MATCHES_OTHER_PENSIONER"
    TOO_MANY_RETRIES = "TOO_MANY_RETRIES"
    # a session that passed every check while a case of the same pensioner still awaits a caseworker (an earlier
    # session refused for signs of an attack, a death record, a tip-off): held for review too (rules.hold)
    HELD_FOR_REVIEW = "HELD_FOR_REVIEW"
    # models / configuration
    MODEL_MISSING = "MODEL_MISSING"
    MODEL_MISMATCH = "MODEL_MISMATCH"
    CONFIG_ERROR = "CONFIG_ERROR"
    # staff / access
    UNAUTHENTICATED = "UNAUTHENTICATED"
    FORBIDDEN = "FORBIDDEN"
    CSRF_FAILED = "CSRF_FAILED"
    CONFLICT = "CONFLICT"
    TWO_PERSON_RULE = "TWO_PERSON_RULE"  # a payment suspension's second signature by its first signer
    FRAUD_SUSPENSION_IN_FORCE = "FRAUD_SUSPENSION_IN_FORCE"  # a fraud decision while payment is suspended for fraud


class LifecertError(Exception):
    """Base of every expected failure. ``code`` is stable; ``message`` is for people."""

    code: ErrorCode = ErrorCode.BAD_REQUEST

    def __init__(self, message: str, *, code: ErrorCode | None = None, **details: Any) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        return {"code": str(self.code), "message": self.message, "details": self.details}


class BadIdNumber(LifecertError):
    code = ErrorCode.BAD_ID_NUMBER


class ImageError(LifecertError):
    """The bytes are not an image we can use (corrupt, unsupported, too large)."""

    code = ErrorCode.UNREADABLE_IMAGE


class FaceQualityError(LifecertError):
    """A readable image whose face is unusable; ``code`` says why."""

    code = ErrorCode.LOW_QUALITY


class ModelError(LifecertError):
    code = ErrorCode.MODEL_MISSING


class NotFound(LifecertError):
    code = ErrorCode.NOT_FOUND


class Conflict(LifecertError):
    code = ErrorCode.CONFLICT


class AccessDenied(LifecertError):
    code = ErrorCode.FORBIDDEN
