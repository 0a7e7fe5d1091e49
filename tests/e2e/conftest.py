"""Fixtures of the real-browser tests: a live lifecert server, an enrolled pensioner, an acting camera, Chromium.

* ``live_server`` — ``uvicorn server.app:create_app`` in a subprocess on 127.0.0.1 (free port) with a tmp
  data directory, ``LIFECERT_ENV=test``, the MiniFASNet PAD pack installed from ``../shared/models/minifasnet``
  and challenges drawn by the server (none fixed). Two pensioners are enrolled beforehand from a neutral frame
  of the real talking-head video that the camera never shows (the second one is used up by the rate-limit test).
* ``genuine_camera`` / ``replay_camera`` — JPEG clips (``tests/e2e/fake_camera.py``) of the same real face,
  in front of the phone or replayed on a phone screen held in front of it.
* ``browser`` — Debian's /usr/bin/chromium through Playwright (``executable_path``; never ``playwright install``).
  :func:`new_phone_page` opens a 360x740 phone page whose ``getUserMedia`` is the acting canvas stream.
  Tests skip with a clear message where Chromium is absent (``LIFECERT_REQUIRE_SERVICES=1`` fails instead).
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
from lifecert.engine.packs import install_pack
from lifecert.services.context import AppContext
from lifecert.services.templates import add_template, store_photo, upsert_pensioner
from tests.e2e.fake_camera import (
    ROUTE_PREFIX,
    ActorPlan,
    Clips,
    SourceVideo,
    actor_init_script,
    build_clips,
    enrollment_frame,
    genuine_scene,
    render_camera,
    screen_replay_scene,
    used_frames,
)

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("LIFECERT_CHROMIUM", "/usr/bin/chromium"))
TALKING_HEAD = Path("video") / "talking_head_a.mp4"
VIEWPORT = {"width": 360, "height": 740}
SERVER_START_TIMEOUT_S = 180.0
DARK_GAIN = 0.2
REQUIRE_SERVICES = os.environ.get("LIFECERT_REQUIRE_SERVICES") == "1"

Camera = dict[str, list[bytes]]


def _skip_or_fail(reason: str) -> None:
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason} (LIFECERT_REQUIRE_SERVICES=1)")
    pytest.skip(reason)


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
    spare: EnrolledPensioner  # for tests that use up a pensioner's attempts

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"


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


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _enroll_one(ctx: AppContext, engine: FaceEngine, image: Any, id_number: str, name: str, label: str
                ) -> EnrolledPensioner:
    faces = engine.analyze(image)
    if len(faces) != 1 or faces[0].embedding is None:
        raise RuntimeError(f"the enrollment photo {label} has no single embeddable face")
    ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 95])
    if not ok:
        raise RuntimeError(f"could not encode {label}")
    data = jpeg.tobytes()
    sha = hashlib.sha256(data).hexdigest()
    with ctx.db.session() as s:
        p = upsert_pensioner(s, id_number, name)
        store_photo(ctx, s, data, sha, image.shape[1], image.shape[0], original_name=label)
        add_template(ctx, s, p, faces[0].embedding, photo_sha256=sha, quality=faces[0].quality)
        s.commit()
        return EnrolledPensioner(p.id, id_number, name)


def _enroll(settings: Settings, engine: FaceEngine, source: SourceVideo, faces_dir: Path
            ) -> tuple[EnrolledPensioner, EnrolledPensioner]:
    """The camera's person, from a talking-head frame the fake camera never shows; and a second, different
    person (a real LFW photo) whose attempts the rate-limit test uses up. Two people with one face would
    rightly be refused by the 1:N check."""
    spare_photo = next(iter(sorted((faces_dir / "lfw" / "images" / "Aaron_Patterson").glob("*.jpg"))), None)
    if spare_photo is None:
        pytest.skip("LFW photos not found in the shared faces data")
    ctx = AppContext(settings)
    ctx.set_engine(engine)
    try:
        main = _enroll_one(ctx, engine, enrollment_frame(source, sorted(used_frames(source.scores))),
                           make_id_number("110105", date(1952, 3, 14), 217), "王建国", "talking_head_a.jpg")
        spare = _enroll_one(ctx, engine, cv2.imread(str(spare_photo)),
                            make_id_number("310104", date(1948, 9, 2), 128), "李秀英", spare_photo.name)
    finally:
        ctx.close()
    return main, spare


def _install_pad(settings: Settings, models_src: Path) -> None:
    """Install the MiniFASNet pack as an operator does (``lifecert models install minifasnet --from DIR``)."""
    if not models_src.is_dir():
        _skip_or_fail(f"PAD models {models_src} not found (../shared/models/minifasnet)")
    install_pack(models_src, settings.resolved_models_dir, "minifasnet", manifest_path=settings.manifest_path)


@pytest.fixture(scope="session")
def live_server(
    tmp_path_factory: pytest.TempPathFactory, face_engine: FaceEngine, talking_head: SourceVideo, faces_dir: Path
) -> Iterator[LiveServer]:
    base = tmp_path_factory.mktemp("e2e_server")
    settings = Settings(env="test", data_dir=base / "data")  # type: ignore[call-arg]
    pensioner, spare = _enroll(settings, face_engine, talking_head, faces_dir)
    _install_pad(settings, faces_dir.parent / "models" / "minifasnet")

    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIFECERT_")}
    env.update(
        LIFECERT_ENV="test",
        LIFECERT_DATA_DIR=str(settings.data_dir),
        LIFECERT_INFERENCE_THREADS="2",
        PYTHONUNBUFFERED="1",
    )
    log_path = base / "server.log"
    cmd = [sys.executable, "-m", "uvicorn", "server.app:create_app", "--factory",
           "--host", "127.0.0.1", "--port", str(port), "--log-level", "info"]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    server = LiveServer(f"http://127.0.0.1:{port}", settings, log_path, pensioner, spare)
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


CHROMIUM_ARGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--use-fake-ui-for-media-stream", "--autoplay-policy=no-user-gesture-required",
)


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
    b = playwright.chromium.launch(executable_path=str(chromium_path), headless=True, args=list(CHROMIUM_ARGS))
    try:
        yield b
    finally:
        b.close()


def new_phone_page(
    browser: Any, live_server: LiveServer, camera: Camera | None = None, plan: ActorPlan | None = None,
    *, font_scale: float = 1.0,
) -> Any:
    """A fresh 360x740 phone page. With ``camera``, getUserMedia is the acting canvas stream (``plan``).

    ``font_scale`` > 1 enlarges the root font like a phone's "large text" setting (150 % -> 1.5).
    Every /api/ request is recorded in ``page.api_calls`` as (method, path).
    """
    context = browser.new_context(
        viewport=VIEWPORT, device_scale_factor=2, is_mobile=True, has_touch=True, locale="zh-CN",
        timezone_id="Asia/Shanghai",
    )
    if camera is not None:
        def serve(route: Any) -> None:
            path = route.request.url.split(ROUTE_PREFIX, 1)[1]
            clip, name = path.split("/", 1)
            route.fulfill(status=200, content_type="image/jpeg", body=camera[clip][int(name.split(".")[0])])

        context.route(f"**{ROUTE_PREFIX}**", serve)
        lengths = {k: len(v) for k, v in camera.items()}
        context.add_init_script(actor_init_script(lengths, 15, plan or ActorPlan()))
    if font_scale != 1.0:
        context.add_init_script(
            "document.addEventListener('DOMContentLoaded', () => {"
            f" document.documentElement.style.setProperty('font-size', '{20 * font_scale:.0f}px'); }});"
        )
    pg = context.new_page()
    calls: list[tuple[str, str]] = []
    pg.on("request", lambda req: calls.append((req.method, req.url.split("/api/", 1)[1]))
          if "/api/" in req.url else None)
    pg.api_calls = calls
    pg.set_default_timeout(30_000)
    return pg


@pytest.fixture(scope="session")
def screenshots_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the layout screenshots go (LIFECERT_E2E_SCREENSHOTS to keep them; never committed)."""
    env = os.environ.get("LIFECERT_E2E_SCREENSHOTS")
    if env:
        p = Path(env)
        p.mkdir(parents=True, exist_ok=True)
        return p
    return tmp_path_factory.mktemp("screenshots")
