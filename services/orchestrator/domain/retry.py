"""Backoff delays of a retry policy. Jitter is derived from the task id and attempt number, so
replaying the events yields the same schedule as the live run."""

from __future__ import annotations

import hashlib

from taskloom.contracts.enums import BackoffStrategy
from taskloom.contracts.graph import RetryPolicy

__all__ = ["backoff_delay", "unit_jitter"]


def unit_jitter(task_id: str, attempt: int) -> float:
    """A deterministic number in [0, 1) for this task and attempt."""
    digest = hashlib.blake2b(f"{task_id}:{attempt}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def backoff_delay(policy: RetryPolicy, failures_on_agent: int, task_id: str, next_attempt: int) -> float:
    """Seconds to wait before the retry that follows the ``failures_on_agent``-th failure."""
    base = policy.base_delay_seconds
    n = max(1, failures_on_agent)
    match policy.backoff_strategy:
        case BackoffStrategy.FIXED:
            delay = base
        case BackoffStrategy.EXPONENTIAL:
            delay = base * 2 ** (n - 1)
        case BackoffStrategy.EXPONENTIAL_JITTER:
            # "full jitter" keeps retries of many tasks from hitting an agent at the same moment
            delay = base * 2 ** (n - 1) * (0.5 + unit_jitter(task_id, next_attempt) / 2)
    return float(min(delay, policy.max_delay_seconds))
