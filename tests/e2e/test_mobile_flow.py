"""The pensioner's page in real headless Chromium against the real server: the ID number is checked on the
phone (same verdict as the Python validator), a mismatching name gets a plain message, and every screen fits a
360 px phone at normal and at 150 % text size. The paced capture itself: test_mobile_paced.py."""

from __future__ import annotations

import random
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from lifecert.domain.idnumber import is_valid_id_number, make_id_number
from tests.e2e.fake_camera import ActorPlan
from tests.e2e.harness import Camera, LiveServer, new_phone_page

pytestmark = pytest.mark.browser


@pytest.fixture
def page(browser: Any, live_server: LiveServer) -> Any:
    pg = new_phone_page(browser, live_server)
    try:
        yield pg
    finally:
        pg.context.close()


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


def test_given_name_that_does_not_match_when_started_then_mismatch_message_and_camera_off(
    browser: Any, live_server: LiveServer, genuine_camera: Camera, screenshots_dir: Path
) -> None:
    page = new_phone_page(browser, live_server, genuine_camera, ActorPlan())
    try:
        page.goto(f"{live_server.base_url}/")
        page.fill("#id-number", live_server.pensioner.id_number)
        page.fill("#name", "李四")
        page.click("#start")
        page.wait_for_selector('#app[data-screen="prepare"]')
        page.click("#prepare-go")

        page.wait_for_selector('#app[data-screen="result"]', timeout=60_000)
        page.screenshot(path=str(screenshots_dir / "not_found_360x740.png"))
        assert page.get_attribute("#result", "data-error") == "NOT_FOUND"
        assert "信息不匹配或尚未采集人脸" in page.inner_text("#result-detail")
        assert page.is_hidden("#retry")  # retrying the same details cannot help
        assert page.evaluate("document.getElementById('preview').srcObject") is None
    finally:
        page.context.close()


@pytest.mark.parametrize("scale", [1.0, 1.5], ids=["text100", "text150"])
def test_given_phone_text_size_when_each_screen_shown_then_nothing_overflows_360px(
    browser: Any, live_server: LiveServer, genuine_camera: Camera, screenshots_dir: Path, scale: float
) -> None:
    """Form, preparation, camera-permission help and an error screen at 360 px: no sideways scrolling,
    every button at least 44 px high and fully inside the page width. Screenshots for a human to look at."""
    page = new_phone_page(browser, live_server, genuine_camera, ActorPlan(deny_camera_times=1), font_scale=scale)
    tag = f"{int(scale * 100)}pct"
    try:
        page.goto(f"{live_server.base_url}/")
        page.wait_for_selector('#app[data-screen="form"]')
        assert page.evaluate("getComputedStyle(document.documentElement).fontSize") == f"{20 * scale:.0f}px"
        page.fill("#id-number", live_server.pensioner.id_number)
        page.fill("#name", live_server.pensioner.name)
        _check_layout(page, "form")
        page.screenshot(path=str(screenshots_dir / f"form_{tag}.png"), full_page=True)
        page.click("#start")
        page.wait_for_selector('#app[data-screen="prepare"]')
        _check_layout(page, "prepare")
        page.screenshot(path=str(screenshots_dir / f"prepare_{tag}.png"), full_page=True)
        page.click("#prepare-go")
        page.wait_for_selector('#app[data-screen="denied"]')
        _check_layout(page, "denied")
        page.screenshot(path=str(screenshots_dir / f"denied_{tag}.png"), full_page=True)
        page.click("#denied-home")
        page.wait_for_selector('#app[data-screen="form"]')
        # A valid ID number nobody enrolled (keeps the enrolled pensioner's attempts for the other tests).
        page.fill("#id-number", make_id_number("440305", date(1950, 1, 1), 999))
        page.click("#start")
        page.click("#prepare-go")
        # The camera screen during the countdown: prompt and the whole picture on one screen, no scrolling.
        page.wait_for_selector("#countdown:not([hidden])")
        _check_layout(page, "capture")
        height = page.evaluate("window.innerHeight")
        bottom = page.evaluate("document.querySelector('.camera').getBoundingClientRect().bottom")
        assert bottom <= height, f"capture: the picture ends at {bottom:.0f}px on a {height}px screen"
        page.screenshot(path=str(screenshots_dir / f"countdown_{tag}.png"))
        page.wait_for_selector('#app[data-screen="result"]', timeout=60_000)
        _check_layout(page, "result")
        page.screenshot(path=str(screenshots_dir / f"not_found_{tag}.png"), full_page=True)
    finally:
        page.context.close()


def _check_layout(page: Any, screen: str) -> None:
    width = page.evaluate("document.documentElement.clientWidth")
    scroll = page.evaluate("document.documentElement.scrollWidth")
    assert scroll <= width, f"{screen}: page is {scroll}px wide on a {width}px screen"
    boxes = page.evaluate(
        """() => [...document.querySelectorAll('.screen:not([hidden]) button, .screen:not([hidden]) summary')]
             .filter((b) => b.offsetParent !== null)
             .map((b) => { const r = b.getBoundingClientRect();
                           return {id: b.id || b.textContent.trim(), left: r.left, right: r.right, h: r.height}; })"""
    )
    assert boxes or screen == "capture", f"{screen}: no buttons found"
    for b in boxes:
        assert b["h"] >= 44, f"{screen}: {b}"
        assert b["left"] >= 0 and b["right"] <= width, f"{screen}: {b}"
