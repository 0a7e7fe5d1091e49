"""End to end in real headless Chromium: a caseworker logs in, opens a case from the queue, approves it
and sees the confirmation. The app runs under uvicorn on 127.0.0.1 with a temporary data directory."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest
from sqlalchemy import select

from lifecert.domain.cases import ChallengeOutcome, FrameRef, VerificationReview, load_payload
from lifecert.engine.base import FaceEngine
from lifecert.engine.image import decode_image
from lifecert.services import cases, staff, templates
from lifecert.services.context import AppContext
from lifecert.storage.models import ConfirmationMethod, ReviewCase, StaffUser, SurvivalConfirmation
from lifecert.storage.photos import sha256_bytes
from tests.conftest import ROOT, make_settings
from tests.paced_client import Clip

PASSWORD = "e2e-password-123"

pytestmark = pytest.mark.browser


def _wait_js(page: Any, expression: str, timeout_ms: int = 30_000) -> None:
    """Poll ``expression`` until truthy (bounded). Not ``wait_for_function``: a CSP without
    'unsafe-eval' forbids the eval Playwright uses for it, and the tests keep the real CSP."""
    deadline = time.monotonic() + timeout_ms / 1000
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout_ms} ms: {expression}")
        page.wait_for_timeout(200)


@contextmanager
def _desk_page(browser: Any) -> Iterator[Any]:
    """A caseworker's desktop page in its own browser context, on the session's one Chromium
    (tests/e2e/conftest.py): a second ``sync_playwright()`` in the same run is refused by Playwright."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, locale="zh-CN")
    try:
        yield context.new_page()
    finally:
        context.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def seeded(tmp_path: Path, faces_dir: Path, face_engine: FaceEngine) -> Iterator[tuple[AppContext, int, int]]:
    """A caseworker and a LOW_MATCH verification case whose pensioner has a real enrolled face."""
    from datetime import date

    from lifecert.domain.idnumber import make_id_number

    settings = make_settings(tmp_path)
    ctx = AppContext(settings)
    ctx.set_engine(face_engine)
    person = faces_dir / "lfw/images/Tony_Blair"
    id_photo, selfie = (person / "Tony_Blair_0001.jpg").read_bytes(), (person / "Tony_Blair_0007.jpg").read_bytes()
    with ctx.db.session() as s:
        staff.create_user(s, "caseworker1", PASSWORD, "caseworker", display_name="王芳", actor="test",
                          actor_role="cli")
        p = templates.upsert_pensioner(s, make_id_number("220202", date(1948, 5, 2), 13), "张建国",
                                       address="吉林市昌邑区解放北路 100 号")
        img = decode_image(id_photo)
        a = face_engine.analyze(img)[0]
        sha_id = sha256_bytes(id_photo)
        templates.store_photo(ctx, s, id_photo, sha_id, img.shape[1], img.shape[0], "Tony_Blair_0001.jpg")
        assert a.embedding is not None
        templates.add_template(ctx, s, p, a.embedding, photo_sha256=sha_id, quality=a.quality)
        b = face_engine.analyze(decode_image(selfie))[0]
        assert b.embedding is not None
        score = float(np.dot(a.embedding, b.embedding))
        sha_frame = ctx.photos.put(selfie)
        case = cases.open_case(
            s, VerificationReview(
                session_id="vs-e2e-1", reason="LOW_MATCH", match=round(score, 4),
                threshold=ctx.model.threshold("verify"), best_frames=(FrameRef(sha256=sha_frame),),
                challenges=(ChallengeOutcome(name="blink", passed=True, peak_value=0.12),
                            ChallengeOutcome(name="turn_left", passed=True, peak_value=-24.0))),
            reason="LOW_MATCH", pensioner=p, verification_session_id="vs-e2e-1",
        )
        ids = (p.id, case.id)
    yield ctx, *ids
    ctx.close()


@dataclass(frozen=True)
class Served:
    """A test's uvicorn: its base URL and its output (stdout and stderr, access lines included), written to a
    file as it comes: a pipe nobody reads blocks a chatty server once ~64 KB wait in it."""

    base: str
    log_path: Path

    def output(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError as exc:
            return f"(no server output: {exc})"


def _serve(ctx: AppContext) -> Iterator[Served]:
    """uvicorn on 127.0.0.1 (free port) over the context's data directory; stopped afterwards. Its output goes
    to a file beside the data directory; a test failing inside prints its tail (pytest shows it)."""
    port = _free_port()
    env = {**os.environ, "LIFECERT_ENV": "test", "LIFECERT_DATA_DIR": str(ctx.settings.data_dir)}
    log_path = ctx.settings.data_dir.parent / f"uvicorn-{port}.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "server.app:create_app", "--factory", "--host", "127.0.0.1",
             "--port", str(port), "--log-level", "info"], cwd=ROOT, env=env,
            stdout=log, stderr=subprocess.STDOUT,
        )
    srv = Served(f"http://127.0.0.1:{port}", log_path)
    deadline = time.monotonic() + 120  # start-up wait only; nothing is asserted about speed
    while True:
        try:
            with urllib.request.urlopen(f"{srv.base}/console/login", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                proc.wait(timeout=20)
                pytest.fail(f"uvicorn did not start:\n{srv.output()}")
            time.sleep(0.3)
    try:
        yield srv
    except BaseException:
        sys.stderr.write(f"\n--- uvicorn output (tail) ---\n{srv.output()}\n")
        raise
    finally:  # also when the test fails (with serving(...): the error is thrown in here)
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=20)


serving = contextmanager(_serve)  # ``with serving(ctx) as srv:``; a failing test leaves no server behind


def page_report(page: Any, srv: Served) -> str:
    """What a page shows, for a failure message: its URL, its visible text (first 800 characters) and the
    tail of the server's output."""
    try:
        text = str(page.evaluate("document.body ? document.body.innerText : ''"))
    except Exception as exc:  # the report must not hide the failure it describes
        text = f"(text not readable: {exc})"
    return f"\n  url: {page.url}\n  page text: {text[:800]!r}\n  server output (tail):\n{srv.output()}"


def wait_for(page: Any, selector: str, srv: Served, state: str = "visible") -> None:
    """``page.wait_for_selector`` (the page's default timeout); when it never appears, an AssertionError that
    says which page the browser is on and what it shows."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_selector(selector, state=state)
    except PlaywrightTimeout:
        raise AssertionError(f"{selector} never appeared{page_report(page, srv)}") from None


def text_of(page: Any, selector: str, srv: Served) -> str:
    """``page.inner_text(selector)`` (which waits for the element to be attached), with :func:`wait_for`'s
    failure message."""
    wait_for(page, selector, srv, "attached")
    return str(page.inner_text(selector))


def wait_for_url(page: Any, pattern: str, srv: Served) -> None:
    """``page.wait_for_url`` (the page's default timeout), with :func:`page_report` when it times out."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_url(pattern)
    except PlaywrightTimeout:
        raise AssertionError(f"never reached {pattern}{page_report(page, srv)}") from None


def assert_at(page: Any, srv: Served, path: str) -> None:
    """The page is ``path`` of the test's server and carries no ``error`` (a refused form redirects back with
    ``?error=CODE``)."""
    url = urlsplit(page.url)
    assert (f"{url.scheme}://{url.netloc}", url.path) == (srv.base, path) and "error" not in parse_qs(url.query), (
        f"expected {path} without an error{page_report(page, srv)}")


@pytest.fixture
def server(seeded: tuple[AppContext, int, int]) -> Iterator[Served]:
    yield from _serve(seeded[0])


def test_given_caseworker_when_logging_in_opening_and_approving_a_case_then_confirmation_shown(
    seeded: tuple[AppContext, int, int], server: Served, tmp_path: Path, browser: Any
) -> None:
    ctx, pensioner_id, case_id = seeded
    base = server.base
    shot = Path(os.environ.get("LIFECERT_E2E_SCREENSHOT", tmp_path / "case.png"))
    with _desk_page(browser) as page:
        page.goto(f"{base}/console/queue")
        assert "/console/login" in page.url  # anonymous → login page
        page.fill("#username", "caseworker1")
        page.fill("#password", PASSWORD)
        page.click("#login-submit")
        wait_for_url(page, "**/console/queue", server)
        row = page.locator(f'tr[data-case="{case_id}"]')
        assert "220202********" in row.inner_text()  # masked in the list
        page.click(f"#open-{case_id}")
        wait_for_url(page, f"**/console/cases/{case_id}", server)
        _wait_js(page, "Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)")
        assert page.locator("img.face").count() == 2
        assert "张建国" in page.inner_text("#p-name")
        assert page.locator("#liveness tbody tr").count() == 2
        page.screenshot(path=str(shot), full_page=True)
        # approve: POST, 303 back to the case page, which lists the new confirmation
        page.click("#approve")
        assert "人工审核" in text_of(page, "#confirmations", server)
        assert_at(page, server, f"/console/cases/{case_id}")
        assert "已确认生存" in text_of(page, "#case-decision", server)
        # English switch keeps the page.
        page.click("a.lang")
        wait_for(page, "text=Caseworker review", server)
    with ctx.db.session() as s:
        uid = s.scalars(select(StaffUser.id).where(StaffUser.username == "caseworker1")).one()
        conf = s.scalars(select(SurvivalConfirmation).where(SurvivalConfirmation.pensioner_id == pensioner_id)).one()
        assert (conf.method, conf.created_by) == (ConfirmationMethod.CASEWORKER_REVIEW, uid)
        from lifecert.services import audit

        assert audit.verify_chain(s).ok


@pytest.fixture
def real_review_case(
    tmp_path: Path, faces_dir: Path, face_engine: FaceEngine, clip: Clip
) -> Iterator[tuple[AppContext, int]]:
    """A LOW_MATCH review case made by the real verification service: the pensioner's template is
    another person's ID photo (LFW), and the real talking-head frames (blink, open mouth) go through
    the public paced session API. Nothing in the case is written by the test."""
    from tests.integration.verification_support import enroll, serve
    from tests.paced_client import SimClock, VirtualTime, run_http_session

    ctx = AppContext(make_settings(tmp_path, fixed_challenges="blink,open_mouth", inference_threads=1))
    ctx.set_engine(face_engine)
    with ctx.db.session() as s:
        staff.create_user(s, "caseworker2", PASSWORD, "caseworker", actor="test", actor_role="cli")
    p = enroll(ctx, decode_image((faces_dir / "lfw/images/Colin_Powell/Colin_Powell_0001.jpg").read_bytes()),
               seq=21, name="李建华")
    clock = VirtualTime()
    for client in serve(ctx, face_engine, clock):
        sid, phone = run_http_session(client, {"id_number": p.id_number, "name": p.name}, clip, SimClock(clock))
        res = phone.last.result if phone.last else None
    assert res is not None
    assert (res["decision"], res["reason_code"]) == ("REVIEW", "LOW_MATCH"), res
    with ctx.db.session() as s:
        case_id = s.scalars(select(ReviewCase.id).where(
            ReviewCase.verification_session_id == sid)).one()
    yield ctx, case_id
    ctx.close()


def test_given_real_verification_review_case_when_caseworker_opens_it_then_score_and_best_frames_shown(
    real_review_case: tuple[AppContext, int], tmp_path: Path, browser: Any
) -> None:
    ctx, case_id = real_review_case
    with ctx.db.session() as s:
        case = s.get(ReviewCase, case_id)
        assert case is not None
        payload = load_payload(case.payload)
    assert isinstance(payload, VerificationReview) and payload.match is not None and payload.best_frames
    assert payload.threshold is not None and payload.match < payload.threshold
    shot = Path(os.environ.get("LIFECERT_E2E_SCREENSHOT_REAL", tmp_path / "real-case.png"))
    with serving(ctx) as srv, _desk_page(browser) as page:
        page.goto(f"{srv.base}/console/login")
        page.fill("#username", "caseworker2")
        page.fill("#password", PASSWORD)
        page.click("#login-submit")
        wait_for_url(page, "**/console/queue", srv)
        page.click(f"#open-{case_id}")
        wait_for_url(page, f"**/console/cases/{case_id}", srv)
        _wait_js(page, "Array.from(document.images).every(i => i.complete)")
        assert page.inner_text("#score-value") == f"{payload.match:.3f}"
        assert page.inner_text("#threshold-value") == f"{payload.threshold:.3f}"
        frames = page.locator('img[id^="frame-"]')
        assert frames.count() == len(payload.best_frames)
        # Every best frame is served by the photo route (decrypted, not 404) and rendered.
        widths = frames.evaluate_all("els => els.map(e => e.naturalWidth)")
        assert all(w > 0 for w in widths), widths
        assert page.locator("#liveness tbody tr").count() == 2
        assert "眨眼" in page.inner_text("#liveness")
        page.screenshot(path=str(shot), full_page=True)
