"""What a caseworker reads on a spot check's case page and on the suspensions page, in Chinese and in
English, through the real console (TestClient, real services on the test database):

- the keys line lists the keys of the decisions this case offers (g / v / f on a spot check, a / r on a
  verification case), and is gone once the case is closed;
- a PAD score inside the audit band is amber with the words "in the audit band", not red;
- no empty checks panel when the session has no liveness rows; the confirmation's source
  ``verification_session:<id>`` is a short label with the full id in its title;
- right after the fraud proposal the case says the payment waits for a second caseworker (not "closed");
- the suspensions page names the signers by username, links the case, and declining is a secondary button;
- after the second signature the pensioner's status and the withdrawn confirmation are told from the
  suspension row in the page's language: no stored English reason text on the Chinese page."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from html import unescape

import pytest
from fastapi.testclient import TestClient

from lifecert.domain.cases import SpotCheck
from lifecert.domain.idnumber import make_id_number
from lifecert.services import cases, suspensions
from lifecert.services.confirmations import record_confirmation
from lifecert.services.context import AppContext
from lifecert.storage.models import ConfirmationMethod, Pensioner, ReviewKind
from server.app import create_app
from tests.integration.console_support import login, make_case, make_user
from tests.integration.test_suspensions import principal

AUDITED = date(2026, 11, 30)
SESSION = "5f0c2a9e-7d41-4b8e-9a53-0c6f1e2d3b4a"
THRESHOLD, AUDIT_BELOW = 0.733, 0.9389


def _spot_check(ctx: AppContext, seq: int, pad_score: float) -> tuple[int, int, int]:
    """A pensioner confirmed by face on ``AUDITED`` and a PAD_GREY_BAND spot check over that confirmation
    (no liveness rows): (pensioner id, confirmation id, case id)."""
    with ctx.db.session() as s:
        p = Pensioner(id_number=make_id_number("220202", date(1950, 3, 7), seq), name="张桂兰", sex="F",
                      birth_date=date(1950, 3, 7), region_code="220202",
                      created_at=datetime(2025, 1, 10, tzinfo=UTC))
        s.add(p)
        s.flush()
        conf = record_confirmation(s, p, ConfirmationMethod.FACE_SELF_SERVICE, AUDITED,
                                   f"verification_session:{SESSION}", {}, cycle_months=12)
        case = cases.open_case(s, SpotCheck(session_id=SESSION, reasons=("PAD_GREY_BAND",), confirmation_id=conf.id,
                                            method="face_self_service", pad_score=pad_score,
                                            pad_threshold=THRESHOLD, pad_band=(THRESHOLD, AUDIT_BELOW)),
                               reason="PAD_GREY_BAND", pensioner=p)
        return p.id, conf.id, case.id


def _client(ctx: AppContext, username: str, lang: str = "zh") -> tuple[TestClient, str]:
    # Not entered as a context manager: the lifespan would warm up a face engine these pages never use.
    client = TestClient(create_app(ctx=ctx))
    token = login(client, username)
    if lang != "zh":
        client.get(f"/console/lang?to={lang}")
    return client, token


def _text(html: str, element_id: str) -> str:
    """The text of the element with this id (tags dropped, whitespace collapsed)."""
    m = re.search(rf'<(\w+)[^>]*\bid="{re.escape(element_id)}"[^>]*>(.*?)</\1>', html, re.S)
    assert m, f"no #{element_id}"
    return " ".join(unescape(re.sub(r"<[^>]+>", "", m.group(2))).split())


def _suspension_id(html: str) -> int:
    m = re.search(r'id="fraud-suspension"><a href="/console/suspensions">[^#<]*#(\d+)</a>', html)
    assert m, "no fraud suspension line"
    return int(m.group(1))


def _tag(html: str, element_id: str) -> str:
    m = re.search(rf'<[^>]*\bid="{re.escape(element_id)}"[^>]*>', html)
    assert m, f"no #{element_id}"
    return m.group(0)


@pytest.fixture
def staff(data_ctx: AppContext) -> None:
    make_user(data_ctx, "cw_wang", "caseworker")
    make_user(data_ctx, "cw_li", "caseworker")


def test_given_a_spot_check_in_the_audit_band_when_two_caseworkers_sign_fraud_then_every_line_is_in_chinese(
        data_ctx: AppContext, staff: None) -> None:
    _, conf_id, case_id = _spot_check(data_ctx, 41, pad_score=0.912)
    first, token = _client(data_ctx, "cw_wang")
    page = first.get(f"/console/cases/{case_id}").text

    # The keys of the decisions this case offers, nothing else.
    assert _text(page, "shortcuts") == "快捷键：g 本人活体 · v 上门 · f 欺诈 · n 备注 · j/k 下一件/上一件"
    # In the audit band: amber, with the words, not the red of a failed check.
    assert "warn" in _tag(page, "pad-score") and "bad" not in _tag(page, "pad-score")
    assert _text(page, "pad-score") == f"0.912 / {THRESHOLD:.3f} · 复核区间内"
    # No liveness rows, no quality, no hits: no empty panel.
    assert 'class="panel checks"' not in page
    # The source as a short label, the full id kept in the title.
    assert f'<span class="source" title="verification_session:{SESSION}">会话 <span class="mono">5f0c2a9e</span>' \
        in page

    r = first.post(f"/console/cases/{case_id}/fraud", data={"csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303 and "error" not in r.headers["location"], r.headers["location"]
    page = first.get(f"/console/cases/{case_id}").text
    assert _text(page, "case-state") == "已提议暂停发放，待另一位经办人批准"
    assert _text(page, "decided") == "已提议暂停发放，待另一位经办人批准"
    assert _text(page, "fraud-suspension").startswith(f"疑似欺诈 #{_suspension_id(page)}：待批准")  # full-width
    assert 'id="shortcuts"' not in page, "a decided case offers no keys"

    lst = first.get("/console/suspensions").text
    (susp_id,) = {int(m) for m in re.findall(r'id="susp-case-(\d+)"', lst)}
    assert _tag(lst, f"susp-case-{susp_id}").startswith(f'<a href="/console/cases/{case_id}"')
    assert _text(lst, f"susp-signers-{susp_id}") == "cw_wang / —"
    assert 'class="secondary"' in _tag(lst, f"susp-decline-{susp_id}")

    second, token2 = _client(data_ctx, "cw_li")
    r = second.post(f"/console/suspensions/{susp_id}/approve", data={"csrf_token": token2, "note": "同意"},
                    follow_redirects=False)
    assert r.status_code == 303 and "error" not in r.headers["location"], r.headers["location"]
    assert _text(second.get("/console/suspensions?status=approved").text,
                 f"susp-signers-{susp_id}") == "cw_wang / cw_li"

    page = first.get(f"/console/cases/{case_id}").text
    assert _text(page, "case-state") == "已结案"
    assert _text(page, "decided") == "已处理。"
    assert _text(page, "p-status") == f"暂停发放（待审查） — 疑似欺诈暂停发放 #{susp_id}"
    assert _text(page, f"withdrawn-by-{conf_id}") == f"随暂停发放 #{susp_id}（疑似欺诈）撤销：cw_wang 提议，cw_li 批准"
    for english in ("payment suspension", "proposed by", "approved by", "staff #", "(fraud)"):
        assert english not in page, english  # the stored reason texts stay in the audit, not on the page

    en, _ = _client(data_ctx, "cw_li", lang="en")
    page = en.get(f"/console/cases/{case_id}").text
    assert _text(page, "p-status").endswith(f"— payment suspension #{susp_id} (Suspected fraud)")
    assert _text(page, f"withdrawn-by-{conf_id}") == (
        f"withdrawn with payment suspension #{susp_id} (Suspected fraud): proposed by cw_wang, approved by cw_li")


def test_given_each_kind_of_case_when_opened_then_the_keys_line_lists_its_own_decisions(
        data_ctx: AppContext, staff: None) -> None:
    pid, _, spot_id = _spot_check(data_ctx, 42, pad_score=0.97)  # above the band: plain, no words
    verification_id = make_case(data_ctx, pid, kind=ReviewKind.VERIFICATION, reason="LOW_MATCH")
    client, _ = _client(data_ctx, "cw_wang")
    page = client.get(f"/console/cases/{spot_id}").text
    assert "good" in _tag(page, "pad-score") and _text(page, "pad-score") == f"0.970 / {THRESHOLD:.3f}"
    page = client.get(f"/console/cases/{verification_id}").text
    keys = _text(page, "shortcuts")
    offered = re.findall(r'data-key="([a-z])"', page.split('id="decisions"', 1)[1].split("</div>", 1)[0])
    assert keys == "快捷键：" + "".join(f"{k} {word} · " for k, word in zip(
        offered, [{"a": "确认", "r": "驳回", "v": "上门", "f": "欺诈", "g": "本人活体"}[k] for k in offered],
        strict=True)) + "n 备注 · j/k 下一件/上一件"
    assert offered == ["a", "v", "r", "f"]  # a verification case: approve and reject, no "genuine"

    en, _ = _client(data_ctx, "cw_li", lang="en")
    assert _text(en.get(f"/console/cases/{spot_id}").text, "shortcuts") == (
        "Keys: g genuine · v visit · f fraud · n note · j/k next/prev")


def test_given_an_open_fraud_case_not_yet_proposed_when_the_page_is_read_then_it_does_not_say_awaiting_approval(
        data_ctx: AppContext, staff: None) -> None:
    """An ``open`` fraud suspension (as enrollment staff leave one) still needs both signatures: the case
    keeps its own status and the suspension line says it waits for a proposal."""
    pid, _, case_id = _spot_check(data_ctx, 43, pad_score=0.912)
    with data_ctx.db.session() as s:
        p = s.get(Pensioner, pid)
        assert p is not None
        susp_id = suspensions.open_fraud(s, p, case_id, principal(data_ctx, make_user(data_ctx, "es_zhao",
                                                                                      "enrollment_staff"))).id
    client, _ = _client(data_ctx, "cw_wang")
    page = client.get(f"/console/cases/{case_id}").text
    assert _text(page, "case-state") == "未分配"
    assert _text(page, "fraud-suspension") == f"疑似欺诈 #{susp_id}：待提议"
