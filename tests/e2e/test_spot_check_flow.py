"""Caseworker spot checks (抽查) in real headless Chromium on the real console.

One real CONFIRMED session opens the case: the talking-head clip goes through the public paced session API
(the real dlib engine and the real MiniFASNet PAD pack) on a service whose grey band ends at 1.0, so every
passing PAD score lies in it and the draw cannot miss (no random sample). The case's own server (uvicorn on
127.0.0.1 over that data directory), not the shared e2e server: nothing here changes what the other browser
tests see. Then two caseworkers in the browser: the queue's spot-check filter, the page (frames rendered, PAD
score and band, reasons, the three decisions), suspected fraud by keyboard, the second signature on the
suspensions page, and the confirmation shown as withdrawn. The "living pensioner" path on a second spot check
(over a recorded assisted confirmation: no second session). What the caseworker reads: the keys of this
case's decisions, the band's PAD score in amber with its words, "proposed, awaiting the second caseworker"
until approval, signers by username, and the withdrawal told in Chinese from the suspension row. Layout at
1280 px, at 150 % zoom, at 360 px and with 150 % text (the withdrawn case at 360 px too, and in English at
360 px with normal and 150 % text); screenshots into screenshots_dir."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from lifecert.domain.cases import SpotCheck, load_payload
from lifecert.engine.base import FaceEngine
from lifecert.engine.pad import pad_spec
from lifecert.services import cases
from lifecert.services.confirmations import record_confirmation, status_of
from lifecert.services.context import AppContext
from lifecert.storage.models import ConfirmationMethod, Pensioner, ReviewCase, ReviewKind, SurvivalConfirmation
from lifecert.storage.models_agency import Suspension, SuspensionStatus
from lifecert.storage.models_verification import VerificationSession
from tests.conftest import make_settings
from tests.db_support import detached_get
from tests.e2e.test_console_flow import Served, _wait_js, assert_at, serving, text_of, wait_for_url
from tests.integration.console_support import PASSWORD, make_case, make_pensioner, make_user
from tests.paced_client import Clip

pytestmark = pytest.mark.browser

DESK = {"width": 1280, "height": 900}
PHONE = {"width": 360, "height": 740}


@dataclass(frozen=True)
class SpotCase:
    ctx: AppContext
    case_id: int
    pensioner_id: int
    confirmation_id: int
    evidence_date: str
    pad_score: float
    frames: int
    genuine_case_id: int
    genuine_confirmation_id: int
    verification_case_id: int


@pytest.fixture
def spot_case(tmp_path: Path, face_engine: FaceEngine, frame_engine: FaceEngine, clip: Clip,
              shared_models_dir: Path) -> Iterator[SpotCase]:
    """A spot-check case opened by the real verification service (PAD_GREY_BAND), a second spot check over
    a recorded assisted confirmation (another pensioner), a verification case the kind filter must hide,
    and two caseworkers."""
    from lifecert.cli_models import install_models
    from tests.integration.verification_support import enroll, serve
    from tests.paced_client import SimClock, VirtualTime, run_http_session

    pad_src = shared_models_dir / "minifasnet"
    if not pad_src.is_dir():
        pytest.skip(f"{pad_src} not found")
    settings = make_settings(tmp_path, fixed_challenges="blink,open_mouth", inference_threads=1,
                             verification={"audit_pad_below": 1.0, "audit_sample_rate": 0.0})
    install_models(settings, pad_src, "minifasnet")
    ctx = AppContext(settings)
    ctx.set_engine(face_engine)
    try:
        assert clip.template is not None
        p = enroll(ctx, clip.template, seq=93, name="赵淑珍")
        clock = VirtualTime()
        for client in serve(ctx, frame_engine, clock):
            sid, phone = run_http_session(client, {"id_number": p.id_number, "name": p.name}, clip, SimClock(clock))
            res = phone.last.result if phone.last else None
        assert res is not None and res["decision"] == "CONFIRMED", res
        vs = detached_get(ctx, VerificationSession, sid)
        with ctx.db.session() as s:
            case = s.scalars(select(ReviewCase).where(ReviewCase.kind == ReviewKind.SPOT_CHECK)).one()
            payload = load_payload(case.payload)
            assert isinstance(payload, SpotCheck) and case.reason == "PAD_GREY_BAND"
            assert payload.confirmation_id == vs.confirmation_id is not None and payload.best_frames
            conf = s.get(SurvivalConfirmation, vs.confirmation_id)
            assert conf is not None
            evidence = str(conf.evidence_date)
            case_id = case.id
        other = make_pensioner(ctx, 94, name="孙桂芝")
        with ctx.db.session() as s:
            pen = s.get(Pensioner, other)
            assert pen is not None
            gconf = record_confirmation(s, pen, ConfirmationMethod.ASSISTED, date(2026, 11, 30),
                                        "verification_session:e2e-assisted", {}, cycle_months=12)
            threshold = pad_spec().threshold.value
            gcase = cases.open_case(
                s, SpotCheck(session_id="e2e-assisted", reasons=("RANDOM_SAMPLE",), confirmation_id=gconf.id,
                             method="assisted", pad_score=0.97, pad_threshold=threshold,
                             pad_band=(threshold, 0.9389), sample_rate=0.02),
                reason="RANDOM_SAMPLE", pensioner=pen)
            ids = (gcase.id, gconf.id)
        verification_case = make_case(ctx, other, kind=ReviewKind.VERIFICATION, reason="LOW_MATCH")
        make_user(ctx, "cw_spot1", "caseworker")
        make_user(ctx, "cw_spot2", "caseworker")
        yield SpotCase(ctx, case_id, p.id, vs.confirmation_id, evidence, float(vs.scores["pad"]["score"]),
                       len(payload.best_frames), *ids, verification_case)
    finally:
        ctx.close()


def _login(browser: Any, srv: Served, username: str, viewport: dict[str, int] = DESK, **options: Any) -> Any:
    """A fresh browser context logged in through the real form; its page."""
    context = browser.new_context(viewport=viewport, locale="zh-CN", **options)
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(f"{srv.base}/console/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("#login-submit")
    wait_for_url(page, "**/console/queue", srv)
    return page


def _frames_loaded(page: Any, expected: int) -> None:
    """Every best frame is served (decrypted) and rendered."""
    _wait_js(page, "Array.from(document.images).every(i => i.complete)")
    widths = page.locator('img[id^="frame-"]').evaluate_all("els => els.map(e => e.naturalWidth)")
    assert len(widths) == expected and all(w > 0 for w in widths), widths


def _check_layout(page: Any, label: str) -> None:
    """No sideways scrolling; every visible button and field lies inside the page width."""
    width = page.evaluate("document.documentElement.clientWidth")
    scroll = page.evaluate("document.documentElement.scrollWidth")
    assert scroll <= width, f"{label}: page is {scroll}px wide on a {width}px screen"
    boxes = page.evaluate(
        """() => [...document.querySelectorAll('main button, main input, main select, main textarea, main img')]
             .filter((b) => b.offsetParent !== null && b.type !== 'hidden')
             .map((b) => { const r = b.getBoundingClientRect();
                           return {id: b.id || b.name || b.textContent.trim(), left: r.left, right: r.right}; })"""
    )
    assert boxes, f"{label}: nothing found"
    # a value beside its label keeps room to be read (not one character a line beside a long label)
    narrow = page.evaluate(
        """() => [...document.querySelectorAll('main dd')]
             .filter((d) => d.offsetParent !== null && d.textContent.trim())
             .map((d) => [d.id || d.textContent.trim().slice(0, 20), d.getBoundingClientRect().width,
                          parseFloat(getComputedStyle(d).fontSize)])
             .filter(([, w, f]) => w < 4 * f)"""
    )
    assert not narrow, f"{label}: values squeezed beside their labels: {narrow}"
    # a table cell is not squeezed to a few characters a line (the confirmations' 经办 column once was, at
    # 360 px with large text): narrower than 4 characters of its font AND wrapped over 3 lines or more
    squeezed = page.evaluate(
        """() => [...document.querySelectorAll('main td')]
             .filter((c) => c.offsetParent !== null && c.textContent.trim())
             .map((c) => { const s = getComputedStyle(c), f = parseFloat(s.fontSize);
                           const inner = c.clientWidth - parseFloat(s.paddingLeft) - parseFloat(s.paddingRight);
                           const r = document.createRange(); r.selectNodeContents(c);
                           const lines = new Set([...r.getClientRects()].map((q) => Math.round(q.top))).size;
                           return [(c.closest('table').id || '?') + ': ' + c.textContent.trim().slice(0, 16),
                                   inner, f, lines]; })
             .filter(([, w, f, lines]) => w < 4 * f && lines >= 3)"""
    )
    assert not squeezed, f"{label}: table cells squeezed to a few characters a line: {squeezed}"
    for b in boxes:
        assert b["left"] >= 0 and b["right"] <= width + 0.5, f"{label}: {b} outside {width}px"


def _check_stacked(page: Any, label: str) -> None:
    """On a narrow screen a record table stacks each cell as "label value": a label never wraps (a short value
    such as a date stays on one line beside it; "Evidence date" in English once took two), and a long value
    (why a confirmation was withdrawn) runs under its label the full width, not in a column of one or two
    words a line (14 lines at 360 px with 150 % text)."""
    cells = page.evaluate(
        """() => [...document.querySelectorAll('main table.stacked td')]
             .filter((c) => c.offsetParent !== null && getComputedStyle(c).display === 'grid')
             .map((c) => { const s = getComputedStyle(c), f = parseFloat(s.fontSize);
                           const line = parseFloat(s.lineHeight) || 1.2 * f;
                           const high = c.clientHeight - parseFloat(s.paddingTop) - parseFloat(s.paddingBottom);
                           const wide = c.clientWidth - parseFloat(s.paddingLeft) - parseFloat(s.paddingRight);
                           const v = c.querySelector('.cell');
                           return {label: c.dataset.label, text: v.textContent.trim(), high, line, wide,
                                   value: v.getBoundingClientRect().width, long: c.classList.contains('long')}; })"""
    )
    assert cells, f"{label}: no stacked cells"
    wrapped = [(c["label"], c["text"]) for c in cells if len(c["text"]) <= 10 and c["high"] >= 1.6 * c["line"]]
    assert not wrapped, f"{label}: short values taking two lines or more (a label wraps): {wrapped}"
    cramped = [(c["label"], c["text"][:24]) for c in cells if c["long"] and c["value"] < 0.9 * c["wide"]]
    assert not cramped, f"{label}: a long value squeezed beside its label: {cramped}"
    # a value of words only (class "words": the pensioner's status) never breaks inside a Latin word
    cut = page.evaluate(
        """() => [...document.querySelectorAll('main .words')].flatMap((el) => {
             const out = [], walk = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
             for (let n = walk.nextNode(); n; n = walk.nextNode()) {
               for (const m of n.textContent.matchAll(/[A-Za-z0-9]+/g)) {  // Chinese may break anywhere
                 const r = document.createRange(); r.setStart(n, m.index); r.setEnd(n, m.index + m[0].length);
                 const tops = new Set([...r.getClientRects()].map((q) => Math.round(q.top)));
                 if (tops.size > 1) out.push(m[0]);
               } }
             return out; })"""
    )
    assert not cut, f"{label}: words cut across lines: {cut}"


class _Accept:
    """A dialog handler: notes the message and accepts (the fraud button's confirm step)."""

    def __init__(self, messages: list[str]) -> None:
        self.messages = messages

    def __call__(self, dialog: Any) -> None:
        self.messages.append(dialog.message)
        dialog.accept()


LARGE_TEXT = (  # a phone's "large text": every size the console sets, 150 % (px sizes too, as a reader sets them)
    "document.addEventListener('DOMContentLoaded', () => {"
    " document.documentElement.style.setProperty('font-size', '24px');"
    " document.body.style.setProperty('font-size', '21px');"
    " for (const e of document.querySelectorAll('.small, .hint, .filters label, td.detail'))"
    "   e.style.setProperty('font-size', '18px'); });"
)


def test_given_a_real_session_in_the_pad_grey_band_when_two_caseworkers_sign_fraud_in_the_browser_then_withdrawn(
    spot_case: SpotCase, browser: Any, screenshots_dir: Path
) -> None:
    sc = spot_case
    ctx = sc.ctx
    threshold = pad_spec().threshold.value
    with serving(ctx) as srv:
        base = srv.base
        page = _login(browser, srv, "cw_spot1")
        try:
            # The queue's kind filter: both spot checks, not the verification case.
            page.select_option('select[name="kind"]', "spot_check")
            page.locator('select[name="kind"]').evaluate("s => s.form.requestSubmit()")
            wait_for_url(page, "**kind=spot_check**", srv)
            rows = page.locator("tr[data-case]").evaluate_all("els => els.map(e => Number(e.dataset.case))")
            assert sorted(rows) == sorted([sc.case_id, sc.genuine_case_id]), rows
            assert "认证抽查" in page.inner_text(f'tr[data-case="{sc.case_id}"]')
            _check_layout(page, "queue 1280")
            page.screenshot(path=str(screenshots_dir / "spot_queue_filter_1280.png"), full_page=True)

            page.click(f"#open-{sc.case_id}")
            wait_for_url(page, f"**/console/cases/{sc.case_id}", srv)
            _frames_loaded(page, sc.frames)
            assert page.get_attribute("#trigger", "data-type") == "spot_check"
            assert page.inner_text("#spot-reasons") == "防伪分数刚过阈值（复核区间）"
            # in the band: amber with its words, not the red of a failed check
            assert page.inner_text("#pad-score") == f"{sc.pad_score:.3f} / {threshold:.3f} · 复核区间内"
            assert page.get_attribute("#pad-score", "class") == "warn"
            assert page.inner_text("#pad-band") == f"[{threshold:.3f}, 1.000)"
            assert page.inner_text("#spot-confirmation").startswith(f"#{sc.confirmation_id} · ")
            assert sc.evidence_date in page.inner_text("#spot-confirmation")
            assert "认证已生效" in page.inner_text("#spot-hint")
            assert page.locator("#liveness tbody tr").count() == 2
            decisions = page.locator("#decisions button[type=submit]").evaluate_all("els => els.map(e => e.id)")
            assert decisions == ["genuine", "visit", "fraud"], decisions
            assert page.inner_text("#shortcuts") == "快捷键：g 本人活体 · v 上门 · f 欺诈 · n 备注 · j/k 下一件/上一件"
            assert all(page.is_visible(f"#{d}") for d in decisions)
            assert page.inner_text("#fraud-withdraws") == (
                f"标记疑似欺诈只提议暂停发放；另一位经办人批准后，同时撤销 {sc.evidence_date} 的认证")
            _check_layout(page, "case 1280")
            page.screenshot(path=str(screenshots_dir / "spot_case_1280.png"), full_page=True)
            state = page.context.storage_state()
            case_url = f"{base}/console/cases/{sc.case_id}"
            for label, opts, script in (
                ("case 1280 zoom 150%", {"viewport": {"width": 853, "height": 600}, "device_scale_factor": 1.5},
                 None),
                ("case 360", {"viewport": PHONE, "device_scale_factor": 2}, None),
                ("case 360 text 150%", {"viewport": PHONE, "device_scale_factor": 2}, LARGE_TEXT),
            ):
                other = browser.new_context(locale="zh-CN", storage_state=state, **opts)
                try:
                    if script:
                        other.add_init_script(script)
                    view = other.new_page()
                    view.goto(case_url)
                    _frames_loaded(view, sc.frames)
                    assert view.is_visible("#fraud") and view.is_visible("#pad-band")
                    _check_layout(view, label)
                    if "360" in label:
                        _check_stacked(view, label)
                    name = label.replace(" ", "_").replace("%", "pct")
                    view.screenshot(path=str(screenshots_dir / f"spot_{name}.png"), full_page=True)
                finally:
                    other.close()

            # Suspected fraud by keyboard (f): the page asks first, then proposes; nothing changes yet.
            asked: list[str] = []
            page.once("dialog", _Accept(asked))
            with page.expect_navigation():
                page.keyboard.press("f")
            assert asked and "疑似欺诈" in asked[0], asked
            assert_at(page, srv, f"/console/cases/{sc.case_id}")  # back on the case, no ?error=
            assert text_of(page, "#case-decision", srv) == "疑似欺诈"
            assert page.inner_text("#fraud-suspension").endswith(f"待批准 — 批准时同时撤销 {sc.evidence_date} 的认证")
            assert page.locator("#decisions").count() == 0 and page.locator("#shortcuts").count() == 0
            assert page.inner_text("#case-state") == "已提议暂停发放，待另一位经办人批准"  # not "closed" yet
            assert detached_get(ctx, SurvivalConfirmation, sc.confirmation_id).withdrawn_at is None
            page.screenshot(path=str(screenshots_dir / "spot_case_proposed_1280.png"), full_page=True)
            with ctx.db.session() as s:
                susp = s.scalars(select(Suspension).where(Suspension.pensioner_id == sc.pensioner_id)).one()
                assert (susp.status, susp.review_case_id) == (SuspensionStatus.PROPOSED, sc.case_id)
                susp_id = susp.id
            approve = f'form[action="/console/suspensions/{susp_id}/approve"]'
            page.goto(f"{base}/console/suspensions")
            assert page.inner_text(f"#susp-withdraws-{susp_id}") == f"批准时同时撤销 {sc.evidence_date} 的认证"
            assert page.locator(approve).count() == 0, "the proposer cannot sign twice"
            assert page.inner_text(f"#susp-signers-{susp_id}") == "cw_spot1 / —"
            assert page.get_attribute(f"#susp-case-{susp_id}", "href") == f"/console/cases/{sc.case_id}"
            page.screenshot(path=str(screenshots_dir / "spot_suspensions_proposer_1280.png"), full_page=True)
        finally:
            page.context.close()

        # The second signature, by another caseworker on the suspensions page.
        second = _login(browser, srv, "cw_spot2")
        try:
            second.goto(f"{base}/console/suspensions")
            _check_layout(second, "suspensions 1280")
            second.screenshot(path=str(screenshots_dir / "spot_suspensions_second_1280.png"), full_page=True)
            second.fill(f'{approve} input[name="note"]', "画面为本人翻拍，同意")
            with second.expect_navigation():
                second.click(f"{approve} button[type=submit]")
            assert_at(second, srv, "/console/suspensions")  # no ?error=
            second.goto(f"{base}/console/cases/{sc.case_id}")
            _frames_loaded(second, sc.frames)  # the frames stay while the case is on record
            row = second.locator(f"#conf-withdrawn-{sc.confirmation_id}")
            assert row.is_visible() and "已撤销" in row.inner_text()
            assert "已撤销" in second.inner_text("#spot-confirmation")
            assert second.inner_text("#fraud-suspension").endswith(f"已撤销 {sc.evidence_date} 的认证")
            assert second.inner_text("#p-status") == f"暂停发放（待审查） — 疑似欺诈暂停发放 #{susp_id}"
            assert second.inner_text(f"#withdrawn-by-{sc.confirmation_id}") == (
                f"随暂停发放 #{susp_id}（疑似欺诈）撤销：cw_spot1 提议，cw_spot2 批准")
            assert second.inner_text("#case-state") == "已结案"
            assert "payment suspension" not in second.inner_text("main")
            _check_layout(second, "case withdrawn 1280")
            second.screenshot(path=str(screenshots_dir / "spot_case_withdrawn_1280.png"), full_page=True)
            second.set_viewport_size(PHONE)  # the confirmations' source is a short label, not a broken id
            _check_layout(second, "case withdrawn 360")
            _check_stacked(second, "case withdrawn 360")
            second.screenshot(path=str(screenshots_dir / "spot_case_withdrawn_360.png"), full_page=True)
            # the English console on the phone, at normal and at 150 % text (longer labels and reasons)
            case_path = f"/console/cases/{sc.case_id}"
            second.goto(f"{base}/console/lang?to=en&next={case_path}")
            assert second.inner_text(f"#conf-withdrawn-{sc.confirmation_id}").startswith("Face self-service")
            _check_layout(second, "case withdrawn 360 en")
            _check_stacked(second, "case withdrawn 360 en")
            second.screenshot(path=str(screenshots_dir / "spot_case_withdrawn_360_en.png"), full_page=True)
            large = browser.new_context(locale="en-GB", storage_state=second.context.storage_state(),
                                        viewport=PHONE, device_scale_factor=2)
            try:
                large.add_init_script(LARGE_TEXT)
                view = large.new_page()
                view.goto(f"{base}{case_path}")
                _check_layout(view, "case withdrawn 360 en text 150%")
                _check_stacked(view, "case withdrawn 360 en text 150%")
                view.screenshot(path=str(screenshots_dir / "spot_case_withdrawn_360_en_text150pct.png"), full_page=True)
            finally:
                large.close()
            second.goto(f"{base}/console/lang?to=zh&next={case_path}")
            second.set_viewport_size(DESK)

            # The living pensioner, on the other spot check, by keyboard (g): closed, the confirmation stands.
            second.goto(f"{base}/console/cases/{sc.genuine_case_id}")
            assert second.inner_text("#spot-reasons") == "随机抽样"
            assert second.locator(".panel.checks").count() == 0, "no liveness rows: no empty panel"
            with second.expect_navigation():
                second.keyboard.press("g")
            assert_at(second, srv, f"/console/cases/{sc.genuine_case_id}")
            assert text_of(second, "#case-decision", srv) == "本人活体，认证有效"
            assert second.locator("#decisions").count() == 0
            second.screenshot(path=str(screenshots_dir / "spot_case_genuine_1280.png"), full_page=True)
        finally:
            second.context.close()

    conf = detached_get(ctx, SurvivalConfirmation, sc.confirmation_id)
    assert conf.withdrawn_at is not None
    kept = detached_get(ctx, SurvivalConfirmation, sc.genuine_confirmation_id)
    assert kept.withdrawn_at is None
    with ctx.db.session() as s:
        pen = s.get(Pensioner, sc.pensioner_id)
        assert pen is not None and status_of(s, pen).state == "never_confirmed" and pen.status == "suspended"
        closed = s.get(ReviewCase, sc.genuine_case_id)
        assert closed is not None and (closed.status, closed.decision) == ("closed", "genuine")
        assert len(list(s.scalars(select(SurvivalConfirmation)))) == 2, "genuine records nothing new"
