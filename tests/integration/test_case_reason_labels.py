"""Why a case was opened, in the caseworker's language: the queue (its reason column and filter) and the case
page's title show words (zh by default, en), not codes such as ``PAD_GREY_BAND``; the code stays on the page
for support (a title attribute; small text in the case title). Every reason a service opens a case with has
words in both languages. Real console (TestClient) and services on the test database."""

from __future__ import annotations

import re
from html import unescape

import pytest
from fastapi.testclient import TestClient

from lifecert.domain.cases import SpotCheck
from lifecert.domain.spotcheck import SpotCheckReason
from lifecert.services.context import AppContext
from server.app import create_app
from server.routes.staff_i18n import known, reason_label, translator
from tests.integration.console_support import login, make_case, make_pensioner, make_user

# every reason a case is opened with: verification review (services/verification/rules.py, escalate), enrollment
# rows (face quality and row checks), department data (datamatch/outcomes.py), tip-offs, spot checks, visits
OPENED_WITH = (
    "LOW_MATCH", "LIVENESS_FAILED", "PRESENTATION_ATTACK", "DIFFERENT_PERSONS", "MATCHES_OTHER_PENSIONER",
    "TOO_MANY_RETRIES", "HELD_FOR_REVIEW", "CHALLENGE_NOT_SEEN", "TOO_FEW_FRAMES", "FACE_NOT_CENTRED",
    "NO_FACE", "MULTIPLE_FACES", "FACE_TOO_SMALL", "BLURRY", "TOO_DARK", "TOO_BRIGHT", "LOW_CONTRAST",
    "POSE_TOO_LARGE", "EYES_CLOSED", "LOW_QUALITY", "UNREADABLE_IMAGE", "UNSUPPORTED_FORMAT", "IMAGE_TOO_LARGE",
    "FILE_MISSING", "BAD_ID_NUMBER", "DUPLICATE_ROW", "DUPLICATE_FACE", "ID_COLLISION",
    "NAME_MISMATCH", "ALIVE_AFTER_DEATH", "DEATH_AFTER_CONFIRMATION", "TIP_OFF", "PENSIONER_DECEASED",
    *(str(r) for r in SpotCheckReason),
)


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_given_every_reason_a_case_is_opened_with_then_it_has_words_in_both_languages(lang: str) -> None:
    t = translator(lang)
    for code in OPENED_WITH:
        assert known(f"rc_{code}"), code
        label = reason_label(t, code)
        assert label and label != code and "_" not in label, (code, label)
    assert reason_label(t, "SOMETHING_NEW") == "SOMETHING_NEW", "an unknown code is shown as it is"


def _cell_text(html: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", "", html)).split())


def _client(ctx: AppContext, username: str, lang: str) -> TestClient:
    client = TestClient(create_app(ctx=ctx))  # not entered: no face engine warm-up for these pages
    login(client, username)
    if lang != "zh":
        client.get(f"/console/lang?to={lang}")
    return client


@pytest.mark.parametrize(("lang", "band", "low"), [
    ("zh", "防伪分数刚过阈值", "人脸比对分数偏低"),
    ("en", "PAD score just above the threshold", "Face match below the threshold"),
])
def test_given_a_spot_check_and_a_verification_case_when_listed_and_opened_then_reasons_are_words_with_the_code_kept(
        data_ctx: AppContext, lang: str, band: str, low: str) -> None:
    make_user(data_ctx, "cw_wang", "caseworker")
    spot = make_case(data_ctx, make_pensioner(data_ctx, 71), kind="spot_check", reason="PAD_GREY_BAND",
                     payload=SpotCheck(session_id="s", reasons=("PAD_GREY_BAND",), confirmation_id=1,
                                       method="face_self_service"))
    verification = make_case(data_ctx, make_pensioner(data_ctx, 72))  # LOW_MATCH
    client = _client(data_ctx, "cw_wang", lang)

    queue = client.get("/console/queue").text
    for case_id, code, words in ((spot, "PAD_GREY_BAND", band), (verification, "LOW_MATCH", low)):
        row = re.search(rf'<tr data-case="{case_id}">(.*?)</tr>', queue, re.S)
        assert row, case_id
        assert f'<span class="reason" title="{code}">{words}</span>' in row.group(1)
        assert f"<code>{code}</code>" not in row.group(1)
        assert re.search(rf'<option value="{code}" title="{code}"\s*>{re.escape(words)} \(1\)</option>', queue)

    page = client.get(f"/console/cases/{spot}").text
    title = re.search(r"<h1>(.*?)</h1>", page, re.S)
    assert title and f'<span id="case-reason" title="PAD_GREY_BAND">{band}</span>' in title.group(1)
    assert _cell_text(title.group(1)).endswith(f"{band} PAD_GREY_BAND")  # the code, small, for support
    assert "<code>PAD_GREY_BAND</code>" not in page
