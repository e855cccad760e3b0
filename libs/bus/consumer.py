"""The pull-consumer loop: fetch from a durable consumer, parse, run the handler, and settle each
message by the handler's outcome.

Outcome policy (by exception type, see ``taskloom.bus.errors``):

* handler returns → ack every delivery it did not settle itself (confirmed by the server unless
  the loop runs with ``confirm_acks=False``, for handlers that are idempotent anyway);
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

Messages arrive through a standing pull (``_Window``) sized to what the workers can take, so
a message is pushed the moment it is stored instead of waiting for the next fetch request.
The loop never dies of a bad message or a broken connection: an expired pull is the idle state
and is renewed, other failures are logged and retried with a bounded pause.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import random
import re
from collections import deque
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


class _Window:
    """A standing pull on a durable consumer, shared by a loop's workers.

    Instead of one pull request per fetch, the window keeps pull requests open at the server
    for as many messages as the loop has room for (``capacity``: batch x workers, counting the
    messages being handled), so the server pushes each message the moment it is stored, several
    at once when several wait, with no request on the path of a message. Room freed by finished
    messages is requested again once it reaches half the capacity (or at once when no request
    is open), so a slow handler never has more messages waiting for it than it could take:
    a delivered message's ack wait runs while it waits here.

    Each request expires after ``expires`` seconds (the server then answers 408 and the room is
    requested again), which bounds how long a request lost with a connection or a restarted
    server can go unnoticed. Requests are served oldest first, so each delivery is counted
    against the oldest open one.
    """

    _GRACE = 0.25  # a request counts as open this long after its expiry unless the server says
    _ARRIVING = 0.01  # the longest wait for messages the server said are on their way

    def __init__(
        self, js: JetStreamContext, stream: str, durable: str, capacity: int, expires: float
    ) -> None:
        self.nc = js._nc
        prefix = getattr(js, "_prefix", "$JS.API")
        self.subject = f"{prefix}.CONSUMER.MSG.NEXT.{stream}.{durable}"
        self.capacity = capacity
        self.expires = expires
        self.buffer: deque[Msg] = deque()
        self.taken = 0  # handed to workers and not finished yet
        self._open: deque[list[float]] = deque()  # [local deadline, messages still owed], oldest first
        self._waiters: list[asyncio.Future[None]] = []
        self._inbox = ""
        self._sub: Any = None
        self._hold_until = 0.0
        self.max_request = capacity

    async def open(self) -> None:
        self._inbox = self.nc.new_inbox()
        # the window bounds what can arrive, so the subscription's own limits never drop a message
        self._sub = await self.nc.subscribe(
            self._inbox, cb=self._on_msg, pending_msgs_limit=0, pending_bytes_limit=0
        )

    async def close(self) -> None:
        """Unsubscribe; messages delivered but never taken are handed back at once (nak)."""
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
            self._sub = None
        while self.buffer:
            with contextlib.suppress(Exception):
                await self.buffer.popleft().nak()

    async def _on_msg(self, msg: Msg) -> None:
        headers = msg.headers or {}
        status = headers.get("Status")
        if status is None:
            self._owed_one()
            self.buffer.append(msg)
        elif status in ("404", "408"):
            # the oldest request ended (expired) with messages still owed: request them again
            if self._open:
                self._open.popleft()
        elif status != "100":
            # 409 and others (consumer deleted, leadership change, no JetStream answering):
            # every request may be gone; ask again after a pause rather than in a tight loop
            description = headers.get("Description", "")
            _log.info("bus_pull_ended", status=status, description=description)
            self._open.clear()
            self._hold_until = asyncio.get_running_loop().time() + min(self.expires, 1.0)
            # a consumer declared with limits on requests: ask within them from now on
            limit = _MAX_BATCH.search(description)
            if limit is not None:
                self.max_request = max(1, int(limit.group(1)))
            elif "MaxRequestExpires" in description:
                self.expires = max(self.expires / 2, 0.05)
        self.wake()

    def _owed_one(self) -> None:
        while self._open:
            first = self._open[0]
            if first[1] > 0:
                first[1] -= 1
                if first[1] <= 0:
                    self._open.popleft()
                return
            self._open.popleft()

    def owed(self) -> int:
        """Messages the open requests may still deliver."""
        now = asyncio.get_running_loop().time()
        while self._open and self._open[0][0] <= now:
            self._open.popleft()
        return int(sum(o[1] for o in self._open))

    async def top_up(self) -> None:
        if self._hold_until and asyncio.get_running_loop().time() < self._hold_until:
            return
        owed = self.owed()
        room = self.capacity - len(self.buffer) - self.taken - owed
        if room <= 0 or (owed > 0 and room < max(1, self.capacity // 2)):
            return
        room = min(room, self.max_request)
        request = json.dumps({"batch": room, "expires": int(self.expires * 1e9)}).encode()
        # counted before the send, so that another worker topping up meanwhile sees it
        entry = [asyncio.get_running_loop().time() + self.expires + self._GRACE, float(room)]
        self._open.append(entry)
        try:
            await self.nc.publish(self.subject, request, reply=self._inbox)
        except BaseException:
            with contextlib.suppress(ValueError):
                self._open.remove(entry)
            raise

    async def take(self, n: int) -> list[Msg]:
        """Up to ``n`` messages: those delivered, and those the server still held for this
        consumer when it sent the last of them, which an open request is bringing right behind
        (so messages that were waiting together are handled together). Empty when another
        worker took them first."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._ARRIVING
        while 0 < len(self.buffer) < self._expected(n) and (left := deadline - loop.time()) > 0:
            await self.wait(left)
        msgs = [self.buffer.popleft() for _ in range(min(n, len(self.buffer)))]
        self.taken += len(msgs)
        return msgs

    def _expected(self, n: int) -> int:
        try:
            pending = self.buffer[-1].metadata.num_pending or 0
        except Exception:  # not a JetStream delivery's reply subject: nothing known
            pending = 0
        return min(n, len(self.buffer) + min(pending, self.owed()))

    def release(self, n: int) -> None:
        self.taken -= n

    async def wait(self, timeout: float) -> None:  # noqa: ASYNC109 - an idle wait, not an I/O deadline
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        self._waiters.append(fut)
        timer = loop.call_later(timeout, _resolve, fut)
        try:
            await fut
        finally:
            timer.cancel()
            with contextlib.suppress(ValueError):
                self._waiters.remove(fut)

    def wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for fut in waiters:
            _resolve(fut)


_MAX_BATCH = re.compile(r"MaxRequestBatch of (\d+)")


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


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
        confirm_acks: bool = True,
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
        self.confirm_acks = confirm_acks
        self.log = _log.bind(stream=stream, consumer=durable)
        self.handle = ConsumerHandle(stream, durable, ConsumerStats(), asyncio.Event())

    def start(self) -> ConsumerHandle:
        self.handle._tasks = [asyncio.create_task(self._run_workers(), name=f"bus-consume-{self.durable}")]
        self.log.info("bus_consumer_started", batch=self.batch, concurrency=self.concurrency)
        return self.handle

    @property
    def _stopping(self) -> asyncio.Event:
        return self.handle._stopping

    # --- fetching --------------------------------------------------------------------------
    async def _worker(self, window: _Window) -> None:
        failures = 0
        try:
            while not self._stopping.is_set():
                try:
                    await window.top_up()
                    failures = 0
                except Exception as exc:
                    failures += 1
                    self.log.warning("bus_fetch_failed", error=describe_error(exc), attempt=failures)
                    await self._pause(min(0.25 * 2**failures, 10.0))
                    continue
                if not window.buffer:
                    await window.wait(self.fetch_timeout)  # woken by a delivery or a stop
                    continue
                msgs = await window.take(self.batch)
                if not msgs:
                    continue
                try:
                    await self._dispatch(msgs)
                except Exception as exc:  # a bug in the loop itself must not kill the consumer
                    self.log.error("bus_dispatch_crashed", exc_info=exc)
                finally:
                    window.release(len(msgs))
        finally:
            self.log.info("bus_consumer_stopped", **self.handle.stats.__dict__)

    async def _run_workers(self) -> None:
        capacity = self.batch * self.concurrency
        window = _Window(self.js, self.stream, self.durable, capacity, self.fetch_timeout)
        stopping = self._stopping
        waker = asyncio.create_task(self._wake_on_stop(window))
        try:
            while not stopping.is_set():
                try:
                    await window.open()
                    break
                except Exception as exc:
                    self.log.warning("bus_fetch_failed", error=describe_error(exc), attempt=1)
                    await self._pause(1.0)
            await asyncio.gather(*(self._worker(window) for _ in range(self.concurrency)))
        finally:
            waker.cancel()
            await window.close()

    async def _wake_on_stop(self, window: _Window) -> None:
        await self._stopping.wait()
        window.wake()

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
            msg,
            ack_wait=self.ack_wait,
            dead_letter=self._dead_letter,
            ack_timeout=self.ack_timeout,
            confirm_ack=self.confirm_acks,
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
