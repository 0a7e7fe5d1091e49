"""Tables that let several API nodes share state through the main database: rate-limit
buckets (lifecert.services.ratelimit) and encrypted blobs (lifecert.storage.blobs)."""

from __future__ import annotations

from sqlalchemy import Boolean, Float, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from lifecert.storage.db import Base


class RateLimitBucket(Base):
    """One token bucket. ``key`` = "<scope>:<HMAC-SHA256 of the limited value>" (never the value);
    ``updated_at`` in Unix seconds; ``allowed`` is the answer of the last take."""

    __tablename__ = "rate_limit_bucket"

    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    tokens: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float, index=True)
    allowed: Mapped[bool] = mapped_column(Boolean)


class Blob(Base):
    """An opaque (already sealed) blob of the database blob store, addressed by ``name``."""

    __tablename__ = "blob"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    size: Mapped[int] = mapped_column(Integer)
