"""The pensioner's page in real headless Chromium, with a fake camera made of real face frames, against the
real server: a full session ends CONFIRMED and is recorded; a mistyped ID number never leaves the phone."""

from __future__ import annotations

import base64
import random
from datetime import date
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import pytest
from sqlalchemy import select

from lifecert.domain.idnumber import is_valid_id_number, make_id_number
from lifecert.engine import geometry
from lifecert.engine.base import FaceEngine
from lifecert.services.confirmations import confirmations_of
from lifecert.services.context import AppContext
from lifecert.storage.models import ConfirmationMethod, SurvivalConfirmation
from tests.e2e.conftest import LiveServer
from tests.e2e.fake_camera import SourceVideo, Timeline, neutral_run

pytestmark = pytest.mark.browser

RESULT_TIMEOUT_MS = 120_000

# Reads back the FormData the page handed to XMLHttpRequest (recorded by the init script in conftest).
READ_SENT_FORM = """async () => {
  const fd = window.__sentForms[window.__sentForms.length - 1];
  if (!fd) return null;
  const frames = [];
  for (const blob of fd.getAll("frames")) {
    const bytes = new Uint8Array(await blob.arrayBuffer());
    let s = "";
    for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
    frames.push({type: blob.type, b64: btoa(s)});
  }
  return {nonce: fd.get("nonce"), timestamps: JSON.parse(fd.get("timestamps")), frames};
}"""


def _decode(frames: list[dict[str, Any]]) -> list[np.ndarray]:
    out = []
    for f in frames:
        data = base64.b64decode(f["b64"])
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        out.append(img)
    return out


def _describe(timestamps: list[int], images: list[np.ndarray], engine: FaceEngine) -> str:
    """One line per uploaded frame (t, EAR, MAR, yaw) for failure messages."""
    rows = []
    for t, img in zip(timestamps, images, strict=True):
        faces = engine.detect(img) if img is not None else []
        if faces and faces[0].landmarks68 is not None:
            lm = faces[0].landmarks68
            rows.append(
                f"t={t:5d} ear={geometry.eye_aspect_ratio(lm):.2f} mar={geometry.mouth_aspect_ratio(lm):.2f} "
                f"yaw={geometry.yaw_ratio(lm):+.2f}"
            )
        else:
            rows.append(f"t={t:5d} no face")
    return "\n".join(rows)


def test_given_enrolled_pensioner_when_session_completed_in_chromium_then_confirmed_and_recorded(
    page: Any,
    live_server: LiveServer,
    session_timeline: Timeline,
    talking_head: SourceVideo,
    face_engine: FaceEngine,
    screenshots_dir: Path,
) -> None:
    pensioner = live_server.pensioner
    page.goto(f"{live_server.base_url}/")
    page.wait_for_selector('#app[data-screen="form"]')
    page.screenshot(path=str(screenshots_dir / "form_360x740.png"))

    page.fill("#id-number", pensioner.id_number.lower())
    page.fill("#name", pensioner.name)
    page.click("#start")

    page.wait_for_selector(f'#challenge[data-challenge="{session_timeline.challenges[0]}"]')
    page.screenshot(path=str(screenshots_dir / "capture_360x740.png"))
    page.wait_for_selector('#app[data-screen="result"]', timeout=RESULT_TIMEOUT_MS)
    page.screenshot(path=str(screenshots_dir / "result_360x740.png"))

    result = page.locator("#result")
    decision = result.get_attribute("data-decision")
    sent = page.evaluate(READ_SENT_FORM)
    detail = ""
    if sent:
        detail = _describe(sent["timestamps"], _decode(sent["frames"]), face_engine)
    assert decision == "CONFIRMED", (
        f"decision={decision!r} error={result.get_attribute('data-error')!r} "
        f"reason={result.get_attribute('data-reason')!r} text={result.inner_text()!r}\n"
        f"frames sent:\n{detail}\nserver log:\n{live_server.log_tail()}"
    )
    assert "认证成功" in page.inner_text("#result-title")

    # The page showed the validity date the server recorded, and the confirmation is in the database.
    shown_until = page.get_attribute("#result-valid", "data-valid-until")
    session_id = result.get_attribute("data-session-id")
    ctx = AppContext(live_server.settings, create_schema=False)
    try:
        with ctx.db.session() as s:
            confs = [c for c in confirmations_of(s, pensioner.pensioner_id)
                     if c.method == ConfirmationMethod.FACE_SELF_SERVICE]
            assert len(confs) == 1
            assert confs[0].valid_until.isoformat() == shown_until
            total = s.scalars(select(SurvivalConfirmation)).all()
            assert [c.pensioner_id for c in total] == [pensioner.pensioner_id]
    finally:
        ctx.close()

    # What the page uploaded: one timestamp per JPEG frame, in order, inside the session, at most 640 px,
    # and unmirrored (the preview is mirrored with CSS only), i.e. the head turned the way the camera saw it.
    assert sent is not None and sent["nonce"]
    ts = sent["timestamps"]
    assert len(ts) == len(sent["frames"]) > 0
    assert ts == sorted(ts) and ts[0] >= 0 and ts[-1] < session_timeline.total_ms
    assert {f["type"] for f in sent["frames"]} == {"image/jpeg"}
    images = _decode(sent["frames"])
    assert all(img is not None and max(img.shape[:2]) <= 640 for img in images)
    lead_in = [img for t, img in zip(ts, images, strict=True) if t < session_timeline.lead_in_ms]
    source_yaw = np.median([talking_head.scores[i].yaw for i in neutral_run(talking_head.scores)])  # type: ignore[union-attr]
    sent_yaw = np.median([
        geometry.yaw_ratio(f[0].landmarks68) for img in lead_in if (f := face_engine.detect(img))
    ])
    assert np.sign(sent_yaw) == np.sign(source_yaw), f"uploaded yaw {sent_yaw:+.2f} vs camera {source_yaw:+.2f}"

    # The result is readable afterwards through the API, as the contract says.
    r = httpx.get(f"{live_server.base_url}/api/v1/sessions/{session_id}", timeout=10.0)
    assert r.status_code == 200 and r.json()["decision"] == "CONFIRMED"


def test_given_wrong_check_digit_when_start_pressed_then_refused_on_the_phone_without_any_request(
    page: Any, live_server: LiveServer, screenshots_dir: Path
) -> None:
    good = live_server.pensioner.id_number
    wrong = good[:17] + next(c for c in "0123456789X" if c != good[17])
    api_calls: list[str] = []
    page.on("request", lambda req: api_calls.append(req.url) if "/api/" in req.url else None)
    page.goto(f"{live_server.base_url}/")
    page.fill("#id-number", wrong)
    page.fill("#name", live_server.pensioner.name)
    page.click("#start")

    error = page.locator("#id-error")
    error.wait_for(state="visible")
    assert "校验位" in error.inner_text()
    assert page.get_attribute("#id-number", "aria-invalid") == "true"
    assert page.get_attribute("#app", "data-screen") == "form"
    page.screenshot(path=str(screenshots_dir / "form_error_360x740.png"))

    # English on request; the same refusal, still nothing sent.
    page.click("#lang-toggle")
    page.click("#start")
    assert "check digit" in error.inner_text()
    page.wait_for_timeout(300)
    assert api_calls == []


def test_given_generated_id_numbers_when_checked_in_the_page_then_same_verdict_as_the_python_validator(
    page: Any, live_server: LiveServer
) -> None:
    rng = random.Random(11643)
    samples: list[str] = []
    for _ in range(150):
        born = date(rng.randint(1900, 2005), rng.randint(1, 12), rng.randint(1, 28))
        good = make_id_number(f"{rng.randint(110000, 659999)}", born, rng.randint(1, 999))
        samples.append(good)
        samples.append(good[:17] + rng.choice([c for c in "0123456789X" if c != good[17]]))  # wrong check digit
        samples.append(good.lower())  # lower-case x is accepted
        samples.append(good[:10] + "13" + good[12:])  # month 13
        samples.append(good[:-1])  # too short
    samples += ["", "11010519491231002X ", "１１０１０５１９４９１２３１００２Ｘ", "abcdefghijklmnopqr"]
    page.goto(f"{live_server.base_url}/")
    js = page.evaluate("(xs) => xs.map((x) => window.lifecert.validateIdNumber(x).ok)", samples)
    py = [is_valid_id_number(s) for s in samples]
    mismatches = [(s, j, p) for s, j, p in zip(samples, js, py, strict=True) if j != p]
    assert mismatches == []
    assert any(py) and not all(py)


def test_given_name_that_does_not_match_when_start_pressed_then_mismatch_message_and_no_camera(
    page: Any, live_server: LiveServer, screenshots_dir: Path
) -> None:
    page.goto(f"{live_server.base_url}/")
    page.fill("#id-number", live_server.pensioner.id_number)
    page.fill("#name", "李四")
    page.click("#start")

    page.wait_for_selector('#app[data-screen="result"]')
    page.screenshot(path=str(screenshots_dir / "not_found_360x740.png"))
    assert page.get_attribute("#result", "data-error") == "NOT_FOUND"
    assert "信息不匹配或尚未采集人脸" in page.inner_text("#result-detail")
    assert page.is_hidden("#retry")  # retrying the same details cannot help
    assert page.evaluate("document.getElementById('preview').srcObject") is None


def test_given_dim_room_when_session_runs_then_more_light_hint_and_a_retry_is_offered(
    dark_page: Any, live_server: LiveServer, screenshots_dir: Path
) -> None:
    page = dark_page
    page.goto(f"{live_server.base_url}/")
    page.fill("#id-number", live_server.pensioner.id_number)
    page.fill("#name", live_server.pensioner.name)
    page.click("#start")

    page.wait_for_selector('#hint[data-hint="dark"]')
    assert "光线太暗" in page.inner_text("#hint")
    page.screenshot(path=str(screenshots_dir / "capture_dark_360x740.png"))

    page.wait_for_selector('#app[data-screen="result"]', timeout=RESULT_TIMEOUT_MS)
    page.screenshot(path=str(screenshots_dir / "retry_360x740.png"))
    result = page.locator("#result")
    assert result.get_attribute("data-decision") == "RETRY", (
        f"error={result.get_attribute('data-error')!r} text={result.inner_text()!r}\n{live_server.log_tail()}"
    )
    assert page.inner_text("#result-detail").strip()  # the server's plain-Mandarin reason is shown
    assert page.is_visible("#retry")

    # "Try again" starts a new session with the same details, straight back to the camera.
    page.click("#retry")
    page.wait_for_selector('#app[data-screen="capture"]')
