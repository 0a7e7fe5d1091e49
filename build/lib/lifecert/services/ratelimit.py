"""Rate limiting: token buckets keyed by a string (in memory, per process).

Moved unchanged out of the verification service; the shared limiter (Redis / PostgreSQL)
belongs here too (issue 14).
"""

from __future__ import annotations

import threading
import time


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
