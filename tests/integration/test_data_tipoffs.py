"""Tip-offs through the public API and form: review cases, validation, rate limit."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from lifecert.domain.cases import TipOffReport, load_payload
from lifecert.services.context import AppContext
from lifecert.storage.models import AuditEvent, ReviewCase, ReviewKind
from server.app import create_app
from server.routes.tipoffs import TIPOFFS_PER_CLIENT_PER_HOUR, reference_for
from tests.integration.console_support import login, make_user
from tests.integration.test_data_support import add_pensioners, idn


@pytest.fixture
def client(data_ctx: AppContext) -> TestClient:
    # Not entered as a context manager: the lifespan would warm up the face engine, which tip-offs never use.
    return TestClient(create_app(ctx=data_ctx))


def _cases(ctx: AppContext) -> list[ReviewCase]:
    with ctx.db.session() as s:
        rows = list(s.scalars(select(ReviewCase).where(ReviewCase.kind == ReviewKind.TIP_OFF)))
        s.expunge_all()
        return rows


def test_given_tipoff_naming_a_pensioner_when_posted_then_review_case_linked_to_pensioner(
        client: TestClient, data_ctx: AppContext) -> None:
    a = idn(51)
    ids = add_pensioners(data_ctx, [(a, "钱多多")])

    r = client.post("/api/v1/tipoffs", json={"id_number": a, "description": "老人去年已去世，家属仍在领取养老金",
                                             "contact": "13800000000"})

    assert r.status_code == 201
    [case] = _cases(data_ctx)
    assert r.json()["reference"] == reference_for(data_ctx, case.id)
    assert str(case.id) not in r.json()["reference"]
    assert (case.reason, case.pensioner_id, case.id_number) == ("TIP_OFF", ids[a], a)
    pl = load_payload(case.payload)
    assert isinstance(pl, TipOffReport) and pl.contact == "13800000000"
    assert pl.description == "老人去年已去世，家属仍在领取养老金"
    with data_ctx.db.session() as s:
        ev = s.scalars(select(AuditEvent).where(AuditEvent.action == "tipoff.submit")).one()
        assert a not in str(ev.detail)  # the audit trail keeps the ID masked


def test_given_tipoff_with_name_only_when_posted_then_case_without_pensioner(
        client: TestClient, data_ctx: AppContext) -> None:
    r = client.post("/api/v1/tipoffs", json={"name": "孙某某", "description": "听说他已经不在了但还在领钱"})

    assert r.status_code == 201
    [case] = _cases(data_ctx)
    pl = load_payload(case.payload)
    assert isinstance(pl, TipOffReport) and (case.pensioner_id, pl.name) == (None, "孙某某")


@pytest.mark.parametrize(("body", "status", "code"), [
    ({"description": "没有身份证号也没有姓名的举报"}, 400, "BAD_REQUEST"),
    ({"name": "某", "description": "太短"}, 400, "BAD_REQUEST"),
    ({"id_number": "110101195001011234", "description": "身份证号校验位不对的举报"}, 422, "BAD_ID_NUMBER"),
])
def test_given_incomplete_tipoff_when_posted_then_rejected_with_code_and_no_case(
        client: TestClient, data_ctx: AppContext, body: dict[str, str], status: int, code: str) -> None:
    r = client.post("/api/v1/tipoffs", json=body)

    assert (r.status_code, r.json()["error"]["code"]) == (status, code)
    assert _cases(data_ctx) == []


def test_given_many_tipoffs_from_one_address_when_limit_reached_then_429_with_retry_after(
        client: TestClient, data_ctx: AppContext) -> None:
    body = {"name": "李某", "description": "重复提交的举报内容用于测试限流"}
    codes = [client.post("/api/v1/tipoffs", json=body).status_code for _ in range(TIPOFFS_PER_CLIENT_PER_HOUR)]

    r = client.post("/api/v1/tipoffs", json=body)

    assert codes == [201] * TIPOFFS_PER_CLIENT_PER_HOUR
    assert (r.status_code, r.json()["error"]["code"]) == (429, "RATE_LIMITED")
    assert int(r.headers["Retry-After"]) > 0
    assert len(_cases(data_ctx)) == TIPOFFS_PER_CLIENT_PER_HOUR


def test_given_form_page_when_filled_and_submitted_then_case_opened_and_reference_shown(
        client: TestClient, data_ctx: AppContext) -> None:
    page = client.get("/tipoffs")
    assert page.status_code == 200 and 'name="description"' in page.text

    form = {"id_number": "", "name": "周某", "description": "邻居说老人已经搬走多年", "contact": "",
            "csrf_token": _form_token(page.text)}
    r = client.post("/tipoffs", data=form)

    [case] = _cases(data_ctx)
    ref = reference_for(data_ctx, case.id)
    assert r.status_code == 201
    assert f"编号 {ref}" in r.text
    # The caseworker sees the same reference on the case, so a reporter who calls back can be matched.
    make_user(data_ctx, "cw", "caseworker")
    staff_client = TestClient(create_app(ctx=data_ctx))
    login(staff_client, "cw")
    assert f'id="tip-ref">{ref}<' in staff_client.get(f"/console/cases/{case.id}").text


def _form_token(html: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, "tip-off form has no CSRF field"
    return m.group(1)


def test_given_form_post_without_the_pages_token_when_submitted_then_403_and_no_case(
        client: TestClient, data_ctx: AppContext) -> None:
    client.get("/tipoffs")  # the cookie alone (a cross-site post carries no hidden field) is not enough
    r = client.post("/tipoffs", data={"name": "周某", "description": "邻居说老人已经搬走多年"})

    assert r.status_code == 403
    assert _cases(data_ctx) == []


def test_given_form_with_bad_id_when_submitted_then_page_explains_and_no_case(
        client: TestClient, data_ctx: AppContext) -> None:
    token = _form_token(client.get("/tipoffs").text)
    r = client.post("/tipoffs", data={"id_number": "12345", "description": "身份证号写错了的举报内容",
                                      "csrf_token": token})

    assert r.status_code == 422
    assert 'role="alert"' in r.text
    assert _cases(data_ctx) == []
