"""One Settings object for the whole system (env prefix ``LIFECERT_``).

Nested groups use a double underscore in environment variables, e.g.
``LIFECERT_QUALITY__MIN_FACE_PX=80``. Nothing here is read at import time:
call :func:`get_settings` (cached) where settings are needed.
"""

from __future__ import annotations

import base64
import ipaddress
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from lifecert.domain.challenges import CHALLENGES, policy_violation

# A well-known key that only development and tests may use. Refused elsewhere.
DEV_TEMPLATE_KEY = base64.b64encode(b"lifecert-development-key-32byte!").decode()
DEV_SESSION_SECRET = "lifecert-development-session-secret"
DEV_AUDIT_KEY = "lifecert-development-audit-chain-key"

Environment = Literal["development", "test", "staging", "production"]
MIN_SECRET_LEN = 32


def weak_secret(secret: bytes) -> bool:
    """A secret too short or too repetitive to be random (e.g. "aaaa…", "1234…" typed by hand).
    32 random bytes have ~28 distinct values; 32 url-safe random characters ~25."""
    return len(secret) < MIN_SECRET_LEN or len(set(secret)) < 16


class QualitySettings(BaseModel):
    """Quality gates for enrollment photos. Verification frames use looser gates."""

    min_face_px: int = 60  # inter-ocular based face width in source pixels
    min_sharpness: float = 12.0  # variance of Laplacian on the 150x150 aligned crop
    min_brightness: float = 45.0  # mean grey level 0..255 of the aligned crop
    max_brightness: float = 235.0
    min_contrast: float = 18.0  # std of grey levels on the aligned crop
    max_yaw_deg: float = 35.0
    max_pitch_deg: float = 30.0
    max_roll_deg: float = 30.0
    min_eye_aspect_ratio: float = 0.15  # below: eyes closed


class ImageLimits(BaseModel):
    max_bytes: int = 20 * 1024 * 1024
    max_pixels: int = 40_000_000  # decompression-bomb guard, checked from the header
    detect_max_side: int = 640  # detection runs on a copy downscaled to this side


class IndexSettings(BaseModel):
    exact_max: int = 200_000  # up to this many vectors: exact inner-product search
    ivf_nprobe: int = 256  # recall@1 ≥ 0.99 at 1M (benchmarks/search.py); 32 gave ~0.90


EmbeddingProfile = Literal["single", "flip", "jitter"]


class EmbeddingSettings(BaseModel):
    """Test-time augmentation per side (lifecert.engine.views): the enrolled template and the
    verification probe. Each view is one recogniser pass; the trade-off against throughput
    and accuracy is measured in benchmarks/README.md. Thresholds in the manifest are
    calibrated for these profiles: change them together (``lifecert eval --write-manifest``)."""

    # LFW folds 1–5 through the full pipeline: single/single 98.67%, jitter/flip 99.17%; with the
    # ONNX recogniser jitter costs ~8 x 8 ms per enrolled photo and flip 2 x 8 ms per probe frame.
    enroll_profile: EmbeddingProfile = "jitter"
    probe_profile: EmbeddingProfile = "flip"
    # templates of the second (fusion) engine (settings.fusion_engine), written beside the primary's at
    # enrollment: EdgeFace under flip (2 passes) keeps the 11,362-photo batch with both engines inside
    # its 8 minutes on 2 cores; [fusion.*] in the manifest is calibrated for it (its `profiles`)
    fusion_enroll_profile: EmbeddingProfile = "flip"


class RefreshSettings(BaseModel):
    """Template refresh from verified selfies (lifecert/services/refresh.py): the best frame of a
    CONFIRMED session becomes an extra template of kind ``refresh`` when the match cleared the
    verify threshold by ``min_margin`` and every liveness/PAD check passed."""

    enabled: bool = True
    max_per_person: int = Field(default=3, ge=1, le=20)  # the oldest is dropped beyond this
    valid_days: int = Field(default=730, ge=30, le=3650)  # a refresh template stops counting after this
    min_margin: float = Field(default=0.02, ge=0.0, le=1.0)  # match - verify threshold (cosine)


class VerificationSettings(BaseModel):
    session_ttl_seconds: int = 300
    min_frames: int = 5
    max_frames: int = 80
    max_upload_bytes: int = 12 * 1024 * 1024
    max_retries_before_review: int = 3
    # while a case opened for a sign of an attack (rules.HOLD_REASONS), a death record dated before a standing
    # confirmation or a tip-off (rules.EVIDENCE_HOLD_REASONS) is undecided, a later self-service pass of the same
    # pensioner goes to review too instead of confirming (an attacker whose replay was caught cannot simply start
    # new sessions until one gets through; benchmarks/README.md `retry_attacker`)
    hold_while_in_review: bool = True
    embed_best_k: int = 2  # p95 282 ms at 5 sessions/s on 2 cores, k=3 490 ms (benchmarks/verify_latency.py)
    rate_limit_per_id_per_hour: int = 10
    rate_limit_per_client_per_hour: int = 60
    # Caseworker spot checks of CONFIRMED sessions (lifecert/domain/spotcheck.py): the share drawn at
    # random (0: none), and the upper end of the PAD grey band, overriding the PAD pack's `audit_below`
    # in models/manifest.toml (it must lie above the PAD threshold; checked when the service starts)
    audit_sample_rate: float = Field(default=0.02, ge=0.0, le=1.0)
    audit_pad_below: float | None = Field(default=None, gt=0.0, le=1.0)


class LivenessSettings(BaseModel):
    """Liveness and presentation-attack detection (PAD). ``allow_no_pad``: run without the
    MiniFASNet pack in production (``LIFECERT_LIVENESS__ALLOW_NO_PAD=1``) — an explicit,
    logged choice; without it production refuses to start when the pack is not installed."""

    allow_no_pad: bool = False


class ExchangeSettings(BaseModel):
    """Department exchange API (lifecert/services/exchange.py). A department signs each request
    with its API key (HMAC-SHA256 over method, path, timestamp and the body's sha256) or presents
    a client certificate: to uvicorn itself (``lifecert serve --ssl-ca-certs``) or to a reverse
    proxy in ``trusted_proxies`` that verified it and forwards it in the headers named here."""

    max_upload_bytes: int = Field(default=1 << 30, ge=1024)  # one extract; streamed to disk, never in memory
    signature_window_s: int = Field(default=300, ge=30, le=3600)  # timestamp skew accepted (and replay memory)
    proxy_verify_header: str = "x-ssl-client-verify"  # must say SUCCESS (nginx $ssl_client_verify)
    proxy_subject_header: str = "x-ssl-client-s-dn"  # RFC 4514/2253 subject (nginx $ssl_client_s_dn)
    proxy_cert_header: str = "x-ssl-client-cert"  # URL-escaped PEM (nginx $ssl_client_escaped_cert)


class AssistedSettings(BaseModel):
    """Assisted certification and home visits by community workers (lifecert/services/assisted.py)."""

    max_per_worker_per_day: int = Field(default=20, ge=1, le=500)  # sessions a worker may start per local day
    utc_offset_hours: int = Field(default=8, ge=-12, le=14)  # the agency's day (China Standard Time)


RateLimitBackend = Literal["auto", "redis", "database", "memory"]
BlobBackend = Literal["local", "database", "s3"]


class BlobSettings(BaseModel):
    """Where encrypted photos and verification frames live (lifecert.storage.blobs). ``local``: a
    directory under data_dir (one node, or a shared filesystem); ``database``: a table in the
    main database (several nodes, no shared filesystem); ``s3``: an S3-compatible bucket."""

    backend: BlobBackend = "local"
    s3_bucket: str = "lifecert"
    s3_endpoint_url: str | None = None  # e.g. a MinIO/Ceph gateway; None: the SDK's default
    s3_region: str = "us-east-1"
    s3_prefix: str = ""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="LIFECERT_", env_nested_delimiter="__", env_file=None, extra="ignore"
    )

    env: Environment = "development"
    data_dir: Path = Path("var")
    database_url: str | None = None  # default: sqlite file under data_dir
    template_key: SecretStr = SecretStr(DEV_TEMPLATE_KEY)  # base64 of 32 bytes (AES-256-GCM)
    # Earlier template keys (comma-separated base64), still accepted for opening blobs until
    # `lifecert keys rotate` has re-sealed everything under template_key; then remove them.
    retired_template_keys: SecretStr | None = None
    session_secret: SecretStr = SecretStr(DEV_SESSION_SECRET)
    # HMAC key of the audit chain (its own key: knowing the database is not enough to rewrite the trail)
    audit_key: SecretStr = SecretStr(DEV_AUDIT_KEY)
    # Ed25519 key (base64 of the 32-byte seed) that signs `lifecert audit checkpoint`; keep it off the
    # database host where possible. The verify key (base64 raw public key) checks checkpoints; it is
    # derived from the signing key when not given.
    audit_signing_key: SecretStr | None = None
    audit_verify_key: str | None = None
    engine: str = "dlib"  # dlib | insightface | edgeface
    models_dir: Path | None = None  # model packs (lifecert/engine/packs.py); default data_dir/models
    insightface_pack: str = "buffalo_l"
    # second engine for fused 1:1 verification (lifecert/services/fusion.py): used when its packs are
    # installed and the manifest has [fusion.<engine>_<fusion_engine>]; "" turns fusion off
    fusion_engine: str = "edgeface"
    manifest_path: Path | None = None  # default: models/manifest.toml of the checkout or package
    inference_threads: int = 2
    # dlib engine: run its ResNet with onnxruntime (same weights, ~9x faster; lifecert/engine/dlib_onnx.py)
    # or with dlib itself
    dlib_recognizer: Literal["onnx", "dlib"] = "onnx"
    fixed_challenges: str | None = None  # e.g. "blink,open_mouth"; refused in production
    review_retention_days: int = 90
    # The service purges frames past review_retention_days by itself every this many seconds (0: off),
    # at most retention_purge_batch sessions per run (issue 11 M9/Low "frames purged automatically").
    retention_purge_interval_s: float = 3600.0
    retention_purge_batch: int = 500
    api_docs: bool = False  # /docs and /redoc load third-party scripts: only on request (issue 11 M12)
    confirmation_cycle_months: int = 12
    quality: QualitySettings = Field(default_factory=QualitySettings)
    images: ImageLimits = Field(default_factory=ImageLimits)
    index: IndexSettings = Field(default_factory=IndexSettings)
    verification: VerificationSettings = Field(default_factory=VerificationSettings)
    embedding: EmbeddingSettings = Field(default_factory=EmbeddingSettings)
    liveness: LivenessSettings = Field(default_factory=LivenessSettings)
    # -- several nodes (issue 14) --
    redis_url: SecretStr | None = None  # e.g. redis://127.0.0.1:6379/0: shared rate limits via `limits`
    # auto: redis when redis_url is set, else the database, except in-memory on a development SQLite file
    ratelimit_backend: RateLimitBackend = "auto"
    # Addresses/CIDRs of reverse proxies whose X-Forwarded-For is believed (e.g. "127.0.0.1,10.0.0.0/8")
    trusted_proxies: str = ""
    blobs: BlobSettings = Field(default_factory=BlobSettings)
    log_format: Literal["text", "json"] = "text"  # json: one object per line with request ids (lifecert.services.logs)
    refresh: RefreshSettings = Field(default_factory=RefreshSettings)
    exchange: ExchangeSettings = Field(default_factory=ExchangeSettings)
    assisted: AssistedSettings = Field(default_factory=AssistedSettings)

    @field_validator("fixed_challenges")
    @classmethod
    def _known_challenges(cls, v: str | None) -> str | None:
        if v:
            bad = [c for c in v.split(",") if c.strip() not in CHALLENGES]
            if bad:
                raise ValueError(f"unknown challenge(s) {bad}; known: {', '.join(CHALLENGES)}")
        return v

    @model_validator(mode="after")
    def _refuse_dev_secrets_outside_development(self) -> Settings:
        if self.env in ("staging", "production"):
            if self.template_key.get_secret_value() == DEV_TEMPLATE_KEY:
                raise ValueError("LIFECERT_TEMPLATE_KEY is the development key; set a real key")
            if self.session_secret.get_secret_value() == DEV_SESSION_SECRET:
                raise ValueError("LIFECERT_SESSION_SECRET is the development secret; set a real one")
            if self.audit_key.get_secret_value() == DEV_AUDIT_KEY:
                raise ValueError("LIFECERT_AUDIT_KEY is the development key; set a real one")
            if weak_secret(self.audit_key.get_secret_value().encode()):
                raise ValueError(f"LIFECERT_AUDIT_KEY is too weak: at least {MIN_SECRET_LEN} characters with "
                                 "16 different ones")
        if self.env in ("staging", "production") and self.fixed_challenges:
            raise ValueError(f"LIFECERT_FIXED_CHALLENGES is for demos and tests; refused in {self.env}")
        if self.fixed_challenges and self.env not in ("development", "test"):
            why = policy_violation(self.fixed_challenge_list or [])
            if why:
                raise ValueError(
                    f"LIFECERT_FIXED_CHALLENGES breaks the challenge policy outside development/test: {why}"
                )
        if self.env in ("staging", "production") and self.ratelimit_backend == "memory":
            raise ValueError("LIFECERT_RATELIMIT_BACKEND=memory keeps limits per process; refused outside development")
        if self.ratelimit_backend == "redis" and self.redis_url is None:
            raise ValueError("LIFECERT_RATELIMIT_BACKEND=redis needs LIFECERT_REDIS_URL")
        self.trusted_proxy_networks  # noqa: B018  (raises ValueError on a malformed entry)
        key = base64.b64decode(self.template_key.get_secret_value(), validate=True)
        if len(key) != 32:
            raise ValueError("LIFECERT_TEMPLATE_KEY must be base64 of exactly 32 bytes")
        self.retired_template_key_bytes()  # raises ValueError on a malformed entry
        if self.env in ("staging", "production"):
            if weak_secret(key):
                raise ValueError("LIFECERT_TEMPLATE_KEY looks hand-made (too few distinct bytes); "
                                 "generate one: python -c 'import os,base64;print(base64.b64encode(os.urandom(32)))'")
            if weak_secret(self.session_secret.get_secret_value().encode()):
                raise ValueError(f"LIFECERT_SESSION_SECRET is too weak: at least {MIN_SECRET_LEN} characters with "
                                 "16 different ones (e.g. python -c 'import secrets;print(secrets.token_urlsafe(32))')")
        return self

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'lifecert.sqlite').resolve()}"

    @property
    def resolved_models_dir(self) -> Path:
        return self.models_dir or (self.data_dir / "models")

    @property
    def photos_dir(self) -> Path:
        return self.data_dir / "photos"

    @property
    def trusted_proxy_networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        return [ipaddress.ip_network(p.strip(), strict=False) for p in self.trusted_proxies.split(",") if p.strip()]

    @property
    def fixed_challenge_list(self) -> list[str] | None:
        if not self.fixed_challenges:
            return None
        return [c.strip() for c in self.fixed_challenges.split(",") if c.strip()]

    def audit_key_bytes(self) -> bytes:
        return self.audit_key.get_secret_value().encode()

    def retired_template_key_bytes(self) -> list[bytes]:
        if self.retired_template_keys is None:
            return []
        out = []
        for part in self.retired_template_keys.get_secret_value().split(","):
            if part.strip():
                k = base64.b64decode(part.strip(), validate=True)
                if len(k) != 32:
                    raise ValueError("each LIFECERT_RETIRED_TEMPLATE_KEYS entry must be base64 of 32 bytes")
                out.append(k)
        return out

    def template_key_bytes(self) -> bytes:
        return base64.b64decode(self.template_key.get_secret_value())


@lru_cache
def get_settings() -> Settings:
    return Settings()
