"""Cookie signing, CSRF comparison and role parsing (no database). Case payloads: tests/unit/test_case_payloads.py."""

from __future__ import annotations

import pytest

from lifecert.config import Settings
from lifecert.domain.errors import LifecertError
from lifecert.services import staff
from server import security
from tests.conftest import DEPLOY_SECRETS


def test_given_signed_cookie_when_unsigned_then_token_back_and_tampering_refused() -> None:
    s = Settings(env="test")
    value = security.sign_cookie(s, "tok-123")
    assert security.unsign_cookie(s, value) == "tok-123"
    assert security.unsign_cookie(s, "tok-124" + value[7:]) is None
    assert security.unsign_cookie(s, value[:-2] + "AA") is None
    other = Settings(env="test", session_secret="another-secret-value")  # type: ignore[arg-type]
    assert security.unsign_cookie(other, value) is None


def test_given_environment_then_cookie_is_secure_with_host_prefix_outside_development() -> None:
    assert security.session_cookie_name(Settings(env="test")) == "lc_session"
    prod = Settings(env="production", **DEPLOY_SECRETS)  # type: ignore[arg-type]
    assert security.session_cookie_name(prod) == "__Host-lc_session"


@pytest.mark.parametrize("expected,given,ok", [("abc", "abc", True), ("abc", "abd", False), ("abc", None, False),
                                               (None, None, False), ("", "", False)])
def test_given_tokens_when_comparing_csrf_then_only_equal_nonempty_match(
    expected: str | None, given: str | None, ok: bool
) -> None:
    assert staff.csrf_matches(expected, given) is ok


def test_given_unknown_role_then_typed_error() -> None:
    assert staff.parse_role("auditor") == staff.Role.AUDITOR
    with pytest.raises(LifecertError):
        staff.parse_role("superuser")
