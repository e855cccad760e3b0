"""The orchestrator's outbox fast path against real NATS + PostgreSQL: rows published straight
after their commit are marked by the next commit, and what no commit marks (a crash between
commit and publish, a quiet process) is still published by the relay's poll."""

from __future__ import annotations

# ruff: noqa: S608 - SQL names come from the test's own schema fixture
import asyncio
import uuid
from types import SimpleNamespace
from typing import Any

from taskloom.bus import Bus, StreamKind
from taskloom.eventstore import EventStore, NewEvent, OutboxMessage, StreamAppend
from taskloom.orchestrator.adapters.outbox import DirectRelay


def message(bus: Bus, n: int) -> OutboxMessage:
    return OutboxMessage(f"m-{uuid.uuid4().hex[:8]}-{n}", bus.subjects.tasks("core-services"), b"{}")


async def commit(store: EventStore, relay: DirectRelay, outbox: list[OutboxMessage]) -> int:
    relay.expect(m.message_id for m in outbox)
    result = await store.append_many(
        [StreamAppend(f"wf-{uuid.uuid4().hex[:8]}", [NewEvent.create("Decided", {})], 0)],
        outbox,
        mark_published=relay.take_published(),
        notify_outbox=False,
    )
    return result.marked


async def unpublished(store: EventStore) -> set[str]:
    async with store.driver() as conn:
        rows = await conn.fetch(f'SELECT message_id FROM "{store.schema}".outbox WHERE published_at IS NULL')
    return {r[0] for r in rows}


async def stream_messages(bus: Bus) -> int:
    info = await bus.js.stream_info(bus.stream_name(StreamKind.TASKS))
    return int(info.state.messages)


async def test_the_next_commit_marks_what_the_fast_path_published(store: EventStore, bus: Bus) -> None:
    await store.migrate()
    relay = DirectRelay(store, bus.js, poll_interval=30)  # no relay cycle runs in this test
    first = [message(bus, 1), message(bus, 2)]
    assert await commit(store, relay, first) == 0
    await relay.publish_direct(first)
    assert await unpublished(store) == {m.message_id for m in first}
    second = [message(bus, 3)]
    assert await commit(store, relay, second) == 2
    assert await unpublished(store) == {second[0].message_id}
    assert await stream_messages(bus) == 2
    assert relay.published_total == 0


async def test_a_row_no_commit_marks_is_published_by_the_relay_poll(store: EventStore, bus: Bus) -> None:
    await store.migrate()
    relay = DirectRelay(store, bus.js, poll_interval=0.1, coalesce=0)  # min_age: 1 s
    lost = [message(bus, 1)]  # committed, then the process "died" before publishing it
    await commit(store, relay, lost)
    relay.forget(m.message_id for m in lost)
    published = [message(bus, 2)]
    await commit(store, relay, published)
    await relay.publish_direct(published)
    sent: list[str] = []
    publish = bus.js.publish

    async def counting(subject: str, payload: bytes, **kw: Any) -> Any:
        sent.append((kw.get("headers") or {}).get("Nats-Msg-Id", ""))
        return await publish(subject, payload, **kw)

    relay._js = SimpleNamespace(publish=counting)  # type: ignore[assignment]
    relay.start()
    try:
        for _ in range(200):
            if not await unpublished(store):
                break
            await asyncio.sleep(0.05)
    finally:
        await relay.stop()
    assert await unpublished(store) == set()
    assert await stream_messages(bus) == 2
    # the relay published the lost row; the other one it only marked
    assert sent == [lost[0].message_id]
