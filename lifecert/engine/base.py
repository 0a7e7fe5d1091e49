"""The engine interface shared by every face engine, and the factory that picks one."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING

import cv2
import numpy as np
from numpy.typing import NDArray

from lifecert.domain.quality import Quality
from lifecert.engine import geometry
from lifecert.engine.manifest import ModelInfo
from lifecert.engine.types import AnalyzedFace, Embedding, Face, ImageBGR
from lifecert.engine.views import View, profile_views, warp_crop

if TYPE_CHECKING:
    pass

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

    def landmarks_at(self, image: ImageBGR, box: NDArray[np.float32]) -> Face | None:
        """The face fitted inside ``box`` ((x1, y1, x2, y2) pixels of ``image``) WITHOUT running the
        detector: landmark tracking between detections in a frame sequence. None: this engine cannot
        (callers detect instead). The fit always returns a shape, face or not: callers check it."""
        return None

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

    def align_views(self, image: ImageBGR, face: Face, views: Sequence[View]) -> list[ImageBGR]:
        """One crop per view (see :mod:`lifecert.engine.views`). This default warps the aligned
        crop; engines that can re-cut the window from the full image override it."""
        base = self.align(image, face)
        return [warp_crop(base, v) for v in views]

    def embed_faces(self, items: Sequence[tuple[ImageBGR, Face]], profile: str = "single") -> NDArray[np.float32]:
        """(N, D) embeddings of faces under an embedding profile: the L2-normalised mean of the
        profile's views (one recogniser pass per view, batched in a single call)."""
        views = profile_views(profile)
        if not items:
            return np.zeros((0, self.info.embedding_size), dtype=np.float32)
        crops = [c for image, face in items for c in self.align_views(image, face, views)]
        return fuse_views(self.embed_aligned(crops), len(views))

    def embed(self, image: ImageBGR, face: Face, *, profile: str = "single") -> Embedding:
        return self.embed_faces([(image, face)], profile)[0]

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
        self, image: ImageBGR, *, embed: bool = True, profile: str = "single", max_faces: int | None = 1
    ) -> list[AnalyzedFace]:
        """Detect, measure and (optionally) embed the largest ``max_faces`` faces."""
        faces = self.detect(image)
        chosen = faces if max_faces is None else faces[:max_faces]
        views = profile_views(profile if embed else "single")
        per_face = [self.align_views(image, f, views) for f in chosen]  # [0]: the plain crop
        crops = [cs[0] for cs in per_face]
        embs = fuse_views(self.embed_aligned([c for cs in per_face for c in cs]), len(views)) if embed else None
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


def fuse_views(per_view: NDArray[np.floating], n_views: int) -> NDArray[np.float32]:
    """(N·V, D) L2-normalised per-view embeddings, face-major → (N, D) normalised means."""
    e = np.asarray(per_view, dtype=np.float32)
    if n_views == 1:
        return l2_normalize(e)
    return l2_normalize(e.reshape(-1, n_views, e.shape[-1]).mean(axis=1))


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
