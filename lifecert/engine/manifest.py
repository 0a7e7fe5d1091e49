"""The model manifest (``models/manifest.toml``): what each engine's model is and its thresholds.

Every stored template records ``ModelInfo.key``; embeddings of different keys are
never compared. Thresholds are cosine similarities of L2-normalised embeddings,
calibrated by ``benchmarks/accuracy.py`` (which rewrites the ``[..thresholds]`` tables).
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lifecert.domain.errors import ErrorCode, ModelError

REPO_MANIFEST = Path(__file__).resolve().parents[2] / "models" / "manifest.toml"


@dataclass(frozen=True, slots=True)
class Threshold:
    similarity: float
    far: float | None = None
    dataset: str | None = None
    date: str | None = None
    enroll_profile: str | None = None  # embedding profiles the threshold was calibrated for
    probe_profile: str | None = None


@dataclass(frozen=True, slots=True)
class ModelInfo:
    engine: str
    model: str
    version: str
    embedding_size: int
    input_size: tuple[int, int]
    thresholds: dict[str, Threshold] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """Identity of the embedding space; templates are only compared within one key."""
        return f"{self.engine}:{self.model}:{self.version}"

    def threshold(self, name: str = "verify") -> float:
        if name not in self.thresholds:
            raise ModelError(f"manifest has no '{name}' threshold for {self.key}", code=ErrorCode.CONFIG_ERROR)
        return self.thresholds[name].similarity


def installed_data(relative: str) -> list[Path]:
    """Where a wheel's data-files put ``share/lifecert/<relative>`` (pyproject), most likely first."""
    import site
    import sys
    import sysconfig

    bases = (sysconfig.get_path("data"), sys.prefix, site.USER_BASE or "")
    return [Path(b) / "share" / "lifecert" / relative for b in bases if b]


def manifest_path(override: Path | None = None) -> Path:
    """``override``, else the checkout's ``models/manifest.toml``, else the copy a wheel installs."""
    places = [override] if override else [REPO_MANIFEST, *installed_data("models/manifest.toml")]
    p = next((q for q in places if q.is_file()), places[0])
    if not p.is_file():
        raise ModelError(f"model manifest not found at {p}", code=ErrorCode.CONFIG_ERROR)
    return p


def load_manifest(path: Path | None = None) -> dict[str, Any]:
    with manifest_path(path).open("rb") as fh:
        return tomllib.load(fh)


def model_info(engine: str, path: Path | None = None) -> ModelInfo:
    data = load_manifest(path)
    try:
        e = data["engines"][engine]
    except KeyError as exc:
        raise ModelError(f"engine '{engine}' is not in the model manifest", code=ErrorCode.CONFIG_ERROR) from exc
    th = {
        name: Threshold(
            similarity=float(t["similarity"]),
            far=t.get("far"),
            dataset=t.get("dataset"),
            date=t.get("date"),
            enroll_profile=t.get("enroll_profile"),
            probe_profile=t.get("probe_profile"),
        )
        for name, t in e.get("thresholds", {}).items()
    }
    return ModelInfo(
        engine=engine,
        model=str(e["model"]),
        version=str(e["version"]),
        embedding_size=int(e["embedding_size"]),
        input_size=(int(e["input_size"][0]), int(e["input_size"][1])),
        thresholds=th,
    )


def manifest_sha256(path: Path | None = None) -> str:
    return hashlib.sha256(manifest_path(path).read_bytes()).hexdigest()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
