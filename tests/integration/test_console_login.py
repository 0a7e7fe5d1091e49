"""Login throttling per (username, client): N failures lock the pair; the right password is refused meanwhile."""

from __future__ import annotations

import re
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select

from lifecert.domain.errors import ErrorCode
from lifecert.services import staff
from lifecert.services.context import AppContext
from lifecert.storage.models import AuditEvent, utcnow
from server.app import create_app
from tests.integration.console_support import PASSWORD, make_user

POLICY = staff.LoginPolicy(max_failures=3, window=timedelta(minutes=15), lockout=timedelta(minutes=10))


def test_given_three_failures_when_right_password_during_lockout_then_refused_and_after_lockout_accepted(
    ctx: AppContext,
) -> None:
    make_user(ctx, "cw", "caseworker")
    t0 = utcnow()
    with ctx.db.session() as s:
        for i in range(3):
            out = staff.authenticate(s, "cw", f"wrong-{i}", "10.0.0.5", policy=POLICY, now=t0)
            assert not out.ok
    with ctx.db.session() as s:
        locked = staff.authenticate(s, "cw", PASSWORD, "10.0.0.5", policy=POLICY, now=t0 + timedelta(minutes=5))
    assert not locked.ok and locked.error is not None and locked.error.code == ErrorCode.RATE_LIMITED
    assert 0 < locked.error.details["retry_after"] <= 300 + 1
    # Another client address is a different throttle key (no lockout denial of service from one address).
    with ctx.db.session() as s:
        assert staff.authenticate(s, "cw", PASSWORD, "10.0.0.9", policy=POLICY, now=t0 + timedelta(minutes=5)).ok
    with ctx.db.session() as s:
        assert staff.authenticate(s, "cw", PASSWORD, "10.0.0.5", policy=POLICY, now=t0 + timedelta(minutes=11)).ok
    with ctx.db.session() as s:
        actions = [e.action for e in s.scalars(select(AuditEvent).where(AuditEvent.action.startswith("login.")))]
    assert actions == ["login.failure"] * 3 + ["login.locked", "login.success", "login.success"]


def test_given_failures_spread_beyond_the_window_then_no_lockout(ctx: AppContext) -> None:
    make_user(ctx, "cw", "caseworker")
    t0 = utcnow()
    with ctx.db.session() as s:
        for i in range(4):
            staff.authenticate(s, "cw", "wrong", "10.0.0.5", policy=POLICY, now=t0 + i * timedelta(minutes=16))
    with ctx.db.session() as s:
        assert staff.authenticate(s, "cw", PASSWORD, "10.0.0.5", policy=POLICY, now=t0 + timedelta(hours=2)).ok


def test_given_console_form_when_five_wrong_passwords_then_locked_even_with_the_right_one(ctx: AppContext) -> None:
    make_user(ctx, "cw", "caseworker")
    with TestClient(create_app(ctx.settings, ctx)) as c:
        token = re.search(r'name="csrf_token" value="([^"]+)"', c.get("/console/login").text).group(1)  # type: ignore[union-attr]

        def attempt(pw: str) -> int:
            return c.post("/console/login", data={"username": "cw", "password": pw, "csrf_token": token},
                          follow_redirects=False).status_code

        statuses = [attempt(f"guess-{i}") for i in range(staff.DEFAULT_LOGIN_POLICY.max_failures)]
        assert statuses[:-1] == [401] * (len(statuses) - 1) and statuses[-1] == 429
        r = c.post("/console/login", data={"username": "cw", "password": PASSWORD, "csrf_token": token},
                   follow_redirects=False)
        assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
        assert "lc_session" not in r.headers.get("set-cookie", "")
        assert c.get("/console/queue", follow_redirects=False).status_code == 303
    # An admin reset clears the lockout.
    with ctx.db.session() as s:
        staff.reset_password(s, "cw", PASSWORD, actor="test", actor_role="cli")
    with ctx.db.session() as s:
        assert staff.authenticate(s, "cw", PASSWORD, "testclient").ok


def test_given_user_when_created_then_password_stored_as_argon2id_hash_only(ctx: AppContext) -> None:
    make_user(ctx, "cw", "caseworker")
    with ctx.db.session() as s:
        u = staff.get_user(s, "cw")
        assert u.password_hash.startswith("$argon2id$") and PASSWORD not in u.password_hash
