"""Pydantic models at the HTTP edge (the verification API contract, notes/api_contract.md)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field

from lifecert.services.verification import SessionResult
from lifecert.services.verification.paced import ChunkResult, PacedStart, StepView

ChallengeName = Literal["blink", "turn_left", "turn_right", "open_mouth", "nod"]


class SessionCreate(BaseModel):
    id_number: str = Field(min_length=1, max_length=32, examples=["110101195001011234"])
    name: str = Field(min_length=1, max_length=64, examples=["张三"])
    protocol: Literal["paced"] = Field(
        "paced", description="server-paced capture, one step at a time (the only protocol; the one-shot upload is gone)"
    )


class StepOut(BaseModel):
    """The current step of a paced session; the client never learns the later ones in advance."""

    index: int = Field(description="0 = settle (face steady in the oval), then one per challenge")
    kind: Literal["settle", "challenge"]
    challenge: ChallengeName | None
    nonce: str = Field(description="single use: send it with the next chunk")
    prompt_delay_ms: int = Field(description="show the prompt this long after receiving this answer (random)")
    window_ms: int = Field(description="the step's limit, counted from the prompt")
    fps: int = Field(description="capture this many frames a second during this step")
    chunk_max_frames: int = Field(description="at most this many frames per chunk of this step")

    @classmethod
    def of(cls, v: StepView) -> StepOut:
        return cls.model_validate(v, from_attributes=True)  # same field names; kind/challenge validated


class PacedSessionCreated(BaseModel):
    session_id: str
    protocol: Literal["paced"] = "paced"
    expires_at: datetime = Field(description="ISO 8601, UTC")
    steps_total: int
    fps: int
    chunk_max_frames: int
    chunk_ms: int = Field(description="send a chunk about this often")
    step: StepOut

    @classmethod
    def of(cls, s: PacedStart) -> PacedSessionCreated:
        return cls.model_validate(s, from_attributes=True)  # the step (StepView) too


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
    missed_challenge: str | None = Field(None, description="paced: the challenge whose window ran out")

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
            missed_challenge=r.missed_challenge,
        )


HintCode = Literal[
    "NO_FACE", "MOVE_CLOSER", "MOVE_BACK", "MORE_LIGHT", "LESS_LIGHT", "FACE_NOT_CENTRED", "ONE_PERSON_ONLY",
    "HOLD_STILL", "TURN_MORE", "DO_ACTION", "BLINK_FIRMLY", "OPEN_WIDER", "NOD_MORE",
    "LOOK_BACK", "LOOK_UP",
]


class ChunkOut(BaseModel):
    session_id: str
    status: Literal["capturing", "decided"]
    step_state: Literal["waiting", "seen", "timed_out"] = Field(description="of the step this chunk belonged to")
    hints: list[HintCode]
    step: StepOut | None = Field(description="the current step (the next one, with a new nonce, once seen)")
    result: SessionResultOut | None = Field(description="the decision once status is decided")

    @classmethod
    def of(cls, c: ChunkResult) -> ChunkOut:
        return cls(
            session_id=c.session_id,
            status=c.status,  # type: ignore[arg-type]
            step_state=c.step_state,  # type: ignore[arg-type]
            hints=c.hints,  # type: ignore[arg-type]
            step=StepOut.of(c.step) if c.step else None,
            result=SessionResultOut.of(c.result) if c.result else None,
        )


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: dict[str, object] = {}


class ErrorOut(BaseModel):
    error: ErrorDetail


class Health(BaseModel):
    status: str
