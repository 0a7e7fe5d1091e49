"""Shared builders for the verification tests: enrolled pensioners, the video, a served app.

The frames a simulated phone sends (``video/talking_head_a.mp4``: natural blinks, mouth opening)
and the phone itself live in :mod:`tests.paced_client`, shared with the benchmarks.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from fastapi.testclient import TestClient
from numpy.typing import NDArray
from sqlalchemy import select

from lifecert.domain.idnumber import make_id_number
from lifecert.engine.base import FaceEngine
from lifecert.engine.image import encode_jpeg
from lifecert.services.context import AppContext
from lifecert.services.templates import add_template, store_photo, upsert_pensioner
from lifecert.services.verification import VerificationService
from lifecert.services.verification.paced import PacedStart
from lifecert.storage.models import FaceTemplate, Pensioner, TemplateKind
from lifecert.storage.models_verification import VerificationSession
from tests.db_support import detached
from tests.paced_client import TEMPLATE_FRAME as TEMPLATE_FRAME  # the enrolled frame, never one the phone sends
from tests.paced_client import Clip, Phone, SimClock, VirtualTime, http_sender, http_start, service_sender, step_of

VIDEO = "video/talking_head_a.mp4"


def read_video(path: Path) -> list[NDArray[np.uint8]]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(f)
    cap.release()
    return frames


def enroll(ctx: AppContext, image: NDArray[np.uint8], *, seq: int, name: str = "王秀英") -> Pensioner:
    """A pensioner with one template made from ``image`` (BGR) through the real engine."""
    idn = make_id_number("110101", date(1950, 3, 1), seq)
    data = encode_jpeg(image, 95)
    faces = ctx.engine.analyze(image)
    if not faces or faces[0].embedding is None:
        raise RuntimeError("no face in the enrollment image")
    sha = hashlib.sha256(data).hexdigest()
    with ctx.db.session() as s:
        p = upsert_pensioner(s, idn, name)
        store_photo(ctx, s, data, sha, image.shape[1], image.shape[0])
        add_template(ctx, s, p, faces[0].embedding, photo_sha256=sha, quality=faces[0].quality)
        s.expunge(p)
    return p


def verification_ctx(tmp_path: Path, engine: FaceEngine, fixed_challenges: str = "blink,open_mouth",
                     **settings: Any) -> Iterator[AppContext]:
    """A test context with fixed challenges (default blink,open_mouth: the talking-head video acts both) on the
    given engine, closed afterwards; ``settings`` go to make_settings."""
    from tests.conftest import make_settings

    c = AppContext(make_settings(tmp_path, fixed_challenges=fixed_challenges, **settings))
    c.set_engine(engine)
    try:
        yield c
    finally:
        c.close()


def serve(ctx: AppContext, engine: FaceEngine, clock: Callable[[], datetime] | None = None) -> Iterator[TestClient]:
    """A TestClient on create_app whose single inference thread shares the test session's
    engine; waits until /readyz so that the background warm-up never overlaps a test's own
    engine calls (a dlib engine must not run on two threads at once). ``clock``: the
    verification service's UTC clock (a :class:`tests.paced_client.VirtualTime` for paced
    sessions on simulated time)."""
    from server.app import create_app

    app = create_app(ctx.settings, ctx)
    app.state.engine_factory = lambda: engine
    app.state.clock = clock
    with TestClient(app) as c:
        deadline = time.monotonic() + 120
        while c.get("/readyz").status_code != 200:
            if time.monotonic() > deadline:
                raise RuntimeError("server did not become ready")
            time.sleep(0.05)
        yield c


def refresh_rows(ctx: AppContext, pensioner_id: int) -> list[FaceTemplate]:
    """Every refresh template of the pensioner (any model, active or not), detached."""
    return detached(ctx, select(FaceTemplate).where(FaceTemplate.pensioner_id == pensioner_id,
                                                    FaceTemplate.kind == TemplateKind.REFRESH))


def phone_at_first_challenge(client: TestClient, clock: VirtualTime, ctx: AppContext, faces_dir: Path, clip: Clip,
                             seq: int, challenge: str) -> Phone:
    """A newly enrolled pensioner's paced session on a simulated phone (the virtual clock, nothing acted), run
    through the settle step until the first challenge is revealed; asserts it is ``challenge``."""
    p = enroll(ctx, read_video(faces_dir / VIDEO)[TEMPLATE_FRAME], seq=seq)
    sid, first = http_start(client, {"id_number": p.id_number, "name": p.name})
    phone = Phone(http_sender(client, sid), first, clip, SimClock(clock), act=False, session_id=sid)
    phone.neutral(1500)
    while phone.step.index == 0 and not phone.decided:
        phone.tick()
    assert phone.step.challenge == challenge, phone.step
    return phone


def act_blink_open_mouth(svc: VerificationService, clock: VirtualTime, clip: Clip, start: PacedStart,
                         reaction_ms: int = 1200) -> VerificationSession:
    """Act the clip's blink, then its open mouth, through a started paced session (fixed challenges
    blink,open_mouth) on the service's virtual clock; the decided session row (detached)."""
    sim = SimClock(clock)
    phone = Phone(service_sender(svc, start.session_id, sim), step_of(start.step), clip, sim, act=False)
    r = phone.neutral(1500)
    assert r is not None and r.step is not None and r.step.challenge == "blink", [a.step_state for a in phone.answers]
    phone.run_step(clip.actions["blink"], reaction_ms=reaction_ms)
    r = phone.run_step(clip.actions["open_mouth"], reaction_ms=reaction_ms)
    assert r.status == "decided", r
    with svc.ctx.db.session() as s:
        vs = s.get(VerificationSession, start.session_id)
        assert vs is not None
        s.expunge(vs)
    return vs
