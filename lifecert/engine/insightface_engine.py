"""The high-accuracy engine: an insightface model pack (``buffalo_l`` by default).

SCRFD detector (box, score, 5 keypoints in the ArcFace order), optional 1k3d68
68-point landmarks, ArcFace recogniser on 112x112 crops aligned with the standard
ArcFace similarity transform, 512-d L2-normalised float32 embeddings.

Which file of a pack plays which role is read from ``models/manifest.toml``
(``[engines.insightface.packs.<name>]``), never guessed from tensor shapes. The
engine creates the ONNX Runtime sessions itself (CPU provider, explicit thread
counts) and injects them into insightface's thin ``model_zoo`` wrappers.

Packs live in ``settings.resolved_models_dir / <name>`` next to a ``pack.json`` that
records every file's sha256 at install time (``lifecert models install`` / ``pull``);
loading re-hashes the files and refuses missing or changed ones with a
:class:`ModelError` (code ``MODEL_MISSING``) that says which command fixes it.
Nothing here downloads anything except :func:`pull_pack`, run on request.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import socket
import stat
import tempfile
import zipfile
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import cv2
import numpy as np
from numpy.typing import NDArray

from lifecert.domain.errors import ErrorCode, ModelError
from lifecert.engine.base import SECOND_FACE_RATIO, FaceEngine, l2_normalize
from lifecert.engine.manifest import ModelInfo, Threshold, load_manifest, model_info, sha256_file
from lifecert.engine.types import Face, ImageBGR

if TYPE_CHECKING:
    from lifecert.config import Settings

ENGINE = "insightface"
PACK_RECORD = "pack.json"
PACK_RECORD_FORMAT = 1

ROLE_DETECTION = "detection"
ROLE_RECOGNITION = "recognition"
ROLE_LANDMARK68 = "landmark_3d_68"
REQUIRED_ROLES = (ROLE_DETECTION, ROLE_RECOGNITION)

# Zip guards. Real packs: buffalo_l is ~330 MB unpacked, antelopev2 ~400 MB.
MAX_MEMBER_BYTES = 1 << 30
MAX_TOTAL_BYTES = 2 << 30
MAX_MEMBERS = 64
MAX_RATIO = 200  # uncompressed / compressed; ONNX weights barely compress, bombs do

# The ArcFace reference points of a 112x112 crop (x, y), in the Face.landmarks5 order.
ARCFACE_DST = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float32,
)
DET_THRESHOLD = 0.5
MAX_LANDMARK_FACES = 8  # 68-point landmarks only for the largest significant faces

_PACK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


# -- the pack manifest -------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PackFile:
    """One file of a pack. ``input_size`` is (width, height); (0, 0) means dynamic."""

    name: str
    role: str
    input_size: tuple[int, int]
    required: bool
    sha256: str | None = None
    input_mean: float | None = None
    input_std: float | None = None


@dataclass(frozen=True, slots=True)
class PackSpec:
    name: str
    version: str
    embedding_size: int
    files: tuple[PackFile, ...]
    archive: str
    thresholds: dict[str, Threshold] = field(default_factory=dict)

    def by_role(self, role: str) -> PackFile | None:
        return next((f for f in self.files if f.role == role), None)

    @property
    def required_files(self) -> list[PackFile]:
        return [f for f in self.files if f.required]


def install_hint(name: str) -> str:
    """The commands that put a pack in place, for error messages."""
    return f"run `lifecert models pull {name}` or, offline, `lifecert models install --from {name}.zip`"


def check_pack_name(name: str) -> str:
    if not _PACK_NAME.match(name) or ".." in name:
        raise ModelError(f"'{name}' is not a valid pack name (letters, digits, _ . -)", code=ErrorCode.BAD_REQUEST)
    return name


def known_packs(manifest_path: Path | None = None) -> list[str]:
    engine = load_manifest(manifest_path).get("engines", {}).get(ENGINE, {})
    return sorted(engine.get("packs", {}))


def pack_spec(name: str, manifest_path: Path | None = None) -> PackSpec:
    """The manifest's description of pack ``name``; CONFIG_ERROR when it has none."""
    check_pack_name(name)
    engine = load_manifest(manifest_path).get("engines", {}).get(ENGINE, {})
    raw = engine.get("packs", {}).get(name)
    if raw is None:
        known = ", ".join(known_packs(manifest_path)) or "none"
        raise ModelError(
            f"insightface pack '{name}' is not described in the model manifest (known: {known}); "
            f"describe it under engines.insightface.packs.{name} in models/manifest.toml",
            code=ErrorCode.CONFIG_ERROR,
        )
    try:
        files = tuple(
            PackFile(
                name=check_file_name(fname),
                role=str(f["role"]),
                input_size=(int(f.get("input_size", [0, 0])[0]), int(f.get("input_size", [0, 0])[1])),
                required=bool(f.get("required", True)),
                sha256=str(f["sha256"]).lower() if f.get("sha256") else None,
                input_mean=float(f["input_mean"]) if "input_mean" in f else None,
                input_std=float(f["input_std"]) if "input_std" in f else None,
            )
            for fname, f in raw.get("files", {}).items()
        )
        th = {
            k: Threshold(similarity=float(t["similarity"]), far=t.get("far"), dataset=t.get("dataset"),
                         date=t.get("date"))
            for k, t in raw.get("thresholds", {}).items()
        }
        spec = PackSpec(
            name=name,
            version=str(raw.get("version", "1")),
            embedding_size=int(raw["embedding_size"]),
            files=files,
            archive=str(raw.get("archive", f"{name}.zip")),
            thresholds=th,
        )
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise ModelError(f"manifest entry of pack '{name}' is malformed: {exc}", code=ErrorCode.CONFIG_ERROR) from exc
    for role in REQUIRED_ROLES:
        f = spec.by_role(role)
        if f is None or not f.required:
            raise ModelError(f"manifest pack '{name}' names no required {role} file", code=ErrorCode.CONFIG_ERROR)
    return spec


def check_file_name(name: str) -> str:
    if "/" in name or "\\" in name or name.startswith(".") or not name:
        raise ModelError(f"manifest file name '{name}' must be a plain file name", code=ErrorCode.CONFIG_ERROR)
    return name


# -- installed packs -------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class FileCheck:
    name: str
    role: str | None
    status: str  # ok | missing | changed
    sha256: str | None
    detail: str = ""


def pack_dir(models_dir: Path, name: str) -> Path:
    return Path(models_dir) / check_pack_name(name)


def read_pack_record(directory: Path) -> dict[str, Any] | None:
    """The pack.json of an installed pack, or None when there is none."""
    p = directory / PACK_RECORD
    if not p.is_file():
        return None
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"{p} is unreadable ({exc})", code=ErrorCode.MODEL_MISSING) from exc
    if not isinstance(data, dict) or not isinstance(data.get("files"), dict):
        raise ModelError(f"{p} is not a pack record", code=ErrorCode.MODEL_MISSING)
    return data


def check_pack(models_dir: Path, spec: PackSpec) -> list[FileCheck]:
    """Re-hash every file recorded in pack.json and compare with the record and the
    manifest's pins. Raises MODEL_MISSING when the pack or its record is absent."""
    d = pack_dir(models_dir, spec.name)
    if not d.is_dir():
        raise ModelError(
            f"insightface model pack '{spec.name}' is not installed in {d}; {install_hint(spec.name)}",
            code=ErrorCode.MODEL_MISSING,
        )
    record = read_pack_record(d)
    if record is None:
        raise ModelError(
            f"{d} has no {PACK_RECORD} (files were not installed by lifecert, so their sha256 is unknown); "
            f"{install_hint(spec.name)}",
            code=ErrorCode.MODEL_MISSING,
        )
    roles = {f.name: f for f in spec.files}
    out: list[FileCheck] = []
    names = set(record["files"]) | {f.name for f in spec.required_files}
    for fname in sorted(names):
        entry = record["files"].get(fname) or {}
        pf = roles.get(fname)
        role = pf.role if pf else entry.get("role")
        path = d / fname
        if not path.is_file():
            out.append(FileCheck(fname, role, "missing", None, "file not present"))
            continue
        actual = sha256_file(path)
        recorded = entry.get("sha256")
        if recorded is None:
            out.append(FileCheck(fname, role, "missing", actual, f"not recorded in {PACK_RECORD}"))
        elif actual != recorded:
            out.append(FileCheck(fname, role, "changed", actual, f"sha256 {actual[:12]}… != recorded {recorded[:12]}…"))
        elif pf is not None and pf.sha256 and actual != pf.sha256:
            pin = pf.sha256[:12]
            out.append(FileCheck(fname, role, "changed", actual, f"sha256 {actual[:12]}… != manifest {pin}…"))
        else:
            out.append(FileCheck(fname, role, "ok", actual))
    return out


def verify_pack(models_dir: Path, spec: PackSpec) -> list[FileCheck]:
    """:func:`check_pack`, raising MODEL_MISSING naming every bad file (with the fix)."""
    checks = check_pack(models_dir, spec)
    bad = [c for c in checks if c.status != "ok"]
    if bad:
        what = "; ".join(f"{c.name}: {c.detail}" for c in bad)
        raise ModelError(
            f"insightface model pack '{spec.name}' in {pack_dir(models_dir, spec.name)} is damaged ({what}); "
            f"{install_hint(spec.name)}",
            code=ErrorCode.MODEL_MISSING,
        )
    return checks


# -- installing ------------------------------------------------------------------------------
def _member_path(info: zipfile.ZipInfo) -> PurePosixPath | None:
    """The safe relative path of a zip member, None for directories and junk, or raise."""
    raw = info.filename.replace("\\", "/")
    if raw.startswith("/") or re.match(r"^[A-Za-z]:", raw):
        raise ModelError(f"unsafe zip: absolute path '{info.filename}'", code=ErrorCode.BAD_REQUEST)
    parts = [p for p in raw.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ModelError(f"unsafe zip: path traversal in '{info.filename}'", code=ErrorCode.BAD_REQUEST)
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise ModelError(f"unsafe zip: symbolic link '{info.filename}'", code=ErrorCode.BAD_REQUEST)
    if info.is_dir() or not parts:
        return None
    if parts[0] == "__MACOSX" or parts[-1].startswith("._") or parts[-1] == ".DS_Store":
        return None
    return PurePosixPath(*parts)


def _plan_members(zf: zipfile.ZipFile) -> list[tuple[zipfile.ZipInfo, PurePosixPath]]:
    infos = zf.infolist()
    if len(infos) > MAX_MEMBERS:
        raise ModelError(f"zip has {len(infos)} entries; the limit is {MAX_MEMBERS}", code=ErrorCode.PAYLOAD_TOO_LARGE)
    members: list[tuple[zipfile.ZipInfo, PurePosixPath]] = []
    total = 0
    for info in infos:
        rel = _member_path(info)
        if rel is None:
            continue
        if info.flag_bits & 0x1:
            raise ModelError(f"zip member '{info.filename}' is encrypted", code=ErrorCode.BAD_REQUEST)
        if info.file_size > MAX_MEMBER_BYTES:
            raise ModelError(
                f"zip member '{info.filename}' is {info.file_size} bytes; the limit is {MAX_MEMBER_BYTES}",
                code=ErrorCode.PAYLOAD_TOO_LARGE,
            )
        if info.file_size > (1 << 20) and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            raise ModelError(
                f"zip member '{info.filename}' expands {info.file_size // max(info.compress_size, 1)}x; "
                "refused as a zip bomb",
                code=ErrorCode.PAYLOAD_TOO_LARGE,
            )
        total += info.file_size
        members.append((info, rel))
    if total > MAX_TOTAL_BYTES:
        raise ModelError(f"zip unpacks to {total} bytes; the limit is {MAX_TOTAL_BYTES}",
                         code=ErrorCode.PAYLOAD_TOO_LARGE)
    if not members:
        raise ModelError("zip holds no files", code=ErrorCode.MODEL_MISSING)
    # Packs are zipped either flat (buffalo_l.zip) or inside one folder (antelopev2.zip).
    tops = {rel.parts[0] for _, rel in members}
    if len(tops) == 1 and all(len(rel.parts) > 1 for _, rel in members):
        members = [(i, PurePosixPath(*rel.parts[1:])) for i, rel in members]
    seen: set[str] = set()
    for _, rel in members:
        key = str(rel).lower()
        if key in seen or key == PACK_RECORD:
            raise ModelError(f"zip has a duplicate or reserved entry '{rel}'", code=ErrorCode.BAD_REQUEST)
        seen.add(key)
    return members


def _extract(zf: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path) -> tuple[str, int]:
    """Stream one member to ``target`` (never more than its declared size); (sha256, size)."""
    import hashlib

    h = hashlib.sha256()
    written = 0
    target.parent.mkdir(parents=True, exist_ok=True)
    with zf.open(info) as src, target.open("xb") as dst:
        for chunk in iter(lambda: src.read(1 << 20), b""):
            written += len(chunk)
            if written > info.file_size:
                raise ModelError(f"zip member '{info.filename}' is larger than declared", code=ErrorCode.BAD_REQUEST)
            h.update(chunk)
            dst.write(chunk)
    return h.hexdigest(), written


def install_pack_zip(
    zip_path: Path, models_dir: Path, name: str | None = None, *, manifest_path: Path | None = None,
    source: str | None = None,
) -> dict[str, Any]:
    """Unpack a pack zip safely into ``models_dir/<name>`` and write its pack.json.

    Refuses absolute paths, ``..``, symlinks, encrypted members, oversize or
    bomb-like members (BAD_REQUEST / PAYLOAD_TOO_LARGE), unreadable zips and packs
    lacking a required role (MODEL_MISSING). An existing install is replaced only
    after the new one is complete. Returns the pack record.
    """
    zip_path = Path(zip_path)
    if not zip_path.is_file():
        raise ModelError(f"file not found: {zip_path}", code=ErrorCode.FILE_MISSING)
    pack = name or zip_path.name.removesuffix(".zip")
    spec = pack_spec(pack, manifest_path)
    models_dir = Path(models_dir)
    models_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".staging-{pack}-", dir=models_dir))
    try:
        files: dict[str, dict[str, Any]] = {}
        try:
            with zipfile.ZipFile(zip_path) as zf:
                for info, rel in _plan_members(zf):
                    digest, size = _extract(zf, info, staging.joinpath(*rel.parts))
                    files[rel.as_posix()] = {"sha256": digest, "size": size}
        except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError, NotImplementedError) as exc:
            raise ModelError(f"{zip_path.name} is not a readable zip archive ({exc})",
                             code=ErrorCode.MODEL_MISSING) from exc
        roles = {f.name: f.role for f in spec.files}
        for fname, entry in files.items():
            entry["role"] = roles.get(fname)
        missing = [f"{f.name} ({f.role})" for f in spec.required_files if f.name not in files]
        if missing:
            raise ModelError(
                f"{zip_path.name} is not a complete '{pack}' pack: missing {', '.join(missing)}",
                code=ErrorCode.MODEL_MISSING,
            )
        for f in spec.files:
            if f.sha256 and f.name in files and files[f.name]["sha256"] != f.sha256:
                raise ModelError(
                    f"{f.name} in {zip_path.name} has sha256 {files[f.name]['sha256'][:12]}…, "
                    f"the manifest pins {f.sha256[:12]}…",
                    code=ErrorCode.MODEL_MISSING,
                )
        record = {
            "format": PACK_RECORD_FORMAT,
            "name": pack,
            "engine": ENGINE,
            "version": spec.version,
            "source": source or zip_path.name,
            "installed_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "files": dict(sorted(files.items())),
        }
        (staging / PACK_RECORD).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        target = pack_dir(models_dir, pack)
        old = None
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".old-{pack}-", dir=models_dir))
            target.replace(old / pack)
        staging.replace(target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return record
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def default_pack_url(name: str) -> str:
    """Where insightface itself downloads pack ``name`` from."""
    from insightface.utils.storage import model_zoo_download_url

    return str(model_zoo_download_url(f"{check_pack_name(name)}.zip"))


def pull_pack(
    name: str, models_dir: Path, *, url: str | None = None, manifest_path: Path | None = None,
    connect_timeout: float = 10.0,
) -> dict[str, Any]:
    """Download pack ``name`` with insightface's own downloader, then install it like a
    local zip (same checks, same pack.json). Without network: one clear MODEL_MISSING."""
    pack_spec(name, manifest_path)  # refuse unknown packs before any network traffic
    src = url or default_pack_url(name)
    parsed = urlparse(src)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ModelError(f"cannot download from '{src}': only http(s) URLs", code=ErrorCode.BAD_REQUEST)
    offline = f"copy {name}.zip to this machine and run `lifecert models install --from {name}.zip`"
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:  # insightface's downloader has no timeout: fail fast when the host is unreachable
        socket.create_connection((parsed.hostname, port), timeout=connect_timeout).close()
    except OSError as exc:
        reason = exc.strerror or exc.__class__.__name__
        raise ModelError(
            f"cannot download pack '{name}': {parsed.hostname}:{port} is unreachable ({reason}); "
            f"without internet, {offline}",
            code=ErrorCode.MODEL_MISSING,
        ) from exc
    import requests
    from insightface.utils.download import download_file

    models_dir = Path(models_dir)
    models_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".download-{name}-", dir=models_dir) as tmp:
        zip_path = Path(tmp) / f"{name}.zip"
        try:
            with contextlib.redirect_stdout(None):  # insightface prints its progress
                download_file(src, path=str(zip_path), overwrite=True)
        except (requests.RequestException, RuntimeError, OSError) as exc:
            raise ModelError(
                f"cannot download pack '{name}' from {src} ({exc.__class__.__name__}); {offline}",
                code=ErrorCode.MODEL_MISSING,
            ) from exc
        return install_pack_zip(zip_path, models_dir, name, manifest_path=manifest_path, source=src)


# -- the engine ------------------------------------------------------------------------------
def similarity_transform(src: NDArray[np.floating], dst: NDArray[np.floating]) -> NDArray[np.float64]:
    """Least-squares similarity (rotation, uniform scale, translation) mapping (N, 2)
    ``src`` points onto ``dst`` (Umeyama 1991). Returns the 2x3 affine matrix."""
    s = np.asarray(src, dtype=np.float64)
    d = np.asarray(dst, dtype=np.float64)
    sm, dm = s.mean(axis=0), d.mean(axis=0)
    sc, dc = s - sm, d - dm
    cov = dc.T @ sc / len(s)
    u, sig, vt = np.linalg.svd(cov)
    sign = np.ones(2)
    if np.linalg.det(cov) < 0:
        sign[-1] = -1.0
    rot = u @ np.diag(sign) @ vt
    var = float((sc**2).sum() / len(s))
    scale = float((sig * sign).sum() / max(var, 1e-12))
    m = np.zeros((2, 3))
    m[:, :2] = scale * rot
    m[:, 2] = dm - scale * rot @ sm
    return m


def make_session(path: Path, threads: int) -> Any:
    """A CPU ONNX Runtime session with explicit thread counts (no oversubscription
    when several workers share a machine)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = max(1, int(threads))
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.log_severity_level = 3
    return ort.InferenceSession(str(path), sess_options=so, providers=["CPUExecutionProvider"])


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
        out_dim = self._rec.output_shape[-1]
        if isinstance(out_dim, int) and out_dim != info.embedding_size:
            raise ModelError(
                f"recognition model of pack '{spec.name}' outputs {out_dim}-d vectors; the manifest says "
                f"{info.embedding_size}",
                code=ErrorCode.MODEL_MISSING,
            )
        batch = self._rec.input_shape[0]
        self._rec_batch = batch if isinstance(batch, int) and batch > 0 else None

    @classmethod
    def from_settings(cls, s: Settings, *, verify: bool = True, warmup: bool = True) -> InsightFaceEngine:
        """Load ``s.insightface_pack`` from ``s.resolved_models_dir`` (re-hashing its files
        unless ``verify`` is False) and warm it up."""
        spec = pack_spec(s.insightface_pack, s.manifest_path)
        directory = pack_dir(s.resolved_models_dir, spec.name)
        if verify:
            verify_pack(s.resolved_models_dir, spec)
        elif not directory.is_dir():
            raise ModelError(
                f"insightface model pack '{spec.name}' is not installed in {directory}; {install_hint(spec.name)}",
                code=ErrorCode.MODEL_MISSING,
            )
        engine = cls(
            pack_model_info(spec, s.manifest_path),
            spec,
            directory,
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
                f"{f.name} ({role}) is missing from {self.directory}; {install_hint(self.spec.name)}",
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
                f"{install_hint(self.spec.name)}",
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
        w, h = self.info.input_size
        dst = ARCFACE_DST * (w / 112.0)
        m = similarity_transform(face.landmarks5, dst)
        warped = cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0))
        return np.ascontiguousarray(warped, dtype=np.uint8)

    def embed_aligned(self, crops: list[ImageBGR]) -> NDArray[np.float32]:
        """(N, 512) L2-normalised float32 embeddings of aligned BGR crops (the wrapper
        converts to RGB and normalises with the manifest's mean/std)."""
        if not crops:
            return np.zeros((0, self.info.embedding_size), dtype=np.float32)
        step = self._rec_batch or len(crops)
        parts = [np.asarray(self._rec.get_feat(crops[i:i + step]), dtype=np.float32)
                 for i in range(0, len(crops), step)]
        return l2_normalize(np.concatenate(parts, axis=0).reshape(len(crops), -1))


def pack_model_info(spec: PackSpec, manifest_path: Path | None = None) -> ModelInfo:
    """The embedding space of a pack. The engine's default pack uses the engine's
    calibrated thresholds; any other pack only its own (templates never mix packs)."""
    base = model_info(ENGINE, manifest_path)
    rec = spec.by_role(ROLE_RECOGNITION)
    size = rec.input_size if rec is not None and rec.input_size != (0, 0) else base.input_size
    if spec.name == base.model:
        return replace(base, embedding_size=spec.embedding_size, input_size=size)
    return ModelInfo(
        engine=ENGINE,
        model=spec.name,
        version=spec.version,
        embedding_size=spec.embedding_size,
        input_size=size,
        thresholds=dict(spec.thresholds),
    )
