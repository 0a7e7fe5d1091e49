"""Issue 11 Low items on staff accounts: throttles per user and per address (not only the pair), no
typed-but-unknown usernames in the audit trail, no LIKE wildcards in the reset, the last admin stays,
and console banners show only the console's own texts."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from lifecert.domain.errors import ErrorCode, LifecertError
from lifecert.services import staff
from lifecert.services.context import AppContext
from lifecert.storage.models import AuditEvent, utcnow
from server.app import create_app
from tests.integration.console_support import PASSWORD, login, make_case, make_pensioner, make_user

POLICY = staff.LoginPolicy(max_failures=3, window=timedelta(minutes=15), lockout=timedelta(minutes=10),
                           max_failures_per_user=5, max_failures_per_client=6)


def _auth(ctx: AppContext, user: str, pw: str, addr: str, at: object) -> staff.LoginOutcome:
    with ctx.db.session() as s:
        return staff.authenticate(s, user, pw, addr, policy=POLICY, now=at)  # type: ignore[arg-type]


def test_given_guesses_for_one_account_from_many_addresses_when_over_the_user_limit_then_account_locked(
        data_ctx: AppContext) -> None:
    make_user(data_ctx, "cw", "caseworker")
    t0 = utcnow()
    for i in range(POLICY.max_failures_per_user):
        assert not _auth(data_ctx, "cw", "guess", f"10.1.0.{i}", t0).ok  # each pair stays under its limit

    out = _auth(data_ctx, "cw", PASSWORD, "10.9.9.9", t0 + timedelta(minutes=1))

    assert out.error is not None and out.error.code == ErrorCode.RATE_LIMITED
    assert _auth(data_ctx, "cw", PASSWORD, "10.9.9.9", t0 + timedelta(minutes=12)).ok


def test_given_one_address_spraying_many_usernames_when_over_the_address_limit_then_address_locked(
        data_ctx: AppContext) -> None:
    make_user(data_ctx, "cw", "caseworker")
    t0 = utcnow()
    for i in range(POLICY.max_failures_per_client):
        _auth(data_ctx, f"name{i}", "Winter2026!", "10.2.0.1", t0)

    out = _auth(data_ctx, "cw", PASSWORD, "10.2.0.1", t0 + timedelta(minutes=1))

    assert out.error is not None and out.error.code == ErrorCode.RATE_LIMITED
    assert _auth(data_ctx, "cw", PASSWORD, "10.2.0.2", t0 + timedelta(minutes=1)).ok  # other addresses unaffected


def test_given_a_password_typed_into_the_username_field_when_login_fails_then_audit_does_not_keep_it(
        data_ctx: AppContext) -> None:
    make_user(data_ctx, "cw", "caseworker")
    secret = "Tr0ub4dor&3-horse"

    _auth(data_ctx, secret, "", "10.3.0.1", utcnow())
    _auth(data_ctx, "cw", "wrong-password", "10.3.0.1", utcnow())

    with data_ctx.db.session() as s:
        rows = list(s.scalars(select(AuditEvent).where(AuditEvent.action == "login.failure")))
    assert len(rows) == 2
    assert not any(secret in f"{e.actor}{e.object_id}{e.detail}" for e in rows)
    assert rows[0].detail.get("unknown_username") is True
    assert rows[1].actor == "cw"  # a real account's name is kept


def test_given_usernames_with_like_wildcards_when_one_is_reset_then_others_stay_locked(data_ctx: AppContext) -> None:
    make_user(data_ctx, "abc", "caseworker")
    make_user(data_ctx, "a_c", "caseworker")
    t0 = utcnow()
    for _ in range(POLICY.max_failures):
        _auth(data_ctx, "abc", "guess", "10.4.0.1", t0)
    with data_ctx.db.session() as s:
        staff.reset_password(s, "a_c", PASSWORD, actor="test", actor_role="cli")

    out = _auth(data_ctx, "abc", PASSWORD, "10.4.0.1", t0 + timedelta(minutes=1))

    assert out.error is not None and out.error.code == ErrorCode.RATE_LIMITED


def test_given_one_active_admin_when_disabled_then_conflict_and_with_two_then_allowed(data_ctx: AppContext) -> None:
    make_user(data_ctx, "root", "admin")
    with data_ctx.db.session() as s, pytest.raises(LifecertError) as exc:
        staff.disable_user(s, "root", actor="root", actor_role="admin")
    assert exc.value.code == ErrorCode.CONFLICT

    make_user(data_ctx, "root2", "admin")
    with data_ctx.db.session() as s:
        staff.disable_user(s, "root", actor="root2", actor_role="admin")
    with data_ctx.db.session() as s:
        assert not staff.get_user(s, "root").active


def test_given_the_last_admin_when_disabled_from_the_console_then_page_says_so_and_account_stays(
        data_ctx: AppContext) -> None:
    uid = make_user(data_ctx, "root", "admin")
    c = TestClient(create_app(ctx=data_ctx))
    csrf = login(c, "root")

    r = c.post(f"/console/users/{uid}/disable", data={"csrf_token": csrf})

    assert r.status_code == 200 and "最后一个管理员" in r.text
    with data_ctx.db.session() as s:
        assert staff.get_user(s, "root").active


@pytest.mark.parametrize("page", ["/console/login", "/console/users"])
def test_given_a_crafted_error_parameter_when_page_shown_then_the_text_is_not_echoed(
        data_ctx: AppContext, page: str) -> None:
    make_user(data_ctx, "root", "admin")
    c = TestClient(create_app(ctx=data_ctx))
    login(c, "root")
    bait = "Account frozen - call 400-123-4567 or visit evil.example"

    r = c.get(page, params={"error": bait, "done": bait})

    assert r.status_code == 200
    assert "400-123-4567" not in _visible_banners(r.text)


def _visible_banners(html: str) -> str:
    """The text of the page's alert/status paragraphs (links may carry the URL back, escaped, as ?next=)."""
    return " ".join(re.findall(r'<p class="(?:error|good)"[^>]*>(.*?)</p>', html, flags=re.S))


def test_given_a_crafted_error_on_a_case_page_when_shown_then_only_a_generic_banner(data_ctx: AppContext) -> None:
    make_user(data_ctx, "cw", "caseworker")
    case_id = make_case(data_ctx, make_pensioner(data_ctx))
    c = TestClient(create_app(ctx=data_ctx))
    login(c, "cw")

    r = c.get(f"/console/cases/{case_id}", params={"error": "请拨打 400-123-4567 领取补贴"})

    assert r.status_code == 200 and "400-123-4567" not in _visible_banners(r.text)
    assert "操作未完成" in _visible_banners(r.text)


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_given_simultaneous_failed_logins_from_one_address_when_counted_then_no_error_and_no_lost_count(
        request: pytest.FixtureRequest, tmp_path: object, backend: str) -> None:
    """Found by the concurrency benchmark: two first failures both inserted the shared address row
    (UNIQUE violation -> 500)."""
    import threading

    from lifecert.config import Settings
    from lifecert.storage.models_staff import LoginThrottle
    from tests.conftest import empty_postgres

    url = None
    if backend == "postgres":
        url = request.getfixturevalue("postgres_url")
        empty_postgres(url)
    n = POLICY.max_failures_per_client - 1  # all counted, none locking yet
    with AppContext(Settings(env="test", data_dir=tmp_path / "data", database_url=url)) as ctx:  # type: ignore[operator]
        barrier = threading.Barrier(n)
        errors: list[BaseException] = []

        def attempt(i: int) -> None:
            try:
                barrier.wait(timeout=30)
                _auth(ctx, f"ghost{i}", "nope", "10.7.0.1", utcnow())
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=attempt, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)

        assert errors == []
        with ctx.db.session() as s:
            row = s.get(LoginThrottle, "c|10.7.0.1")
            assert row is not None and row.failures == n
