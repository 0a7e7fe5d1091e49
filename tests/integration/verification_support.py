"""Shared builders for the verification tests: enrolled pensioners and real frame sequences.

Frames come from ``video/talking_head_a.mp4`` (512x512, 25 fps: natural blinks, mouth
opening). They are sampled every third frame (~8 fps) and given timestamps so that a
blink falls in the first challenge window and a mouth opening in the second; the
EAR/MAR of every sampled frame is measured first to choose where the sequence starts.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import cv2
import numpy as np
from fastapi.testclient import TestClient
from numpy.typing import NDArray

from lifecert.domain.idnumber import make_id_number
from lifecert.engine import geometry
from lifecert.engine.base import FaceEngine
from lifecert.engine.image import encode_jpeg
from lifecert.services.context import AppContext
from lifecert.services.templates import add_template, store_photo, upsert_pensioner
from lifecert.storage.models import Pensioner

VIDEO = "video/talking_head_a.mp4"
STEP = 3  # 25 fps -> ~8 fps
FRAME_MS = 125
LEAD_IN_MS = 1500
WINDOW_MS = 3000
TEMPLATE_FRAME = 100  # 100 % 3 == 1: never one of the uploaded frames (those are multiples of 3 from an offset 0)


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


@dataclass(frozen=True)
class Sequence:
    frames: list[bytes]  # JPEG
    timestamps: list[int]
    video_index: list[int]


def measure(engine: FaceEngine, frames: list[NDArray[np.uint8]]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    ear = np.full(len(frames), np.nan)
    mar = np.full(len(frames), np.nan)
    for i, f in enumerate(frames):
        faces = engine.detect(f)
        if faces and faces[0].landmarks68 is not None:
            ear[i] = geometry.eye_aspect_ratio(faces[0].landmarks68)
            mar[i] = geometry.mouth_aspect_ratio(faces[0].landmarks68)
    return ear, mar


def blink_mouth_sequence(engine: FaceEngine, video: list[NDArray[np.uint8]]) -> Sequence:
    """Sampled frames whose timeline puts a blink in window 1 (1.5-4.5 s) and an open mouth
    (MAR > 0.33) in window 2 (4.5-7.5 s), found by measuring EAR/MAR on the sampled frames."""
    idx = list(range(0, len(video), STEP))
    ear, mar = measure(engine, [video[i] for i in idx])
    base = float(np.nanpercentile(ear, 75))
    blinks = [j for j in range(1, len(idx) - 1) if ear[j] < 0.6 * base and ear[j + 1] > 0.8 * base]
    for b in blinks:
        # Put the blink ~1 s into window 1.
        start = b - (LEAD_IN_MS + 1000) // FRAME_MS
        if start < 0:
            continue
        js = list(range(start, min(len(idx), start + (LEAD_IN_MS + 2 * WINDOW_MS) // FRAME_MS)))
        ts = [(j - start) * FRAME_MS for j in js]
        mouth = [
            j
            for j, t in zip(js, ts, strict=True)
            if LEAD_IN_MS + WINDOW_MS + 200 <= t <= LEAD_IN_MS + 2 * WINDOW_MS and mar[j] > 0.33
        ]
        if mouth:
            return Sequence([encode_jpeg(video[idx[j]], 90) for j in js], ts, [idx[j] for j in js])
    raise RuntimeError("no blink/mouth segment found in the talking-head video")


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


def serve(ctx: AppContext, engine: FaceEngine) -> Iterator[TestClient]:
    """A TestClient on create_app whose single inference thread shares the test session's
    engine; waits until /readyz so that the background warm-up never overlaps a test's own
    engine calls (a dlib engine must not run on two threads at once)."""
    from server.app import create_app

    app = create_app(ctx.settings, ctx)
    app.state.engine_factory = lambda: engine
    with TestClient(app) as c:
        deadline = time.monotonic() + 120
        while c.get("/readyz").status_code != 200:
            if time.monotonic() > deadline:
                raise RuntimeError("server did not become ready")
            time.sleep(0.05)
        yield c


def multipart(seq: Sequence, nonce: str) -> tuple[dict[str, str], list[tuple[str, tuple[str, bytes, str]]]]:
    import json

    data = {"nonce": nonce, "timestamps": json.dumps(seq.timestamps)}
    files = [("frames", (f"f{i:03d}.jpg", b, "image/jpeg")) for i, b in enumerate(seq.frames)]
    return data, files
