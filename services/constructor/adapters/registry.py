"""Reading the live agent registry: every ``AgentRegistration`` in the agents KV bucket.

Entries expire by the bucket's TTL, so whatever is there heartbeated recently. An entry that
expires between listing and reading, or that does not parse, is skipped.
"""

from __future__ import annotations

import asyncio

from nats.js.errors import BucketNotFoundError, KeyNotFoundError, NoKeysError
from nats.js.kv import KeyValue
from pydantic import ValidationError

from taskloom.bus import Bus, BusUnavailable
from taskloom.contracts.agents import AgentRegistration
from taskloom.observability import get_logger

__all__ = ["read_registrations"]

_log = get_logger(__name__)


async def _entry(kv: KeyValue, key: str) -> AgentRegistration | None:
    try:
        entry = await kv.get(key)
    except KeyNotFoundError:  # expired or deleted since keys() listed it
        return None
    if not entry.value:
        return None
    try:
        return AgentRegistration.model_validate_json(entry.value)
    except ValidationError as exc:
        _log.warning("unreadable agent registration", key=key, error=str(exc))
        return None


async def read_registrations(bus: Bus, timeout: float = 5.0) -> list[AgentRegistration]:  # noqa: ASYNC109
    """Every live agent instance; an empty list when the bucket is empty or missing.
    Raises ``BusUnavailable`` when NATS does not answer."""
    try:
        kv = await bus.registry()
        keys = await asyncio.wait_for(kv.keys(), timeout)
        found = await asyncio.wait_for(asyncio.gather(*(_entry(kv, k) for k in keys)), timeout)
    except (NoKeysError, BucketNotFoundError):
        return []
    except TimeoutError as exc:
        raise BusUnavailable(f"agent registry did not answer: {exc}") from None
    return [r for r in found if r is not None]
