"""Rate limits that hold across every API node.

Three backends behind one small interface, ``take(key) -> seconds to wait`` (0: allowed):

- :class:`RedisRateLimiter` — the ``limits`` library on Redis (moving window), chosen when
  ``LIFECERT_REDIS_URL`` is set. Fast, shared by every node that points at the same Redis.
- :class:`DatabaseRateLimiter` — a token bucket per key in the ``rate_limit_bucket`` table,
  updated by ONE atomic ``INSERT … ON CONFLICT DO UPDATE … RETURNING`` statement, so two
  nodes racing on the same key serialise on the row lock (PostgreSQL) or the write lock
  (SQLite). Chosen when there is no Redis and the database is not a development SQLite file.
- :class:`RateLimiter` — in-process token buckets; only for development and tests on
  SQLite (each process has its own buckets, so it is refused outside development).

Keys are never stored as given: ID numbers and client addresses are personal data, and an
ID number has too little entropy for a plain hash, so keys are HMAC-SHA256'd with a key
derived from the template key before they reach Redis or the database.

Clock: the database limiter uses the caller's wall clock (``time.time()``); nodes are
expected to run NTP. A node whose clock runs behind never refills a bucket backwards
(negative elapsed time counts as zero).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import random
import threading
import time
from typing import TYPE_CHECKING, Protocol

from sqlalchemy import text

if TYPE_CHECKING:
    from lifecert.config import Settings
    from lifecert.storage.db import Database

log = logging.getLogger(__name__)


class Limiter(Protocol):
    """``take`` one unit for ``key``: 0.0 when allowed, else seconds until it would be."""

    capacity: float

    def take(self, key: str) -> float: ...


class RateLimiter:
    """Token buckets keyed by a string: ``capacity`` tokens, refilled evenly over ``period_s``.
    In memory and per process; thread-safe."""

    def __init__(self, capacity: int, period_s: float = 3600.0, max_keys: int = 100_000) -> None:
        self.capacity = float(max(1, capacity))
        self.rate = self.capacity / period_s
        self.max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str, now: float | None = None) -> float:
        """Take one token; returns 0 when allowed, else seconds until a token is available."""
        t = time.monotonic() if now is None else now
        with self._lock:
            tokens, last = self._buckets.get(key, (self.capacity, t))
            tokens = min(self.capacity, tokens + (t - last) * self.rate)
            if tokens < 1.0:
                self._buckets[key] = (tokens, t)
                return (1.0 - tokens) / self.rate
            if len(self._buckets) >= self.max_keys and key not in self._buckets:
                # Drop full (idle) buckets first so memory stays bounded under a flood of keys.
                for k in [k for k, (tk, _) in self._buckets.items() if tk >= self.capacity - 1][: self.max_keys // 10]:
                    del self._buckets[k]
            self._buckets[key] = (tokens - 1.0, t)
            return 0.0


def _key_digest(secret: bytes, scope: str, key: str) -> str:
    return hmac.new(secret, f"{scope}|{key}".encode(), hashlib.sha256).hexdigest()


# One statement: refill by elapsed time (never backwards), cap, take a token when one is
# there, and say whether it was taken. Portable between PostgreSQL and SQLite ≥ 3.35
# (CASE instead of LEAST/MIN, the existing row addressed by the table name).
_TAKE_SQL = text(
    """
INSERT INTO rate_limit_bucket (key, tokens, updated_at, allowed)
VALUES (:key, :cap - 1, :now, TRUE)
ON CONFLICT (key) DO UPDATE SET
  tokens = CASE WHEN {refill} >= 1 THEN {refill} - 1 ELSE {refill} END,
  allowed = ({refill} >= 1),
  updated_at = CASE WHEN :now > rate_limit_bucket.updated_at THEN :now ELSE rate_limit_bucket.updated_at END
RETURNING tokens, allowed
""".format(
        refill="(CASE WHEN rate_limit_bucket.tokens + "
        "(CASE WHEN :now > rate_limit_bucket.updated_at THEN :now - rate_limit_bucket.updated_at ELSE 0 END)"
        " * :rate > :cap THEN :cap ELSE rate_limit_bucket.tokens + "
        "(CASE WHEN :now > rate_limit_bucket.updated_at THEN :now - rate_limit_bucket.updated_at ELSE 0 END)"
        " * :rate END)"
    )
)
_SWEEP_SQL = text("DELETE FROM rate_limit_bucket WHERE key LIKE :prefix AND updated_at < :before")


class DatabaseRateLimiter:
    """Token bucket per key in the shared database (see the module docstring)."""

    def __init__(
        self, db: Database, scope: str, capacity: int, period_s: float, secret: bytes, *, sweep_every: int = 1000
    ) -> None:
        self.db = db
        self.scope = scope
        self.capacity = float(max(1, capacity))
        self.period_s = period_s
        self.rate = self.capacity / period_s
        self._secret = secret
        self._sweep_every = sweep_every

    def take(self, key: str, now: float | None = None) -> float:
        t = time.time() if now is None else now
        # The scope is kept readable in front of the digest so one scope can be swept alone.
        k = f"{self.scope}:{_key_digest(self._secret, self.scope, key)}"
        with self.db.engine.begin() as conn:
            params = {"key": k, "cap": self.capacity, "now": t, "rate": self.rate}
            tokens, allowed = conn.execute(_TAKE_SQL, params).one()
            if self._sweep_every and random.randrange(self._sweep_every) == 0:
                # A bucket untouched for a whole period is full again: its row carries no information.
                conn.execute(_SWEEP_SQL, {"prefix": f"{self.scope}:%", "before": t - self.period_s})
        if allowed:
            return 0.0
        return max(0.0, (1.0 - float(tokens)) / self.rate)


class RedisRateLimiter:
    """Moving-window limit on Redis through the ``limits`` library: at most ``capacity`` hits
    per ``period_s`` per key, counted across every node using the same Redis."""

    def __init__(self, url: str, scope: str, capacity: int, period_s: float, secret: bytes) -> None:
        from limits import RateLimitItemPerSecond
        from limits.storage import storage_from_string
        from limits.strategies import MovingWindowRateLimiter

        self.scope = scope
        self.capacity = float(max(1, capacity))
        self._item = RateLimitItemPerSecond(int(self.capacity), max(1, int(period_s)))
        self._storage = storage_from_string(url)
        self._limiter = MovingWindowRateLimiter(self._storage)
        self._secret = secret

    def take(self, key: str) -> float:
        k = _key_digest(self._secret, self.scope, key)
        if self._limiter.hit(self._item, "lifecert", self.scope, k):
            return 0.0
        reset_at, _remaining = self._limiter.get_window_stats(self._item, "lifecert", self.scope, k)
        return max(1.0, float(reset_at) - time.time())


def backend_name(settings: Settings) -> str:
    """The limiter backend the settings select: ``redis``, ``database`` or ``memory``."""
    chosen = settings.ratelimit_backend
    if chosen != "auto":
        return chosen
    if settings.redis_url is not None:
        return "redis"
    if settings.resolved_database_url.startswith("sqlite") and settings.env in ("development", "test"):
        return "memory"
    return "database"


def limiter_secret(settings: Settings) -> bytes:
    return hmac.new(settings.template_key_bytes(), b"lifecert rate-limit keys", hashlib.sha256).digest()


def make_limiter(settings: Settings, db: Database, scope: str, capacity: int, period_s: float = 3600.0) -> Limiter:
    """The shared limiter for ``scope`` (e.g. ``"session.id"``): ``capacity`` per ``period_s``."""
    name = backend_name(settings)
    secret = limiter_secret(settings)
    if name == "redis":
        if settings.redis_url is None:
            from lifecert.domain.errors import ErrorCode, LifecertError

            raise LifecertError(
                "LIFECERT_RATELIMIT_BACKEND=redis needs LIFECERT_REDIS_URL", code=ErrorCode.CONFIG_ERROR
            )
        return RedisRateLimiter(settings.redis_url.get_secret_value(), scope, capacity, period_s, secret)
    if name == "database":
        return DatabaseRateLimiter(db, scope, capacity, period_s, secret)
    return RateLimiter(capacity, period_s)
