"""The constructor's I/O: the live agent registry (NATS KV) and agent performance history
(PostgreSQL)."""

from taskloom.constructor.adapters.history import PerformanceHistory
from taskloom.constructor.adapters.registry import read_registrations

__all__ = ["PerformanceHistory", "read_registrations"]
