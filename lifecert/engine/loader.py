"""The engine factory: builds the configured :class:`~lifecert.engine.base.FaceEngine`.

Apart from the interface (``base.py``) so the engines import the interface and this module
imports the engines — imports point one way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lifecert.domain.errors import ErrorCode, ModelError
from lifecert.engine.base import FaceEngine

if TYPE_CHECKING:
    from lifecert.config import Settings


def load_engine(settings: Settings | None = None, name: str | None = None, *, cnn_fallback: bool = True) -> FaceEngine:
    """Build the configured engine. Raises :class:`ModelError` with a clear message when
    the engine's model files are missing (never a bare traceback). ``cnn_fallback``: dlib only,
    whether HOG misses are retried with the slow CNN detector (off for selfie frames)."""
    from lifecert.config import get_settings

    s = settings or get_settings()
    which = name or s.engine
    if "@" in which:  # "<second>@<primary>": the fusion's second engine on the primary's faces
        from lifecert.engine.second_on_primary import SecondOnPrimary

        second, primary = which.split("@", 1)
        return SecondOnPrimary(load_engine(s, primary, cnn_fallback=cnn_fallback), load_engine(s, second))
    if which == "dlib":
        from lifecert.engine.dlib_engine import DlibEngine

        return DlibEngine.from_settings(s, cnn_fallback=cnn_fallback)
    if which == "insightface":
        from lifecert.engine.insightface_engine import InsightFaceEngine

        return InsightFaceEngine.from_settings(s)
    if which == "edgeface":
        from lifecert.engine.edgeface_engine import EdgeFaceEngine

        return EdgeFaceEngine.from_settings(s)
    raise ModelError(f"unknown engine '{which}' (known: dlib, insightface, edgeface)", code=ErrorCode.CONFIG_ERROR)
