"""The event store's typed errors: the only exceptions its public API raises.

Low-level driver errors (asyncpg, SQLAlchemy, sockets) are translated at the boundary, so a
caller decides what to do by type alone: a ``RetryableError`` is worth another attempt (after
reloading, for a conflict), anything else is permanent.
"""

from __future__ import annotations

__all__ = [
    "ConcurrencyConflict",
    "DuplicateEventId",
    "EventStoreError",
    "MigrationError",
    "RetryableError",
    "StoreUnavailable",
    "StreamNotFound",
]


class EventStoreError(Exception):
    """Base of every error the event store raises."""


class RetryableError(EventStoreError):
    """A failure that may succeed when tried again."""


class ConcurrencyConflict(RetryableError):
    """The stream is not at the expected version: another writer appended first.

    Reload the stream, decide again and retry the append.
    """

    def __init__(self, stream_id: str, expected: int | None, actual: int) -> None:
        self.stream_id = stream_id
        self.expected = expected  # None stands for ANY (a race on the version, not a stale decision)
        self.actual = actual
        shown = "ANY" if expected is None else str(expected)
        super().__init__(f"stream {stream_id!r}: expected version {shown}, actual {actual}")


class StoreUnavailable(RetryableError):
    """PostgreSQL could not be reached or dropped the connection mid-operation."""


class StreamNotFound(EventStoreError):
    """A stream that must exist has no events."""

    def __init__(self, stream_id: str) -> None:
        self.stream_id = stream_id
        super().__init__(f"stream {stream_id!r} does not exist")


class DuplicateEventId(EventStoreError):
    """An event id is already stored in a *different* stream (ids are global; a bug upstream)."""

    def __init__(self, event_id: str, stored_in: str, appended_to: str) -> None:
        self.event_id = event_id
        self.stored_in = stored_in
        self.appended_to = appended_to
        super().__init__(f"event id {event_id!r} already stored in stream {stored_in!r}, not {appended_to!r}")


class MigrationError(EventStoreError):
    """A migration set is malformed or a migration failed to apply."""
