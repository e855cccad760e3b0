"""The event relay against real PostgreSQL and JetStream: every event once, in position order,
on its subject, resuming from the checkpoint after a restart."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable

from nats.js import JetStreamContext
from nats.js.api import RawStreamMsg

from taskloom.contracts.subjects import Subjects
from taskloom.eventstore import EventRelay, EventStore, NewEvent, RecordedEvent

StreamReader = Callable[[str], Awaitable[list[RawStreamMsg]]]


def relay_for(store: EventStore, js: JetStreamContext, subjects: Subjects, **kw: object) -> EventRelay:
    def subject(e: RecordedEvent) -> str:
        return subjects.event(workflow_id=e.stream_id, event_type=e.type)

    return EventRelay(store, js, subject, name="events-to-bus", **kw)  # type: ignore[arg-type]


async def append_some(store: EventStore, streams: int, each: int) -> list[str]:
    ids = []
    for s in range(streams):
        batch = [NewEvent.create(f"Type{i % 3}", {"i": i}) for i in range(each)]
        await store.append(f"wf-{s}-{uuid.uuid4().hex[:6]}", batch, 0)
        ids += [e.event_id for e in batch]
    return ids


async def test_every_event_is_published_in_position_order_with_its_dedup_id(
    store: EventStore,
    js: JetStreamContext,
    subjects: Subjects,
    events_stream: str,
    read_stream_messages: StreamReader,
) -> None:
    ids = await append_some(store, 4, 5)
    relay = relay_for(store, js, subjects, batch_size=6)
    assert await relay.catch_up() == 20
    assert relay.position == 20 and await store.load_checkpoint("events-to-bus") == 20

    msgs = await read_stream_messages(events_stream)
    assert [m.headers["Nats-Msg-Id"] for m in msgs] == ids  # type: ignore[index]
    first = json.loads(msgs[0].data)
    assert first["position"] == 1 and first["event_id"] == ids[0]
    assert msgs[0].subject == subjects.event(first["stream_id"], first["type"])
    assert msgs[0].headers["Taskloom-Position"] == "1"  # type: ignore[index]


async def test_a_restarted_relay_resumes_from_its_checkpoint(
    store: EventStore,
    js: JetStreamContext,
    subjects: Subjects,
    events_stream: str,
    read_stream_messages: StreamReader,
) -> None:
    ids = await append_some(store, 2, 3)
    assert await relay_for(store, js, subjects).catch_up() == 6
    ids += await append_some(store, 1, 4)
    restarted = relay_for(store, js, subjects)
    assert await restarted.catch_up() == 4
    msgs = await read_stream_messages(events_stream)
    assert [m.headers["Nats-Msg-Id"] for m in msgs] == ids  # type: ignore[index]


async def test_events_published_but_not_checkpointed_are_not_duplicated(
    store: EventStore,
    js: JetStreamContext,
    subjects: Subjects,
    events_stream: str,
    read_stream_messages: StreamReader,
) -> None:
    ids = await append_some(store, 3, 3)
    await relay_for(store, js, subjects).catch_up()
    await store.save_checkpoint("events-to-bus", 2)  # as if the relay died before checkpointing
    assert await relay_for(store, js, subjects).catch_up() == 7
    msgs = await read_stream_messages(events_stream)
    assert [m.headers["Nats-Msg-Id"] for m in msgs] == ids  # type: ignore[index]


async def test_two_relays_of_one_name_take_turns(
    store: EventStore,
    js: JetStreamContext,
    subjects: Subjects,
    events_stream: str,
    read_stream_messages: StreamReader,
) -> None:
    ids = await append_some(store, 10, 10)
    a, b = relay_for(store, js, subjects, batch_size=7), relay_for(store, js, subjects, batch_size=7)
    await asyncio.gather(a.catch_up(), b.catch_up(), a.catch_up())
    await a.catch_up()
    msgs = await read_stream_messages(events_stream)
    assert [m.headers["Nats-Msg-Id"] for m in msgs] == ids  # type: ignore[index]


async def test_a_running_relay_follows_new_appends(
    store: EventStore,
    js: JetStreamContext,
    subjects: Subjects,
    events_stream: str,
    read_stream_messages: StreamReader,
) -> None:
    relay = relay_for(store, js, subjects, poll_interval=60)  # woken by NOTIFY only
    relay.start()
    try:
        await asyncio.sleep(0.2)
        ids = await append_some(store, 1, 3)
        for _ in range(100):
            if len(await read_stream_messages(events_stream)) == 3:
                break
            await asyncio.sleep(0.05)
        msgs = await read_stream_messages(events_stream)
        assert [m.headers["Nats-Msg-Id"] for m in msgs] == ids  # type: ignore[index]
    finally:
        await relay.stop()


async def test_a_relay_stops_even_when_woken_as_it_is_stopped(
    store: EventStore, js: JetStreamContext, subjects: Subjects, events_stream: str
) -> None:
    """A wake-up and the stop's cancellation in the same loop turn: the cancellation must win.
    (asyncio.wait_for on Python 3.11 returned the wake-up instead, and the loop never ended.)"""
    relay = relay_for(store, js, subjects, poll_interval=60)
    loop = relay.start()
    await asyncio.sleep(0.3)  # listening, waiting for a notification
    relay.notify()
    stopping = asyncio.ensure_future(relay.stop())
    await asyncio.wait({stopping, loop}, timeout=5, return_when=asyncio.ALL_COMPLETED)
    try:
        assert loop.done() and stopping.done()  # the relay's loop ended, and stop() with it
    finally:
        while not loop.done():  # a loop that swallowed its cancellation is cancelled again
            loop.cancel()
            await asyncio.wait({loop}, timeout=1)
        await stopping
