"""Value types of the event store API: what goes in, what comes out.

Plain frozen dataclasses (with slots) rather than pydantic models: a stream read decodes
thousands of rows, and these carry already-validated data from our own tables.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any, Final, Literal, TypeAlias

__all__ = [
    "ANY",
    "NO_STREAM",
    "AppendResult",
    "BatchResult",
    "ExpectedVersion",
    "Fragment",
    "NewEvent",
    "OutboxMessage",
    "RecordedEvent",
    "Snapshot",
    "StreamAppend",
    "check_batch",
    "expected_as_int",
    "dumps",
    "new_event_id",
]


class _AnyVersion(Enum):
    ANY = "any"

    def __repr__(self) -> str:
        return "ANY"


ANY: Final = _AnyVersion.ANY
"""``expected_version=ANY``: append whatever the stream's current version is."""

NO_STREAM: Final = 0
"""``expected_version=NO_STREAM`` (0): the stream must not exist yet."""

ExpectedVersion: TypeAlias = int | Literal[_AnyVersion.ANY]


def expected_as_int(expected: ExpectedVersion) -> int | None:
    """The expected version as the SQL parameter: ``None`` for ANY, else a non-negative int."""
    if expected is ANY:
        return None
    if isinstance(expected, bool) or not isinstance(expected, int) or expected < 0:
        raise ValueError(f"expected_version must be ANY or an int >= 0, not {expected!r}")
    return expected


def new_event_id() -> str:
    return str(uuid.uuid4())


def dumps(value: Any) -> str:
    """Compact JSON as stored in ``jsonb`` columns (non-JSON values are a caller bug)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event to append. ``event_id`` makes the append idempotent: choose it deterministically
    (e.g. the id of the message that caused it) so a redelivery appends nothing."""

    event_id: str
    type: str
    data: Mapping[str, Any]
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.event_id:
            raise ValueError("event_id must not be empty")
        if not self.type:
            raise ValueError("event type must not be empty")

    @classmethod
    def create(
        cls, type: str, data: Mapping[str, Any], metadata: Mapping[str, Any] | None = None
    ) -> NewEvent:
        """A new event with a random id (for events that no redelivery can repeat)."""
        return cls(new_event_id(), type, data, metadata or {})


@dataclass(frozen=True, slots=True)
class RecordedEvent:
    """An event as stored: ``position`` is global and gap-free in commit order, ``version`` is
    its 1-based place in its stream."""

    position: int
    stream_id: str
    version: int
    event_id: str
    type: str
    data: dict[str, Any]
    metadata: dict[str, Any]
    recorded_at: datetime

    def to_json(self) -> bytes:
        """The event as a UTF-8 JSON document (what the event relay publishes by default)."""
        return dumps(
            {
                "position": self.position,
                "stream_id": self.stream_id,
                "version": self.version,
                "event_id": self.event_id,
                "type": self.type,
                "data": self.data,
                "metadata": self.metadata,
                "recorded_at": self.recorded_at.isoformat(),
            }
        ).encode()


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    """A message to publish to JetStream once the transaction that adds it commits.
    ``message_id`` becomes ``Nats-Msg-Id``; adding the same id twice stores it once."""

    message_id: str
    subject: str
    payload: bytes
    headers: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.message_id:
            raise ValueError("message_id must not be empty")
        if not self.subject:
            raise ValueError("subject must not be empty")


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A cached fold of a stream up to and including ``version``."""

    stream_id: str
    version: int
    state: dict[str, Any]
    saved_at: datetime


@dataclass(frozen=True, slots=True)
class AppendResult:
    """What one append did.

    ``version`` is the stream's version after the append; ``appended`` is 0 when every event id
    was already stored (an idempotent no-op), and then ``last_position`` is ``None``.
    ``message_ids`` are the outbox rows this append stored (give them to
    ``OutboxRelay.publish_now`` for low-latency dispatch).
    """

    stream_id: str
    version: int
    appended: int
    last_position: int | None
    message_ids: tuple[str, ...] = ()

    @property
    def first_position(self) -> int | None:
        return None if self.last_position is None else self.last_position - self.appended + 1


@dataclass(frozen=True, slots=True)
class StreamAppend:
    """Events for one stream in ``EventStore.append_many``: they take versions
    ``expected_version + 1 ...``, so ``expected_version`` must be the stream's version as read
    from the store (0 for a new stream); ``ANY`` is not accepted there."""

    stream_id: str
    events: Sequence[NewEvent]
    expected_version: int


@dataclass(frozen=True, slots=True)
class Fragment:
    """Data-modifying CTEs fused into ``append_many``'s statement so that a caller's own writes
    (read models, timers) commit in the same round trip as the events.

    ``ctes`` is ``name AS (...), name AS (...)`` written with its own parameters ``$1..$n``
    (``args``); the store renumbers them. The CTEs must not read the event store's tables:
    every part of one statement sees the same snapshot, not each other's changes."""

    ctes: str
    args: tuple[Any, ...] = ()


@dataclass(frozen=True, slots=True)
class BatchResult:
    """What ``append_many`` stored: the last position taken (``None`` when no events), the
    outbox message ids newly stored (ids already present are skipped) and how many earlier
    rows it marked published."""

    appended: int
    last_position: int | None
    message_ids: tuple[str, ...] = ()
    marked: int = 0


def check_batch(events: Sequence[NewEvent]) -> None:
    """Reject a batch that repeats an event id (the store would keep only the first)."""
    seen: set[str] = set()
    for event in events:
        if event.event_id in seen:
            raise ValueError(f"event id {event.event_id!r} appears twice in one append")
        seen.add(event.event_id)
