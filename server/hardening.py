"""HTTP hardening shared by every route: request-body limits checked before any route or
authentication runs, and security headers on every response (issue 11 M3, M12, Low).

Body limits (bytes) by path: pensioner uploads use ``settings.verification.max_upload_bytes``;
the console's enrollment photo upload allows one image (``settings.images.max_bytes``) plus form
overhead; everything else (JSON, login/tip-off/console forms) gets :data:`DEFAULT_BODY_LIMIT`.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response

from lifecert.config import Settings

DEFAULT_BODY_LIMIT = 256 * 1024  # the largest form (a tip-off, 2000 characters) is a few KiB
FORM_OVERHEAD = 64 * 1024
VERIFICATION_PREFIX = "/api/v1/sessions"
_PHOTO_UPLOAD = re.compile(r"^/console/cases/[^/]+/enrollment/fix-photo$")
# department extracts (API and console upload): streamed to disk, up to settings.exchange.max_upload_bytes
EXTRACT_UPLOADS = ("/api/v1/exchange/extracts", "/console/imports/upload")
# an on-site photo closing a home visit (console form or staff API)
_VISIT_PHOTO = re.compile(r"^/(console|api/staff)/visits/[^/]+/close$")


def body_limit(settings: Settings | None, path: str) -> int:
    """The largest request body accepted on ``path``: never unlimited."""
    if settings is None:
        return DEFAULT_BODY_LIMIT
    if path.startswith(VERIFICATION_PREFIX):
        return settings.verification.max_upload_bytes
    if _PHOTO_UPLOAD.match(path) or _VISIT_PHOTO.match(path):
        return settings.images.max_bytes + FORM_OVERHEAD
    if path in EXTRACT_UPLOADS:
        return settings.exchange.max_upload_bytes + FORM_OVERHEAD
    return DEFAULT_BODY_LIMIT


# The pensioner's page loads only its own scripts and styles; the camera preview is a MediaStream
# (srcObject, no URL) and captured frames are blobs. Nothing may frame any page (clickjacking).
_CSP_PAGE = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
             "media-src 'self' blob:; connect-src 'self'; object-src 'none'; form-action 'self'; "
             "frame-ancestors 'none'; base-uri 'none'")
# The tip-off form is one self-contained page with an inline <style> and no script at all.
_CSP_TIPOFF = ("default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; "
               "base-uri 'none'")
_CSP_API = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'"


def _csp_for(path: str) -> str | None:
    if path.startswith(("/console", "/api/staff")):
        return None  # server.security sets the console's own policy
    if path.startswith("/tipoffs"):
        return _CSP_TIPOFF
    if path.startswith(("/api/", "/healthz", "/readyz", "/openapi.json")):
        return _CSP_API
    if path.startswith(("/docs", "/redoc")):
        return None  # only when explicitly enabled (LIFECERT_API_DOCS=true); loads its CDN scripts
    return _CSP_PAGE


def install_headers(app: FastAPI, settings_of: Any) -> None:
    """``settings_of()`` returns the running Settings (or None before start-up)."""

    @app.middleware("http")
    async def _security_headers(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        h = response.headers
        h.setdefault("X-Content-Type-Options", "nosniff")
        h.setdefault("Referrer-Policy", "no-referrer")
        h.setdefault("X-Frame-Options", "DENY")
        csp = _csp_for(request.url.path)
        if csp is not None:
            h.setdefault("Content-Security-Policy", csp)
        settings: Settings | None = settings_of()
        if settings is not None and settings.env not in ("development", "test"):
            h.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
        return response
