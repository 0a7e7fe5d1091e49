"""Pensioner self-service proof of life: the verification API (notes/api_contract.md).

Thin: validation at the edge, the work in :class:`lifecert.services.verification.VerificationService`
run in the bounded inference pool (it blocks: decoding, detection, embedding, database).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, Path, UploadFile

from lifecert.domain.errors import ErrorCode
from server.deps import ClientAddr, Pool, Verification
from server.errors import status_for
from server.schemas import ChunkOut, ErrorOut, PacedSessionCreated, SessionCreate, SessionResultOut

router = APIRouter(prefix="/api/v1", tags=["verification"])


def _errors(*codes: ErrorCode) -> dict[int | str, dict[str, Any]]:
    out: dict[int | str, dict[str, Any]] = {}
    for c in codes:
        st = status_for(c)
        entry = out.setdefault(st, {"model": ErrorOut, "description": ""})
        entry["description"] = ", ".join(x for x in (entry["description"], str(c)) if x)
    return out


# how the page knew a prompt or hint was heard (paced.HEARD_VIA); hint_heard_via and prompt_heard_via
HeardVia = Annotated[
    Literal["speech", "text"] | None,
    Form(description="speech: the utterance's end; text: shown without speech (none, an error, no end in time)"),
]


@router.post(
    "/sessions",
    status_code=201,
    response_model=PacedSessionCreated,
    responses=_errors(
        ErrorCode.BAD_ID_NUMBER,
        ErrorCode.BAD_REQUEST,
        ErrorCode.NOT_FOUND,
        ErrorCode.PENSIONER_SUSPENDED,
        ErrorCode.RATE_LIMITED,
    ),
    summary="Start a server-paced proof-of-life session (ID number + name); reveals only the settle step",
)
async def create_session(body: SessionCreate, svc: Verification, pool: Pool, client: ClientAddr) -> PacedSessionCreated:
    return PacedSessionCreated.of(await pool.run(svc.create_session, body.id_number, body.name, client))


@router.post(
    "/sessions/{session_id}/steps/{step}/frames",
    response_model=ChunkOut,
    responses=_errors(
        ErrorCode.NOT_FOUND,
        ErrorCode.BAD_REQUEST,
        ErrorCode.NONCE_USED,
        ErrorCode.BAD_NONCE,
        ErrorCode.SESSION_EXPIRED,
        ErrorCode.TOO_FEW_FRAMES,
        ErrorCode.TOO_MANY_FRAMES,
        ErrorCode.BAD_TIMESTAMPS,
        ErrorCode.UNREADABLE_IMAGE,
        ErrorCode.UNSUPPORTED_FORMAT,
        ErrorCode.PAYLOAD_TOO_LARGE,
    ),
    summary="Paced capture: upload one chunk of the current step; returns its state, hints, the next step",
)
async def upload_chunk(
    session_id: Annotated[str, Path(max_length=64)],
    step: Annotated[int, Path(ge=0, le=16)],
    nonce: Annotated[str, Form(max_length=128)],
    timestamps: Annotated[
        str, Form(max_length=2048, description="JSON array of integer ms since the client's capture start")
    ],
    frames: Annotated[list[UploadFile], File(description="1-12 JPEG frames in capture order (unmirrored)")],
    svc: Verification,
    pool: Pool,
    client: ClientAddr,
    sent_ms: Annotated[
        int | None,
        Form(ge=0, le=10**9, description="client ms (same clock as timestamps) when this request left the phone"),
    ] = None,
    hint_heard_ms: Annotated[
        int | None,
        Form(ge=0, le=10**9, description="client ms (same clock as timestamps) when this step's action hint was "
             "heard: its speech ended, or its text was shown where nothing is spoken; the step then runs on "
             "for a while after it, bounded (steps.hint_window)"),
    ] = None,
    hint_heard_via: HeardVia = None,
    prompt_heard_ms: Annotated[
        int | None,
        Form(ge=0, le=10**9, description="client ms (same clock as timestamps) when this challenge step's prompt "
             "was heard (as hint_heard_ms); the step's window then counts from it, bounded (steps.prompt_window)"),
    ] = None,
    prompt_heard_via: HeardVia = None,
    hint_heard_code: Annotated[
        str | None,
        Form(max_length=32, description="which action hint hint_heard_ms is about (a code this step's answers "
             "carried, e.g. TURN_MORE): the newest one heard; the server keeps the newest report of a code it gave "
             "in this step, not before it gave it, and the window only grows. Without it: the step's first action "
             "hint (older pages)"),
    ] = None,
) -> ChunkOut:
    received_at = svc.clock()  # before the pool: queueing must not shift the client clock mapping
    data = [await f.read() for f in frames]
    result = await pool.run(
        svc.submit_chunk, session_id, step, nonce, timestamps, data, client, received_at, sent_ms,
        hint_heard_ms, hint_heard_via, prompt_heard_ms, prompt_heard_via, hint_heard_code,
    )
    return ChunkOut.of(result)


@router.get(
    "/sessions/{session_id}",
    response_model=SessionResultOut,
    responses=_errors(ErrorCode.NOT_FOUND),
    summary="Read a session's result (decision null until the last step was judged)",
)
async def get_session_result(session_id: str, svc: Verification, pool: Pool) -> SessionResultOut:
    return SessionResultOut.of(await pool.run(svc.get_result, session_id))
