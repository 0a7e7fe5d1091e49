"""The one face pipeline (decode → detect → gates → views → embed) on real photos."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from lifecert.config import Settings
from lifecert.domain.errors import ErrorCode
from lifecert.engine.base import FaceEngine
from lifecert.engine.pipeline import process_face


def _lfw(faces: Path) -> bytes:
    """The first LFW person's first photo (the enrollment tests enrol it as a passing photo)."""
    first = sorted((faces / "lfw" / "images").iterdir())[0]
    return sorted(first.glob("*.jpg"))[0].read_bytes()


def test_given_a_good_photo_when_processed_then_one_decode_and_the_profile_embedding(
    face_engine: FaceEngine, faces_dir: Path
) -> None:
    s = Settings()
    data = _lfw(faces_dir)
    out = process_face(face_engine, data, s.quality, views="jitter")
    assert out.ok and out.reason is None and out.quality is not None
    assert out.view_embeddings is not None and out.view_embeddings.shape == (8, 128)
    assert out.view_names[0] == "id"
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    expected = face_engine.embed(img, face_engine.detect(img)[0], profile="jitter")
    assert out.embedding is not None and float(np.dot(out.embedding, expected)) > 0.9999
    assert (out.width, out.height) == (img.shape[1], img.shape[0])


def test_given_rejects_when_processed_then_reason_and_no_recogniser_pass_unless_asked(
    face_engine: FaceEngine, faces_dir: Path
) -> None:
    s = Settings()
    two = (faces_dir / "multi" / "two_people.jpg").read_bytes()
    out = process_face(face_engine, two, s.quality, views="flip")
    assert out.reason == ErrorCode.MULTIPLE_FACES and out.embedding is None and out.significant > 1
    measured = process_face(face_engine, two, s.quality, views="flip", embed_rejects=True)
    assert measured.reason == ErrorCode.MULTIPLE_FACES and measured.view_embeddings is not None
    assert measured.view_embeddings.shape == (2, 128)
    assert process_face(face_engine, b"not an image" * 20, s.quality).reason == ErrorCode.UNREADABLE_IMAGE
    blank = np.full((200, 200, 3), 127, np.uint8)
    nothing = process_face(face_engine, blank, s.quality)
    assert nothing.reason == ErrorCode.NO_FACE and nothing.width == 200 and nothing.face is None
