"""Taskloom's event store on PostgreSQL: streams with optimistic concurrency and idempotent
appends, a gap-free global position, snapshots, a transactional outbox with its JetStream relay,
and an event relay that publishes every stored event. See ``store`` for the design."""

from taskloom.eventstore.errors import (
    ConcurrencyConflict,
    DuplicateEventId,
    EventStoreError,
    MigrationError,
    RetryableError,
    StoreUnavailable,
    StreamNotFound,
)
from taskloom.eventstore.migrator import Migration, load_migrations, migrate
from taskloom.eventstore.models import (
    ANY,
    NO_STREAM,
    AppendResult,
    BatchResult,
    ExpectedVersion,
    Fragment,
    NewEvent,
    OutboxMessage,
    RecordedEvent,
    Snapshot,
    StreamAppend,
)
from taskloom.eventstore.outbox import OutboxRelay
from taskloom.eventstore.relay import EventRelay
from taskloom.eventstore.store import EventStore, Transaction

__all__ = [
    "ANY",
    "NO_STREAM",
    "AppendResult",
    "BatchResult",
    "ConcurrencyConflict",
    "DuplicateEventId",
    "EventRelay",
    "EventStore",
    "EventStoreError",
    "ExpectedVersion",
    "Fragment",
    "Migration",
    "MigrationError",
    "NewEvent",
    "OutboxMessage",
    "OutboxRelay",
    "RecordedEvent",
    "RetryableError",
    "Snapshot",
    "StoreUnavailable",
    "StreamAppend",
    "StreamNotFound",
    "Transaction",
    "load_migrations",
    "migrate",
]
