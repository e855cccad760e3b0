"""The outbox relay against real PostgreSQL and JetStream: every committed message ends up in
the JetStream stream exactly once, whatever happens to the relays in between."""

from __future__ import annotations

# ruff: noqa: S608 - SQL names come from the test's own schema fixture
import asyncio
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta

from nats.js import JetStreamContext
from nats.js.api import RawStreamMsg, StreamConfig

from taskloom.contracts.subjects import Subjects
from taskloom.eventstore import EventStore, NewEvent, OutboxMessage, OutboxRelay
from taskloom.eventstore.outbox import ClaimedMessage

StreamReader = Callable[[str], Awaitable[list[RawStreamMsg]]]


def message(subjects: Subjects, agent: str = "agent-a", n: int = 0) -> OutboxMessage:
    mid = str(uuid.uuid4())
    return OutboxMessage(mid, subjects.tasks(agent), f'{{"n": {n}}}'.encode(), {"Taskloom-Kind": "task"})


async def commit(store: EventStore, subjects: Subjects, n: int) -> list[OutboxMessage]:
    """``n`` appends, each with one outbox message, committed with no relay running."""
    sent = []
    for i in range(n):
        m = message(subjects, n=i)
        await store.append(f"wf-{uuid.uuid4().hex[:8]}", [NewEvent.create("TaskAssigned", {"i": i})], 0, [m])
        sent.append(m)
    return sent


async def assert_exactly_once(read: StreamReader, stream: str, sent: Sequence[OutboxMessage]) -> None:
    msgs = await read(stream)
    ids = [m.headers["Nats-Msg-Id"] for m in msgs if m.headers]
    assert sorted(ids) == sorted(m.message_id for m in sent), "missing or duplicated messages"
    by_id = {m.message_id: m for m in sent}
    for got in msgs:
        want = by_id[got.headers["Nats-Msg-Id"]]  # type: ignore[index]
        assert (got.subject, got.data) == (want.subject, want.payload)
        assert got.headers["Taskloom-Kind"] == "task"  # type: ignore[index]


async def test_rows_committed_with_no_relay_running_are_published_once_it_starts(
    store: EventStore,
    js: JetStreamContext,
    subjects: Subjects,
    tasks_stream: str,
    read_stream_messages: StreamReader,
) -> None:
    sent = await commit(store, subjects, 30)
    relay = OutboxRelay(store, js, batch_size=7)
    assert await relay.pending() == 30
    assert await relay.drain() == 30
    assert await relay.pending() == 0
    assert await relay.drain() == 0
    await assert_exactly_once(read_stream_messages, tasks_stream, sent)


class _ClaimThenHang(OutboxRelay):
    """Claims rows, then hangs before publishing: the test cancels it there."""

    claimed = asyncio.Event()

    async def publish_batch(self, messages: Sequence[ClaimedMessage]) -> list[BaseException | None]:
        self.claimed.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


class _PublishThenCrash(OutboxRelay):
    """Publishes to JetStream, then dies before the rows are marked published."""

    async def mark_published(
        self, conn: object, messages: Sequence[ClaimedMessage], errors: Sequence[BaseException | None]
    ) -> None:
        raise RuntimeError("crashed between publish and mark")


async def test_a_relay_killed_after_claiming_but_before_publishing_loses_nothing(
    store: EventStore,
    js: JetStreamContext,
    subjects: Subjects,
    tasks_stream: str,
    read_stream_messages: StreamReader,
) -> None:
    sent = await commit(store, subjects, 12)
    hanging = _ClaimThenHang(store, js)
    _ClaimThenHang.claimed = asyncio.Event()
    task = asyncio.create_task(hanging.drain())
    await asyncio.wait_for(_ClaimThenHang.claimed.wait(), 10)
    # while the claim is held another relay skips the locked rows instead of waiting
    assert await OutboxRelay(store, js).drain() == 0
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)

    assert await OutboxRelay(store, js).drain() == 12
    await assert_exactly_once(read_stream_messages, tasks_stream, sent)


async def test_a_relay_that_published_but_crashed_before_marking_causes_no_duplicate(
    store: EventStore,
    js: JetStreamContext,
    subjects: Subjects,
    tasks_stream: str,
    read_stream_messages: StreamReader,
) -> None:
    sent = await commit(store, subjects, 10)
    crashing = _PublishThenCrash(store, js)
    try:
        await crashing.drain()
    except Exception as exc:  # the crash surfaces as the store's typed error or itself
        assert "crashed" in str(exc) or "crashed" in str(exc.__cause__)
    assert len(await read_stream_messages(tasks_stream)) == 10
    assert await OutboxRelay(store, js).pending() == 10

    restarted = OutboxRelay(store, js)
    assert await restarted.drain() == 10  # re-published; JetStream's dedup window absorbs them
    await assert_exactly_once(read_stream_messages, tasks_stream, sent)


async def test_two_relays_draining_together_publish_each_row_once(
    store: EventStore,
    js: JetStreamContext,
    subjects: Subjects,
    tasks_stream: str,
    read_stream_messages: StreamReader,
) -> None:
    sent = await commit(store, subjects, 60)
    a, b = OutboxRelay(store, js, batch_size=5), OutboxRelay(store, js, batch_size=5)
    counts = await asyncio.gather(a.drain(), b.drain(), a.drain(), b.drain())
    assert sum(counts) == 60
    await assert_exactly_once(read_stream_messages, tasks_stream, sent)


async def test_a_running_relay_wakes_on_notify_from_the_committing_transaction(
    store: EventStore,
    js: JetStreamContext,
    subjects: Subjects,
    tasks_stream: str,
    read_stream_messages: StreamReader,
) -> None:
    relay = OutboxRelay(store, js, poll_interval=60)  # only NOTIFY can wake it in time
    relay.start()
    try:
        await asyncio.sleep(0.2)  # let it LISTEN and drain the (empty) backlog
        sent = [message(subjects)]
        async with store.transaction() as tx:
            tx.add_outbox(*sent)
        for _ in range(100):
            if len(await read_stream_messages(tasks_stream)) == 1:
                break
            await asyncio.sleep(0.05)
        await assert_exactly_once(read_stream_messages, tasks_stream, sent)
    finally:
        await relay.stop()


async def test_publish_now_dispatches_a_commit_without_waiting_for_the_loop(
    store: EventStore,
    js: JetStreamContext,
    subjects: Subjects,
    tasks_stream: str,
    read_stream_messages: StreamReader,
) -> None:
    relay = OutboxRelay(store, js)
    m = message(subjects)
    result = await store.append("wf-now", [NewEvent.create("TaskAssigned", {})], 0, [m])
    assert result.message_ids == (m.message_id,)
    assert await relay.publish_now(result.message_ids) == 1
    assert await relay.publish_now(result.message_ids) == 0
    await assert_exactly_once(read_stream_messages, tasks_stream, [m])


async def test_a_message_without_a_stream_is_retried_later_and_does_not_block_others(
    store: EventStore,
    js: JetStreamContext,
    subjects: Subjects,
    tasks_stream: str,
    read_stream_messages: StreamReader,
) -> None:
    lost = OutboxMessage("no-stream", f"{subjects.namespace}.nowhere.x", b"")
    ok = message(subjects)
    await store.add_outbox(lost, ok)
    relay = OutboxRelay(store, js, publish_timeout=1)
    assert await relay.drain() == 1
    await assert_exactly_once(read_stream_messages, tasks_stream, [ok])
    async with store.driver() as conn:
        row = await conn.fetchrow(
            "SELECT attempts, last_error, retry_at > now() AS later, published_at"
            f" FROM \"{store.schema}\".outbox WHERE message_id = 'no-stream'"
        )
    assert row["attempts"] == 1 and row["last_error"] and row["later"] and row["published_at"] is None
    assert await relay.drain() == 0  # not before its retry time


async def test_published_rows_are_purged_after_retention_and_can_be_republished_before(
    store: EventStore,
    js: JetStreamContext,
    subjects: Subjects,
    tasks_stream: str,
    read_stream_messages: StreamReader,
) -> None:
    since = datetime.now(UTC) - timedelta(seconds=5)
    sent = await commit(store, subjects, 5)
    relay = OutboxRelay(store, js)
    assert await relay.drain() == 5

    # the JetStream stream is lost: re-create it and re-send from Postgres
    await js.delete_stream(tasks_stream)
    await js.add_stream(StreamConfig(name=tasks_stream, subjects=[subjects.tasks_all], duplicate_window=120))
    assert await relay.republish(since) == 5
    assert await relay.drain() == 5
    await assert_exactly_once(read_stream_messages, tasks_stream, sent)

    assert await OutboxRelay(store, js, retention_seconds=3600).purge() == 0
    await asyncio.sleep(1.1)
    assert await OutboxRelay(store, js, retention_seconds=1).purge() == 5
    assert await relay.republish(since) == 0


async def test_a_relay_with_min_age_leaves_young_rows_to_their_committer(
    store: EventStore, js: JetStreamContext, subjects: Subjects, tasks_stream: str
) -> None:
    await commit(store, subjects, 3)
    assert await OutboxRelay(store, js, min_age=60).drain() == 0
    assert await OutboxRelay(store, js, min_age=0).drain() == 3
