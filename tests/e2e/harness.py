"""The browser tests' harness as plain functions (no pytest), shared by tests/e2e/conftest.py and
benchmarks/page_sessions.py: enroll the camera's person, install the PAD pack, run the real server on
127.0.0.1 (free port, bounded start-up), open a phone-sized Chromium page whose camera acts."""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np

from lifecert.config import Settings
from lifecert.domain.idnumber import make_id_number
from lifecert.engine.base import FaceEngine
from lifecert.engine.packs import install_pack
from lifecert.services.context import AppContext
from lifecert.services.templates import add_template, store_photo, upsert_pensioner
from tests.e2e.fake_camera import ROUTE_PREFIX, ActorPlan, SourceVideo, actor_init_script, enrollment_frame, used_frames

ROOT = Path(__file__).resolve().parents[2]
VIEWPORT = {"width": 360, "height": 740}
SERVER_START_TIMEOUT_S = 180.0
# Session limits of the one test server every browser test shares. The camera's person starts a session in nearly
# every test (and again on each "try again"), ~12 in the whole suite by session 8, over the default 10 per ID an
# hour: the rate-limit test uses up the spare person instead, so the per-ID limit here only needs headroom. The
# per-client limit (every test comes from 127.0.0.1) must stay above all sessions of the suite together.
PER_ID_LIMIT = 25
PER_CLIENT_LIMIT = 300
CHROMIUM_ARGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--use-fake-ui-for-media-stream", "--autoplay-policy=no-user-gesture-required",
)
PHONE_TIMEZONE = "Asia/Shanghai"

Camera = dict[str, list[bytes]]


class HarnessError(RuntimeError):
    """The harness could not set up (missing data, server did not start)."""


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
    spare: EnrolledPensioner  # a different person, for tests that use up a pensioner's attempts
    pad_on: bool = field(default=False)

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _enroll_one(ctx: AppContext, engine: FaceEngine, image: Any, id_number: str, name: str, label: str
                ) -> EnrolledPensioner:
    faces = engine.analyze(image)
    if len(faces) != 1 or faces[0].embedding is None:
        raise HarnessError(f"the enrollment photo {label} has no single embeddable face")
    ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 95])
    if not ok:
        raise HarnessError(f"could not encode {label}")
    data = jpeg.tobytes()
    sha = hashlib.sha256(data).hexdigest()
    with ctx.db.session() as s:
        p = upsert_pensioner(s, id_number, name)
        store_photo(ctx, s, data, sha, image.shape[1], image.shape[0], original_name=label)
        add_template(ctx, s, p, faces[0].embedding, photo_sha256=sha, quality=faces[0].quality)
        s.commit()
        return EnrolledPensioner(p.id, id_number, name)


def enroll(settings: Settings, engine: FaceEngine, source: SourceVideo, faces_dir: Path
           ) -> tuple[EnrolledPensioner, EnrolledPensioner]:
    """The camera's person, from a talking-head frame the fake camera never shows; and a second, different
    person (a real LFW photo) whose attempts the rate-limit test uses up. Two people with one face would
    rightly be refused by the 1:N check."""
    spare_photo = next(iter(sorted((faces_dir / "lfw" / "images" / "Aaron_Patterson").glob("*.jpg"))), None)
    if spare_photo is None:
        raise HarnessError("LFW photos not found in the shared faces data")
    spare_image = np.asarray(cv2.imread(str(spare_photo)), dtype=np.uint8)
    ctx = AppContext(settings)
    ctx.set_engine(engine)
    try:
        main = _enroll_one(ctx, engine, enrollment_frame(source, sorted(used_frames(source.scores))),
                           make_id_number("110105", date(1952, 3, 14), 217), "王建国", "talking_head_a.jpg")
        spare = _enroll_one(ctx, engine, spare_image,
                            make_id_number("310104", date(1948, 9, 2), 128), "李秀英", spare_photo.name)
    finally:
        ctx.close()
    return main, spare


def install_pad(settings: Settings, models_src: Path) -> None:
    """Install the MiniFASNet pack as an operator does (``lifecert models install minifasnet --from DIR``)."""
    if not models_src.is_dir():
        raise HarnessError(f"PAD models {models_src} not found (../shared/models/minifasnet)")
    install_pack(models_src, settings.resolved_models_dir, "minifasnet", manifest_path=settings.manifest_path)


@contextmanager
def running_server(base: Path, engine: FaceEngine, source: SourceVideo, faces_dir: Path, *, pad: bool = True
                   ) -> Iterator[LiveServer]:
    """``uvicorn server.app:create_app`` on 127.0.0.1 (free port) over a fresh data dir in ``base``:
    ``LIFECERT_ENV=test``, challenges drawn by the server (none fixed), PAD installed when ``pad``.
    Start-up is bounded (SERVER_START_TIMEOUT_S); the process is always stopped."""
    settings = Settings(env="test", data_dir=base / "data")  # type: ignore[call-arg]
    pensioner, spare = enroll(settings, engine, source, faces_dir)
    if pad:
        install_pad(settings, faces_dir.parent / "models" / "minifasnet")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIFECERT_")}
    env.update(LIFECERT_ENV="test", LIFECERT_DATA_DIR=str(settings.data_dir), LIFECERT_INFERENCE_THREADS="2",
               LIFECERT_VERIFICATION__RATE_LIMIT_PER_ID_PER_HOUR=str(PER_ID_LIMIT),
               LIFECERT_VERIFICATION__RATE_LIMIT_PER_CLIENT_PER_HOUR=str(PER_CLIENT_LIMIT), PYTHONUNBUFFERED="1")
    log_path = base / "server.log"
    cmd = [sys.executable, "-m", "uvicorn", "server.app:create_app", "--factory",
           "--host", "127.0.0.1", "--port", str(port), "--log-level", "info"]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    server = LiveServer(f"http://127.0.0.1:{port}", settings, log_path, pensioner, spare, pad_on=pad)
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
            raise HarnessError(f"the server exited with code {proc.returncode} during start-up:\n{server.log_tail()}")
        try:
            r = httpx.get(f"{server.base_url}/readyz", timeout=2.0)
            if r.status_code == 200:
                return
            last = f"/readyz {r.status_code}"
        except httpx.HTTPError as exc:
            last = repr(exc)
        time.sleep(0.3)
    raise HarnessError(f"the server was not ready within {SERVER_START_TIMEOUT_S:.0f} s ({last}):\n{server.log_tail()}")


def launch_chromium(playwright: Any, chromium_path: Path) -> Any:
    return playwright.chromium.launch(executable_path=str(chromium_path), headless=True, args=list(CHROMIUM_ARGS))


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
        timezone_id=PHONE_TIMEZONE,
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
