"""The shape of Taskloom's JetStream set-up, as data: which streams exist, what they capture,
how long they keep messages. Pure (no I/O), so the configuration is tested without a server;
``taskloom.bus.admin`` applies it.

| kind     | subjects          | retention  | max age (default)                 |
|----------|-------------------|------------|-----------------------------------|
| commands | ``ns.cmd.>``      | limits     | ``transport_max_age`` (30 days)   |
| graphs   | ``ns.graphs.>``   | limits     | ``transport_max_age`` (30 days)   |
| tasks    | ``ns.tasks.>``    | work queue | none: an assignment never expires |
| progress | ``ns.progress.>`` | limits     | ``transport_max_age`` (30 days)   |
| events   | ``ns.events.>``   | limits     | ``events_max_age`` (7 days)       |
| dlq      | ``ns.dlq.>``      | limits     | ``dead_letter_max_age`` (settings)|

Every stream is file-backed with the settings' duplicate window. The transport streams get a
generous age bound only so that disks cannot fill: PostgreSQL, not JetStream, is the record.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig

from taskloom.contracts.subjects import Subjects
from taskloom.settings import Settings

__all__ = ["StreamKind", "Topology"]

_DAY = 24 * 3600.0


class StreamKind(StrEnum):
    """The streams Taskloom declares; ``Subjects.stream(kind)`` names them."""

    COMMANDS = "commands"
    GRAPHS = "graphs"
    TASKS = "tasks"
    PROGRESS = "progress"
    EVENTS = "events"
    DLQ = "dlq"


@dataclass(frozen=True)
class Topology:
    """Tunable limits of the streams and the agent registry bucket (seconds throughout)."""

    dedup_window: float = 120.0
    events_max_age: float = 7 * _DAY
    transport_max_age: float = 30 * _DAY
    dead_letter_max_age: float = 14 * _DAY
    agent_registry_ttl: float = 30.0
    replicas: int = 1

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> Topology:
        """Defaults taken from ``settings``: the registry TTL is the heartbeat timeout, so an
        instance that stops heartbeating drops out of the registry when it is declared dead."""
        base = cls(
            dedup_window=float(settings.dedup_window_seconds),
            dead_letter_max_age=float(settings.dead_letter_max_age_seconds),
            agent_registry_ttl=float(settings.heartbeat_timeout_seconds),
        )
        return replace(base, **overrides)

    def __post_init__(self) -> None:
        for field in ("dedup_window", "events_max_age", "transport_max_age", "dead_letter_max_age"):
            if getattr(self, field) <= 0:
                raise ValueError(f"{field} must be > 0")
        if self.agent_registry_ttl <= 0:
            raise ValueError("agent_registry_ttl must be > 0")
        if self.replicas < 1:
            raise ValueError("replicas must be >= 1")

    def max_age(self, kind: StreamKind) -> float | None:
        if kind is StreamKind.TASKS:
            return None
        if kind is StreamKind.EVENTS:
            return self.events_max_age
        if kind is StreamKind.DLQ:
            return self.dead_letter_max_age
        return self.transport_max_age

    def stream_config(self, subjects: Subjects, kind: StreamKind | str) -> StreamConfig:
        """The configuration the stream of ``kind`` must have."""
        kind = StreamKind(kind)
        max_age = self.max_age(kind)
        # the server refuses a duplicate window longer than the stream's max age
        window = self.dedup_window if max_age is None else min(self.dedup_window, max_age)
        return StreamConfig(
            name=subjects.stream(kind.value),
            description=f"taskloom {kind.value} ({subjects.namespace})",
            subjects=[_capture(subjects, kind)],
            retention=RetentionPolicy.WORK_QUEUE if kind is StreamKind.TASKS else RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            discard=DiscardPolicy.OLD,
            max_age=max_age,
            duplicate_window=window,
            num_replicas=self.replicas,
        )

    def stream_configs(self, subjects: Subjects) -> list[StreamConfig]:
        return [self.stream_config(subjects, kind) for kind in StreamKind]


def _capture(subjects: Subjects, kind: StreamKind) -> str:
    return {
        StreamKind.COMMANDS: subjects.commands_all,
        StreamKind.GRAPHS: subjects.graphs_all,
        StreamKind.TASKS: subjects.tasks_all,
        StreamKind.PROGRESS: subjects.progress_all,
        StreamKind.EVENTS: subjects.events_all,
        StreamKind.DLQ: subjects.dead_letters_all,
    }[kind]
