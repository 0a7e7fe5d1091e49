"""Tip-offs (举报): anyone may report a suspected fraudulent claim (e.g. pension still drawn for a
dead relative). Each tip-off becomes a review case; submissions are rate-limited per client."""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
import time
from collections import deque
from dataclasses import dataclass

from sqlalchemy.orm import Session

from lifecert.domain.cases import TipOffReport
from lifecert.domain.errors import BadIdNumber, ErrorCode, LifecertError
from lifecert.domain.idnumber import mask_id_number, normalize_id_number, parse_id_number
from lifecert.services import audit
from lifecert.services.cases import open_case
from lifecert.services.templates import get_pensioner

MIN_DESCRIPTION = 10
MAX_DESCRIPTION = 2000


def public_reference(secret: bytes, case_id: int) -> str:
    """The reference a reporter is shown instead of the sequential case id (which would reveal how many
    cases exist and let anyone enumerate them): ``JB-`` + 10 base32 characters of an HMAC of the id.
    Staff see the same reference on the case, so a reporter who calls back can be matched."""
    mac = hmac.new(secret, b"tipoff-reference|%d" % case_id, hashlib.sha256).digest()
    return "JB-" + base64.b32encode(mac[:10]).decode()[:10]


@dataclass(frozen=True)
class TipOff:
    description: str
    id_number: str | None = None
    name: str | None = None
    contact: str | None = None


@dataclass(frozen=True)
class TipOffReceipt:
    case_id: int
    matched_pensioner: bool


class RateLimiter:
    """Sliding-window limit of ``limit`` events per ``window_s`` seconds per key (one per app instance)."""

    def __init__(self, limit: int, window_s: float) -> None:
        self.limit = limit
        self.window_s = window_s
        self._events: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str, now: float | None = None) -> None:
        """Count one event for ``key``; raise RATE_LIMITED (with retry_after seconds) when over the limit."""
        t = time.monotonic() if now is None else now
        with self._lock:
            q = self._events.setdefault(key, deque())
            while q and q[0] <= t - self.window_s:
                q.popleft()
            if len(q) >= self.limit:
                retry = max(1, int(q[0] + self.window_s - t) + 1)
                raise LifecertError("too many tip-offs from this address; try again later",
                                    code=ErrorCode.RATE_LIMITED, retry_after=retry)
            q.append(t)
            if len(self._events) > 10_000:  # forget idle clients so the table cannot grow without bound
                for k in [k for k, v in self._events.items() if not v or v[-1] <= t - self.window_s]:
                    del self._events[k]


def submit_tipoff(session: Session, tip: TipOff, *, actor: str = "public", role: str = "public",
                  client_addr: str = "") -> TipOffReceipt:
    """Check the tip-off and queue a TIP_OFF review case (linked to the pensioner when the ID is known)."""
    desc = (tip.description or "").strip()
    if not MIN_DESCRIPTION <= len(desc) <= MAX_DESCRIPTION:
        raise LifecertError(f"description must be {MIN_DESCRIPTION}-{MAX_DESCRIPTION} characters",
                            code=ErrorCode.BAD_REQUEST, field="description")
    name = (tip.name or "").strip()[:64] or None
    idn: str | None = None
    if tip.id_number and tip.id_number.strip():
        try:
            idn = parse_id_number(tip.id_number).value
        except BadIdNumber as exc:
            raise BadIdNumber(exc.message, field="id_number") from exc
    if idn is None and name is None:
        raise LifecertError("give the pensioner's ID number or name", code=ErrorCode.BAD_REQUEST, field="id_number")
    pensioner = get_pensioner(session, idn) if idn else None
    report = TipOffReport(description=desc, name=name, id_number=idn,
                          contact=(tip.contact or "").strip()[:128] or None, client_addr=client_addr)
    case = open_case(session, report, reason="TIP_OFF", pensioner=pensioner, id_number=idn)
    audit.record(session, actor=actor, role=role, action="tipoff.submit", object_type="review_case",
                 object_id=case.id, client_addr=client_addr,
                 detail={"id_number": mask_id_number(normalize_id_number(idn)) if idn else None})
    return TipOffReceipt(case.id, pensioner is not None)
