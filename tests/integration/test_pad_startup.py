"""Start-up with and without the MiniFASNet PAD pack: /readyz says whether PAD is on, and
production refuses to start without it unless LIFECERT_LIVENESS__ALLOW_NO_PAD=1."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from lifecert.domain.errors import ModelError
from lifecert.engine.base import FaceEngine
from lifecert.services.context import AppContext
from tests.conftest import make_settings
from tests.integration.verification_support import serve

REAL_SECRETS = {"template_key": "a2V5LWtleS1rZXkta2V5LWtleS1rZXkta2V5LWtleTM=", "session_secret": "s" * 40}


def test_given_no_pad_pack_when_ready_then_readyz_says_pad_off(ctx: AppContext, face_engine: FaceEngine) -> None:
    for client in serve(ctx, face_engine):
        body = client.get("/readyz").json()
        assert body["status"] == "ready" and body["pad"] == "off"
        assert "not installed" in body["pad_reason"] and str(ctx.settings.data_dir) not in body["pad_reason"]


def test_given_installed_pad_pack_when_ready_then_readyz_says_pad_on(
    ctx: AppContext, face_engine: FaceEngine, faces_dir: Path
) -> None:
    src = faces_dir.parent / "models" / "minifasnet"
    if not src.is_dir():
        pytest.skip("../shared/models/minifasnet not found")
    from lifecert.cli_models import install_models

    install_models(ctx.settings, src, "minifasnet")
    for client in serve(ctx, face_engine):
        assert client.get("/readyz").json()["pad"] == "on"


def test_given_production_without_pad_when_starting_then_the_server_refuses(tmp_path: Path) -> None:
    from server.app import create_app

    s = make_settings(tmp_path, **REAL_SECRETS).model_copy(update={"env": "production"})
    app = create_app(s, AppContext(s))
    with pytest.raises(ModelError, match="ALLOW_NO_PAD"), TestClient(app):
        pass
