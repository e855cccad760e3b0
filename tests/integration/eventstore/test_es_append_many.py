"""``append_many``: several streams, the outbox and the caller's fused writes in one statement."""

from __future__ import annotations

# ruff: noqa: S608 - SQL names come from the test's own schema fixture
import asyncio
import uuid

import pytest

from taskloom.eventstore import (
    ConcurrencyConflict,
    DuplicateEventId,
    EventStore,
    Fragment,
    NewEvent,
    OutboxMessage,
    StreamAppend,
)


def stream() -> str:
    return f"wf-{uuid.uuid4().hex[:12]}"


def events(*types: str) -> list[NewEvent]:
    return [NewEvent.create(t, {"t": t}) for t in types]


async def _status_table(store: EventStore) -> None:
    async with store.driver() as conn:
        await conn.execute(
            f'CREATE TABLE IF NOT EXISTS "{store.schema}".status (id text PRIMARY KEY, status text)'
        )


async def _statuses(store: EventStore) -> dict[str, str]:
    async with store.driver() as conn:
        rows = await conn.fetch(f'SELECT id, status FROM "{store.schema}".status')
    return {r["id"]: r["status"] for r in rows}


def status_fragment(store: EventStore, rows: dict[str, str]) -> Fragment:
    # written with its own $1/$2: the store renumbers them after its parameters
    return Fragment(
        f"""st AS (
            INSERT INTO "{store.schema}".status (id, status)
            SELECT * FROM unnest($1::text[], $2::text[])
            ON CONFLICT (id) DO UPDATE SET status = excluded.status
            RETURNING 1
        )""",
        (list(rows), list(rows.values())),
    )


async def test_streams_outbox_and_fused_writes_commit_together(store: EventStore) -> None:
    await _status_table(store)
    a, b = stream(), stream()
    await store.append(a, events("Submitted"), 0)
    result = await store.append_many(
        [StreamAppend(a, events("Started", "Assigned"), 1), StreamAppend(b, events("Submitted"), 0)],
        [OutboxMessage("m-1", "x.t", b"1"), OutboxMessage("m-2", "x.t", b"2")],
        also=status_fragment(store, {a: "running", b: "pending"}),
    )
    assert result.appended == 3
    assert result.message_ids == ("m-1", "m-2")
    assert [(e.version, e.type) for e in await store.read_stream(a)] == [
        (1, "Submitted"),
        (2, "Started"),
        (3, "Assigned"),
    ]
    assert [e.version for e in await store.read_stream(b)] == [1]
    positions = [e.position for e in await store.read_all()]
    assert positions == [1, 2, 3, 4]
    assert result.last_position == 4
    assert await _statuses(store) == {a: "running", b: "pending"}


async def test_a_stale_expectation_rolls_back_the_whole_statement(store: EventStore) -> None:
    await _status_table(store)
    a, b = stream(), stream()
    await store.append(a, events("Submitted", "Started"), 0)
    with pytest.raises(ConcurrencyConflict) as caught:
        await store.append_many(
            [StreamAppend(b, events("Submitted"), 0), StreamAppend(a, events("Assigned"), 1)],
            [OutboxMessage("m-stale", "x.t", b"")],
            also=status_fragment(store, {a: "stale", b: "stale"}),
        )
    assert caught.value.stream_id == a
    assert await store.stream_version(b) == 0
    assert await store.stream_version(a) == 2
    assert await _statuses(store) == {}
    async with store.driver() as conn:
        assert await conn.fetchval(f'SELECT count(*) FROM "{store.schema}".outbox') == 0
    # the position handed out by the failed statement was given back
    assert await store.head_position() == 2


async def test_two_writers_deciding_from_the_same_version_one_wins(store: EventStore) -> None:
    sid = stream()
    await store.append(sid, events("Submitted"), 0)
    outcomes = await asyncio.gather(
        *(store.append_many([StreamAppend(sid, events(f"Decided{i}"), 1)]) for i in range(4)),
        return_exceptions=True,
    )
    assert sum(1 for o in outcomes if not isinstance(o, BaseException)) == 1
    assert all(isinstance(o, ConcurrencyConflict) for o in outcomes if isinstance(o, BaseException))
    assert [e.version for e in await store.read_stream(sid)] == [1, 2]
    assert [e.position for e in await store.read_all()] == [1, 2]


async def test_an_event_id_already_stored_is_refused(store: EventStore) -> None:
    sid = stream()
    first = events("Submitted")
    await store.append(sid, first, 0)
    with pytest.raises(DuplicateEventId):
        await store.append_many([StreamAppend(stream(), first, 0)])


async def test_only_outbox_and_fused_writes_take_no_position(store: EventStore) -> None:
    await _status_table(store)
    result = await store.append_many(
        [], [OutboxMessage("m-alone", "x.t", b"")], also=status_fragment(store, {"x": "y"})
    )
    assert result.appended == 0 and result.last_position is None
    assert result.message_ids == ("m-alone",)
    assert await store.head_position() == 0
    assert await _statuses(store) == {"x": "y"}
    again = await store.append_many([], [OutboxMessage("m-alone", "x.t", b"")])
    assert again.message_ids == ()


async def test_an_unknown_expected_version_is_refused(store: EventStore) -> None:
    with pytest.raises(ValueError, match="known expected version"):
        await store.append_many([StreamAppend(stream(), events("X"), -1)])
    with pytest.raises(ValueError, match="twice"):
        twice = events("X")
        await store.append_many([StreamAppend(stream(), twice, 0), StreamAppend(stream(), twice, 0)])


async def _published(store: EventStore) -> dict[str, bool]:
    async with store.driver() as conn:
        rows = await conn.fetch(f'SELECT message_id, published_at FROM "{store.schema}".outbox')
    return {r[0]: r[1] is not None for r in rows}


async def test_rows_published_by_the_caller_are_marked_by_the_next_statement(store: EventStore) -> None:
    first = await store.append_many(
        [StreamAppend(stream(), events("A"), 0)], [OutboxMessage("m-a", "x.t", b"")], notify_outbox=False
    )
    assert first.marked == 0
    assert await _published(store) == {"m-a": False}
    second = await store.append_many(
        [StreamAppend(stream(), events("B"), 0)],
        [OutboxMessage("m-b", "x.t", b"")],
        mark_published=["m-a", "m-unknown"],
    )
    assert second.marked == 1
    assert await _published(store) == {"m-a": True, "m-b": False}


async def test_a_row_a_relay_holds_is_left_to_it(store: EventStore) -> None:
    await store.append_many([], [OutboxMessage("m-held", "x.t", b"")])
    async with store.driver() as relay, relay.transaction():
        claimed = await relay.fetch(store.statements.outbox_claim, 10, 0.0)
        assert [r["message_id"] for r in claimed] == ["m-held"]
        # does not wait for the relay's lock: the relay marks its own claim
        result = await asyncio.wait_for(
            store.append_many([StreamAppend(stream(), events("C"), 0)], mark_published=["m-held"]), 10
        )
        assert result.marked == 0 and result.appended == 1


async def test_load_streams_reads_many_streams_from_their_snapshots(store: EventStore) -> None:
    a, b, unknown = stream(), stream(), stream()
    await store.append(a, events("A1", "A2", "A3"), 0)
    await store.append(b, events("B1"), 0)
    await store.save_snapshot(a, 2, {"folded": 2})
    loaded = await store.load_streams([a, b, unknown, a])
    assert list(loaded) == [a, b, unknown]
    snap, after = loaded[a]
    assert snap is not None and snap.version == 2 and snap.state == {"folded": 2}
    assert [e.type for e in after] == ["A3"]
    assert loaded[b][0] is None and [e.type for e in loaded[b][1]] == ["B1"]
    assert loaded[unknown] == (None, [])
    whole = await store.load_streams([a], snapshots=False)
    assert [e.type for e in whole[a][1]] == ["A1", "A2", "A3"]


async def test_append_many_on_a_callers_transaction_commits_and_rolls_back_with_it(
    store: EventStore,
) -> None:
    kept, dropped = stream(), stream()
    async with store.pinned_transaction() as conn:
        await store.append_many([StreamAppend(kept, events("K"), 0)], connection=conn)
    with pytest.raises(RuntimeError):
        async with store.pinned_transaction() as conn:
            await store.append_many([StreamAppend(dropped, events("D"), 0)], connection=conn)
            raise RuntimeError("decided to give up")
    assert await store.stream_version(kept) == 1
    assert await store.stream_version(dropped) == 0
    assert await store.head_position() == 1
    with pytest.raises(ConcurrencyConflict):
        async with store.pinned_transaction() as conn:
            await store.append_many([StreamAppend(kept, events("K2"), 0)], connection=conn)
