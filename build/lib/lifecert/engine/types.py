"""Array-carrying types of the engine. All coordinates are in source-image pixels (x, y)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from lifecert.domain.quality import Quality

Embedding = NDArray[np.float32]  # shape (D,), L2-normalised
ImageBGR = NDArray[np.uint8]  # shape (H, W, 3), BGR colour order (OpenCV)


@dataclass(frozen=True, slots=True)
class Face:
    """One detected face.

    box: (x1, y1, x2, y2) float32; score: detector confidence (engine-specific scale);
    landmarks5: (5, 2) float32 in the ArcFace order — eye on the image's left, eye on
    the image's right, nose tip, mouth corner on the image's left, on the image's right;
    landmarks68: (68, 2) float32 in the iBUG 300-W order, or None when the engine has none.
    """

    box: NDArray[np.float32]
    score: float
    landmarks5: NDArray[np.float32]
    landmarks68: NDArray[np.float32] | None = None

    @property
    def width(self) -> float:
        return float(self.box[2] - self.box[0])

    @property
    def height(self) -> float:
        return float(self.box[3] - self.box[1])

    @property
    def area(self) -> float:
        return self.width * self.height


@dataclass(frozen=True, slots=True)
class AnalyzedFace:
    """A face with its quality and (when asked for) its embedding."""

    face: Face
    quality: Quality
    embedding: Embedding | None = None
