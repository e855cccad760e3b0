"""A per-key token bucket. Time is passed in, so the arithmetic is tested without clocks."""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["Bucket", "RateLimiter"]


@dataclass(slots=True)
class Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """``rate`` tokens per second refill each key's bucket up to ``burst``; a request takes one."""

    def __init__(self, rate: float, burst: int, max_keys: int = 100_000) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: dict[str, Bucket] = {}

    def acquire(self, key: str, now: float) -> float:
        """Take a token for ``key``: 0.0 when allowed, else the seconds until one is available."""
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_keys:
                self._evict(now)
            bucket = self._buckets[key] = Bucket(float(self.burst), now)
        elapsed = max(now - bucket.updated, 0.0)
        bucket.tokens = min(float(self.burst), bucket.tokens + elapsed * self.rate)
        bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.rate

    @staticmethod
    def retry_after_header(wait: float) -> str:
        """``Retry-After`` is whole seconds; never advertise 0 for a refused request."""
        return str(max(1, math.ceil(wait)))

    def _evict(self, now: float) -> None:
        # full buckets carry no state worth keeping: a new bucket starts full anyway
        full_after = self.burst / self.rate
        stale = [k for k, b in self._buckets.items() if now - b.updated >= full_after]
        for key in stale or list(self._buckets)[: len(self._buckets) // 2]:
            del self._buckets[key]
