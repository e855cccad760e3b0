"""Appending and reading against a real PostgreSQL: ordering, optimistic concurrency,
idempotency and the gap-free global position under concurrency."""

from __future__ import annotations

# ruff: noqa: S608 - SQL names come from the test's own schema fixture
import asyncio
import random
import uuid

import pytest

from taskloom.eventstore import (
    ANY,
    ConcurrencyConflict,
    DuplicateEventId,
    EventStore,
    NewEvent,
    OutboxMessage,
    RecordedEvent,
    StoreUnavailable,
    StreamNotFound,
)
from taskloom.infra import StackInfo, free_port


def stream() -> str:
    return f"wf-{uuid.uuid4().hex[:12]}"


def events(n: int, kind: str = "Happened") -> list[NewEvent]:
    return [NewEvent.create(kind, {"i": i}, {"by": "test"}) for i in range(n)]


async def test_read_stream_returns_events_in_version_order_with_their_data(store: EventStore) -> None:
    sid = stream()
    first, second = events(3), events(2, "Other")
    await store.append(sid, first, 0)
    result = await store.append(sid, second, 3)

    read = await store.read_stream(sid)

    assert [e.version for e in read] == [1, 2, 3, 4, 5]
    assert [e.event_id for e in read] == [e.event_id for e in first + second]
    assert [e.type for e in read] == ["Happened"] * 3 + ["Other"] * 2
    assert read[4].data == {"i": 1} and read[4].metadata == {"by": "test"}
    assert [e.position for e in read] == sorted(e.position for e in read)
    assert result.version == 5 and result.appended == 2 and result.last_position == read[-1].position
    assert result.first_position == read[3].position
    assert await store.stream_version(sid) == 5


async def test_read_stream_range_is_inclusive(store: EventStore) -> None:
    sid = stream()
    await store.append(sid, events(10), 0)
    assert [e.version for e in await store.read_stream(sid, from_version=4)] == list(range(4, 11))
    assert [e.version for e in await store.read_stream(sid, 3, 5)] == [3, 4, 5]
    assert await store.read_stream(sid, 11) == []


async def test_unknown_stream_reads_empty_or_raises_when_required(store: EventStore) -> None:
    sid = stream()
    assert await store.read_stream(sid) == []
    assert await store.stream_version(sid) == 0
    with pytest.raises(StreamNotFound) as err:
        await store.read_stream(sid, required=True)
    assert err.value.stream_id == sid


async def test_expected_version_zero_means_the_stream_must_not_exist(store: EventStore) -> None:
    sid = stream()
    await store.append(sid, events(1), 0)
    with pytest.raises(ConcurrencyConflict) as err:
        await store.append(sid, events(1), 0)
    assert (err.value.stream_id, err.value.expected, err.value.actual) == (sid, 0, 1)


async def test_stale_expected_version_raises_and_appends_nothing(store: EventStore) -> None:
    sid = stream()
    await store.append(sid, events(2), 0)
    with pytest.raises(ConcurrencyConflict) as err:
        await store.append(sid, events(1), 1, outbox=[OutboxMessage("never", "x.y", b"")])
    assert err.value.actual == 2
    assert await store.stream_version(sid) == 2
    async with store.driver() as conn:
        assert await conn.fetchval(f'SELECT count(*) FROM "{store.schema}".outbox') == 0


async def test_any_appends_at_the_head(store: EventStore) -> None:
    sid = stream()
    await store.append(sid, events(2), ANY)
    result = await store.append(sid, events(2), ANY)
    assert result.version == 4


async def test_reappending_stored_event_ids_appends_nothing_and_does_not_raise(store: EventStore) -> None:
    sid = stream()
    batch = events(3)
    message = OutboxMessage(str(uuid.uuid4()), "x.y", b"payload")
    first = await store.append(sid, batch, 0, outbox=[message])
    head = await store.head_position()

    # a redelivery decides against the same (now stale) version: still a no-op, not a conflict
    again = await store.append(sid, batch, 0, outbox=[OutboxMessage(str(uuid.uuid4()), "x.y", b"dup")])
    also = await store.append(sid, batch[1:], ANY)

    assert first.appended == 3
    assert (again.appended, again.version, again.last_position, again.message_ids) == (0, 3, None, ())
    assert also.appended == 0
    assert await store.head_position() == head
    assert len(await store.read_stream(sid)) == 3
    async with store.driver() as conn:
        assert await conn.fetchval(f'SELECT count(*) FROM "{store.schema}".outbox') == 1


async def test_partly_stored_batch_appends_only_the_new_events(store: EventStore) -> None:
    sid = stream()
    batch = events(2)
    await store.append(sid, batch[:1], 0)
    result = await store.append(sid, batch, 1)
    assert result.appended == 1 and result.version == 2
    assert [e.event_id for e in await store.read_stream(sid)] == [e.event_id for e in batch]


async def test_event_id_stored_in_another_stream_is_refused(store: EventStore) -> None:
    batch = events(1)
    a, b = stream(), stream()
    await store.append(a, batch, 0)
    with pytest.raises(DuplicateEventId) as err:
        await store.append(b, batch, 0)
    assert (err.value.stored_in, err.value.appended_to) == (a, b)


async def test_a_batch_repeating_an_event_id_is_refused_before_io(store: EventStore) -> None:
    e = NewEvent.create("X", {})
    with pytest.raises(ValueError, match="twice"):
        await store.append(stream(), [e, e], 0)


async def test_twenty_concurrent_appenders_at_the_same_version_exactly_one_wins(store: EventStore) -> None:
    sid = stream()
    await store.append(sid, events(2), 0)
    gate = asyncio.Barrier(20)

    async def contender(i: int) -> int | ConcurrencyConflict:
        # each contender holds its own pooled connection while it waits at the gate
        async with store.driver() as conn:
            await conn.fetchval("SELECT 1")
            await gate.wait()
        try:
            result = await store.append(sid, [NewEvent.create("Decided", {"by": i})], 2)
        except ConcurrencyConflict as conflict:
            return conflict
        return result.version

    outcomes = await asyncio.gather(*(contender(i) for i in range(20)))

    wins = [o for o in outcomes if isinstance(o, int)]
    conflicts = [o for o in outcomes if isinstance(o, ConcurrencyConflict)]
    assert wins == [3]
    assert len(conflicts) == 19
    assert all(c.expected == 2 and c.actual == 3 for c in conflicts)
    read = await store.read_stream(sid)
    assert [e.version for e in read] == [1, 2, 3]
    positions = [e.position for e in await store.read_all(0, 100)]
    assert positions == list(range(1, len(positions) + 1))


async def test_twenty_concurrent_transactions_at_the_same_version_exactly_one_wins(store: EventStore) -> None:
    sid = stream()
    await store.append(sid, events(1), 0)

    async def contender(i: int) -> bool:
        try:
            async with store.transaction() as tx:
                await tx.connection.exec_driver_sql("SELECT pg_sleep(0.01)")
                tx.append(sid, [NewEvent.create("Decided", {"by": i})], 1)
                tx.append(stream(), events(1), 0)
        except ConcurrencyConflict:
            return False
        return True

    outcomes = await asyncio.gather(*(contender(i) for i in range(20)))
    assert outcomes.count(True) == 1
    assert [e.version for e in await store.read_stream(sid)] == [1, 2]
    positions = [e.position for e in await store.read_all(0, 100)]
    assert positions == [1, 2, 3]


async def test_concurrent_writers_never_show_a_reader_a_gap_or_a_duplicate(store: EventStore) -> None:
    """10 writers (plain appends, multi-stream transactions, and conflicting appends that roll
    back after taking positions) while a reader polls ``read_all``: it must see every committed
    event exactly once, in position order, each batch continuing right after the last."""
    writers, appends_each = 10, 30
    committed: set[str] = set()
    done = asyncio.Event()
    rng = random.Random(7)

    async def writer(w: int) -> None:
        sid, version = f"writer-{w}-{uuid.uuid4().hex[:6]}", 0
        for n in range(appends_each):
            batch = events(rng.randint(1, 3))
            if n % 7 == 3:
                # takes positions inside the transaction, then conflicts: must leave no gap
                with pytest.raises(ConcurrencyConflict):
                    async with store.transaction() as tx:
                        tx.append(sid, batch, version)
                        tx.append(sid, events(1), version)
                continue
            if n % 5 == 0:
                other = events(1)
                async with store.transaction() as tx:
                    tx.append(sid, batch, version)
                    tx.append(f"side-{w}-{n}-{uuid.uuid4().hex[:4]}", other, 0)
                committed.update(e.event_id for e in other)
            else:
                await store.append(sid, batch, version)
            version += len(batch)
            committed.update(e.event_id for e in batch)
            await asyncio.sleep(0)

    seen: list[RecordedEvent] = []

    async def reader() -> None:
        last = 0
        while True:
            finished = done.is_set()
            batch = await store.read_all(last, 17)
            for e in batch:
                assert e.position == last + 1, f"gap or reorder after {last}: got {e.position}"
                last = e.position
            seen.extend(batch)
            if finished and not batch:
                return
            if not batch:
                await asyncio.sleep(0.001)

    reading = asyncio.create_task(reader())
    await asyncio.gather(*(writer(w) for w in range(writers)))
    done.set()
    await reading

    ids = [e.event_id for e in seen]
    assert len(ids) == len(set(ids)), "an event was read twice"
    assert set(ids) == committed
    assert [e.position for e in seen] == list(range(1, len(seen) + 1))
    assert await store.head_position() == len(seen)


async def test_head_position_follows_appends(store: EventStore) -> None:
    assert await store.head_position() == 0
    await store.append(stream(), events(4), 0)
    assert await store.head_position() == 4
    page = await store.read_all(1, 2)
    assert [e.position for e in page] == [2, 3]


async def test_unreachable_database_raises_store_unavailable() -> None:
    store = EventStore.connect(f"postgresql://postgres@127.0.0.1:{free_port()}/nothing", 1)
    try:
        with pytest.raises(StoreUnavailable):
            await store.stream_version("x")
    finally:
        await store.close()


async def test_store_from_engine_shares_the_callers_pool(stack: StackInfo, store: EventStore) -> None:
    other = EventStore.from_engine(store.engine, schema=store.schema)
    sid = stream()
    await other.append(sid, events(1), 0)
    await other.close()  # does not dispose a pool it does not own
    assert await store.stream_version(sid) == 1
