"""The pull-consumer loop on a real server: outcome policy by exception type, the dead-letter
stream, redelivery, resumption, work sharing, deadline extension and graceful stop."""

from __future__ import annotations

import asyncio
import json
from collections import Counter

import pytest
from bus_testkit import Ping, eventually, open_bus, ping, stream_messages

from taskloom.bus import (
    DLQ_CONSUMER,
    DLQ_DELIVERIES,
    DLQ_ERROR,
    DLQ_ORIGINAL_HEADERS,
    DLQ_REASON,
    DLQ_STREAM,
    DLQ_STREAM_SEQ,
    DLQ_SUBJECT,
    DLQ_TIMESTAMP,
    Backoff,
    Bus,
    ConsumerNotFound,
    Delivery,
    PermanentError,
    RetryableError,
    StreamKind,
    original_headers,
)
from taskloom.settings import Settings

parse = Ping.model_validate_json
PROGRESS = StreamKind.PROGRESS


class Recorder:
    """A handler that records what it saw and can be told to fail."""

    def __init__(self, fail: dict[int, Exception] | None = None, sleep: float = 0.0) -> None:
        self.seen: list[tuple[int, int]] = []  # (n, num_delivered)
        self.fail = fail or {}
        self.sleep = sleep

    async def __call__(self, value: Ping, delivery: Delivery) -> None:
        self.seen.append((value.n, delivery.num_delivered))
        if self.sleep:
            await asyncio.sleep(self.sleep)
        if value.n in self.fail:
            raise self.fail[value.n]

    @property
    def ns(self) -> list[int]:
        return [n for n, _ in self.seen]


async def dead_letters(bus: Bus, source: str = "progress") -> list[tuple[dict[str, str], bytes]]:
    msgs = await stream_messages(bus, StreamKind.DLQ)
    assert all(m.subject == bus.subjects.dead_letter(source) for m in msgs)
    return [(dict(m.headers or {}), m.data or b"") for m in msgs]


async def test_a_malformed_message_is_dead_lettered_and_the_next_one_processed(bus: Bus) -> None:
    await bus.ensure_consumer(PROGRESS, "orchestrator", ack_wait=5)
    subject = bus.subjects.progress("core-services", "wf1", "t1")
    await bus.publish(subject, b'{"not": "a ping"', msg_id="bad-1", headers={"X-Trace": "abc"})
    await bus.publish(subject, ping(2))
    handler = Recorder()
    handle = await bus.consume(PROGRESS, "orchestrator", handler, parse)

    await eventually(lambda: handler.ns == [2])
    await eventually(lambda: handle.stats.dead_lettered == 1)
    [(headers, body)] = await dead_letters(bus)
    assert body == b'{"not": "a ping"'  # unchanged
    assert headers[DLQ_REASON] == "parse_error"
    assert "ValidationError" in headers[DLQ_ERROR]
    assert headers[DLQ_SUBJECT] == subject
    assert headers[DLQ_STREAM] == bus.stream_name(PROGRESS)
    assert headers[DLQ_CONSUMER] == "orchestrator"
    assert headers[DLQ_STREAM_SEQ] == "1"
    assert headers[DLQ_DELIVERIES] == "1"
    assert headers[DLQ_TIMESTAMP]
    assert original_headers(headers) == {"Nats-Msg-Id": "bad-1", "X-Trace": "abc"}
    assert json.loads(headers[DLQ_ORIGINAL_HEADERS])["X-Trace"] == "abc"
    # acked: the consumer has nothing outstanding
    info = await bus.js.consumer_info(bus.stream_name(PROGRESS), "orchestrator")
    await eventually(lambda: handle.stats.acked == 1)
    info = await bus.js.consumer_info(bus.stream_name(PROGRESS), "orchestrator")
    assert (info.num_ack_pending, info.num_pending) == (0, 0)


async def test_retryable_error_redelivers_after_the_nak_delay(bus: Bus) -> None:
    await bus.ensure_consumer(PROGRESS, "orchestrator", ack_wait=30)
    seen_at: list[float] = []
    loop = asyncio.get_running_loop()

    async def handler(value: Ping, delivery: Delivery) -> None:
        seen_at.append(loop.time())
        if delivery.num_delivered == 1:
            raise RetryableError("database busy", delay=0.8)

    await bus.publish(bus.subjects.progress("a", "wf", "t"), ping(1))
    handle = await bus.consume(PROGRESS, "orchestrator", handler, parse)
    await eventually(lambda: len(seen_at) == 2)
    assert seen_at[1] - seen_at[0] >= 0.7  # not before the delay (ack wait is 30 s)
    await eventually(lambda: handle.stats.acked == 1)
    assert handle.stats.naked == 1 and handle.stats.dead_lettered == 0
    assert await dead_letters(bus) == []


async def test_retry_without_delay_uses_the_backoff_and_retry_on_types(bus: Bus) -> None:
    await bus.ensure_consumer(PROGRESS, "orchestrator", ack_wait=30)

    class StoreBusy(Exception):
        pass

    handler = Recorder(fail={1: StoreBusy("locked")})

    async def flaky(value: Ping, delivery: Delivery) -> None:
        if delivery.num_delivered == 1:
            await handler(value, delivery)
        handler.seen.append((value.n, delivery.num_delivered))

    await bus.publish(bus.subjects.progress("a", "wf", "t"), ping(1))
    handle = await bus.consume(
        PROGRESS, "orchestrator", flaky, parse, retry_on=(StoreBusy,), backoff=Backoff(base=0.2, jitter=0)
    )
    await eventually(lambda: handle.stats.acked == 1)
    assert [d for _, d in handler.seen] == [1, 2]
    assert await dead_letters(bus) == []


async def test_permanent_and_unexpected_errors_dead_letter_and_the_loop_goes_on(bus: Bus) -> None:
    await bus.ensure_consumer(PROGRESS, "orchestrator", ack_wait=30)
    handler = Recorder(fail={1: PermanentError("unknown workflow"), 2: ZeroDivisionError("oops")})
    for n in (1, 2, 3):
        await bus.publish(bus.subjects.progress("a", "wf", str(n)), ping(n))
    handle = await bus.consume(PROGRESS, "orchestrator", handler, parse)
    await eventually(lambda: handle.stats.dead_lettered == 2 and handle.stats.acked == 1)
    assert handler.ns == [1, 2, 3]
    letters = await dead_letters(bus)
    assert [(h[DLQ_REASON], h[DLQ_ERROR]) for h, _ in letters] == [
        ("permanent_error", "PermanentError: unknown workflow"),
        ("unexpected_error", "ZeroDivisionError: oops"),
    ]
    assert [Ping.model_validate_json(body).n for _, body in letters] == [1, 2]


async def test_max_deliver_exceeded_dead_letters(bus: Bus) -> None:
    await bus.ensure_consumer(PROGRESS, "orchestrator", ack_wait=30, max_deliver=3)
    handler = Recorder(fail={1: RetryableError("still down", delay=0.1)})
    await bus.publish(bus.subjects.progress("a", "wf", "t"), ping(1))
    await bus.publish(bus.subjects.progress("a", "wf", "t2"), ping(2))
    handle = await bus.consume(PROGRESS, "orchestrator", handler, parse)
    await eventually(lambda: handle.stats.dead_lettered == 1)
    assert [d for n, d in handler.seen if n == 1] == [1, 2, 3]  # exactly max_deliver attempts
    [(headers, _)] = await dead_letters(bus)
    assert headers[DLQ_REASON] == "max_deliver_exceeded"
    assert headers[DLQ_DELIVERIES] == "3"
    assert "still down" in headers[DLQ_ERROR]
    assert 2 in handler.ns


async def test_a_delivery_beyond_max_deliver_is_dead_lettered_without_running_the_handler(bus: Bus) -> None:
    """The last attempt hung or its process died: the server's one extra delivery is used to
    dead-letter the message instead of leaving it in the stream forever."""
    await bus.ensure_consumer(PROGRESS, "orchestrator", ack_wait=1, max_deliver=1)
    await bus.publish(bus.subjects.progress("a", "wf", "t"), ping(1))
    crashed = await bus.js.pull_subscribe_bind("orchestrator", stream=bus.stream_name(PROGRESS))
    [msg] = await crashed.fetch(1, timeout=2)  # delivered once and never settled
    assert msg.metadata.num_delivered == 1
    await crashed.unsubscribe()

    handler = Recorder()
    handle = await bus.consume(PROGRESS, "orchestrator", handler, parse)
    await eventually(lambda: handle.stats.dead_lettered == 1)
    assert handler.seen == []
    [(headers, _)] = await dead_letters(bus)
    assert (headers[DLQ_REASON], headers[DLQ_DELIVERIES]) == ("max_deliver_exceeded", "2")


async def test_a_restarted_consumer_resumes_where_it_left_off(bus: Bus) -> None:
    await bus.ensure_consumer(PROGRESS, "orchestrator", ack_wait=30)
    for n in range(10):
        await bus.publish(bus.subjects.progress("a", "wf", str(n)), ping(n))
    first = Recorder(sleep=0.05)
    handle = await bus.consume(PROGRESS, "orchestrator", first, parse, batch=3)
    await eventually(lambda: len(first.seen) >= 4)
    await handle.stop()  # mid-batch: the fetched batch is finished, not handed back
    assert not handle.running
    done_first = len(first.seen)
    assert 4 <= done_first < 10
    assert handle.stats.acked == done_first
    for n in range(10, 15):  # published while nobody consumes
        await bus.publish(bus.subjects.progress("a", "wf", str(n)), ping(n))

    second = Recorder()
    handle2 = await bus.consume(PROGRESS, "orchestrator", second, parse, batch=3)
    await eventually(lambda: len(first.seen) + len(second.seen) >= 15)
    await asyncio.sleep(0.3)  # room for a wrong redelivery to show up
    await handle2.stop()
    assert first.ns + second.ns == list(range(15))  # in order, none twice, none skipped
    assert all(d == 1 for _, d in first.seen + second.seen)


async def test_two_consumers_on_one_durable_share_a_work_queue(bus: Bus, settings: Settings) -> None:
    await bus.ensure_agent_consumer("core-services", ack_wait=30)
    durable = bus.subjects.agent_consumer("core-services")
    other = await open_bus(settings, name="replica-2")
    try:
        a, b = Recorder(sleep=0.02), Recorder(sleep=0.02)
        await bus.consume(StreamKind.TASKS, durable, a, parse)
        await other.consume(StreamKind.TASKS, durable, b, parse)
        for n in range(40):
            await bus.publish(bus.subjects.tasks("core-services"), ping(n))
        await eventually(lambda: len(a.seen) + len(b.seen) >= 40)
        await asyncio.sleep(0.2)
        assert a.seen and b.seen  # both replicas worked
        assert sorted(a.ns + b.ns) == list(range(40))  # each task exactly once
        await eventually(lambda: _stream_empty(bus, StreamKind.TASKS))  # acked = removed
    finally:
        await other.close()


async def _stream_empty(bus: Bus, kind: StreamKind) -> bool:
    return (await bus.js.stream_info(bus.stream_name(kind))).state.messages == 0


async def test_in_progress_extends_the_ack_deadline(bus: Bus) -> None:
    await bus.ensure_agent_consumer("core-services", ack_wait=1)
    durable = bus.subjects.agent_consumer("core-services")
    seen: list[int] = []

    async def long_task(value: Ping, delivery: Delivery) -> None:
        seen.append(delivery.num_delivered)
        async with delivery.keep_alive(0.3):
            await asyncio.sleep(2.5)  # 2.5 × the ack wait

    await bus.publish(bus.subjects.tasks("core-services"), ping(1))
    handle = await bus.consume(StreamKind.TASKS, durable, long_task, parse, concurrency=2)
    await eventually(lambda: handle.stats.acked == 1, timeout=10)
    await asyncio.sleep(1.5)  # a redelivery would have arrived by now
    assert seen == [1]
    assert await _stream_empty(bus, StreamKind.TASKS)


async def test_without_in_progress_a_slow_handler_is_redelivered(bus: Bus) -> None:
    """The control for the test above: the same handler without keep-alive loses its lease."""
    await bus.ensure_agent_consumer("core-services", ack_wait=1)
    durable = bus.subjects.agent_consumer("core-services")
    seen: list[int] = []

    async def long_task(value: Ping, delivery: Delivery) -> None:
        seen.append(delivery.num_delivered)
        await asyncio.sleep(2.5 if delivery.num_delivered == 1 else 0)

    await bus.publish(bus.subjects.tasks("core-services"), ping(1))
    await bus.consume(StreamKind.TASKS, durable, long_task, parse, concurrency=2)
    await eventually(lambda: seen == [1, 2], timeout=10)


async def test_stop_finishes_the_message_in_flight(bus: Bus) -> None:
    await bus.ensure_agent_consumer("core-services", ack_wait=30)
    durable = bus.subjects.agent_consumer("core-services")
    started, finished = asyncio.Event(), asyncio.Event()

    async def handler(value: Ping, delivery: Delivery) -> None:
        started.set()
        await asyncio.sleep(0.5)
        finished.set()

    await bus.publish(bus.subjects.tasks("core-services"), ping(1))
    await bus.publish(bus.subjects.tasks("core-services"), ping(2))
    handle = await bus.consume(StreamKind.TASKS, durable, handler, parse)
    await asyncio.wait_for(started.wait(), 5)
    await handle.stop()
    assert finished.is_set() and not handle.running
    assert handle.stats.acked == 1
    # nothing left leased: the second message waits in the stream for the next consumer
    info = await bus.js.consumer_info(bus.stream_name(StreamKind.TASKS), durable)
    assert (info.num_ack_pending, info.num_pending) == (0, 1)


async def test_the_handler_may_settle_a_delivery_itself(bus: Bus) -> None:
    await bus.ensure_consumer(PROGRESS, "orchestrator", ack_wait=30)

    async def handler(value: Ping, delivery: Delivery) -> None:
        if value.n == 1:
            assert await delivery.dead_letter("stale_update", "older than the task's state")
        else:
            assert await delivery.ack()
        assert not await delivery.ack()  # settling twice is ignored

    await bus.publish(bus.subjects.progress("a", "wf", "1"), ping(1))
    await bus.publish(bus.subjects.progress("a", "wf", "2"), ping(2))
    handle = await bus.consume(PROGRESS, "orchestrator", handler, parse)
    await eventually(lambda: handle.stats.dead_lettered == 1 and handle.stats.acked == 1)
    [(headers, _)] = await dead_letters(bus)
    assert (headers[DLQ_REASON], headers[DLQ_ERROR]) == ("stale_update", "older than the task's state")


async def test_batch_handler_isolates_a_poison_message(bus: Bus) -> None:
    await bus.ensure_consumer(PROGRESS, "orchestrator", ack_wait=30)
    calls: list[list[int]] = []

    async def fold(items: list[tuple[Ping, Delivery]]) -> None:
        calls.append([p.n for p, _ in items])
        if any(p.n == 3 for p, _ in items):
            raise ValueError("cannot fold 3")

    for n in range(6):
        await bus.publish(bus.subjects.progress("a", "wf", str(n)), ping(n))
    await bus.publish(bus.subjects.progress("a", "wf", "x"), b"garbage")
    handle = await bus.consume_batch(PROGRESS, "orchestrator", fold, parse, batch=10)
    await eventually(lambda: handle.stats.acked == 5 and handle.stats.dead_lettered == 2)
    assert calls[0] == [0, 1, 2, 3, 4, 5]  # one batch; the garbage never reached the handler
    assert calls[1:] == [[0], [1], [2], [3], [4], [5]]  # then one by one
    reasons = Counter(h[DLQ_REASON] for h, _ in await dead_letters(bus))
    assert reasons == {"parse_error": 1, "unexpected_error": 1}


async def test_batch_handler_retryable_error_naks_the_whole_batch(bus: Bus) -> None:
    await bus.ensure_consumer(PROGRESS, "orchestrator", ack_wait=30)
    calls: list[list[tuple[int, int]]] = []

    async def fold(items: list[tuple[Ping, Delivery]]) -> None:
        calls.append([(p.n, d.num_delivered) for p, d in items])
        if len(calls) == 1:
            raise RetryableError("serialization failure", delay=0.2)

    for n in range(3):
        await bus.publish(bus.subjects.progress("a", "wf", str(n)), ping(n))
    handle = await bus.consume_batch(PROGRESS, "orchestrator", fold, parse, batch=10)
    await eventually(lambda: handle.stats.acked == 3)
    assert calls[0] == [(0, 1), (1, 1), (2, 1)]
    assert sorted(x for call in calls[1:] for x in call) == [(0, 2), (1, 2), (2, 2)]
    assert handle.stats.naked == 3


async def test_consuming_an_undeclared_consumer_fails_loudly(bus: Bus) -> None:
    with pytest.raises(ConsumerNotFound):
        await bus.consume(PROGRESS, "nobody", Recorder(), parse)
