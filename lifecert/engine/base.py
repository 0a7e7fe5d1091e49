"""The engine interface shared by every face engine, and the factory that picks one."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

import cv2
import numpy as np
from numpy.typing import NDArray

from lifecert.domain.errors import ErrorCode, ModelError
from lifecert.domain.quality import Quality
from lifecert.engine import geometry
from lifecert.engine.manifest import ModelInfo
from lifecert.engine.types import AnalyzedFace, Embedding, Face, ImageBGR

if TYPE_CHECKING:
    from lifecert.config import Settings

# A second face this large relative to the largest one makes the photo ambiguous.
SECOND_FACE_RATIO = 0.35


class FaceEngine(ABC):
    """Detect → landmarks → align → embed, plus per-face quality.

    Implementations hold loaded models and are safe to share read-only across
    threads for inference calls (no per-call state is stored on the object).
    Images are (H, W, 3) uint8 BGR.
    """

    info: ModelInfo

    def __init__(self, detect_max_side: int = 640) -> None:
        self.detect_max_side = detect_max_side

    # -- implemented by engines ------------------------------------------------
    @abstractmethod
    def detect(self, image: ImageBGR) -> list[Face]:
        """Faces sorted by box area, largest first."""

    @abstractmethod
    def align(self, image: ImageBGR, face: Face) -> ImageBGR:
        """The crop the recogniser embeds: ``info.input_size`` BGR uint8."""

    @abstractmethod
    def embed_aligned(self, crops: list[ImageBGR]) -> NDArray[np.float32]:
        """(N, D) L2-normalised float32 embeddings of aligned crops."""

    # -- shared ----------------------------------------------------------------
    def detection_scale(self, image: ImageBGR) -> float:
        """Scale applied before detection: large photos shrink to ``detect_max_side``; smaller
        ones are searched as they are (engines retry upsampled only when nothing is found —
        upsampling every small photo cost 4x the detection time and found no more faces on LFW)."""
        side = max(image.shape[:2])
        return float(min(1.0, self.detect_max_side / side))

    def embed(self, image: ImageBGR, face: Face, *, flip: bool = False) -> Embedding:
        crop = self.align(image, face)
        return self.embed_crops([crop], flip=flip)[0]

    def embed_crops(self, crops: list[ImageBGR], *, flip: bool = False) -> NDArray[np.float32]:
        """Embeddings of aligned crops; ``flip`` averages with the mirrored crop (2x cost)."""
        if not crops:
            return np.zeros((0, self.info.embedding_size), dtype=np.float32)
        if not flip:
            return self.embed_aligned(crops)
        both = self.embed_aligned(crops + [np.ascontiguousarray(c[:, ::-1]) for c in crops])
        n = len(crops)
        return l2_normalize(both[:n] + both[n:])

    def quality(self, image: ImageBGR, face: Face, aligned: ImageBGR, num_faces: int = 1) -> Quality:
        sharp, bright, contrast = geometry.crop_stats(aligned)
        lm = face.landmarks68
        if lm is not None:
            yaw, pitch, roll = geometry.head_pose(lm, image.shape[:2])
            ear = geometry.eye_aspect_ratio(lm)
            mar = geometry.mouth_aspect_ratio(lm)
        else:
            p = face.landmarks5
            roll = float(np.degrees(np.arctan2(p[1, 1] - p[0, 1], p[1, 0] - p[0, 0])))
            eye_mid = (p[0] + p[1]) / 2
            inter = max(float(np.linalg.norm(p[1] - p[0])), 1e-6)
            yaw = float((p[2, 0] - eye_mid[0]) / inter * 90.0)
            pitch, ear, mar = 0.0, 0.3, 0.0
        return Quality(
            face_px=face.width,
            sharpness=sharp,
            brightness=bright,
            contrast=contrast,
            yaw=yaw,
            pitch=pitch,
            roll=roll,
            eye_aspect_ratio=ear,
            mouth_aspect_ratio=mar,
            num_faces=num_faces,
        )

    def analyze(
        self, image: ImageBGR, *, embed: bool = True, flip: bool = False, max_faces: int | None = 1
    ) -> list[AnalyzedFace]:
        """Detect, measure and (optionally) embed the largest ``max_faces`` faces."""
        faces = self.detect(image)
        chosen = faces if max_faces is None else faces[:max_faces]
        crops = [self.align(image, f) for f in chosen]
        embs = self.embed_crops(crops, flip=flip) if embed else None
        out = []
        for i, (f, c) in enumerate(zip(chosen, crops, strict=True)):
            q = self.quality(image, f, c, num_faces=count_significant(faces))
            out.append(AnalyzedFace(face=f, quality=q, embedding=None if embs is None else embs[i]))
        return out


def count_significant(faces: list[Face]) -> int:
    """Faces at least SECOND_FACE_RATIO as wide as the largest (background specks don't count)."""
    if not faces:
        return 0
    w0 = faces[0].width
    return sum(1 for f in faces if f.width >= SECOND_FACE_RATIO * w0)


def l2_normalize(x: NDArray[np.floating]) -> NDArray[np.float32]:
    x = np.asarray(x, dtype=np.float32)
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    return (x / np.maximum(n, 1e-12)).astype(np.float32)


def resize_for_detection(image: ImageBGR, scale: float) -> ImageBGR:
    if abs(scale - 1.0) < 1e-3:
        return image
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    h, w = image.shape[:2]
    out = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=interp)
    return np.asarray(out, dtype=np.uint8)


def load_engine(settings: Settings | None = None, name: str | None = None) -> FaceEngine:
    """Build the configured engine. Raises :class:`ModelError` with a clear message when
    the engine's model files are missing (never a bare traceback)."""
    from lifecert.config import get_settings

    s = settings or get_settings()
    which = name or s.engine
    if which == "dlib":
        from lifecert.engine.dlib_engine import DlibEngine

        return DlibEngine.from_settings(s)
    if which == "insightface":
        from lifecert.engine.insightface_engine import InsightFaceEngine

        return InsightFaceEngine.from_settings(s)
    raise ModelError(f"unknown engine '{which}' (known: dlib, insightface)", code=ErrorCode.CONFIG_ERROR)
