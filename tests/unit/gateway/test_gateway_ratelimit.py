"""Token bucket arithmetic with an explicit clock."""

from __future__ import annotations

import pytest

from taskloom.gateway.domain.ratelimit import RateLimiter


def test_burst_then_refusal_then_refill():
    limiter = RateLimiter(rate=2.0, burst=3)
    assert [limiter.acquire("a", 0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = limiter.acquire("a", 0.0)
    assert wait == pytest.approx(0.5)
    assert limiter.acquire("a", 0.5) == 0.0  # one token refilled after 1/rate seconds
    assert limiter.acquire("a", 0.5) > 0


def test_keys_are_independent():
    limiter = RateLimiter(rate=1.0, burst=1)
    assert limiter.acquire("a", 0.0) == 0.0
    assert limiter.acquire("a", 0.0) > 0
    assert limiter.acquire("b", 0.0) == 0.0


def test_refill_is_capped_at_burst():
    limiter = RateLimiter(rate=10.0, burst=2)
    limiter.acquire("a", 0.0)
    assert [limiter.acquire("a", 1000.0) for _ in range(3)][2] > 0


def test_retry_after_is_whole_seconds_never_zero():
    assert RateLimiter.retry_after_header(0.01) == "1"
    assert RateLimiter.retry_after_header(2.2) == "3"


def test_eviction_keeps_memory_bounded():
    limiter = RateLimiter(rate=1.0, burst=1, max_keys=10)
    for i in range(100):
        limiter.acquire(f"k{i}", float(i))
    assert len(limiter._buckets) <= 10


def test_bad_configuration_is_refused():
    with pytest.raises(ValueError):
        RateLimiter(rate=0, burst=1)
