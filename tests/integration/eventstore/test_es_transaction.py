"""The unit of work, snapshots and checkpoints against a real PostgreSQL."""

from __future__ import annotations

# ruff: noqa: S608 - SQL names come from the test's own schema fixture
import uuid

import pytest

from taskloom.eventstore import ANY, ConcurrencyConflict, EventStore, NewEvent, OutboxMessage


def stream() -> str:
    return f"wf-{uuid.uuid4().hex[:12]}"


async def _read_model(store: EventStore) -> dict[str, str]:
    async with store.driver() as conn:
        await conn.execute(
            f'CREATE TABLE IF NOT EXISTS "{store.schema}".status (id text PRIMARY KEY, status text)'
        )
        rows = await conn.fetch(f'SELECT id, status FROM "{store.schema}".status')
    return {r["id"]: r["status"] for r in rows}


async def _outbox_ids(store: EventStore) -> list[str]:
    async with store.driver() as conn:
        rows = await conn.fetch(f'SELECT message_id FROM "{store.schema}".outbox ORDER BY id')
    return [r[0] for r in rows]


async def test_events_outbox_and_read_model_commit_together(store: EventStore) -> None:
    await _read_model(store)
    a, b = stream(), stream()
    async with store.transaction() as tx:
        tx.append(a, [NewEvent.create("Started", {})], 0, outbox=[OutboxMessage("m-a", "x.a", b"a")])
        tx.append(b, [NewEvent.create("Started", {}), NewEvent.create("Assigned", {})], 0)
        tx.add_outbox(OutboxMessage("m-b", "x.b", b"b", {"k": "v"}))
        await tx.connection.exec_driver_sql(
            f'INSERT INTO "{store.schema}".status VALUES ($1, $2), ($3, $4)', (a, "running", b, "running")
        )
    assert tx.committed
    assert [r.version for r in tx.results] == [1, 2]
    assert set(tx.message_ids) == {"m-a", "m-b"}
    assert await _read_model(store) == {a: "running", b: "running"}
    assert await _outbox_ids(store) == ["m-a", "m-b"]
    assert [e.position for e in await store.read_all()] == [1, 2, 3]


async def test_an_error_in_the_block_rolls_everything_back(store: EventStore) -> None:
    await _read_model(store)
    sid = stream()
    with pytest.raises(RuntimeError):
        async with store.transaction() as tx:
            tx.append(sid, [NewEvent.create("Started", {})], 0)
            tx.add_outbox(OutboxMessage("m", "x.a", b""))
            await tx.connection.exec_driver_sql(
                f'INSERT INTO "{store.schema}".status VALUES ($1, $2)', (sid, "x")
            )
            raise RuntimeError("decided to give up")
    assert await store.stream_version(sid) == 0
    assert await _read_model(store) == {}
    assert await _outbox_ids(store) == []


async def test_a_conflict_on_one_stream_rolls_back_the_other_streams_too(store: EventStore) -> None:
    await _read_model(store)
    a, b = stream(), stream()
    await store.append(b, [NewEvent.create("Started", {})], 0)
    with pytest.raises(ConcurrencyConflict) as err:
        async with store.transaction() as tx:
            tx.append(a, [NewEvent.create("Started", {})], 0, outbox=[OutboxMessage("m", "x.a", b"")])
            tx.append(b, [NewEvent.create("Again", {})], 0)
            await tx.connection.exec_driver_sql(
                f'INSERT INTO "{store.schema}".status VALUES ($1, $2)', (a, "x")
            )
    assert (err.value.stream_id, err.value.actual) == (b, 1)
    assert await store.stream_version(a) == 0
    assert await _read_model(store) == {}
    assert await _outbox_ids(store) == []
    # the rolled-back transaction took positions 2 and 3 and gave them back
    await store.append(a, [NewEvent.create("Started", {})], 0)
    assert [e.position for e in await store.read_all()] == [1, 2]


async def test_two_appends_to_one_stream_in_one_transaction_chain_versions(store: EventStore) -> None:
    sid = stream()
    async with store.transaction() as tx:
        tx.append(sid, [NewEvent.create("A", {})], 0)
        tx.append(sid, [NewEvent.create("B", {})], 1)
        tx.append(sid, [NewEvent.create("C", {})], ANY)
    assert [r.version for r in tx.results] == [1, 2, 3]
    assert [e.type for e in await store.read_stream(sid)] == ["A", "B", "C"]


async def test_a_redelivered_append_in_a_transaction_is_a_no_op(store: EventStore) -> None:
    sid = stream()
    batch = [NewEvent.create("A", {})]
    await store.append(sid, batch, 0, outbox=[OutboxMessage("first", "x.a", b"")])
    async with store.transaction() as tx:
        tx.append(sid, batch, 0, outbox=[OutboxMessage("second", "x.a", b"")])
    assert tx.results[0].appended == 0
    assert await _outbox_ids(store) == ["first"]


async def test_the_transaction_cannot_be_used_after_commit(store: EventStore) -> None:
    async with store.transaction() as tx:
        pass
    with pytest.raises(RuntimeError):
        tx.append(stream(), [NewEvent.create("A", {})], 0)


async def test_snapshots_round_trip_and_never_go_back_in_version(store: EventStore) -> None:
    sid = stream()
    assert await store.load_snapshot(sid) is None
    state = {"status": "running", "tasks": {"t1": {"attempts": 2}}, "ratio": 0.5, "tags": ["a", "é"]}
    await store.save_snapshot(sid, 7, state)
    snap = await store.load_snapshot(sid)
    assert snap is not None and (snap.stream_id, snap.version, snap.state) == (sid, 7, state)
    await store.save_snapshot(sid, 5, {"older": True})
    assert (await store.load_snapshot(sid)).state == state  # type: ignore[union-attr]
    await store.save_snapshot(sid, 9, {"newer": True})
    assert (await store.load_snapshot(sid)).version == 9  # type: ignore[union-attr]


async def test_checkpoints_save_and_load_alone_or_with_a_transaction(store: EventStore) -> None:
    assert await store.load_checkpoint("projector") == 0
    await store.save_checkpoint("projector", 5)
    assert await store.load_checkpoint("projector") == 5
    async with store.transaction() as tx:
        await tx.save_checkpoint("projector", 9)
    assert await store.load_checkpoint("projector") == 9
    with pytest.raises(RuntimeError):
        async with store.transaction() as tx:
            await tx.save_checkpoint("projector", 12)
            raise RuntimeError
    assert await store.load_checkpoint("projector") == 9
