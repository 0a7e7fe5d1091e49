"""Helpers for the console/staff tests: staff users, pensioners, review cases, logged-in clients."""

from __future__ import annotations

import re
from datetime import date

from fastapi.testclient import TestClient

from lifecert.domain.cases import CasePayload, EnrollmentReject, TipOffReport, VerificationReview
from lifecert.domain.idnumber import make_id_number
from lifecert.services import cases, staff, templates
from lifecert.services.context import AppContext
from lifecert.storage.models import Pensioner, ReviewCase, ReviewKind
from tests.db_support import detached_get

PASSWORD = "correct-horse-battery"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def make_user(ctx: AppContext, username: str, role: str, password: str = PASSWORD) -> int:
    with ctx.db.session() as s:
        return staff.create_user(s, username, password, role, actor="test", actor_role="cli").id


def make_pensioner(ctx: AppContext, seq: int = 1, *, region: str = "220202", name: str = "张桂兰",
                   address: str = "吉林市昌邑区通江路 12 号") -> int:
    with ctx.db.session() as s:
        p = templates.upsert_pensioner(s, make_id_number(region, date(1950, 3, 7), seq), name, address=address,
                                       phone="13800000000")
        return p.id


def default_payload(kind: str, reason: str) -> CasePayload:
    """A typed payload of ``kind`` (the classes producers write; see lifecert.domain.cases)."""
    if kind == ReviewKind.VERIFICATION:
        return VerificationReview(session_id="s-test", reason=reason, match=0.41, threshold=0.5)
    if kind == ReviewKind.ENROLLMENT:
        return EnrollmentReject(run_id=1, row_no=2, photo_name="p.jpg", detail=reason)
    if kind == ReviewKind.TIP_OFF:
        return TipOffReport(description="仍在领取已故母亲的养老金", name="张桂兰", contact="13800000000")
    raise ValueError(f"no default payload for {kind}; pass one")


def make_case(ctx: AppContext, pensioner_id: int, *, kind: str = ReviewKind.VERIFICATION, reason: str = "LOW_MATCH",
              payload: CasePayload | None = None) -> int:
    with ctx.db.session() as s:
        p = s.get(Pensioner, pensioner_id)
        return cases.open_case(s, payload or default_payload(kind, reason), reason=reason, pensioner=p).id


def case_row(ctx: AppContext, case_id: int) -> ReviewCase:
    return detached_get(ctx, ReviewCase, case_id)


def login(client: TestClient, username: str, password: str = PASSWORD) -> str:
    """Log in through the real login form; returns the session's CSRF token (read from a console page)."""
    page = client.get("/console/login")
    token = _CSRF.search(page.text)
    assert token, "login page has no CSRF field"
    r = client.post("/console/login", data={"username": username, "password": password,
                                             "csrf_token": token.group(1), "next": "/console/"},
                    follow_redirects=False)
    assert r.status_code == 303, r.text
    return csrf_of(client)


def csrf_of(client: TestClient) -> str:
    # Every console page carries the logout form with the session's token.
    r = client.get("/console/", follow_redirects=True)
    m = _CSRF.search(r.text)
    assert m, f"no CSRF token on {r.url}"
    return m.group(1)
