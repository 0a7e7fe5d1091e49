"""The fusion's second engine on the primary engine's faces, as one :class:`FaceEngine` (evaluation
runs it as ``"<second>@<primary>"``, e.g. ``edgeface@dlib``; :func:`lifecert.engine.loader.load_engine`
builds it)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from lifecert.domain.quality import Quality
from lifecert.engine.base import FaceEngine
from lifecert.engine.types import Face, ImageBGR
from lifecert.engine.views import View


class SecondOnPrimary(FaceEngine):
    """The second engine's embeddings of the faces the primary engine finds, gated as the primary
    gates them: detection, landmarks and quality are the primary's (quality on the primary's own
    aligned crop), alignment views and embeddings the second's. This is what enrollment and
    verification compute for the fusion (no second detector); the evaluation harness runs it under
    the name ``"<second>@<primary>"`` so the fusion is calibrated on exactly those embeddings."""

    def __init__(self, primary: FaceEngine, second: FaceEngine) -> None:
        super().__init__(primary.detect_max_side)
        self.primary, self.second = primary, second
        self.info = second.info

    def detect(self, image: ImageBGR) -> list[Face]:
        return self.primary.detect(image)

    def detect_verbose(self, image: ImageBGR) -> tuple[list[Face], str | None]:
        verbose = getattr(self.primary, "detect_verbose", None)
        return verbose(image) if verbose is not None else (self.primary.detect(image), None)

    def align(self, image: ImageBGR, face: Face) -> ImageBGR:
        return self.second.align(image, face)

    def align_views(self, image: ImageBGR, face: Face, views: Sequence[View]) -> list[ImageBGR]:
        return self.second.align_views(image, face, views)

    def embed_aligned(self, crops: list[ImageBGR]) -> NDArray[np.float32]:
        return self.second.embed_aligned(crops)

    def quality(self, image: ImageBGR, face: Face, aligned: ImageBGR, num_faces: int = 1) -> Quality:
        return self.primary.quality(image, face, self.primary.align(image, face), num_faces)
