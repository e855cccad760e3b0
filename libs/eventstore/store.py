"""The event store: append-only streams in PostgreSQL with optimistic concurrency, idempotent
appends, a global position that is gap-free in commit order, snapshots, checkpoints and a
transactional outbox.

How the global position is assigned
-----------------------------------
``position`` comes from a single counter row (``event_position``), incremented by the appending
statement itself. The row lock that the increment takes is held until COMMIT, so appenders pass
the counter one at a time: a transaction can only take positions after every earlier holder has
committed (and become visible) or rolled back (and given its numbers back, since the counter
update rolls back too). Positions therefore appear in commit order with no gaps, and a reader of
"every event after N" can never skip an event that commits later with a smaller position, which
a ``bigserial`` alone allows. The increment is the last thing an append does before COMMIT (in
``append`` it is one statement that is its own transaction; in ``transaction()`` the appends are
buffered and flushed just before COMMIT), so the lock is held for the shortest possible time.

The price is that appends to *different* streams serialise on that row for the length of a
commit (with ``synchronous_commit=on``, one WAL flush). Alternatives considered: a table lock
(``LOCK TABLE ... IN EXCLUSIVE MODE``, pyeventsourcing's choice) has the same cost and also
blocks other writers for the whole transaction; recording ``pg_current_xact_id()`` (xid8) per
event and letting readers stop at ``pg_snapshot_xmin(pg_current_snapshot())`` avoids the
serialisation, but positions then have gaps and readers lag behind the oldest open transaction,
which makes "after position N" harder for every consumer. A serialised counter is simple, well
known and fast enough for workflow orchestration (thousands of appends per second).

Concurrency and idempotency
---------------------------
``(stream_id, version)`` and ``event_id`` are unique. An append whose every event id is already
stored appends nothing and succeeds, so a redelivered message is harmless. A stale
``expected_version`` raises ``ConcurrencyConflict``; two racing appenders that read the same
version are settled by the unique index, and the loser re-checks with a fresh snapshot.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from taskloom.eventstore._pg import (
    PinnedConnection,
    driver_connection,
    pg_error,
    raw_transaction,
    translate_errors,
)
from taskloom.eventstore.errors import ConcurrencyConflict, DuplicateEventId, StreamNotFound
from taskloom.eventstore.migrator import migrate
from taskloom.eventstore.models import (
    AppendResult,
    BatchResult,
    ExpectedVersion,
    Fragment,
    NewEvent,
    OutboxMessage,
    RecordedEvent,
    Snapshot,
    StreamAppend,
    check_batch,
    dumps,
    expected_as_int,
)
from taskloom.eventstore.sql import Statements
from taskloom.settings import Settings, sqlalchemy_url

__all__ = ["COMPONENT", "MIGRATIONS_DIR", "EventStore", "Transaction", "decode_event", "interpret_append"]

COMPONENT: Final = "eventstore"
MIGRATIONS_DIR: Final = Path(__file__).parent / "migrations"
_MAX_VERSION: Final = 2**31 - 1
# Unique violations that mean "another appender got there first": worth one re-check.
_RACE_CONSTRAINTS: Final = frozenset({"events_stream_version_key", "events_event_id_key"})
_RACE_RETRIES: Final = 5
_APPEND_MANY_PARAMS: Final = 14
_PARAM = re.compile(r"\$(\d+)")
_KEY_DETAIL = re.compile(r"^Key \((?P<cols>[^)]*)\)=\((?P<vals>.*)\) already exists")


def _shift_params(sql: str, offset: int) -> str:
    return _PARAM.sub(lambda m: f"${int(m.group(1)) + offset}", sql)


def _collision(exc: BaseException, appends: Sequence[StreamAppend]) -> Exception | None:
    """The store error an ``append_many`` unique violation stands for (None: not one of ours)."""
    pg = pg_error(exc)
    constraint = getattr(pg, "constraint_name", None) if pg is not None else None
    if constraint not in _RACE_CONSTRAINTS:
        return None
    match = _KEY_DETAIL.match(str(getattr(pg, "detail", "") or ""))
    values = match.group("vals") if match else ""
    if constraint == "events_event_id_key":
        return DuplicateEventId(values, "another stream or an earlier append", "this batch")
    # "Key (stream_id, version)=(wf-1, 7) already exists": the version is after the last comma
    stream_id = values.rsplit(", ", 1)[0] if values else ""
    for a in appends:
        if a.stream_id == stream_id:
            return ConcurrencyConflict(a.stream_id, a.expected_version, -1)
    first = appends[0]
    return ConcurrencyConflict(first.stream_id if not stream_id else stream_id, first.expected_version, -1)


def interpret_append(stream_id: str, expected: int | None, n_events: int, row: Sequence[Any]) -> AppendResult:
    """Turn the append statement's result row into a result or the right error."""
    head, appended, last_position, duplicates, foreign_id, message_ids = row[:6]
    if appended:
        return AppendResult(stream_id, head + appended, appended, last_position, tuple(message_ids))
    if foreign_id is not None:
        event_id, stored_in = str(foreign_id).rsplit(" ", 1)
        raise DuplicateEventId(event_id, stored_in, stream_id)
    if duplicates >= n_events:
        return AppendResult(stream_id, head, 0, None, ())
    raise ConcurrencyConflict(stream_id, expected, head)


def decode_event(row: Sequence[Any]) -> RecordedEvent:
    data, metadata = row[5], row[6]
    # SQLAlchemy's asyncpg dialect installs a jsonb codec that already parsed these
    if isinstance(data, str):
        data = json.loads(data)
    if isinstance(metadata, str):
        metadata = json.loads(metadata)
    return RecordedEvent(row[0], row[1], row[2], row[3], row[4], data, metadata, row[7])


def _outbox_arrays(messages: Sequence[OutboxMessage]) -> tuple[list[str], list[str], list[bytes], list[str]]:
    return (
        [m.message_id for m in messages],
        [m.subject for m in messages],
        [bytes(m.payload) for m in messages],
        [dumps(dict(m.headers)) for m in messages],
    )


@dataclass(frozen=True, slots=True)
class _PendingAppend:
    stream_id: str
    events: tuple[NewEvent, ...]
    expected: int | None
    outbox: tuple[OutboxMessage, ...]


class EventStore:
    """Streams of events in PostgreSQL. Create with ``connect(url)`` or ``from_engine(engine)``,
    call ``migrate()`` once at start-up, ``close()`` at the end (or use ``async with``)."""

    def __init__(self, engine: AsyncEngine, *, schema: str = "public", owns_engine: bool = False) -> None:
        self._engine = engine
        self._owns_engine = owns_engine
        self._sql = Statements.for_schema(schema)
        self._fused_cache: dict[str, str] = {}
        self._pinned = PinnedConnection(engine)

    # --- construction -----------------------------------------------------------------------
    @classmethod
    def connect(cls, url: str, pool_size: int = 10, *, schema: str = "public", **engine_options: Any) -> Self:
        """A store with its own connection pool of ``pool_size`` connections (plus as many
        overflow connections) on the PostgreSQL at ``url``."""
        options: dict[str, Any] = {"pool_size": pool_size, "max_overflow": pool_size}
        options.update(engine_options)
        engine = create_async_engine(sqlalchemy_url(url), **options)
        return cls(engine, schema=schema, owns_engine=True)

    @classmethod
    def from_engine(cls, engine: AsyncEngine, *, schema: str = "public") -> Self:
        """A store on a pool the caller owns (and disposes)."""
        return cls(engine, schema=schema)

    @classmethod
    def from_settings(cls, settings: Settings, *, schema: str = "public") -> Self:
        if not settings.database_url:
            raise ValueError("settings.database_url is not set")
        return cls.connect(settings.database_url, settings.db_pool_size, schema=schema)

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    @property
    def schema(self) -> str:
        return self._sql.schema

    @property
    def statements(self) -> Statements:
        return self._sql

    async def migrate(self) -> list[int]:
        """Create or upgrade the store's tables; safe to run from every starting process."""
        return await migrate(self._engine, COMPONENT, MIGRATIONS_DIR, schema=self.schema)

    async def close(self) -> None:
        await self._pinned.close()
        if self._owns_engine:
            await self._engine.dispose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        await self.close()

    @asynccontextmanager
    async def driver(self) -> AsyncIterator[Any]:
        """A pooled connection as the bare asyncpg connection (for the relays' hot paths)."""
        async with driver_connection(self._engine) as conn:
            yield conn

    @asynccontextmanager
    async def pinned(self) -> AsyncIterator[Any]:
        """The store's one long-held driver connection, for a serial hot path that would
        otherwise check a connection out of the pool for every statement (the orchestrator's
        commits). Callers take turns; a failed connection is replaced on the next use."""
        async with self._pinned.use() as conn:
            yield conn

    @asynccontextmanager
    async def pinned_transaction(self, *, advisory_lock: int | None = None) -> AsyncIterator[Any]:
        """A transaction on the store's long-held connection (see ``pinned()``), committed when
        the block ends and rolled back on an error, with driver errors translated.
        ``advisory_lock``: a transaction-scoped advisory lock taken in the same round trip as
        the ``BEGIN``, for a caller that reads under a lock and then writes with
        ``append_many(connection=...)``."""
        begin = "BEGIN"
        if advisory_lock is not None:
            begin = f"BEGIN; SELECT pg_advisory_xact_lock({int(advisory_lock)})"
        async with translate_errors("transaction"), self.pinned() as conn, raw_transaction(conn, begin):
            yield conn

    # --- writing ----------------------------------------------------------------------------
    def _append_args(self, p: _PendingAppend) -> tuple[Any, ...]:
        events = p.events
        return (
            p.stream_id,
            p.expected,
            [e.event_id for e in events],
            [e.type for e in events],
            [dumps(e.data) for e in events],
            [dumps(e.metadata) for e in events],
            *_outbox_arrays(p.outbox),
            self._sql.outbox_channel,
            self._sql.events_channel,
        )

    async def append(
        self,
        stream_id: str,
        events: Sequence[NewEvent],
        expected_version: ExpectedVersion,
        outbox: Iterable[OutboxMessage] = (),
    ) -> AppendResult:
        """Append ``events`` to a stream, in a transaction of its own, with the ``outbox``
        messages they cause; one round trip.

        ``expected_version`` is the stream's version the caller decided on (0: the stream must
        not exist yet) or ``ANY``. Raises ``ConcurrencyConflict`` when the stream moved on. Event
        ids already stored make the append a no-op (and its outbox messages are not stored). With
        no events, nothing is checked and only the outbox messages are stored.
        """
        pending = _pending(stream_id, events, expected_version, outbox)
        if not pending.events:
            ids = await self.add_outbox(*pending.outbox)
            return AppendResult(stream_id, await self.stream_version(stream_id), 0, None, ids)
        args = self._append_args(pending)
        async with translate_errors(f"append to {stream_id!r}"):
            for _ in range(_RACE_RETRIES):
                try:
                    async with self.driver() as conn:
                        row = await conn.fetchrow(self._sql.append, *args)
                except Exception as exc:
                    pg = pg_error(exc)
                    if pg is None or getattr(pg, "constraint_name", None) not in _RACE_CONSTRAINTS:
                        raise
                    # a concurrent appender committed first while this statement's snapshot was
                    # older; run again with a fresh one to tell a conflict from a duplicate
                    continue
                return interpret_append(stream_id, pending.expected, len(pending.events), row)
            raise ConcurrencyConflict(stream_id, pending.expected, await self.stream_version(stream_id))

    async def append_many(
        self,
        appends: Sequence[StreamAppend],
        outbox: Sequence[OutboxMessage] = (),
        *,
        also: Fragment | None = None,
        mark_published: Sequence[str] = (),
        notify_outbox: bool = True,
        connection: Any = None,
    ) -> BatchResult:
        """Append to several streams, store ``outbox`` messages and run the caller's fused
        ``also`` writes, all in ONE statement that is its own transaction: one round trip.

        ``mark_published``: outbox rows of earlier commits that the caller has published itself
        (``DirectRelay``), marked in the same statement instead of by a relay cycle of their own.
        ``notify_outbox=False`` skips waking the relays for the new rows, for a caller that
        publishes them itself (the relays still find them on their next poll).
        ``connection``: a driver connection of the caller's (``pinned()``, or
        ``pinned_transaction()`` for a caller that reads under a lock first, the statement then
        committing with that transaction).

        Each stream's events take the versions after its ``expected_version``; when another
        writer got there first, the unique ``(stream_id, version)`` index rejects the whole
        statement (nothing of it is stored) and ``ConcurrencyConflict`` names that stream, with
        ``actual`` unknown (-1): reload it and decide again. Unlike ``append``, an event id
        already stored is not skipped but raises ``DuplicateEventId``: callers of this path mint
        fresh ids per decision.
        """
        streams: list[str] = []
        versions: list[int] = []
        events: list[NewEvent] = []
        for a in appends:
            if not a.stream_id:
                raise ValueError("stream_id must not be empty")
            if not isinstance(a.expected_version, int) or a.expected_version < 0:
                raise ValueError(f"append_many needs a known expected version, not {a.expected_version!r}")
            for k, e in enumerate(a.events, 1):
                streams.append(a.stream_id)
                versions.append(a.expected_version + k)
                events.append(e)
        check_batch(events)
        sql = self._sql.append_many.replace("{extra}", "")
        extra: tuple[Any, ...] = ()
        if also is not None:
            sql = self._fused(also.ctes)
            extra = tuple(also.args)
        args = (
            streams,
            versions,
            [e.event_id for e in events],
            [e.type for e in events],
            [dumps(e.data) for e in events],
            [dumps(e.metadata) for e in events],
            *_outbox_arrays(outbox),
            len(events),
            self._sql.outbox_channel if notify_outbox else "",
            self._sql.events_channel,
            list(mark_published),
            *extra,
        )
        async with translate_errors("append to several streams"):
            try:
                if connection is not None:
                    row = await connection.fetchrow(sql, *args)
                else:
                    async with self.driver() as conn:
                        row = await conn.fetchrow(sql, *args)
            except Exception as exc:
                known = _collision(exc, appends)
                if known is not None:
                    raise known from None
                raise
        return BatchResult(len(events), row[0], tuple(row[1]), int(row[4]))

    def _fused(self, ctes: str) -> str:
        cache = self._fused_cache
        sql = cache.get(ctes)
        if sql is None:
            body = _shift_params(ctes, _APPEND_MANY_PARAMS).strip()
            sql = self._sql.append_many.replace("{extra}", f",\n{body}")
            if len(cache) > 64:
                cache.clear()
            cache[ctes] = sql
        return sql

    async def add_outbox(self, *messages: OutboxMessage) -> tuple[str, ...]:
        """Store messages for the relay on their own (no events); returns the ids newly stored."""
        if not messages:
            return ()
        async with translate_errors("add to outbox"), self.driver() as conn:
            row = await conn.fetchrow(
                self._sql.add_outbox, *_outbox_arrays(messages), self._sql.outbox_channel
            )
        return tuple(row[0])

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        """A unit of work: appends to any number of streams, outbox messages, checkpoints and the
        caller's own statements on ``tx.connection`` commit together or not at all.

        Appends are checked and written when the block ends, just before COMMIT (that is when
        positions are taken, keeping the counter lock short): a ``ConcurrencyConflict`` is raised
        from the end of the ``async with`` block and everything is rolled back.
        """
        async with translate_errors("transaction"), self._engine.connect() as conn:
            # the flush relies on each statement seeing every commit made before it
            await conn.execution_options(isolation_level="READ COMMITTED")
            async with conn.begin():
                tx = Transaction(self, conn)
                yield tx
                await tx._flush()
            tx._committed = True

    async def save_snapshot(self, stream_id: str, version: int, state: Mapping[str, Any]) -> None:
        """Cache the fold of a stream up to ``version``; an older snapshot never replaces a newer one."""
        if version < 1:
            raise ValueError("a snapshot is of version 1 or later")
        async with translate_errors(f"save snapshot of {stream_id!r}"), self.driver() as conn:
            await conn.execute(self._sql.save_snapshot, stream_id, version, dumps(state))

    async def save_checkpoint(self, name: str, position: int) -> None:
        async with translate_errors(f"save checkpoint {name!r}"), self.driver() as conn:
            await conn.execute(self._sql.save_checkpoint, name, position)

    # --- reading ----------------------------------------------------------------------------
    async def read_stream(
        self, stream_id: str, from_version: int = 0, to_version: int | None = None, *, required: bool = False
    ) -> list[RecordedEvent]:
        """The stream's events with ``from_version <= version <= to_version`` (both inclusive),
        oldest first. An unknown stream reads as empty unless ``required`` (``StreamNotFound``)."""
        upper = _MAX_VERSION if to_version is None else to_version
        async with translate_errors(f"read stream {stream_id!r}"), self.driver() as conn:
            rows = await conn.fetch(self._sql.read_stream, stream_id, from_version, upper)
            if not rows and required and await conn.fetchval(self._sql.stream_version, stream_id) == 0:
                raise StreamNotFound(stream_id)
        return [decode_event(r) for r in rows]

    async def read_all(self, after_position: int = 0, limit: int = 1000) -> list[RecordedEvent]:
        """Up to ``limit`` events of every stream with ``position > after_position``, in position
        order. Positions are gap-free in commit order, so polling with the last position seen
        never misses an event."""
        async with translate_errors("read all"), self.driver() as conn:
            rows = await conn.fetch(self._sql.read_all, after_position, limit)
        return [decode_event(r) for r in rows]

    async def stream_version(self, stream_id: str) -> int:
        """The version of the stream's last event; 0 when it has none."""
        async with translate_errors(f"version of {stream_id!r}"), self.driver() as conn:
            return int(await conn.fetchval(self._sql.stream_version, stream_id))

    async def head_position(self) -> int:
        """The position of the last committed event (0 when the store is empty)."""
        async with translate_errors("head position"), self.driver() as conn:
            return int(await conn.fetchval(self._sql.head_position))

    async def load_streams(
        self, stream_ids: Sequence[str], *, snapshots: bool = True
    ) -> dict[str, tuple[Snapshot | None, list[RecordedEvent]]]:
        """Many streams at once (two statements, one connection): for each id its latest
        snapshot (when ``snapshots``) and the events after it, oldest first. Unknown streams
        come back as ``(None, [])``."""
        ids = list(dict.fromkeys(stream_ids))
        out: dict[str, tuple[Snapshot | None, list[RecordedEvent]]] = {i: (None, []) for i in ids}
        if not ids:
            return out
        async with translate_errors("load streams"), self.driver() as conn:
            if snapshots:
                for row in await conn.fetch(self._sql.load_snapshots, ids):
                    state = row[2] if not isinstance(row[2], str) else json.loads(row[2])
                    out[row[0]] = (Snapshot(row[0], row[1], state, row[3]), [])
            after = [0 if out[i][0] is None else out[i][0].version for i in ids]  # type: ignore[union-attr]
            rows = await conn.fetch(self._sql.read_streams, ids, after)
        for row in rows:
            out[row[1]][1].append(decode_event(row))
        return out

    async def load_snapshot(self, stream_id: str) -> Snapshot | None:
        async with translate_errors(f"load snapshot of {stream_id!r}"), self.driver() as conn:
            row = await conn.fetchrow(self._sql.load_snapshot, stream_id)
        if row is None:
            return None
        state = row[2] if not isinstance(row[2], str) else json.loads(row[2])
        return Snapshot(row[0], row[1], state, row[3])

    async def load_checkpoint(self, name: str) -> int:
        """The position a named consumer has processed up to (0 when it never ran)."""
        async with translate_errors(f"load checkpoint {name!r}"), self.driver() as conn:
            value = await conn.fetchval(self._sql.load_checkpoint, name)
        return 0 if value is None else int(value)


def _pending(
    stream_id: str, events: Sequence[NewEvent], expected: ExpectedVersion, outbox: Iterable[OutboxMessage]
) -> _PendingAppend:
    if not stream_id:
        raise ValueError("stream_id must not be empty")
    check_batch(events)
    return _PendingAppend(stream_id, tuple(events), expected_as_int(expected), tuple(outbox))


class Transaction:
    """One unit of work on the store (see ``EventStore.transaction``)."""

    def __init__(self, store: EventStore, connection: AsyncConnection) -> None:
        self._store = store
        self._connection = connection
        self._appends: list[_PendingAppend] = []
        self._outbox: list[OutboxMessage] = []
        self._committed = False
        self.results: list[AppendResult] = []
        """One result per ``append``, in call order, once the transaction has committed."""
        self.outbox_ids: tuple[str, ...] = ()
        """The ids of the ``add_outbox`` messages newly stored, once committed."""

    @property
    def connection(self) -> AsyncConnection:
        """The transaction's connection: update read models here to commit with the events."""
        return self._connection

    @property
    def committed(self) -> bool:
        return self._committed

    @property
    def message_ids(self) -> tuple[str, ...]:
        """Every outbox message id this transaction stored (for ``OutboxRelay.publish_now``)."""
        return tuple(i for r in self.results for i in r.message_ids) + self.outbox_ids

    def append(
        self,
        stream_id: str,
        events: Sequence[NewEvent],
        expected_version: ExpectedVersion,
        outbox: Iterable[OutboxMessage] = (),
    ) -> None:
        """Append to a stream when the transaction commits (same rules as ``EventStore.append``)."""
        self._check_open()
        pending = _pending(stream_id, events, expected_version, outbox)
        if pending.events:
            self._appends.append(pending)
        else:
            self._outbox.extend(pending.outbox)

    def add_outbox(self, *messages: OutboxMessage) -> None:
        """Publish these messages once the transaction commits."""
        self._check_open()
        self._outbox.extend(messages)

    async def save_checkpoint(self, name: str, position: int) -> None:
        """Record a consumer's position together with the effects of processing up to it."""
        self._check_open()
        sql = self._store.statements.save_checkpoint
        await self._connection.exec_driver_sql(sql, (name, position))

    def _check_open(self) -> None:
        if self._committed:
            raise RuntimeError("the transaction has already committed")

    async def _flush(self) -> None:
        sql = self._store.statements
        conn = self._connection
        if self._appends:
            # Take the counter first: every appender holds it until commit, so from here on each
            # statement's snapshot has seen all their events and the checks below cannot be stale.
            await conn.exec_driver_sql(sql.lock_counter)
            for p in self._appends:
                try:
                    row = (await conn.exec_driver_sql(sql.append, self._store._append_args(p))).one()
                except Exception as exc:
                    pg = pg_error(exc)
                    if pg is not None and getattr(pg, "constraint_name", None) in _RACE_CONSTRAINTS:
                        actual = await self._store.stream_version(p.stream_id)
                        raise ConcurrencyConflict(p.stream_id, p.expected, actual) from None
                    raise
                self.results.append(interpret_append(p.stream_id, p.expected, len(p.events), tuple(row)))
        if self._outbox:
            args = (*_outbox_arrays(self._outbox), sql.outbox_channel)
            row = (await conn.exec_driver_sql(sql.add_outbox, args)).one()
            self.outbox_ids = tuple(row[0])
