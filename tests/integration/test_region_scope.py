"""Caseworkers see only their region (PIPL minimum necessary): queue, case page, photos, full ID
numbers, decisions and home visits, in the console and through their API tokens. Another region's
case answers like a case that does not exist, and the attempt is audited."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from lifecert.domain.errors import ErrorCode, LifecertError
from lifecert.services import review, staff
from lifecert.services.context import AppContext
from lifecert.storage.models import AuditEvent, Pensioner, ReviewCase, StaffUser
from server.app import create_app
from tests.integration.console_support import PASSWORD, login, make_case, make_pensioner


@pytest.fixture
def client(ctx: AppContext) -> Iterator[TestClient]:
    with TestClient(create_app(ctx.settings, ctx)) as c:
        yield c


def _user(ctx: AppContext, username: str, region: str | None, role: str = "caseworker") -> staff.Principal:
    with ctx.db.session() as s:
        u = staff.create_user(s, username, PASSWORD, role, region_code=region, actor="test", actor_role="cli")
        return staff.principal_for(u, "cli")


def _token(ctx: AppContext, username: str) -> dict[str, str]:
    with ctx.db.session() as s:
        raw, _ = staff.create_api_token(s, username, actor="test", actor_role="cli")
    return {"Authorization": f"Bearer {raw}"}


def _denials(ctx: AppContext, actor: str) -> list[str]:
    with ctx.db.session() as s:
        return [e.object_id for e in s.scalars(select(AuditEvent).where(
            AuditEvent.actor == actor, AuditEvent.action == "case.denied_region"))]


def test_given_region_codes_when_scoped_then_trailing_zero_pairs_widen_the_region() -> None:
    assert review.region_scope("220202") == "220202"
    assert review.region_scope("220200") == "2202"
    assert review.region_scope("220000") == "22"
    assert review.region_scope(None) is None and review.region_scope("  ") is None


def test_given_caseworker_of_110101_when_reaching_a_220202_case_then_not_found_everywhere_and_audited(
    ctx: AppContext, client: TestClient
) -> None:
    _user(ctx, "bj", "110101")
    home = make_pensioner(ctx, 1, region="110101", name="王秀英")
    away = make_pensioner(ctx, 3, region="220202", name="张桂兰")
    own_case, other_case = make_case(ctx, home), make_case(ctx, away)
    with ctx.db.session() as s:
        away_id = s.get(Pensioner, away).id_number  # type: ignore[union-attr]
        photo = ctx.photos.put(b"frame bytes")
    csrf = login(client, "bj")

    queue = client.get("/console/queue?status=all")
    assert f'data-case="{own_case}"' in queue.text and f'data-case="{other_case}"' not in queue.text
    assert "张桂兰" not in queue.text
    # The other region's case answers exactly like a case that does not exist.
    missing = client.get("/console/cases/999999")
    page = client.get(f"/console/cases/{other_case}")
    assert (page.status_code, missing.status_code) == (404, 404)
    assert page.json()["error"]["code"] == missing.json()["error"]["code"] == "NOT_FOUND"
    assert away_id not in page.text
    assert client.get(f"/console/cases/{other_case}/photos/{photo}").status_code == 404
    r = client.post(f"/console/cases/{other_case}/approve", data={"csrf_token": csrf}, follow_redirects=False)
    assert r.status_code == 404
    assert client.get(f"/console/cases/{own_case}").status_code == 200

    headers = _token(ctx, "bj")
    listed = client.get("/api/staff/cases?status=all", headers=headers).json()
    assert [row["id"] for row in listed["rows"]] == [own_case] and listed["total"] == 1
    assert client.get(f"/api/staff/cases/{other_case}", headers=headers).status_code == 404
    r = client.post(f"/api/staff/cases/{other_case}/decision", headers=headers,
                    json={"decision": "reject", "note": "no"})
    assert r.status_code == 404
    with ctx.db.session() as s:
        row = s.get(ReviewCase, other_case)
        assert row is not None and (row.status, row.decision) == ("open", None)
    # Every refused look is on record (case page, photo, decision, API read, API decision).
    assert _denials(ctx, "bj").count(str(other_case)) == 5


def test_given_prefecture_and_unscoped_staff_when_listing_then_they_see_their_whole_area(ctx: AppContext) -> None:
    pref = _user(ctx, "jilin", "220200")
    central = _user(ctx, "central", None)
    cases = [make_case(ctx, make_pensioner(ctx, i, region=r)) for i, r in ((1, "220202"), (3, "220204"),
                                                                          (5, "110101"))]
    with ctx.db.session() as s:
        seen = [r.id for r in review.list_queue(s, review.QueueFilter(status="all"), pref).rows]
        assert seen == cases[:2]
        assert [r.id for r in review.list_queue(s, review.QueueFilter(status="all"), central).rows] == cases
        # A filter cannot widen the scope.
        widened = review.list_queue(s, review.QueueFilter(status="all", region="11"), pref)
        assert widened.rows == [] and widened.total == 0


def test_given_home_visits_in_two_regions_when_a_scoped_caseworker_lists_them_then_only_their_region(
    ctx: AppContext
) -> None:
    _user(ctx, "jl", "220202")
    boss = _user(ctx, "boss", None)
    a, b = make_pensioner(ctx, 1, region="220202"), make_pensioner(ctx, 3, region="110101")
    case_ids = [make_case(ctx, pid) for pid in (a, b)]
    with ctx.db.session() as s:
        for cid in case_ids:
            review.request_home_visit(s, cid, boss, note="check")
    with ctx.db.session() as s:
        jl = staff.principal_for(s.scalars(select(StaffUser).where(StaffUser.username == "jl")).one(), "cli")
        assert [p.id for _, p in review.list_visits(s, jl)] == [a]
        assert sorted(p.id for _, p in review.list_visits(s, boss)) == sorted([a, b])


def test_given_scoped_caseworker_when_deciding_through_the_service_on_another_region_then_not_found(
    ctx: AppContext
) -> None:
    who = _user(ctx, "bj2", "110101")
    cid = make_case(ctx, make_pensioner(ctx, 7, region="220202"))
    with pytest.raises(LifecertError) as e, ctx.db.session() as s:
        review.reject(s, cid, who, "not mine")
    assert e.value.code == ErrorCode.NOT_FOUND
    assert _denials(ctx, "bj2") == [str(cid)]
