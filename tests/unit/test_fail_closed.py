"""Issue 11 M9: the service fails closed — explicit environment, no development keys or weak secrets
outside development/test."""

from __future__ import annotations

import base64
import os

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from lifecert.cli import app
from lifecert.config import DEV_AUDIT_KEY, DEV_SESSION_SECRET, DEV_TEMPLATE_KEY, Settings
from tests.conftest import DEPLOY_SECRETS

STRONG_KEY = base64.b64encode(os.urandom(32)).decode()
STRONG_SECRET = "pX3v9Qa7LmN2rT8wZk4YbC6dE1fGhJ5s"


@pytest.mark.parametrize("env", ["staging", "production"])
@pytest.mark.parametrize(("key", "secret", "why"), [
    (DEV_TEMPLATE_KEY, STRONG_SECRET, "development key"),
    (STRONG_KEY, DEV_SESSION_SECRET, "development secret"),
    (STRONG_KEY, "x", "too weak"),
    (STRONG_KEY, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "too weak"),
    (base64.b64encode(bytes(32)).decode(), STRONG_SECRET, "hand-made"),
])
def test_given_deployed_environment_when_secret_is_dev_or_weak_then_settings_refused(
        env: str, key: str, secret: str, why: str) -> None:
    with pytest.raises(ValidationError, match=why):
        Settings(env=env, template_key=key, session_secret=secret, audit_key=DEPLOY_SECRETS["audit_key"])  # type: ignore[arg-type]


@pytest.mark.parametrize("audit_key", [DEV_AUDIT_KEY, "short", "ab" * 20])
def test_given_deployed_environment_when_audit_key_is_dev_or_weak_then_refused(audit_key: str) -> None:
    with pytest.raises(ValidationError, match="LIFECERT_AUDIT_KEY"):
        Settings(env="production", template_key=STRONG_KEY, session_secret=STRONG_SECRET,  # type: ignore[arg-type]
                 audit_key=audit_key)


def test_given_deployed_environment_when_secrets_are_strong_then_accepted() -> None:
    s = Settings(env="production", template_key=STRONG_KEY, session_secret=STRONG_SECRET,  # type: ignore[arg-type]
                 audit_key=DEPLOY_SECRETS["audit_key"])
    assert s.env == "production"


def test_given_no_lifecert_env_when_serve_started_then_refused_with_config_error(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LIFECERT_ENV", raising=False)

    r = CliRunner().invoke(app, ["serve", "--port", "1"])

    assert r.exit_code == 2
    assert "CONFIG_ERROR" in r.output and "LIFECERT_ENV" in r.output


def test_given_production_with_dev_key_when_serve_started_then_one_line_config_error(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from lifecert.config import get_settings

    get_settings.cache_clear()
    monkeypatch.setenv("LIFECERT_ENV", "production")
    monkeypatch.delenv("LIFECERT_TEMPLATE_KEY", raising=False)
    try:
        r = CliRunner().invoke(app, ["serve", "--port", "1"])
    finally:
        get_settings.cache_clear()

    assert r.exit_code == 2
    assert "configuration refused" in r.output and "development key" in r.output


@pytest.mark.parametrize("workers", ["1", "2"])
def test_given_serve_when_started_then_uvicorn_does_not_trust_forwarded_headers(
        monkeypatch: pytest.MonkeyPatch, tmp_path: object, workers: str) -> None:
    import uvicorn

    from lifecert.config import get_settings

    seen: dict[str, object] = {}
    monkeypatch.setattr(uvicorn, "run", lambda *a, **kw: seen.update(kw))
    monkeypatch.setenv("LIFECERT_ENV", "test")
    monkeypatch.setenv("LIFECERT_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    try:
        r = CliRunner().invoke(app, ["serve", "--port", "1", "--workers", workers])
    finally:
        get_settings.cache_clear()

    assert r.exit_code == 0, r.output
    assert seen["proxy_headers"] is False and seen["host"] == "127.0.0.1"
