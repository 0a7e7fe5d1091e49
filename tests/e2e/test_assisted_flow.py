"""Assisted certification (帮助他人认证) end to end in real headless Chromium: a community worker signs in
to the console on their phone, opens the capture page in assisted mode, enters the pensioner's ID, name and
the worker's location, and the pensioner in front of the camera (the acting talking-head video) passes the
same server-paced liveness capture. The confirmation records method ``assisted`` and the worker."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select

from lifecert.services import staff
from lifecert.services.context import AppContext
from lifecert.storage.models import AuditEvent, ConfirmationMethod, StaffUser, SurvivalConfirmation
from tests.e2e.fake_camera import ActorPlan
from tests.e2e.harness import Camera, LiveServer, new_phone_page

PASSWORD = "e2e-worker-password-1"
RESULT_TIMEOUT_MS = 300_000  # a bound, not a speed requirement (shared 2-core machine)


def test_given_worker_signed_in_when_running_assisted_mode_then_confirmed_as_assisted_with_location(
        browser: Any, live_server: LiveServer, genuine_camera: Camera, screenshots_dir: Path) -> None:
    who = live_server.pensioner
    with AppContext(live_server.settings) as ctx, ctx.db.session() as s:
        if s.scalars(select(StaffUser).where(StaffUser.username == "worker_e2e")).first() is None:
            staff.create_user(s, "worker_e2e", PASSWORD, "community_worker", display_name="社区小李",
                              actor="test", actor_role="cli")
    page = new_phone_page(browser, live_server, genuine_camera, ActorPlan(reaction_ms=1500))
    try:
        # without a worker's console session the assisted page refuses to start
        page.goto(f"{live_server.base_url}/?assist=1")
        page.wait_for_selector("#assist-field:not([hidden])")
        page.wait_for_selector("#location-error:not([hidden])")
        assert page.is_disabled("#start")
        # sign in to the console (the real login form), then open assisted mode
        page.goto(f"{live_server.base_url}/console/login")
        page.fill("#username", "worker_e2e")
        page.fill("#password", PASSWORD)
        page.click("#login-submit")
        page.wait_for_url("**/console/my-visits")
        assert "帮助他人认证" in page.inner_text("main")
        page.click("text=帮助他人认证")
        page.wait_for_selector("#assist-field:not([hidden])")
        page.screenshot(path=str(screenshots_dir / "assisted_form_360x740.png"))
        page.fill("#id-number", who.id_number)
        page.fill("#name", who.name)
        page.click("#start")  # no location yet: refused on the page
        page.wait_for_selector("#location-error:not([hidden])")
        page.fill("#location", "和平里社区 3 号楼 2 单元")
        page.click("#start")
        page.wait_for_selector('#app[data-screen="prepare"]')
        page.click("#prepare-go")
        page.wait_for_selector('#app[data-screen="result"]', timeout=RESULT_TIMEOUT_MS)
        page.screenshot(path=str(screenshots_dir / "assisted_result_360x740.png"))
        result = page.locator("#result")
        assert result.get_attribute("data-decision") == "CONFIRMED", (result.inner_text(), live_server.log_tail())
        starts = [p for m, p in page.api_calls if m == "POST" and p.startswith("staff/assisted/sessions")]
        assert len(starts) == 1 and not [p for m, p in page.api_calls if m == "POST" and p == "v1/sessions"]
    finally:
        page.context.close()
    with AppContext(live_server.settings) as ctx, ctx.db.session() as s:
        conf = s.scalars(select(SurvivalConfirmation).where(SurvivalConfirmation.pensioner_id == who.pensioner_id)
                         .order_by(SurvivalConfirmation.id.desc())).first()
        assert conf is not None and conf.method == ConfirmationMethod.ASSISTED
        assert conf.evidence["assisted_by"] == "worker_e2e"
        assert conf.evidence["location"] == "和平里社区 3 号楼 2 单元" and conf.evidence["device"]
        ev = s.scalars(select(AuditEvent).where(AuditEvent.action == "assisted.session_started")).first()
        assert ev is not None and ev.actor == "worker_e2e"
