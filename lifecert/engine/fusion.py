"""Which fusion of two face engines is configured (no database, no services): the second engine,
its calibrated model from the manifest's ``[fusion.<primary>_<second>]`` and the embedding profile
its enrolled templates are made under. :mod:`lifecert.services.fusion` scores with it; enrollment
embeds each accepted face with :class:`SecondEmbedder` beside the primary engine.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from lifecert.config import Settings
from lifecert.domain.errors import LifecertError
from lifecert.domain.fusion import FusionModel, from_manifest
from lifecert.engine import packs
from lifecert.engine.base import FaceEngine
from lifecert.engine.manifest import load_manifest, model_info

log = logging.getLogger(__name__)
_warned: set[str] = set()  # messages already logged (once per process, not per photo)


@dataclass(frozen=True, slots=True)
class FusionSpec:
    """The configured fusion: the second engine's name and model key, the profile its templates
    are enrolled under, and the calibrated model (weights, verify/duplicate thresholds)."""

    name: str
    second: str
    second_key: str
    primary_key: str
    enroll_profile: str
    model: FusionModel

    def fused(self, primary: float, second: float) -> float:
        return self.model.score({self.primary_key: primary, self.second_key: second})


def fusion_spec(settings: Settings) -> FusionSpec | None:
    """The fusion to use with ``settings`` or None (no second engine configured or installed, no
    calibration in the manifest: then the primary engine works alone). No engine is loaded."""
    second = settings.fusion_engine
    if not second or second == settings.engine:
        return None
    name = f"{settings.engine}_{second}"
    manifest = load_manifest(settings.manifest_path)
    wanted = manifest.get("engines", {}).get(second, {})
    if not all(packs.is_installed(settings, str(wanted.get(k))) for k in ("pack", "detector_pack") if wanted.get(k)):
        return None  # the second engine is not installed: nothing to fuse, nothing to warn about
    raw = manifest.get("fusion", {}).get(name)
    if raw is None:
        warn_once(name, f"fusion {name} not calibrated in the manifest: {settings.engine} alone")
        return None
    try:
        keys = [model_info(settings.engine, settings.manifest_path).key, model_info(second, settings.manifest_path).key]
        model = from_manifest(name, raw, keys)
    except LifecertError as exc:
        warn_once(name, f"fusion {name} off: {exc.message}")
        return None
    profile = settings.embedding.fusion_enroll_profile
    calibrated = [str(p).split("/")[0] for p in raw.get("profiles", [])]
    if len(calibrated) == 2 and calibrated[1] != profile:
        warn_once(name + "/profile", f"fusion {name} is calibrated for {second} templates under "
                   f"{calibrated[1]!r}, settings enroll them under {profile!r}: recalibrate")
    return FusionSpec(name, second, keys[1], keys[0], profile, model)


def warn_once(key: str, message: str) -> None:
    if key not in _warned:
        _warned.add(key)
        log.warning("%s", message)


@dataclass(frozen=True, slots=True)
class SecondEmbedder:
    """The second engine of a fusion and the profile its templates are enrolled under."""

    engine: FaceEngine
    profile: str


def load_second_engine(settings: Settings, spec: FusionSpec) -> FaceEngine:
    from lifecert.engine.loader import load_engine  # loads weights: only when asked

    return load_engine(settings, spec.second)


def make_second_embedder(settings: Settings) -> SecondEmbedder | None:
    """The fusion's second engine and its enroll profile for writing templates (loads weights);
    None when fusion is off or the engine cannot load (logged once)."""
    spec = fusion_spec(settings)
    if spec is None:
        return None
    try:
        return SecondEmbedder(load_second_engine(settings, spec), spec.enroll_profile)
    except LifecertError as exc:
        warn_once(spec.name + "/load", f"fusion {spec.name} off: {exc.message}")
        return None


def model_engine(name: str) -> str:
    """The engine whose model makes the embeddings of engine ``name`` ("edgeface@dlib" → "edgeface",
    see :class:`lifecert.engine.second_on_primary.SecondOnPrimary`)."""
    return name.split("@", 1)[0]
