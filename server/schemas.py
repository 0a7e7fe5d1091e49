"""Pydantic models at the HTTP edge (the verification API contract, notes/api_contract.md)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field

from lifecert.services.verification import SessionResult, SessionStart

ChallengeName = Literal["blink", "turn_left", "turn_right", "open_mouth", "nod"]


class SessionCreate(BaseModel):
    id_number: str = Field(min_length=1, max_length=32, examples=["110101195001011234"])
    name: str = Field(min_length=1, max_length=64, examples=["张三"])


class SessionCreated(BaseModel):
    session_id: str
    nonce: str
    expires_at: datetime = Field(description="ISO 8601, UTC")
    challenges: list[ChallengeName]
    lead_in_ms: int
    challenge_window_ms: int
    fps: int
    min_frames: int
    max_frames: int

    @classmethod
    def of(cls, s: SessionStart) -> SessionCreated:
        return cls(
            session_id=s.session_id,
            nonce=s.nonce,
            expires_at=s.expires_at,
            challenges=s.challenges,  # type: ignore[arg-type]
            lead_in_ms=s.lead_in_ms,
            challenge_window_ms=s.challenge_window_ms,
            fps=s.fps,
            min_frames=s.min_frames,
            max_frames=s.max_frames,
        )


class ChallengeOut(BaseModel):
    name: str
    passed: bool | None = Field(description="null while the session has no upload yet")


class ConfirmationOut(BaseModel):
    valid_until: date


class SessionResultOut(BaseModel):
    session_id: str
    decision: Literal["CONFIRMED", "RETRY", "REVIEW"] | None
    reason_code: str | None
    message_zh: str
    message_en: str
    challenges: list[ChallengeOut]
    confirmation: ConfirmationOut | None

    @classmethod
    def of(cls, r: SessionResult) -> SessionResultOut:
        return cls(
            session_id=r.session_id,
            decision=r.decision,  # type: ignore[arg-type]
            reason_code=r.reason_code,
            message_zh=r.message_zh,
            message_en=r.message_en,
            challenges=[ChallengeOut(name=n, passed=p) for n, p in r.challenges],
            confirmation=ConfirmationOut(valid_until=r.valid_until) if r.valid_until else None,
        )


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: dict[str, object] = {}


class ErrorOut(BaseModel):
    error: ErrorDetail


class Health(BaseModel):
    status: str
