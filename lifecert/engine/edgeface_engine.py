"""The EdgeFace engine: YuNet finds faces and five landmarks, EdgeFace-XS embeds the
112x112 ArcFace-aligned crop (512-d, cosine).

* Detection: ``cv2.FaceDetectorYN`` on the ``yunet`` pack (BGR, any size). YuNet's five
  points (the subject's right eye, left eye, nose tip, right and left mouth corner) are the
  ArcFace order of :class:`Face` (the subject's right eye is on the image's left).
* 68-point landmarks (quality gates, liveness): dlib's shape predictor, run on a box derived
  from YuNet's (dlib's predictor was trained on HOG boxes, which sit lower and tighter than
  YuNet's; :data:`YUNET_TO_HOG` maps one to the other, measured on LFW).
* Recognition: the ``edgeface`` pack's ONNX loaded as insightface's ``ArcFaceONNX`` with an
  injected ONNX Runtime session (explicit thread counts); mean/std and the role of each file
  come from the manifest, never from tensor shapes or node names.

Shared read-only after construction: YuNet keeps its input size on the object, so each
thread gets its own detector; the dlib shape predictor is serialised by a lock.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
from numpy.typing import NDArray

from lifecert.domain.errors import ErrorCode, ModelError
from lifecert.engine import packs
from lifecert.engine.arcface import ARCFACE_DST, Recogniser, make_session, norm_crop, similarity_transform
from lifecert.engine.base import FaceEngine, resize_for_detection
from lifecert.engine.manifest import ModelInfo, load_manifest, model_info
from lifecert.engine.types import Face, ImageBGR
from lifecert.engine.views import View

if TYPE_CHECKING:
    from lifecert.config import Settings

ENGINE = "edgeface"
ROLE_RECOGNITION = "recognition"
ROLE_DETECTION = "detection"

SCORE_THRESHOLD = 0.6  # YuNet's default confidence cut (opencv_zoo demo)
NMS_THRESHOLD = 0.3
TOP_K = 50

# dlib-HOG-like box from a YuNet box (x, y, w, h): centre shift as a fraction of YuNet's
# width/height and a side scale. Fitted on LFW faces found by both detectors (see
# benchmarks/README.md, "YuNet vs HOG").
YUNET_TO_HOG = (0.0, 0.063, 0.84)


class EdgeFaceEngine(FaceEngine):
    """YuNet + EdgeFace-XS (+ dlib 68-point landmarks). Images are (H, W, 3) uint8 BGR."""

    def __init__(
        self,
        info: ModelInfo,
        recognition: Path,
        detection: Path,
        *,
        threads: int = 1,
        detect_max_side: int = 640,
        input_mean: float = 127.5,
        input_std: float = 127.5,
        landmarks68: bool = True,
    ) -> None:
        super().__init__(detect_max_side)
        from insightface.model_zoo import ArcFaceONNX

        self.info = info
        self.detection_path = Path(detection)
        self._local = threading.local()
        try:
            self._rec: Any = ArcFaceONNX(model_file=str(recognition), session=make_session(recognition, threads))
            self._yunet()  # fail at load, not at the first request
        except Exception as exc:  # onnxruntime / OpenCV raise their own types for corrupt files
            raise ModelError(
                f"{recognition.name} / {self.detection_path.name} cannot be loaded ({exc.__class__.__name__}); "
                f"reinstall with `lifecert models install edgeface --from DIR` / `... yunet --from DIR`",
                code=ErrorCode.MODEL_MISSING,
            ) from exc
        self._rec.input_mean = input_mean
        self._rec.input_std = input_std
        shape = self._rec.input_shape
        if tuple(shape[2:4]) != (info.input_size[1], info.input_size[0]):
            raise ModelError(f"{recognition.name} takes {shape[3]}x{shape[2]} input; the manifest says "
                             f"{info.input_size[0]}x{info.input_size[1]}", code=ErrorCode.MODEL_MISSING)
        self._recogniser = Recogniser(self._rec, recognition.name, info.embedding_size)
        self._sp68: Any = None
        self._lock = threading.Lock()
        if landmarks68:
            import dlib
            import face_recognition_models as frm

            self._dlib: Any = dlib
            self._sp68 = dlib.shape_predictor(frm.pose_predictor_model_location())

    @classmethod
    def from_settings(cls, s: Settings, *, verify: bool = True, warmup: bool = True) -> EdgeFaceEngine:
        """Load the packs the manifest's ``[engines.edgeface]`` names (``pack``, ``detector_pack``)."""
        raw = load_manifest(s.manifest_path).get("engines", {}).get(ENGINE, {})
        rec_pack = packs.require(s, str(raw.get("pack", "edgeface")), verify=verify)
        det_pack = packs.require(s, str(raw.get("detector_pack", "yunet")), verify=verify)
        rec = rec_pack.spec.file(ROLE_RECOGNITION)
        engine = cls(
            model_info(ENGINE, s.manifest_path),
            rec_pack.path(ROLE_RECOGNITION),
            det_pack.path(ROLE_DETECTION),
            threads=s.inference_threads,
            detect_max_side=s.images.detect_max_side,
            input_mean=rec.input_mean if rec.input_mean is not None else 127.5,
            input_std=rec.input_std if rec.input_std is not None else 127.5,
        )
        if warmup:
            engine.warmup()
        return engine

    def warmup(self) -> None:
        self.detect(np.zeros((240, 320, 3), dtype=np.uint8))
        w, h = self.info.input_size
        self.embed_aligned([np.zeros((h, w, 3), dtype=np.uint8)])

    # -- detection ------------------------------------------------------------------------
    def _yunet(self) -> Any:
        det = getattr(self._local, "det", None)
        if det is None:
            det = cv2.FaceDetectorYN.create(str(self.detection_path), "", (320, 320), SCORE_THRESHOLD,
                                            NMS_THRESHOLD, TOP_K)
            self._local.det = det
        return det

    def _run_yunet(self, image: ImageBGR) -> NDArray[np.float32]:
        det = self._yunet()
        h, w = image.shape[:2]
        det.setInputSize((w, h))
        _, rows = det.detect(image)
        return np.zeros((0, 15), dtype=np.float32) if rows is None else np.asarray(rows, dtype=np.float32)

    def detect(self, image: ImageBGR) -> list[Face]:
        """Faces sorted by box area, largest first, in source-image pixels."""
        scale = self.detection_scale(image)
        small = resize_for_detection(image, scale)
        rows = self._run_yunet(small)
        if rows.shape[0] == 0 and max(small.shape[:2]) * 2 <= self.detect_max_side * 1.25:
            # Small image: retry 2x upsampled (YuNet's smallest anchors are ~10 px).
            scale *= 2.0
            rows = self._run_yunet(resize_for_detection(image, scale))
        faces = []
        for r in rows:
            x, y, bw, bh = (float(v) / scale for v in r[:4])
            lm5 = (r[4:14].reshape(5, 2) / scale).astype(np.float32)
            box = np.array([x, y, x + bw, y + bh], dtype=np.float32)
            faces.append(Face(box=box, score=float(r[14]), landmarks5=np.ascontiguousarray(lm5)))
        faces.sort(key=lambda f: f.area, reverse=True)
        if self._sp68 is None:
            return faces
        return [Face(f.box, f.score, f.landmarks5, self._landmarks68(image, f)) for f in faces]

    def _landmarks68(self, image: ImageBGR, face: Face) -> NDArray[np.float32]:
        """dlib's 68 points on the HOG-like box derived from the YuNet box."""
        x1, y1, x2, y2 = (float(v) for v in face.box)
        w, h = x2 - x1, y2 - y1
        fx, fy, k = YUNET_TO_HOG
        cx, cy = (x1 + x2) / 2 + fx * w, (y1 + y2) / 2 + fy * h
        half = k * max(w, h) / 2
        rect = self._dlib.rectangle(round(cx - half), round(cy - half), round(cx + half), round(cy + half))
        rgb = np.ascontiguousarray(image[:, :, ::-1])
        with self._lock:
            shape = self._sp68(rgb, rect)
        return np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float32)

    # -- alignment and embedding ----------------------------------------------------------------
    def align(self, image: ImageBGR, face: Face) -> ImageBGR:
        """The 112x112 ArcFace crop (insightface ``norm_crop``), BGR uint8."""
        return norm_crop(image, face, self.info.input_size)

    def align_views(self, image: ImageBGR, face: Face, views: Sequence[View]) -> list[ImageBGR]:
        """Each view re-cut from the full image: the view's window change composed with the
        alignment transform, so shifted or rotated windows hold real pixels, not border fill."""
        w, h = self.info.input_size
        m = np.vstack([similarity_transform(face.landmarks5, ARCFACE_DST * (w / 112.0)), [0.0, 0.0, 1.0]])
        out = []
        for v in views:
            if v.is_plain:
                full = m
            else:
                vm = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), v.rotate, 1.0 / v.scale)
                vm[0, 2] -= v.dx * w / v.scale
                vm[1, 2] -= v.dy * h / v.scale
                full = np.vstack([vm, [0.0, 0.0, 1.0]]) @ m
            crop = cv2.warpAffine(image, full[:2], (w, h), flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0))
            if v.mirror:
                crop = crop[:, ::-1]
            out.append(np.ascontiguousarray(crop, dtype=np.uint8))
        return out

    def embed_aligned(self, crops: list[ImageBGR]) -> NDArray[np.float32]:
        """(N, 512) L2-normalised float32 embeddings of aligned BGR crops (:class:`Recogniser`)."""
        return self._recogniser.embed(crops)
