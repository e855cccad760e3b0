"""The pull-consumer loop: fetch from a durable consumer, parse, run the handler, and settle each
message by the handler's outcome.

Outcome policy (by exception type, see ``taskloom.bus.errors``):

* handler returns → ack (confirmed by the server) every delivery it did not settle itself;
* ``RetryableError`` (or a type listed in ``retry_on``) → nak with its ``delay``, or the
  exponential ``Backoff`` by delivery count; on the last allowed attempt → dead-letter;
* ``PermanentError`` → dead-letter + ack; any other exception → the same, logged with traceback;
* a body ``parse`` rejects → dead-letter (``parse_error``) + ack, the handler never sees it;
* a delivery beyond the consumer's ``max_deliver`` (a crash or hang ate the last attempt) →
  dead-letter without running the handler.

Batch handlers get every parsed message of a fetch at once; when one raises a non-retryable
error, the deliveries it left unsettled are retried one at a time, so one poison message is
dead-lettered alone instead of taking its neighbours with it. A batch handler must therefore be
atomic or idempotent per message (the orchestrator folds a batch in one transaction).

The loop never dies of a bad message or a broken connection: fetch timeouts are the idle state,
other fetch errors are logged and retried with a bounded pause.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from nats.aio.msg import Msg
from nats.js import JetStreamContext

from taskloom.bus.deadletter import DeadLetterReason, dead_letter_headers, describe_error
from taskloom.bus.delivery import Delivery
from taskloom.bus.errors import PermanentError, RetryableError
from taskloom.observability import get_logger

__all__ = ["Backoff", "BatchHandler", "ConsumerHandle", "ConsumerStats", "Handler", "PullLoop"]

T = TypeVar("T")
Handler = Callable[[T, Delivery], Awaitable[None]]
BatchHandler = Callable[[list[tuple[T, Delivery]]], Awaitable[None]]

_log = get_logger(__name__)


@dataclass(frozen=True)
class Backoff:
    """Redelivery delay of a retryable failure: ``base * 2**(n-1)`` capped at ``cap``, ± ``jitter``
    (a fraction) so that replicas failing together do not retry in lock-step."""

    base: float = 1.0
    cap: float = 60.0
    jitter: float = 0.1

    def delay(self, num_delivered: int) -> float:
        raw = min(self.cap, self.base * 2.0 ** max(num_delivered - 1, 0))
        spread = raw * self.jitter
        return max(0.0, raw + random.uniform(-spread, spread))  # noqa: S311 - not security


@dataclass
class ConsumerStats:
    """How many deliveries the loop settled each way (for tests, logs and metrics)."""

    acked: int = 0
    naked: int = 0
    termed: int = 0
    dead_lettered: int = 0

    def record(self, delivery: Delivery) -> None:
        if delivery.outcome is not None:
            setattr(self, delivery.outcome, getattr(self, delivery.outcome) + 1)


@dataclass
class ConsumerHandle:
    """A running consume loop. ``stop()`` stops fetching and lets each worker finish the batch it
    already fetched (with ``batch=1``, just the message in flight)."""

    stream: str
    durable: str
    stats: ConsumerStats
    _stopping: asyncio.Event
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def running(self) -> bool:
        return any(not t.done() for t in self._tasks)

    def request_stop(self) -> None:
        """Ask the loop to stop without waiting for it: the way a handler stops its own loop
        (awaiting ``stop()`` from inside a handler would wait for itself)."""
        self._stopping.set()

    async def stop(self, timeout: float | None = 30.0) -> None:  # noqa: ASYNC109 - a grace period
        """Stop gracefully; after ``timeout`` seconds cancel whatever is still running (its
        unsettled messages are redelivered once their ack wait expires)."""
        self._stopping.set()
        if not self._tasks:
            return
        _done, pending = await asyncio.wait(self._tasks, timeout=timeout)
        for task in pending:
            task.cancel()
        if pending:
            _log.warning("bus_consumer_stop_forced", stream=self.stream, consumer=self.durable)
            await asyncio.gather(*pending, return_exceptions=True)

    async def wait(self) -> None:
        await asyncio.gather(*self._tasks, return_exceptions=True)


class PullLoop(Generic[T]):
    """The workers behind one ``ConsumerHandle``; built by ``Bus.consume``/``Bus.consume_batch``."""

    def __init__(
        self,
        js: JetStreamContext,
        *,
        stream: str,
        durable: str,
        parse: Callable[[bytes], T],
        handler: Handler[T] | None = None,
        batch_handler: BatchHandler[T] | None = None,
        dead_letter_subject: str,
        max_attempts: int | None,
        ack_wait: float,
        batch: int = 1,
        fetch_timeout: float = 1.0,
        concurrency: int = 1,
        backoff: Backoff | None = None,
        retry_on: Sequence[type[BaseException]] = (),
        ack_timeout: float = 5.0,
    ) -> None:
        if (handler is None) == (batch_handler is None):
            raise ValueError("pass exactly one of handler / batch_handler")
        if batch < 1 or concurrency < 1 or fetch_timeout <= 0:
            raise ValueError("batch and concurrency must be >= 1, fetch_timeout > 0")
        self.js = js
        self.stream = stream
        self.durable = durable
        self.parse = parse
        self.handler = handler
        self.batch_handler = batch_handler
        self.dead_letter_subject = dead_letter_subject
        self.max_attempts = max_attempts
        self.ack_wait = ack_wait
        self.batch = batch
        self.fetch_timeout = fetch_timeout
        self.concurrency = concurrency
        self.backoff = backoff or Backoff()
        self.retry_on = tuple(retry_on)
        self.ack_timeout = ack_timeout
        self.log = _log.bind(stream=stream, consumer=durable)
        self.handle = ConsumerHandle(stream, durable, ConsumerStats(), asyncio.Event())

    def start(self) -> ConsumerHandle:
        self.handle._tasks = [
            asyncio.create_task(self._worker(), name=f"bus-consume-{self.durable}-{i}")
            for i in range(self.concurrency)
        ]
        self.log.info("bus_consumer_started", batch=self.batch, concurrency=self.concurrency)
        return self.handle

    @property
    def _stopping(self) -> asyncio.Event:
        return self.handle._stopping

    # --- fetching --------------------------------------------------------------------------
    async def _worker(self) -> None:
        # each worker binds its own subscription (own inbox): concurrent fetches on one
        # subscription would steal each other's replies
        sub: JetStreamContext.PullSubscription | None = None
        ready: list[Any] = []  # this worker's own inbox for no_wait pulls: [subject, subscription]
        failures = 0
        try:
            while not self._stopping.is_set():
                try:
                    if sub is None:
                        sub = await self.js.pull_subscribe_bind(self.durable, stream=self.stream)
                    msgs = await self._fetch(sub, ready)
                except TimeoutError:
                    failures = 0  # nothing to do: the normal idle state
                    continue
                except Exception as exc:
                    failures += 1
                    self.log.warning("bus_fetch_failed", error=describe_error(exc), attempt=failures)
                    await self._pause(min(0.25 * 2**failures, 10.0))
                    continue
                failures = 0
                try:
                    await self._dispatch(msgs)
                except Exception as exc:  # a bug in the loop itself must not kill the consumer
                    self.log.error("bus_dispatch_crashed", exc_info=exc)
        finally:
            if sub is not None:
                with contextlib.suppress(Exception):
                    await sub.unsubscribe()
            if ready:
                with contextlib.suppress(Exception):
                    await ready[1].unsubscribe()
            self.log.info("bus_consumer_stopped", **self.handle.stats.__dict__)

    async def _fetch(self, sub: JetStreamContext.PullSubscription, ready: list[Any]) -> list[Msg]:
        """Up to ``batch`` messages, returning as soon as one is there.

        ``PullSubscription.fetch(n)`` may hold a lingering pull open until its timeout once the
        first message arrived, waiting for the other ``n - 1``: an idle consumer then adds up to
        ``fetch_timeout`` to a message's latency. So: wait for ONE message (a pull of one ends
        with it), then, when its metadata says more are pending, take those with a ``no_wait``
        pull, which the server answers at once."""
        msgs = await sub.fetch(1, timeout=self.fetch_timeout)
        if self.batch > 1:
            # the delivery says how many more wait for this consumer: no extra pull when none
            pending = msgs[0].metadata.num_pending or 0
            if pending > 0:
                msgs.extend(await self._ready(min(self.batch - 1, pending), ready))
        return msgs

    async def _ready(self, n: int, ready: list[Any]) -> list[Msg]:
        nc = self.js._nc
        if not ready:
            inbox = nc.new_inbox()
            ready.extend((inbox, await nc.subscribe(inbox)))
        inbox, sub = ready
        prefix = getattr(self.js, "_prefix", "$JS.API")
        request = json.dumps({"batch": n, "no_wait": True}).encode()
        await nc.publish(f"{prefix}.CONSUMER.MSG.NEXT.{self.stream}.{self.durable}", request, reply=inbox)
        msgs: list[Msg] = []
        deadline = asyncio.get_running_loop().time() + min(self.fetch_timeout, 2.0)
        while len(msgs) < n:
            left = deadline - asyncio.get_running_loop().time()
            try:
                msg = await sub.next_msg(timeout=max(left, 0.001))
            except TimeoutError:
                break  # a late answer waits in the inbox for the next call
            if JetStreamContext.is_status_msg(msg):
                if left <= 0 or (msg.headers or {}).get("Status") in ("404", "408", "409"):
                    break
                continue
            msgs.append(msg)
        return msgs

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    # --- processing ------------------------------------------------------------------------
    async def _dispatch(self, msgs: list[Msg]) -> None:
        # a fetched batch is leased to this worker: it is finished even when a stop arrives
        # meanwhile, because handing messages back (nak) would count as a delivery attempt
        deliveries = [self._delivery(m) for m in msgs]
        try:
            if self.batch_handler is not None:
                await self._process_batch(deliveries)
            else:
                for d in deliveries:
                    await self._process_one(d)
        finally:
            for d in deliveries:
                self.handle.stats.record(d)

    def _delivery(self, msg: Msg) -> Delivery:
        return Delivery(
            msg, ack_wait=self.ack_wait, dead_letter=self._dead_letter, ack_timeout=self.ack_timeout
        )

    async def _admit(self, d: Delivery) -> tuple[bool, Any]:
        """Exhausted or unparsable deliveries are dead-lettered here; others yield their value."""
        if self.max_attempts is not None and d.num_delivered > self.max_attempts:
            error = f"delivered {d.num_delivered} times, max_deliver is {self.max_attempts}"
            await self._dead_letter(d, DeadLetterReason.MAX_DELIVER_EXCEEDED, error)
            return False, None
        try:
            return True, self.parse(d.data)
        except Exception as exc:
            await self._dead_letter(d, DeadLetterReason.PARSE_ERROR, exc)
            return False, None

    async def _process_one(self, d: Delivery) -> None:
        ok, value = await self._admit(d)
        if ok:
            assert self.handler is not None
            await self._run(functools.partial(self.handler, value, d), [d])

    async def _process_batch(self, deliveries: list[Delivery]) -> None:
        items: list[tuple[T, Delivery]] = []
        for d in deliveries:
            ok, value = await self._admit(d)
            if ok:
                items.append((value, d))
        if not items:
            return
        handler = self.batch_handler
        assert handler is not None
        values = {id(d): v for v, d in items}

        async def one_by_one(pending: list[Delivery]) -> None:
            for d in pending:
                await self._run(functools.partial(handler, [(values[id(d)], d)]), [d])

        await self._run(functools.partial(handler, items), [d for _, d in items], one_by_one)

    async def _run(
        self,
        call: Callable[[], Awaitable[None]],
        deliveries: list[Delivery],
        isolate: Callable[[list[Delivery]], Awaitable[None]] | None = None,
    ) -> None:
        try:
            await call()
        except Exception as exc:
            await self._on_failure(exc, deliveries, isolate)
        else:
            # concurrently: a batch's acks cost one round trip, not one per message
            await asyncio.gather(*(d.ack() for d in deliveries if not d.settled))

    async def _on_failure(
        self,
        exc: Exception,
        deliveries: list[Delivery],
        isolate: Callable[[list[Delivery]], Awaitable[None]] | None,
    ) -> None:
        pending = [d for d in deliveries if not d.settled]
        if isinstance(exc, RetryableError) or isinstance(exc, self.retry_on):
            explicit = exc.delay if isinstance(exc, RetryableError) else None
            for d in pending:
                if self.max_attempts is not None and d.num_delivered >= self.max_attempts:
                    await self._dead_letter(d, DeadLetterReason.MAX_DELIVER_EXCEEDED, exc)
                    continue
                delay = explicit if explicit is not None else self.backoff.delay(d.num_delivered)
                self.log.info(
                    "bus_retry_later",
                    subject=d.subject,
                    seq=d.stream_sequence,
                    delivered=d.num_delivered,
                    delay=round(delay, 3),
                    error=describe_error(exc),
                )
                await d.nak(delay)
            return
        if isolate is not None and len(pending) > 1:
            self.log.warning("bus_batch_failed_isolating", size=len(pending), error=describe_error(exc))
            await isolate(pending)
            return
        if isinstance(exc, PermanentError):
            reason = DeadLetterReason.PERMANENT_ERROR
        else:
            reason = DeadLetterReason.UNEXPECTED_ERROR
            self.log.error(
                "bus_handler_crashed",
                subjects=[d.subject for d in pending],
                error=describe_error(exc),
                exc_info=exc,
            )
        for d in pending:
            await self._dead_letter(d, reason, exc)

    async def _dead_letter(self, d: Delivery, reason: str, error: BaseException | str | None) -> bool:
        if not d._mark_dead_lettered():
            return False
        headers = dead_letter_headers(
            reason=str(reason),
            error=error,
            subject=d.subject,
            stream=d.stream,
            consumer=d.consumer,
            stream_seq=d.stream_sequence,
            num_delivered=d.num_delivered,
            headers=d.headers,
        )
        try:
            await self.js.publish(self.dead_letter_subject, d.data, headers=headers)
        except Exception as exc:
            # never ack what could not be stored elsewhere: let JetStream redeliver it later
            self.log.error(
                "bus_dead_letter_failed", subject=d.subject, seq=d.stream_sequence, error=describe_error(exc)
            )
            d.outcome = "naked"
            with contextlib.suppress(Exception):
                await d.msg.nak(delay=self.backoff.cap)
            return False
        self.log.warning(
            "bus_dead_lettered",
            reason=str(reason),
            subject=d.subject,
            seq=d.stream_sequence,
            delivered=d.num_delivered,
            error=error if isinstance(error, str) else describe_error(error),
            dlq=self.dead_letter_subject,
        )
        try:
            await d.msg.ack_sync(timeout=self.ack_timeout)
        except Exception as exc:  # redelivered later and deduplicated by the DLQ's msg id
            self.log.warning("bus_ack_unconfirmed", subject=d.subject, seq=d.stream_sequence, error=str(exc))
        return True
