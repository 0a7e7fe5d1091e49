"""Shared fixtures. Real face photos come from ../shared/faces (override: LIFECERT_SHARED_FACES)."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from lifecert.config import Settings, VerificationSettings
from lifecert.engine.base import FaceEngine
from lifecert.engine.loader import load_engine
from lifecert.services.context import AppContext
from tests.integration.verification_support import VIDEO, read_video
from tests.paced_client import Clip, talking_head_clip

ROOT = Path(__file__).resolve().parents[1]


def _find_faces() -> Path | None:
    env = os.environ.get("LIFECERT_SHARED_FACES")
    if env:
        return Path(env)
    for base in (ROOT.parent / "shared" / "faces", ROOT / ".." / "shared" / "faces"):
        if base.is_dir():
            return base.resolve()
    return None


@pytest.fixture(autouse=True)
def _restore_root_logging() -> Iterator[None]:
    """A test that runs `lifecert serve` through CliRunner installs a root log handler on CliRunner's
    temporary stderr (services.logs.configure_logging); put the root handlers back after every test so
    later tests do not log into a closed stream."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture(scope="session")
def faces_dir() -> Path:
    """The shared real-face data set; tests that need it skip with a clear reason where it is absent."""
    p = _find_faces()
    if p is None or not p.is_dir():
        pytest.skip("../shared/faces not found (set LIFECERT_SHARED_FACES to the faces folder)")
    return p


@pytest.fixture(scope="session")
def shared_models_dir() -> Path:
    """../shared/models (real third-party weights, never committed; override: LIFECERT_SHARED_MODELS)."""
    env = os.environ.get("LIFECERT_SHARED_MODELS")
    faces = _find_faces()
    p = Path(env) if env else (faces.parent / "models" if faces is not None else None)
    if p is None or not p.is_dir():
        if os.environ.get("LIFECERT_REQUIRE_SERVICES") == "1":
            pytest.fail("../shared/models not found (set LIFECERT_SHARED_MODELS)")
        pytest.skip("../shared/models not found (set LIFECERT_SHARED_MODELS to the models folder)")
    return p


@pytest.fixture(scope="session")
def face_engine() -> FaceEngine:
    """The embedded default engine (dlib), loaded once for the whole test session."""
    return load_engine(Settings(), name="dlib")


@pytest.fixture(scope="session")
def frontal_frame(faces_dir: Path) -> NDArray[np.uint8]:
    """A real, near-frontal face: talking-head frame 100 (BGR, 512x512). Callers copy before drawing on it."""
    import cv2

    cap = cv2.VideoCapture(str(faces_dir / "video/talking_head_a.mp4"))
    cap.set(cv2.CAP_PROP_POS_FRAMES, 100)
    ok, img = cap.read()
    cap.release()
    assert ok
    img.flags.writeable = False
    return img


@pytest.fixture(scope="session")
def frontal68(frontal_frame: NDArray[np.uint8], face_engine: FaceEngine) -> NDArray[np.float32]:
    """The 68 landmarks (pixels of the 512x512 clip) of :func:`frontal_frame`."""
    faces = face_engine.detect(frontal_frame)
    assert faces and faces[0].landmarks68 is not None
    return np.asarray(faces[0].landmarks68, np.float32)


def posed_landmarks(
    img: NDArray[np.uint8], engine: FaceEngine, poses: Iterable[tuple[float, float]]
) -> dict[tuple[float, float], NDArray[np.float32]]:
    """The engine's 68 landmarks of ``img``'s face turned/nodded to each (yaw_deg, pitch_deg) pose by
    benchmarks.attacks.turn_head (> 0: the pensioner's left / looking down): what the server would see of a
    real face in that pose."""
    from benchmarks.attacks import turn_head

    box = engine.detect(img)[0].box
    out: dict[tuple[float, float], NDArray[np.float32]] = {}
    for pose in poses:
        faces = engine.detect(turn_head(img, box, yaw_deg=pose[0], pitch_deg=pose[1]))
        assert faces and faces[0].landmarks68 is not None, pose
        out[pose] = np.asarray(faces[0].landmarks68, np.float32)
    return out


@pytest.fixture(scope="session")
def frame_engine() -> FaceEngine:
    """The verification service's per-thread engine (selfie-frame tuning), loaded once."""
    from lifecert.services.verification import load_frame_engine

    return load_frame_engine(Settings(), name="dlib")


# Secrets strong enough for staging/production settings in tests (config.weak_secret refuses hand-made ones).
DEPLOY_SECRETS = {
    "template_key": "q1Jk3Xy8Vb0nP4sT7wZ2cF5hL9mR6dG1aE3uI8oY0tQ=",
    "session_secret": "Wm4pZ8rT2vX6nB1cK9yF3hJ7dL5sQ0gA",
    "audit_key": "Hn7Kq2Wx9Rb4Tz6Vm1Yc8Pf3Lj5Sd0Ge",
}


def make_settings(tmp_path: Path, **kw: object) -> Settings:
    url = os.environ.get("LIFECERT_TEST_DATABASE_URL") if kw.pop("use_env_db", False) else None
    # The spot checks' random sample draws from SystemRandom: off unless a test sets a rate, so that a
    # CONFIRMED session never opens a case (nor skips its refresh template) by chance.
    v = kw.get("verification")
    if v is None or isinstance(v, dict):
        kw["verification"] = {"audit_sample_rate": 0.0, **(v or {})}
    elif isinstance(v, VerificationSettings) and "audit_sample_rate" not in v.model_fields_set:
        kw["verification"] = v.model_copy(update={"audit_sample_rate": 0.0})
    return Settings(env="test", data_dir=tmp_path / "data", database_url=url, **kw)  # type: ignore[arg-type]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
def ctx(settings: Settings, face_engine: FaceEngine) -> Iterator[AppContext]:
    """A fresh data directory and SQLite database, sharing the session's loaded engine."""
    c = AppContext(settings)
    c.set_engine(face_engine)
    yield c
    c.close()


REQUIRE_SERVICES = os.environ.get("LIFECERT_REQUIRE_SERVICES") == "1"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """In CI (LIFECERT_REQUIRE_SERVICES=1) a PostgreSQL or browser test may not skip: it fails."""
    outcome = yield
    rep = outcome.get_result()
    if REQUIRE_SERVICES and rep.skipped and any(
        item.get_closest_marker(m) for m in ("postgres", "browser", "redis", "ray")
    ):
        rep.outcome = "failed"
        rep.longrepr = f"required service missing in CI: {rep.longrepr}"


@pytest.fixture(scope="session")
def postgres_url() -> str:
    url = os.environ.get("LIFECERT_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("no PostgreSQL server (scripts/test.sh starts one when the postgresql package is installed)")
    return url


def empty_postgres(url: str) -> None:
    """Drop every lifecert table and Alembic's version table from the test PostgreSQL database,
    so a test starts from an empty schema (the server is shared by all PostgreSQL tests)."""
    from lifecert.storage.db import drop_schema

    drop_schema(url)


@pytest.fixture(scope="session")
def video(faces_dir: Path) -> list[NDArray[np.uint8]]:
    """The shared talking-head clip as BGR frames (read once per test session)."""
    return read_video(faces_dir / VIDEO)


@pytest.fixture(scope="session")
def clip(frame_engine: FaceEngine, video: list[NDArray[np.uint8]]) -> Clip:
    """What a simulated phone shows (tests/paced_client.py): real frames of the clip at ~8 fps — a calm run,
    a blink, an open mouth; ``clip.template`` is the frame to enroll, never one of those sent."""
    return talking_head_clip(frame_engine, video)


@pytest.fixture
def mirror(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A static HTTP server on 127.0.0.1 (free port) serving ``tmp_path/"mirror"``: a stand-in for
    a download site (the machine has no internet). Yields ``(base_url, folder)``; the server is shut
    down after the test."""
    import http.server
    import threading

    root = tmp_path / "mirror"
    root.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a: object, **kw: object) -> None:
            super().__init__(*a, directory=str(root), **kw)  # type: ignore[arg-type]

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    t = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root
    finally:
        server.shutdown()
        server.server_close()
        t.join(timeout=5)
