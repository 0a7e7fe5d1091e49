"""Face detection, alignment, embedding, landmarks, quality and liveness."""

from lifecert.engine.base import FaceEngine, ModelInfo
from lifecert.engine.loader import load_engine
from lifecert.engine.types import AnalyzedFace, Face

__all__ = ["AnalyzedFace", "Face", "FaceEngine", "ModelInfo", "load_engine"]
