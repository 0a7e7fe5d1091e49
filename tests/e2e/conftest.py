"""Fixtures of the real-browser tests: a live lifecert server, an enrolled pensioner, a fake camera, Chromium.

* ``live_server`` — ``uvicorn server.app:create_app`` in a subprocess on 127.0.0.1 (free port) with a tmp
  data directory, ``LIFECERT_ENV=test`` and ``LIFECERT_FIXED_CHALLENGES=blink,open_mouth``. A pensioner is
  enrolled beforehand from a neutral frame of the real talking-head video (not one the camera shows).
* ``fake_camera`` — a .y4m built at test time from real frames of the same video that acts out the session's
  timeline (read from a probe session, so the file follows the server's lead-in and window lengths).
* ``browser`` — Debian's /usr/bin/chromium through Playwright (``executable_path``; never ``playwright install``)
  with a fake camera fed by that file. Tests skip with a clear message where Chromium is absent.
"""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import cv2
import httpx
import pytest

from lifecert.config import Settings
from lifecert.domain.idnumber import make_id_number
from lifecert.engine.base import FaceEngine
from lifecert.services.context import AppContext
from lifecert.services.templates import add_template, store_photo, upsert_pensioner
from tests.e2e.fake_camera import SourceVideo, Timeline, build_fake_camera, enrollment_frame, used_frames

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("LIFECERT_CHROMIUM", "/usr/bin/chromium"))
TALKING_HEAD = Path("video") / "talking_head_a.mp4"
FIXED_CHALLENGES = "blink,open_mouth"
VIEWPORT = {"width": 360, "height": 740}
SERVER_START_TIMEOUT_S = 180.0
DARK_GAIN = 0.2  # a dim room: the face's grey level falls to about 30 of 255


@dataclass(frozen=True)
class EnrolledPensioner:
    pensioner_id: int
    id_number: str
    name: str


@dataclass(frozen=True)
class LiveServer:
    base_url: str
    settings: Settings
    log_path: Path
    pensioner: EnrolledPensioner

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"


@pytest.fixture(scope="session")
def chromium_path() -> Path:
    if not CHROMIUM.exists():
        pytest.skip(f"headless Chromium not found at {CHROMIUM} (apt-get install chromium; or set LIFECERT_CHROMIUM)")
    return CHROMIUM


@pytest.fixture(scope="module")
def talking_head(faces_dir: Path, face_engine: FaceEngine) -> SourceVideo:
    video = faces_dir / TALKING_HEAD
    if not video.is_file():
        pytest.skip(f"{video} not found in the shared faces data")
    return SourceVideo.load(face_engine, video)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _enroll(settings: Settings, engine: FaceEngine, source: SourceVideo) -> EnrolledPensioner:
    """Register one pensioner with a template from a talking-head frame the fake camera never shows."""
    image = enrollment_frame(source, used_frames(source.scores))
    faces = engine.analyze(image)
    if len(faces) != 1 or faces[0].embedding is None:
        raise RuntimeError("the enrollment frame has no single embeddable face")
    ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 95])
    if not ok:
        raise RuntimeError("could not encode the enrollment frame")
    data = jpeg.tobytes()
    sha = hashlib.sha256(data).hexdigest()
    id_number = make_id_number("110105", date(1952, 3, 14), 217)
    name = "王建国"
    ctx = AppContext(settings)
    ctx.set_engine(engine)
    try:
        with ctx.db.session() as s:
            p = upsert_pensioner(s, id_number, name)
            store_photo(ctx, s, data, sha, image.shape[1], image.shape[0], original_name="talking_head_a.jpg")
            add_template(ctx, s, p, faces[0].embedding, photo_sha256=sha, quality=faces[0].quality)
            s.commit()
            pid = p.id
    finally:
        ctx.close()
    return EnrolledPensioner(pid, id_number, name)


@pytest.fixture(scope="module")
def live_server(
    tmp_path_factory: pytest.TempPathFactory, face_engine: FaceEngine, talking_head: SourceVideo
) -> Iterator[LiveServer]:
    base = tmp_path_factory.mktemp("e2e_server")
    settings = Settings(env="test", data_dir=base / "data", fixed_challenges=FIXED_CHALLENGES)  # type: ignore[call-arg]
    pensioner = _enroll(settings, face_engine, talking_head)

    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIFECERT_")}
    env.update(
        LIFECERT_ENV="test",
        LIFECERT_DATA_DIR=str(settings.data_dir),
        LIFECERT_FIXED_CHALLENGES=FIXED_CHALLENGES,
        LIFECERT_INFERENCE_THREADS="2",
        PYTHONUNBUFFERED="1",
    )
    log_path = base / "server.log"
    cmd = [sys.executable, "-m", "uvicorn", "server.app:create_app", "--factory",
           "--host", "127.0.0.1", "--port", str(port), "--log-level", "info"]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    server = LiveServer(f"http://127.0.0.1:{port}", settings, log_path, pensioner)
    try:
        _wait_ready(proc, server)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def _wait_ready(proc: subprocess.Popen[bytes], server: LiveServer) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    last = ""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the server exited with code {proc.returncode} during start-up:\n{server.log_tail()}")
        try:
            r = httpx.get(f"{server.base_url}/readyz", timeout=2.0)
            if r.status_code == 200:
                return
            last = f"/readyz {r.status_code}"
        except httpx.HTTPError as exc:
            last = repr(exc)
        time.sleep(0.3)
    pytest.fail(f"the server was not ready within {SERVER_START_TIMEOUT_S:.0f} s ({last}):\n{server.log_tail()}")


@pytest.fixture(scope="module")
def session_timeline(live_server: LiveServer) -> Timeline:
    """The timeline the server hands out, read from one probe session (left unused; it simply expires)."""
    p = live_server.pensioner
    r = httpx.post(
        f"{live_server.base_url}/api/v1/sessions", json={"id_number": p.id_number, "name": p.name}, timeout=30.0
    )
    if r.status_code != 201:
        pytest.fail(f"probe session refused: {r.status_code} {r.text}\n{live_server.log_tail()}")
    body = r.json()
    return Timeline(int(body["lead_in_ms"]), int(body["challenge_window_ms"]), tuple(body["challenges"]))


@pytest.fixture(scope="module")
def fake_camera(
    tmp_path_factory: pytest.TempPathFactory, talking_head: SourceVideo, session_timeline: Timeline
) -> Path:
    out = tmp_path_factory.mktemp("camera") / "talking_head.y4m"
    build_fake_camera(talking_head, out, session_timeline)
    return out


CHROMIUM_ARGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
)


@pytest.fixture(scope="module")
def playwright(chromium_path: Path) -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        yield pw


def _launch(pw: Any, chromium_path: Path, camera_file: Path) -> Any:
    args = [*CHROMIUM_ARGS, f"--use-file-for-fake-video-capture={camera_file}"]
    return pw.chromium.launch(executable_path=str(chromium_path), headless=True, args=args)


@pytest.fixture(scope="module")
def browser(playwright: Any, chromium_path: Path, fake_camera: Path) -> Iterator[Any]:
    """Chromium whose camera acts out the session (neutral lead-in, blink, open mouth)."""
    b = _launch(playwright, chromium_path, fake_camera)
    try:
        yield b
    finally:
        b.close()


@pytest.fixture(scope="module")
def dark_browser(
    playwright: Any, chromium_path: Path, tmp_path_factory: pytest.TempPathFactory,
    talking_head: SourceVideo, session_timeline: Timeline,
) -> Iterator[Any]:
    """Chromium whose camera shows the same person in a dim room (every frame at DARK_GAIN of its brightness)."""
    out = tmp_path_factory.mktemp("dark_camera") / "talking_head_dark.y4m"
    build_fake_camera(talking_head, out, session_timeline, gain=DARK_GAIN)
    b = _launch(playwright, chromium_path, out)
    try:
        yield b
    finally:
        b.close()


def new_phone_page(browser: Any, live_server: LiveServer) -> Any:
    """A fresh 360x740 phone-sized page with camera permission; records every XHR FormData it sends."""
    context = browser.new_context(
        viewport=VIEWPORT, device_scale_factor=2, is_mobile=True, has_touch=True, locale="zh-CN"
    )
    context.grant_permissions(["camera"], origin=live_server.base_url)
    context.add_init_script(
        "window.__sentForms = [];"
        "const __send = XMLHttpRequest.prototype.send;"
        "XMLHttpRequest.prototype.send = function (body) {"
        "  if (body instanceof FormData) window.__sentForms.push(body);"
        "  return __send.call(this, body);"
        "};"
    )
    pg = context.new_page()
    pg.set_default_timeout(30_000)
    return pg


@pytest.fixture
def page(browser: Any, live_server: LiveServer) -> Iterator[Any]:
    pg = new_phone_page(browser, live_server)
    try:
        yield pg
    finally:
        pg.context.close()


@pytest.fixture
def dark_page(dark_browser: Any, live_server: LiveServer) -> Iterator[Any]:
    pg = new_phone_page(dark_browser, live_server)
    try:
        yield pg
    finally:
        pg.context.close()


@pytest.fixture(scope="session")
def screenshots_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the layout screenshots go (LIFECERT_E2E_SCREENSHOTS to keep them; never committed)."""
    env = os.environ.get("LIFECERT_E2E_SCREENSHOTS")
    if env:
        p = Path(env)
        p.mkdir(parents=True, exist_ok=True)
        return p
    return tmp_path_factory.mktemp("screenshots")
