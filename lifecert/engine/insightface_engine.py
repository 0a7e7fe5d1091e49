"""The high-accuracy engine: an insightface model pack (``buffalo_l`` by default).

SCRFD detector (box, score, 5 keypoints in the ArcFace order), optional 1k3d68
68-point landmarks, ArcFace recogniser on 112x112 crops aligned with the standard
ArcFace similarity transform, 512-d L2-normalised float32 embeddings.

Only inference lives here. Which file of a pack plays which role, where packs are
installed and how they are verified is :mod:`lifecert.engine.packs` (``[packs.<name>]``
in ``models/manifest.toml``). The engine creates the ONNX Runtime sessions itself (CPU
provider, explicit thread counts) and injects them into insightface's ``model_zoo`` wrappers.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from lifecert.domain.errors import ErrorCode, ModelError
from lifecert.engine import packs
from lifecert.engine.arcface import ARCFACE_DST, Recogniser, make_session, norm_crop, similarity_transform
from lifecert.engine.base import SECOND_FACE_RATIO, FaceEngine
from lifecert.engine.manifest import ModelInfo, model_info
from lifecert.engine.packs import PACK_RECORD, PackSpec, install_hint_for, read_pack_record
from lifecert.engine.types import Face, ImageBGR

if TYPE_CHECKING:
    from lifecert.config import Settings

__all__ = [
    "ARCFACE_DST", "PACK_RECORD", "InsightFaceEngine", "make_session", "pack_model_info", "read_pack_record",
    "similarity_transform",
]

ENGINE = "insightface"

ROLE_DETECTION = "detection"
ROLE_RECOGNITION = "recognition"
ROLE_LANDMARK68 = "landmark_3d_68"
REQUIRED_ROLES = (ROLE_DETECTION, ROLE_RECOGNITION)

DET_THRESHOLD = 0.5
MAX_LANDMARK_FACES = 8  # 68-point landmarks only for the largest significant faces


class InsightFaceEngine(FaceEngine):
    """SCRFD + ArcFace (+ 1k3d68) from an installed pack. Images are (H, W, 3) uint8 BGR.

    Shared read-only after construction: every call keeps its state on the stack
    (ONNX Runtime sessions are safe for concurrent ``run``).
    """

    def __init__(
        self,
        info: ModelInfo,
        spec: PackSpec,
        directory: Path,
        *,
        threads: int = 2,
        detect_max_side: int = 640,
        det_threshold: float = DET_THRESHOLD,
    ) -> None:
        super().__init__(detect_max_side)
        self.info = info
        self.spec = spec
        self.directory = Path(directory)
        self.det_threshold = det_threshold
        # SCRFD's anchors need sides divisible by its largest stride (32).
        side = max(32, (int(detect_max_side) // 32) * 32)
        self.det_size = (side, side)
        self._det = self._load(ROLE_DETECTION, threads)
        self._rec = self._load(ROLE_RECOGNITION, threads)
        self._lmk: Any = self._load(ROLE_LANDMARK68, threads) if self._present(ROLE_LANDMARK68) else None
        if not getattr(self._det, "use_kps", False):
            raise ModelError(
                f"detector of pack '{spec.name}' has no keypoint outputs; ArcFace alignment needs 5 points",
                code=ErrorCode.MODEL_MISSING,
            )
        self._recogniser = Recogniser(
            self._rec, f"recognition model of pack '{spec.name}'", info.embedding_size
        )

    @classmethod
    def from_settings(cls, s: Settings, *, verify: bool = True, warmup: bool = True) -> InsightFaceEngine:
        """Load ``s.insightface_pack`` from ``s.resolved_models_dir`` (re-hashing its files
        unless ``verify`` is False) and warm it up."""
        pack = packs.require(s, s.insightface_pack, verify=verify)
        check_roles(pack.spec)
        engine = cls(
            pack_model_info(pack.spec, s.manifest_path),
            pack.spec,
            pack.directory,
            threads=s.inference_threads,
            detect_max_side=s.images.detect_max_side,
        )
        if warmup:
            engine.warmup()
        return engine

    # -- loading -------------------------------------------------------------------------
    def _present(self, role: str) -> bool:
        f = self.spec.by_role(role)
        return f is not None and (self.directory / f.name).is_file()

    def _load(self, role: str, threads: int) -> Any:
        from insightface.model_zoo import ArcFaceONNX, Landmark
        from insightface.model_zoo.scrfd import SCRFD

        f = self.spec.by_role(role)
        if f is None:  # pragma: no cover - pack_spec guarantees detection and recognition
            raise ModelError(f"pack '{self.spec.name}' has no {role} file", code=ErrorCode.CONFIG_ERROR)
        path = self.directory / f.name
        if not path.is_file():
            raise ModelError(
                f"{f.name} ({role}) is missing from {self.directory}; {install_hint_for(self.spec)}",
                code=ErrorCode.MODEL_MISSING,
            )
        try:
            session = make_session(path, threads)
            if role == ROLE_DETECTION:
                # One dynamic session for every input size: no hidden per-size sessions.
                model: Any = SCRFD(model_file=str(path), session=session, static_shape_sessions=False)
                model.det_thresh = self.det_threshold
            elif role == ROLE_RECOGNITION:
                model = ArcFaceONNX(model_file=str(path), session=session)
            else:
                model = Landmark(model_file=str(path), session=session)
        except ModelError:
            raise
        except Exception as exc:  # onnxruntime/onnx raise their own types for corrupt files
            raise ModelError(
                f"{f.name} ({role}) in {self.directory} cannot be loaded ({exc.__class__.__name__}); "
                f"{install_hint_for(self.spec)}",
                code=ErrorCode.MODEL_MISSING,
            ) from exc
        if f.input_mean is not None:
            model.input_mean = f.input_mean
        if f.input_std is not None:
            model.input_std = f.input_std
        fixed = tuple(model.input_shape[2:4][::-1]) if role != ROLE_DETECTION else ()
        if f.input_size != (0, 0) and all(isinstance(v, int) for v in fixed) and fixed != f.input_size:
            raise ModelError(
                f"{f.name} takes {fixed[0]}x{fixed[1]} input; the manifest says {f.input_size[0]}x{f.input_size[1]}",
                code=ErrorCode.MODEL_MISSING,
            )
        return model

    def warmup(self) -> None:
        """One pass through every model so the first request does not pay for allocation."""
        blank = np.zeros((self.det_size[1], self.det_size[0], 3), dtype=np.uint8)
        self._det.detect(blank, input_size=self.det_size, det_thresh=self.det_threshold)
        w, h = self.info.input_size
        self.embed_aligned([np.zeros((h, w, 3), dtype=np.uint8)])

    # -- inference -------------------------------------------------------------------------
    def detect(self, image: ImageBGR) -> list[Face]:
        """Faces sorted by box area, largest first. The detector letterboxes the image into
        ``det_size`` itself, so small photos are enlarged and large ones shrunk."""
        dets, kpss = self._det.detect(image, input_size=self.det_size, det_thresh=self.det_threshold)
        if dets.shape[0] == 0 or kpss is None:
            return []
        faces = [
            Face(
                box=np.ascontiguousarray(dets[i, :4], dtype=np.float32),
                score=float(dets[i, 4]),
                landmarks5=np.ascontiguousarray(kpss[i], dtype=np.float32).reshape(5, 2),
            )
            for i in range(dets.shape[0])
        ]
        faces.sort(key=lambda f: f.area, reverse=True)  # stable: equal areas keep score order
        if self._lmk is None:
            return faces
        w0 = faces[0].width
        return [
            replace(f, landmarks68=self._landmarks68(image, f))
            if i < MAX_LANDMARK_FACES and f.width >= SECOND_FACE_RATIO * w0
            else f
            for i, f in enumerate(faces)
        ]

    def _landmarks68(self, image: ImageBGR, face: Face) -> NDArray[np.float32]:
        from insightface.app.common import Face as InsightFace

        probe = InsightFace(bbox=face.box.astype(np.float64), kps=face.landmarks5)
        pred = np.asarray(self._lmk.get(image, probe))  # (68, 3): x, y in image pixels, z
        return np.ascontiguousarray(pred[-68:, :2], dtype=np.float32)

    def align(self, image: ImageBGR, face: Face) -> ImageBGR:
        """The ArcFace crop: ``info.input_size`` (112x112) BGR uint8, five points warped
        onto the ArcFace reference positions by a similarity transform."""
        return norm_crop(image, face, self.info.input_size)

    def embed_aligned(self, crops: list[ImageBGR]) -> NDArray[np.float32]:
        """(N, 512) L2-normalised float32 embeddings of aligned BGR crops (:class:`Recogniser`)."""
        return self._recogniser.embed(crops)

def check_roles(spec: PackSpec) -> None:
    """An insightface pack needs a required detection and recognition file and an embedding size."""
    for role in REQUIRED_ROLES:
        f = spec.by_role(role)
        if f is None or not f.required:
            raise ModelError(f"manifest pack '{spec.name}' names no required {role} file", code=ErrorCode.CONFIG_ERROR)
    if spec.embedding_size is None:
        raise ModelError(f"manifest pack '{spec.name}' has no embedding_size", code=ErrorCode.CONFIG_ERROR)


def pack_model_info(spec: PackSpec, manifest_path: Path | None = None) -> ModelInfo:
    """The embedding space of a pack. The engine's default pack uses the engine's
    calibrated thresholds; any other pack only its own (templates never mix packs)."""
    base = model_info(ENGINE, manifest_path)
    rec = spec.by_role(ROLE_RECOGNITION)
    size = rec.input_size if rec is not None and rec.input_size != (0, 0) else base.input_size
    dim = spec.embedding_size or base.embedding_size
    if spec.name == base.model:
        return replace(base, embedding_size=dim, input_size=size)
    return ModelInfo(
        engine=ENGINE,
        model=spec.name,
        version=spec.version,
        embedding_size=dim,
        input_size=size,
        thresholds=dict(spec.thresholds),
    )
