"""The one place where core errors become HTTP responses.

Body: ``{"error": {"code": "...", "message": "...", "details": {...}}}``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from lifecert.domain.errors import ErrorCode, LifecertError

STATUS: dict[ErrorCode, int] = {
    ErrorCode.BAD_ID_NUMBER: 422,
    ErrorCode.BAD_REQUEST: 400,
    ErrorCode.UNREADABLE_IMAGE: 422,
    ErrorCode.UNSUPPORTED_FORMAT: 415,
    ErrorCode.IMAGE_TOO_LARGE: 413,
    ErrorCode.PAYLOAD_TOO_LARGE: 413,
    ErrorCode.FILE_MISSING: 404,
    ErrorCode.BAD_MANIFEST: 422,
    ErrorCode.BAD_MAPPING: 422,
    ErrorCode.BAD_EXTRACT: 422,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.NO_TEMPLATE: 409,
    ErrorCode.SESSION_EXPIRED: 410,
    ErrorCode.NONCE_USED: 409,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.PENSIONER_SUSPENDED: 409,
    ErrorCode.BAD_NONCE: 403,
    ErrorCode.TOO_FEW_FRAMES: 422,
    ErrorCode.TOO_MANY_FRAMES: 422,
    ErrorCode.BAD_TIMESTAMPS: 422,
    ErrorCode.MODEL_MISSING: 503,
    ErrorCode.MODEL_MISMATCH: 500,
    ErrorCode.CONFIG_ERROR: 500,
    ErrorCode.UNAUTHENTICATED: 401,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.CSRF_FAILED: 403,
    ErrorCode.CONFLICT: 409,
    ErrorCode.TWO_PERSON_RULE: 409,
    ErrorCode.FRAUD_SUSPENSION_IN_FORCE: 409,
}


def status_for(code: ErrorCode) -> int:
    return STATUS.get(code, 422)


def error_body(code: str, message: str, details: dict[str, object] | None = None) -> dict[str, object]:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(LifecertError)
    async def _lifecert(_: Request, exc: LifecertError) -> JSONResponse:
        limited = exc.code == ErrorCode.RATE_LIMITED
        headers = {"Retry-After": str(exc.details.get("retry_after", 60))} if limited else None
        return JSONResponse(
            status_code=status_for(exc.code),
            content=error_body(str(exc.code), exc.message, exc.details),
            headers=headers,
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(
            status_code=422,
            content=error_body(str(ErrorCode.BAD_REQUEST), "request is not valid",
                               {"errors": validation_summary(exc.errors())}),
        )


MAX_REPORTED_ERRORS = 20


def validation_summary(errors: Sequence[Any]) -> list[dict[str, object]]:
    """Where and why a request is invalid, never what it contained: echoing the input would reflect
    megabytes back (and non-finite numbers such as 1e999 cannot even be written as JSON)."""
    out: list[dict[str, object]] = []
    for e in list(errors)[:MAX_REPORTED_ERRORS]:
        loc = [p if isinstance(p, int) else str(p)[:64] for p in e.get("loc", ())][:8]
        out.append({"loc": loc, "type": str(e.get("type", ""))[:64], "msg": str(e.get("msg", ""))[:200]})
    return out
