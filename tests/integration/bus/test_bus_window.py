"""The consumer's standing pull on a real server: a message reaches an idle consumer at once,
the loop never holds more than its workers can take, a stop hands back what was delivered but
not taken, a deleted and recreated consumer is consumed again, and acks without confirmation
still settle."""

from __future__ import annotations

import asyncio
import json

from bus_testkit import Ping, eventually, open_bus, ping

from taskloom.bus import Bus, Delivery, StreamKind
from taskloom.settings import Settings

parse = Ping.model_validate_json
TASKS = StreamKind.TASKS
AGENT = "core-services"


async def _info(bus: Bus) -> tuple[int, int]:
    info = await bus.js.consumer_info(bus.stream_name(TASKS), bus.subjects.agent_consumer(AGENT))
    return info.num_ack_pending, info.num_pending


async def test_an_idle_consumer_gets_a_message_long_before_its_pull_expires(bus: Bus) -> None:
    await bus.ensure_agent_consumer(AGENT, ack_wait=30)
    got = asyncio.Event()

    async def handler(value: Ping, delivery: Delivery) -> None:
        got.set()

    await bus.consume(TASKS, bus.subjects.agent_consumer(AGENT), handler, parse, fetch_timeout=20)
    await asyncio.sleep(0.5)  # idle: the standing pull is open at the server
    loop = asyncio.get_running_loop()
    sent = loop.time()
    await bus.publish(bus.subjects.tasks(AGENT), ping(1))
    await asyncio.wait_for(got.wait(), 5)
    assert loop.time() - sent < 2  # pushed when stored, not picked up when a 20 s pull ends


async def test_the_loop_never_holds_more_than_its_workers_can_take(bus: Bus) -> None:
    await bus.ensure_agent_consumer(AGENT, ack_wait=30)
    handled: list[int] = []
    held: list[int] = []

    async def slow(value: Ping, delivery: Delivery) -> None:
        await asyncio.sleep(0.15)
        handled.append(value.n)

    for n in range(24):
        await bus.publish(bus.subjects.tasks(AGENT), ping(n))
    handle = await bus.consume(
        TASKS, bus.subjects.agent_consumer(AGENT), slow, parse, batch=2, concurrency=2, fetch_timeout=0.3
    )
    while len(handled) < 24:
        held.append((await _info(bus))[0])
        await asyncio.sleep(0.05)
    await handle.stop()
    # room is batch x workers = 4: never more delivered and unacknowledged than that, and the
    # window does fill it (the control: a window that ignored its room would show up to 24)
    assert max(held) <= 4, held
    assert max(held) >= 3, held
    assert sorted(handled) == list(range(24))


async def test_a_stop_hands_back_what_was_delivered_but_not_taken(bus: Bus, settings: Settings) -> None:
    await bus.ensure_agent_consumer(AGENT, ack_wait=60)
    durable = bus.subjects.agent_consumer(AGENT)
    started = asyncio.Event()
    first: list[int] = []

    async def one_slow(value: Ping, delivery: Delivery) -> None:
        first.append(value.n)
        started.set()
        await asyncio.sleep(1.0)

    handle = await bus.consume(TASKS, durable, one_slow, parse, batch=5, fetch_timeout=10)
    await bus.publish(bus.subjects.tasks(AGENT), ping(0))
    await asyncio.wait_for(started.wait(), 5)
    for n in range(1, 5):  # pushed into the window while its only worker is busy
        await bus.publish(bus.subjects.tasks(AGENT), ping(n))
    await eventually(lambda: _all_delivered(bus))
    await handle.stop()
    assert first == [0] and handle.stats.acked == 1

    other = await open_bus(settings, name="replica-2")
    try:
        second: list[tuple[int, int]] = []

        async def record(value: Ping, delivery: Delivery) -> None:
            second.append((value.n, delivery.num_delivered))

        await other.consume(TASKS, durable, record, parse)
        # handed back at once (nak), not after the 60 s ack wait
        await eventually(lambda: len(second) == 4, timeout=5)
        assert sorted(n for n, _ in second) == [1, 2, 3, 4]
        assert all(d == 2 for _, d in second)  # the hand-back counts as a delivery
    finally:
        await other.close()


async def _all_delivered(bus: Bus) -> bool:
    return (await _info(bus))[1] == 0


async def test_a_deleted_and_recreated_consumer_is_consumed_again(bus: Bus) -> None:
    await bus.ensure_agent_consumer(AGENT, ack_wait=30)
    durable = bus.subjects.agent_consumer(AGENT)
    seen: list[int] = []

    async def handler(value: Ping, delivery: Delivery) -> None:
        seen.append(value.n)

    handle = await bus.consume(TASKS, durable, handler, parse, fetch_timeout=0.5)
    await bus.publish(bus.subjects.tasks(AGENT), ping(1))
    await eventually(lambda: seen == [1])

    async def acked() -> bool:  # a work queue drops what is acked; an ack the delete cut off
        info = await bus.js.stream_info(bus.stream_name(TASKS))  # would bring 1 back again
        return info.state.messages == 0

    await eventually(acked)
    await bus.js.delete_consumer(bus.stream_name(TASKS), durable)  # the open pull ends (409)
    await bus.ensure_agent_consumer(AGENT, ack_wait=30)
    await bus.publish(bus.subjects.tasks(AGENT), ping(2))
    await eventually(lambda: seen == [1, 2], timeout=10)
    assert handle.running


async def test_acks_without_confirmation_settle_the_messages(bus: Bus) -> None:
    await bus.ensure_agent_consumer(AGENT, ack_wait=30)
    seen: list[int] = []

    async def handler(value: Ping, delivery: Delivery) -> None:
        seen.append(value.n)

    handle = await bus.consume(
        TASKS, bus.subjects.agent_consumer(AGENT), handler, parse, batch=4, confirm_acks=False
    )
    for n in range(10):
        await bus.publish(bus.subjects.tasks(AGENT), ping(n))
    await eventually(lambda: handle.stats.acked == 10)
    assert sorted(seen) == list(range(10))

    async def settled() -> bool:
        info = await bus.js.stream_info(bus.stream_name(TASKS))
        return info.state.messages == 0  # a work queue drops what is acked

    await eventually(settled)


async def test_a_consumer_that_limits_its_requests_is_still_consumed(bus: Bus) -> None:
    stream = bus.stream_name(TASKS)
    durable = bus.subjects.agent_consumer(AGENT)
    config = {
        "durable_name": durable,
        "ack_policy": "explicit",
        "filter_subject": bus.subjects.tasks(AGENT),
        "max_batch": 2,  # the server refuses larger requests (409 Exceeded MaxRequestBatch of 2)
    }
    body = json.dumps({"stream_name": stream, "config": config}).encode()
    reply = await bus.nc.request(f"$JS.API.CONSUMER.CREATE.{stream}.{durable}", body, timeout=5)
    assert "error" not in json.loads(reply.data), reply.data
    seen: list[int] = []

    async def handler(value: Ping, delivery: Delivery) -> None:
        seen.append(value.n)

    await bus.consume(TASKS, durable, handler, parse, batch=8, fetch_timeout=0.5)
    for n in range(12):
        await bus.publish(bus.subjects.tasks(AGENT), ping(n))
    await eventually(lambda: sorted(seen) == list(range(12)), timeout=10)
