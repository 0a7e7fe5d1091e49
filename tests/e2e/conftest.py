"""Fixtures of the real-browser tests: a live lifecert server, an enrolled pensioner, an acting camera, Chromium.

* ``live_server`` — ``uvicorn server.app:create_app`` in a subprocess on 127.0.0.1 (free port) with a tmp
  data directory, ``LIFECERT_ENV=test``, the MiniFASNet PAD pack installed from ``../shared/models/minifasnet``
  and challenges drawn by the server (none fixed); one server for the whole test session
  (``tests/e2e/harness.py``). The camera's person is enrolled from a talking-head frame the camera never shows;
  a second, different person is used up by the rate-limit test.
* ``genuine_camera`` / ``replay_camera`` / ``dark_camera`` — JPEG clips (``tests/e2e/fake_camera.py``) of the
  same real face: in front of the phone, replayed on a phone screen held in front of it, in a dim room.
* ``browser`` — Debian's /usr/bin/chromium through Playwright (``executable_path``; never ``playwright install``).
  :func:`new_phone_page` opens a 360x740 phone page whose ``getUserMedia`` is the acting canvas stream.
  Tests skip with a clear message where Chromium or the data is absent (``LIFECERT_REQUIRE_SERVICES=1``
  fails instead).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lifecert.engine.base import FaceEngine
from tests.e2e.fake_camera import Clips, SourceVideo, build_clips, genuine_scene, render_camera, screen_replay_scene
from tests.e2e.harness import (
    Camera,
    HarnessError,
    LiveServer,
    launch_chromium,
    running_server,
)

CHROMIUM = Path(os.environ.get("LIFECERT_CHROMIUM", "/usr/bin/chromium"))
TALKING_HEAD = Path("video") / "talking_head_a.mp4"
DARK_GAIN = 0.2
REQUIRE_SERVICES = os.environ.get("LIFECERT_REQUIRE_SERVICES") == "1"


def _skip_or_fail(reason: str) -> None:
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason} (LIFECERT_REQUIRE_SERVICES=1)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def chromium_path() -> Path:
    if not CHROMIUM.exists():
        _skip_or_fail(f"headless Chromium not found at {CHROMIUM} (apt-get install chromium; or set LIFECERT_CHROMIUM)")
    return CHROMIUM


@pytest.fixture(scope="session")
def talking_head(faces_dir: Path, face_engine: FaceEngine) -> SourceVideo:
    video = faces_dir / TALKING_HEAD
    if not video.is_file():
        pytest.skip(f"{video} not found in the shared faces data")
    return SourceVideo.load(face_engine, video)


@pytest.fixture(scope="session")
def clips(talking_head: SourceVideo) -> Clips:
    return build_clips(talking_head)


@pytest.fixture(scope="session")
def genuine_camera(clips: Clips) -> Camera:
    return render_camera(clips, genuine_scene())


@pytest.fixture(scope="session")
def dark_camera(clips: Clips) -> Camera:
    """The genuine person in a dim room: every pixel at DARK_GAIN (the face's grey level about 30 of 255)."""
    return render_camera(clips, genuine_scene(gain=DARK_GAIN))


@pytest.fixture(scope="session")
def replay_camera(clips: Clips) -> Camera:
    return render_camera(clips, screen_replay_scene())


@pytest.fixture(scope="session")
def live_server(
    tmp_path_factory: pytest.TempPathFactory, face_engine: FaceEngine, talking_head: SourceVideo, faces_dir: Path
) -> Iterator[LiveServer]:
    try:
        with running_server(tmp_path_factory.mktemp("e2e_server"), face_engine, talking_head, faces_dir) as server:
            yield server
    except HarnessError as exc:
        if "not found" in str(exc):
            _skip_or_fail(str(exc))
        pytest.fail(str(exc))


@pytest.fixture(scope="session")
def playwright(chromium_path: Path) -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _skip_or_fail("playwright is not installed (pip install -e '.[dev]')")
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="session")
def browser(playwright: Any, chromium_path: Path) -> Iterator[Any]:
    b = launch_chromium(playwright, chromium_path)
    try:
        yield b
    finally:
        b.close()


@pytest.fixture(scope="session")
def screenshots_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the layout screenshots go (LIFECERT_E2E_SCREENSHOTS to keep them; never committed)."""
    env = os.environ.get("LIFECERT_E2E_SCREENSHOTS")
    if env:
        p = Path(env)
        p.mkdir(parents=True, exist_ok=True)
        return p
    return tmp_path_factory.mktemp("screenshots")
