"""Passive presentation-attack detection (PAD) with the MiniFASNet pack, on full camera frames.

Two small networks from Silent-Face-Anti-Spoofing (Apache-2.0, converted to ONNX, see
``../shared/models/README.md``) look at the face WITH its surroundings: MiniFASNetV2 at a
2.7x context crop and MiniFASNetV1SE at a 4.0x crop. That context (a phone bezel, a paper
edge, screen glare) is what they were trained on, so they must see the full camera frame
and a detector box — never a tight face crop (a tight crop collapses both context crops
onto the face itself; benchmarks/README.md measures what that does).

Per model (facts from the upstream code, kept here as known-answer tests):

* crop: a box ``scale`` times the face box, ``scale = min((H-1)/h, (W-1)/w, s)``, centred on
  the face box centre; when it leaves the image it is SHIFTED back inside (not clipped);
  the end pixel is included; resized to 80x80 with bilinear interpolation;
* tensor: BGR, float32, raw 0-255 (no scaling, no mean/std), HWC -> CHW, batch first;
* output: logits over 3 classes; softmax; class 1 = real face (0 and 2 are spoof types).

Upstream sums both models' softmax vectors; our per-frame score is that sum / 2 for class 1:
P(real) in [0, 1]. A session's frames are fused by :func:`fuse_session` and compared with
the threshold that ``benchmarks/pad_eval.py`` calibrated into ``models/manifest.toml``
(``[packs.minifasnet.threshold]``). Which file is which network and its crop scale come
from the manifest, never from tensor shapes.

The face box: with ``face_box = "five_points"`` under ``[packs.minifasnet]`` the crops are built on a box
rebuilt from the face's five landmarks (:func:`five_point_box`), not on the detector's own box (absent or
``"detector"``: the detector's box, as before). Why: dlib's HOG detector is five detectors whose boxes put
the same face at different sizes and offsets, and the context crop follows them.

Dim rooms: when the manifest sets ``exposure_target`` under ``[packs.minifasnet]``, every frame
is first brightened and denoised by :class:`ExposureNorm` (absent = frames scored as they come,
so an older manifest keeps the old behaviour). ``benchmarks/pad_exposure.py`` measures why.

Sessions are injected (:class:`PadNet` takes a ready onnxruntime session), so tests and a
CPU/GPU choice swap the session, not the code; :func:`load_pad` builds them with explicit
thread counts. ``PadModel`` holds no per-call state and may be shared across threads.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import cv2
import numpy as np
from numpy.typing import NDArray

from lifecert.domain.errors import ErrorCode, ModelError
from lifecert.engine.manifest import load_manifest, sha256_file

if TYPE_CHECKING:
    from lifecert.config import Settings

log = logging.getLogger(__name__)

PACK = "minifasnet"
REAL_CLASS = 1
BoxXYWH = tuple[float, float, float, float]


class OrtSession(Protocol):
    """The part of ``onnxruntime.InferenceSession`` we use."""

    def run(self, output_names: Any, input_feed: dict[str, Any]) -> list[Any]: ...

    def get_inputs(self) -> Any: ...


# -- crop maths (pure; known-answer tested) ----------------------------------------------------


def context_box(src_w: int, src_h: int, box: BoxXYWH, scale: float) -> tuple[int, int, int, int]:
    """The context crop of upstream's ``CropImage._get_new_box``: (x1, y1, x2, y2) INCLUSIVE pixels.

    ``box`` is the detector's face box (x, y, w, h) in image pixels; ``scale`` the network's
    context factor (2.7, 4.0). The factor shrinks so the crop fits the image, and a crop that
    leaves the image is shifted back inside, keeping its size.
    """
    x, y, bw, bh = (float(v) for v in box)
    if bw <= 0 or bh <= 0:
        raise ValueError(f"face box must have a positive size, got w={bw} h={bh}")
    s = min((src_h - 1) / bh, (src_w - 1) / bw, scale)
    new_w, new_h = bw * s, bh * s
    cx, cy = x + bw / 2, y + bh / 2
    x1, y1, x2, y2 = cx - new_w / 2, cy - new_h / 2, cx + new_w / 2, cy + new_h / 2
    if x1 < 0:
        x2 -= x1
        x1 = 0
    if y1 < 0:
        y2 -= y1
        y1 = 0
    if x2 > src_w - 1:
        x1 -= x2 - src_w + 1
        x2 = src_w - 1
    if y2 > src_h - 1:
        y1 -= y2 - src_h + 1
        y2 = src_h - 1
    return int(x1), int(y1), int(x2), int(y2)


def crop_context(
    frame_bgr: NDArray[np.uint8], box: BoxXYWH, scale: float, size: tuple[int, int] = (80, 80)
) -> NDArray[np.uint8]:
    """The network input crop: (size[1], size[0], 3) uint8 BGR; ``size`` is (width, height)."""
    h, w = frame_bgr.shape[:2]
    x1, y1, x2, y2 = context_box(w, h, box, scale)
    patch = frame_bgr[max(y1, 0) : y2 + 1, max(x1, 0) : x2 + 1]
    return np.asarray(cv2.resize(patch, size, interpolation=cv2.INTER_LINEAR), dtype=np.uint8)


def to_tensor(crops: Sequence[NDArray[np.uint8]]) -> NDArray[np.float32]:
    """(N, 3, H, W) float32 raw 0-255 BGR from (H, W, 3) uint8 BGR crops."""
    return np.ascontiguousarray(np.stack([c.transpose(2, 0, 1) for c in crops]).astype(np.float32))


def softmax(logits: NDArray[np.floating]) -> NDArray[np.float64]:
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return np.asarray(e / e.sum(axis=-1, keepdims=True), dtype=np.float64)


def box_xyxy_to_xywh(box: Sequence[float] | NDArray[np.floating]) -> BoxXYWH:
    x1, y1, x2, y2 = (float(v) for v in box[:4])
    return (x1, y1, x2 - x1, y2 - y1)


# -- the face box the context crops are built on ---------------------------------------------------

FACE_BOX_RULES = ("detector", "five_points")


@dataclass(frozen=True, slots=True)
class FivePointBox:
    """A square face box from five landmarks, in units of the face's scale ``s``.

    ``s`` = max(eye-to-mouth distance, ``mouth_per_eyes`` x the distance between the eyes): the eye-mouth
    distance shrinks in a nod and the eye distance in a turn, so the larger of the two keeps the box's size
    through both. The box is ``side`` x s wide and high, its centre ``below_eyes`` x s from the midpoint of
    the eyes towards the midpoint of the mouth corners.

    Values (benchmarks/pad_box.py, README ``pad_box``): dlib's FRONTAL detector's box against its own five
    landmarks on 185 real photos and frames of ../shared/faces, medians: side 2.22 s, centre 0.44 s below
    the eyes; eye-mouth / eye distance 1.08. The frontal convention is kept because the threshold was
    calibrated on it; the "looking left/right" detectors' boxes are ~5 % larger and centred ~0.06 s higher,
    and in pad_eval's genuine frames P(real) is lower (10th percentile 0.50-0.61 against 0.68-0.82) where the
    detector's box differs from this one.
    """

    side: float = 2.22
    below_eyes: float = 0.44
    mouth_per_eyes: float = 1.08

    def box(self, five: NDArray[np.floating]) -> BoxXYWH:
        """(x, y, w, h) from (5, 2) points in the ArcFace order (eyes, nose tip, mouth corners)."""
        p = np.asarray(five, dtype=np.float64).reshape(5, 2)
        eyes, mouth = (p[0] + p[1]) / 2.0, (p[3] + p[4]) / 2.0
        down = mouth - eyes
        em = float(np.hypot(*down))
        iod = float(np.hypot(*(p[1] - p[0])))
        s = max(em, self.mouth_per_eyes * iod)
        if not math.isfinite(s) or s <= 0.0:
            raise ValueError("five landmarks do not span a face")
        unit = down / em if em > 0.0 else np.array([0.0, 1.0])
        cx, cy = eyes + self.below_eyes * s * unit
        side = self.side * s
        return (float(cx - side / 2.0), float(cy - side / 2.0), float(side), float(side))


FIVE_POINT_BOX = FivePointBox()


def five_point_box(five: NDArray[np.floating]) -> BoxXYWH:
    """The crop's face box from five landmarks (:class:`FivePointBox` with the measured values)."""
    return FIVE_POINT_BOX.box(five)


# -- exposure normalisation (dim rooms) -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ExposureNorm:
    """Undo a dim room before the networks see the frame (manifest ``exposure_*`` keys of the pack).

    MiniFASNet's P(real) for a genuine face falls in dim frames (benchmarks/pad_exposure.py: real
    faces through ``attacks.Camera`` at exposure gain 0.4-0.6). What a phone's own auto-exposure
    and noise reduction would have done is redone here, once per frame, before both context crops:

    * gain: the median luma (ITU-R 601, 0-255) of the central part of the face box is brought up
      to ``target`` by one gain on the whole frame, never below 1 (a frame whose face is already
      at or above the target is left exactly as it is) and never above ``max_gain``;
    * denoise: the gain amplified the sensor noise by the same factor, and the networks read
      strong pixel noise as a spoof texture; a Gaussian blur of ``denoise_sigma`` pixels (in the
      frame's own pixels) is applied to every frame that was brightened (0 = none).

    Measured (benchmarks/README.md ``pad_exposure``): most of the gain in genuine P(real) comes
    from the denoise step; the brightening alone helps less.
    """

    target: float
    max_gain: float = 2.5
    denoise_sigma: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 < self.target <= 255.0 or not self.max_gain >= 1.0 or not self.denoise_sigma >= 0.0:
            raise ValueError(f"exposure correction needs 0 < target <= 255, max_gain >= 1, denoise_sigma >= 0; "
                             f"got {self.target}, {self.max_gain}, {self.denoise_sigma}")

    def gain(self, frame_bgr: NDArray[np.uint8], box: BoxXYWH) -> float:
        """The gain (1 <= g <= max_gain) for one frame and its face box (x, y, w, h) in pixels."""
        luma = face_luma(frame_bgr, box)
        if math.isnan(luma):
            return 1.0  # no face pixels to measure (box outside the frame): leave the frame alone
        if luma <= 0.0:
            return self.max_gain
        return float(min(self.max_gain, max(1.0, self.target / luma)))

    def apply(self, frame_bgr: NDArray[np.uint8], box: BoxXYWH) -> NDArray[np.uint8]:
        """The corrected frame (uint8 BGR, same shape); the input array itself when the gain is 1."""
        g = self.gain(frame_bgr, box)
        if g <= 1.0:
            return frame_bgr
        out = apply_gain(frame_bgr, g)
        if self.denoise_sigma > 0.0:
            out = np.asarray(cv2.GaussianBlur(out, (0, 0), self.denoise_sigma), dtype=np.uint8)
        return out


def face_luma(frame_bgr: NDArray[np.uint8], box: BoxXYWH) -> float:
    """Median luma (0-255) of the central 60 % x 60 % of the face box (skin, not hair or background)."""
    h, w = frame_bgr.shape[:2]
    x, y, bw, bh = box
    x1, x2 = int(max(0, x + 0.2 * bw)), int(min(w, x + 0.8 * bw))
    y1, y2 = int(max(0, y + 0.2 * bh)), int(min(h, y + 0.8 * bh))
    if x2 <= x1 or y2 <= y1:
        return float("nan")
    roi = cv2.cvtColor(np.ascontiguousarray(frame_bgr[y1:y2, x1:x2]), cv2.COLOR_BGR2GRAY)
    return float(np.median(roi))


def apply_gain(frame_bgr: NDArray[np.uint8], gain: float) -> NDArray[np.uint8]:
    """``frame * gain`` rounded and clipped to 0-255 through a 256-entry table (uint8 BGR in and out)."""
    if gain == 1.0:
        return frame_bgr
    lut = np.clip(np.round(np.arange(256, dtype=np.float64) * gain), 0, 255).astype(np.uint8)
    return np.asarray(cv2.LUT(frame_bgr, lut), dtype=np.uint8)


# -- session fusion -----------------------------------------------------------------------------


def fuse_session(scores: Sequence[float], method: str = "mean") -> float:
    """One session score from per-frame P(real) values (NaN = no face in that frame, ignored).

    ``mean``: arithmetic mean; ``median``; ``p25``: the 25th percentile (a few genuine-looking
    frames of a replay do not lift it). Returns NaN when no frame was scored.
    """
    v = np.asarray([s for s in scores if s is not None and not math.isnan(s)], dtype=np.float64)
    if v.size == 0:
        return float("nan")
    if method == "mean":
        return float(v.mean())
    if method == "median":
        return float(np.median(v))
    if method == "p25":
        return float(np.percentile(v, 25))
    raise ValueError(f"unknown fusion method {method!r} (mean, median, p25)")


# -- manifest -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PadFileSpec:
    file: str
    role: str  # "pad_v2" | "pad_v1se"
    crop_scale: float
    input_size: tuple[int, int]  # (width, height)
    sha256: str


@dataclass(frozen=True, slots=True)
class PadThreshold:
    """Sessions whose fused P(real) is BELOW ``value`` are presentation attacks."""

    value: float
    fusion: str = "mean"
    apcer: float | None = None
    bpcer: float | None = None
    dataset: str | None = None
    date: str | None = None
    # upper end of the caseworker spot-check grey band [value, audit_below) (lifecert/domain/spotcheck.py):
    # the pack's `audit_below` key, calibrated by benchmarks/audit_band.py; None: no grey band
    audit_below: float | None = None


@dataclass(frozen=True, slots=True)
class PadSpec:
    version: str
    files: tuple[PadFileSpec, ...]
    threshold: PadThreshold
    extra: dict[str, Any] = field(default_factory=dict)
    exposure: ExposureNorm | None = None  # None: frames are scored as they come (no exposure_target)
    face_box: str = "detector"  # or "five_points" (see five_point_box)


def _audit_below(pack: dict[str, Any], threshold: dict[str, Any]) -> float | None:
    """The pack's ``audit_below`` (in ``[packs.minifasnet]`` or its ``threshold`` table; not both), None when
    absent. Whether it lies above the threshold is the spot-check policy's check (lifecert.domain.spotcheck)."""
    found = [t["audit_below"] for t in (pack, threshold) if "audit_below" in t]
    if len(found) > 1:
        raise ValueError("audit_below is given twice (the pack's table and its threshold table)")
    if not found:
        return None
    value = found[0]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"audit_below must be a number, not {value!r}")
    return float(value)


def pad_spec(manifest_path: Path | None = None) -> PadSpec:
    """``[packs.minifasnet]`` of the manifest: files, roles, crop scales, pinned sha256, threshold."""
    data = load_manifest(manifest_path)
    try:
        p = data["packs"][PACK]
        files = tuple(
            PadFileSpec(
                file=name,
                role=str(f["role"]),
                crop_scale=float(f["crop_scale"]),
                input_size=(int(f["input_size"][0]), int(f["input_size"][1])),
                sha256=str(f["sha256"]).lower(),
            )
            for name, f in p["files"].items()
        )
        t = p["threshold"]
        th = PadThreshold(
            value=float(t["value"]),
            fusion=str(t.get("fusion", "mean")),
            apcer=t.get("apcer"),
            bpcer=t.get("bpcer"),
            dataset=t.get("dataset"),
            date=t.get("date"),
            audit_below=_audit_below(p, t),
        )
        exposure = None
        if "exposure_target" in p:
            exposure = ExposureNorm(float(p["exposure_target"]), float(p.get("exposure_max_gain", 2.5)),
                                    float(p.get("exposure_denoise_sigma", 0.0)))
        face_box = str(p.get("face_box", "detector"))
        if face_box not in FACE_BOX_RULES:
            raise ValueError(f"face_box must be one of {FACE_BOX_RULES}, not {face_box!r}")
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"manifest entry [packs.{PACK}] is incomplete: {exc}", code=ErrorCode.CONFIG_ERROR) from exc
    if not files:
        raise ModelError(f"manifest entry [packs.{PACK}] lists no files", code=ErrorCode.CONFIG_ERROR)
    return PadSpec(version=str(p.get("version", "1")), files=files, threshold=th, exposure=exposure,
                   face_box=face_box)


# -- the model ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PadNet:
    """One MiniFASNet: a ready onnxruntime session, its context scale and input (width, height)."""

    session: OrtSession
    crop_scale: float
    input_size: tuple[int, int] = (80, 80)
    name: str = ""

    def probabilities(self, frames: Sequence[NDArray[np.uint8]], boxes: Sequence[BoxXYWH]) -> NDArray[np.float64]:
        """(N, 3) softmax of the network on N (frame, box) pairs."""
        crops = [crop_context(f, b, self.crop_scale, self.input_size) for f, b in zip(frames, boxes, strict=True)]
        inp = self.session.get_inputs()[0].name
        logits = self.session.run(None, {inp: to_tensor(crops)})[0]
        return softmax(np.asarray(logits))


@dataclass(frozen=True)
class PadModel:
    """The MiniFASNet ensemble. ``score``: P(real) of one face in one full camera frame."""

    nets: tuple[PadNet, ...]
    threshold: PadThreshold
    version: str = "1"
    exposure: ExposureNorm | None = None  # applied to each frame before the nets (see ExposureNorm)
    face_box: str = "detector"  # which box the crops are built on (pad_spec; see five_point_box)

    def box_for(self, box_xyxy: Sequence[float] | NDArray[np.floating], five: NDArray[np.floating] | None) -> BoxXYWH:
        """The (x, y, w, h) box to pass to :meth:`score_many` for a face the engine found: its five landmarks'
        box under ``face_box = "five_points"`` (the detector's box when it has no landmarks, or landmarks that
        span no face: a glitch must not fail the chunk), else the detector's (x1, y1, x2, y2) box."""
        if self.face_box == "five_points" and five is not None:
            try:
                return five_point_box(five)
            except ValueError:
                pass
        return box_xyxy_to_xywh(box_xyxy)

    def score_many(
        self, frames: Sequence[NDArray[np.uint8]], boxes: Sequence[BoxXYWH]
    ) -> NDArray[np.float64]:
        """(N,) P(real) for N full BGR frames and their face boxes (x, y, w, h), one batch per net."""
        if len(frames) != len(boxes):
            raise ValueError("one face box per frame")
        if not frames:
            return np.zeros(0, dtype=np.float64)
        if self.exposure is not None:
            norm = self.exposure
            frames = [norm.apply(f, b) for f, b in zip(frames, boxes, strict=True)]
        total = np.zeros((len(frames), 3), dtype=np.float64)
        for net in self.nets:
            total += net.probabilities(frames, boxes)
        return np.asarray(total[:, REAL_CLASS] / len(self.nets), dtype=np.float64)

    def score(self, frame_bgr: NDArray[np.uint8], face_box_xywh: BoxXYWH) -> float:
        return float(self.score_many([frame_bgr], [face_box_xywh])[0])

    def fuse(self, scores: Sequence[float]) -> float:
        return fuse_session(scores, self.threshold.fusion)

    def is_attack(self, session_score: float) -> bool:
        """True when a fused session score is below the calibrated threshold (NaN: no frame scored,
        which is an attack as far as PAD can tell — the caller decides whether to ask again)."""
        return math.isnan(session_score) or session_score < self.threshold.value

    def warm_up(self) -> None:
        blank = np.full((480, 360, 3), 128, np.uint8)
        self.score(blank, (120.0, 160.0, 120.0, 140.0))


def make_session(path: Path, threads: int = 1) -> Any:
    """An onnxruntime CPU session with explicit thread counts (the server runs one per pool thread)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = max(1, threads)
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


def pad_dir(settings: Settings) -> Path:
    return settings.resolved_models_dir / PACK


def check_files(directory: Path, spec: PadSpec) -> list[str]:
    """Problems with the installed files (missing, sha256 differs from the manifest's pin); [] when good."""
    problems = []
    for f in spec.files:
        p = directory / f.file
        if not p.is_file():
            problems.append(f"{f.file}: missing")
            continue
        got = sha256_file(p)
        if got != f.sha256:
            problems.append(f"{f.file}: sha256 {got} differs from the manifest's {f.sha256}")
    return problems


def _model(spec: PadSpec, path_of: Callable[[PadFileSpec], Path], threads: int) -> PadModel:
    """The PadModel of ``spec`` with each net's file at ``path_of(file spec)``."""
    nets = tuple(PadNet(make_session(path_of(f), threads), f.crop_scale, f.input_size, f.role) for f in spec.files)
    return PadModel(nets=nets, threshold=spec.threshold, version=spec.version, exposure=spec.exposure,
                    face_box=spec.face_box)


def load_pad_from(directory: Path, spec: PadSpec, threads: int = 1) -> PadModel:
    """Load the networks from a folder holding the files (benchmarks, tests: ../shared/models/minifasnet)
    after checking every sha256 against the manifest. MODEL_MISSING (absent) or MODEL_MISMATCH (hash)."""
    problems = check_files(directory, spec)
    if problems:
        code = ErrorCode.MODEL_MISSING if all(p.endswith("missing") for p in problems) else ErrorCode.MODEL_MISMATCH
        raise ModelError(f"PAD pack {PACK} in {directory}: " + "; ".join(problems), code=code)
    return _model(spec, lambda f: directory / f.file, threads)


def load_pad(settings: Settings, threads: int = 1) -> PadModel | None:
    """The installed MiniFASNet pack, or None when it is not installed (PAD off; callers log it).

    Installed with ``lifecert models install minifasnet --from DIR`` (lifecert.engine.packs).
    Every load re-hashes the files against ``pack.json`` and the manifest's pins: a damaged or
    tampered pack raises ModelError instead of silently switching PAD off.
    """
    from lifecert.engine import packs

    directory = pad_dir(settings)
    if not directory.is_dir() or not any(directory.iterdir()):
        return None
    pack = packs.require(settings, PACK)
    spec = pad_spec(settings.manifest_path)
    return _model(spec, lambda f: pack.path(f.role), threads)


@dataclass(frozen=True)
class PadStatus:
    """What start-up decided: ``model`` is None when PAD is off; ``reason`` says why, for /readyz and logs."""

    model: PadModel | None
    reason: str

    @property
    def on(self) -> bool:
        return self.model is not None

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"pad": "on" if self.on else "off", "reason": self.reason}
        if self.model is not None:
            d["threshold"] = self.model.threshold.value
        return d


def startup_pad(settings: Settings, threads: int = 1) -> PadStatus:
    """Load PAD once at service start-up and apply the deployment rule.

    Not installed: PAD is off and the log says so; in ``production`` that refuses to start
    (CONFIG_ERROR) unless ``settings.liveness.allow_no_pad`` was set explicitly. A pack whose
    files do not match the manifest's pins always refuses (MODEL_MISMATCH), in every environment.
    """
    model = load_pad(settings, threads)
    if model is not None:
        th = model.threshold
        log.info("PAD on: %s pack v%s, threshold %.4f (%s)", PACK, model.version, th.value, th.dataset or "?")
        return PadStatus(model, f"{PACK} pack installed")
    hint = f"install it with `lifecert models install {PACK} --from DIR` or `lifecert models pull {PACK}`"
    reason = f"{PACK} pack not installed"
    if settings.env == "production" and not settings.liveness.allow_no_pad:
        raise ModelError(
            f"presentation-attack detection is required in production: {reason} in {pad_dir(settings)}; {hint} "
            "(or set LIFECERT_LIVENESS__ALLOW_NO_PAD=1 to run without it, knowingly)",
            code=ErrorCode.CONFIG_ERROR,
        )
    log.warning(
        "PAD off: %s in %s; replayed videos and photos are stopped only by the active checks; %s",
        reason, pad_dir(settings), hint,
    )
    return PadStatus(None, reason)
