"""A pensioner's stored status reason (written in English by the data comparison, for the record) is read on the
case page in the caseworker's language, the stored text kept in a title attribute; a reason in a form the
console does not know is shown as written. The reasons are made by the real import of department extracts,
so a change in how they are written fails here instead of showing English on the Chinese page."""

from __future__ import annotations

import re
from html import unescape
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from lifecert.services.context import AppContext
from lifecert.services.datamatch.mapping import shipped_mappings_dir
from lifecert.storage.models import Pensioner, PensionerStatus
from server.app import create_app
from server.routes.staff_i18n import department_label, status_reason_label
from tests.integration.console_support import login, make_case, make_user
from tests.integration.test_data_support import (
    DEATH_HEADER,
    RELEASE_HEADER,
    SENTENCE_HEADER,
    add_pensioners,
    do_import,
    idn,
    write_csv,
)


def _reason_on_page(client: TestClient, case_id: int) -> tuple[str, str]:
    """(the words shown, the stored text in the title) of the case page's status reason."""
    page = client.get(f"/console/cases/{case_id}").text
    m = re.search(r'<span id="p-status-reason" title="([^"]*)">(.*?)</span>', page, re.S)
    assert m, "no status reason on the page"
    return " ".join(unescape(m.group(2)).split()), unescape(m.group(1))


def test_given_status_reasons_written_by_the_data_comparison_when_the_case_page_is_read_then_in_chinese(
        data_ctx: AppContext, tmp_path: Path) -> None:
    dead, jailed, freed, fraud = idn(31), idn(33), idn(35), idn(37)
    ids = add_pensioners(data_ctx, [(dead, "王秀英"), (jailed, "张伟"), (freed, "陈静"), (fraud, "刘洋")])
    do_import(data_ctx, "police_deregistration",
              write_csv(tmp_path / "death.csv", DEATH_HEADER, [[dead, "王秀英", "2026-03-05", "死亡"]]))
    do_import(data_ctx, "court_sentence", write_csv(tmp_path / "court.csv", SENTENCE_HEADER, [
        [jailed, "张伟", "2026-01-15", "2028-01-14", "诈骗"], [freed, "陈静", "2025-06-01", "2027-05-31", ""]]))
    do_import(data_ctx, "prison_release",
              write_csv(tmp_path / "rel.csv", RELEASE_HEADER, [[freed, "陈静", "2026-03-20"]]))
    with data_ctx.db.session() as s:  # typed by a person: no known form
        p = s.get(Pensioner, ids[fraud])
        assert p is not None
        p.status, p.status_reason = PensionerStatus.SUSPENDED, "fraud review case 7"
    make_user(data_ctx, "cw_wang", "caseworker")
    client = TestClient(create_app(ctx=data_ctx))  # not entered: no face engine warm-up for these pages
    login(client, "cw_wang")

    shown = {who: _reason_on_page(client, make_case(data_ctx, ids[who])) for who in (dead, jailed, freed, fraud)}
    assert shown[dead] == ("2026-03-05 死亡（公安局报送）", "death 2026-03-05 reported by police_deregistration")
    assert shown[jailed][0] == "服刑：2026-01-15 至 2028-01-14（法院报送）"
    assert shown[freed][0] == "2026-03-20 释放（监狱管理局报送）"
    assert shown[fraud] == ("fraud review case 7", "fraud review case 7")
    client.get("/console/lang?to=en")
    assert _reason_on_page(client, make_case(data_ctx, ids[dead]))[0] == "Died 2026-03-05 (reported by Police)"


@pytest.mark.parametrize(("stored", "zh", "en"), [
    ("imprisoned from 2026-01-15 (court_sentence)", "服刑：自 2026-01-15 起（法院报送）",
     "In prison from 2026-01-15 (reported by Court)"),
    ("death 2026-03-05 reported by civil_affairs_cremation", "2026-03-05 死亡（民政局报送）",
     "Died 2026-03-05 (reported by Civil Affairs)"),
    ("death 2026-03-05 reported by evil_dept", "2026-03-05 死亡（evil_dept报送）",  # a department not named yet
     "Died 2026-03-05 (reported by evil_dept)"),
    ("resumed 2026-03-20 (released)", "2026-03-20 释放后恢复发放", "Payment resumed 2026-03-20 after release"),
    ("resumed 2026-12-01 after payment suspension #4 (lifted)", "2026-12-01 恢复发放（暂停案 #4）",
     "Payment resumed 2026-12-01 (suspension #4)"),
    ("death 2026-03-05 reported by x (y)", "2026-03-05 死亡（x (y)报送）", "Died 2026-03-05 (reported by x (y))"),
    ("deceased, per phone call", "deceased, per phone call", "deceased, per phone call"),
])
def test_given_each_form_of_status_reason_then_read_in_both_languages(stored: str, zh: str, en: str) -> None:
    assert (status_reason_label("zh", stored), status_reason_label("en", stored)) == (zh, en)


def test_given_the_shipped_mappings_then_every_department_is_named_in_both_languages() -> None:
    """Each department whose mapping the package ships reads as a caseworker names it, in Chinese and in English
    (a mapping shipped without a name here fails: its code would show on the case page)."""
    codes = sorted(path.stem for path in shipped_mappings_dir().glob("*.yaml"))
    assert "police_deregistration" in codes
    unnamed = [c for c in codes if department_label("zh", c) == c or department_label("en", c) == c]
    assert not unnamed
    assert department_label("zh", "police_deregistration") == "公安局"
    assert department_label("en", "police_deregistration") == "Police"
    assert department_label("zh", "evil_dept") == "evil_dept" and department_label("en", None) == ""
