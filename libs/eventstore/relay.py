"""The event relay: publishes every stored event, in position order, to a JetStream subject.

It tails the events after a checkpoint row named after the relay and advances it in the same
transaction that holds the checkpoint's row lock, so a second relay with the same name waits
its turn instead of double-publishing, and a restarted relay resumes where the last one
committed. A cycle is four round trips on a connection the relay keeps (begin, lock and read
in one statement, checkpoint, commit) and its commit does not wait for the WAL flush (a
checkpoint lost with a crash only means a few events published again); ``coalesce`` lets the
commits of a few milliseconds share one cycle. Each message carries ``Nats-Msg-Id`` =
``event_id``: events published before a crash but not yet checkpointed are published again and
dropped by JetStream's duplicate window.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from typing import Final

from nats.js import JetStreamContext

from taskloom.eventstore._pg import PinnedConnection, raw_transaction, translate_errors
from taskloom.eventstore._wakeup import Wakeup
from taskloom.eventstore.errors import RetryableError
from taskloom.eventstore.models import RecordedEvent
from taskloom.eventstore.store import EventStore, decode_event
from taskloom.observability import get_logger

__all__ = ["EventRelay", "event_headers"]

_log = get_logger(__name__)
MSG_ID_HEADER: Final = "Nats-Msg-Id"


def event_headers(event: RecordedEvent) -> dict[str, str]:
    """The headers every relayed event carries: dedup id and where it sits in the store."""
    return {
        MSG_ID_HEADER: event.event_id,
        "Taskloom-Stream-Id": event.stream_id,
        "Taskloom-Event-Type": event.type,
        "Taskloom-Version": str(event.version),
        "Taskloom-Position": str(event.position),
    }


class EventRelay:
    """Publishes ``store``'s events to ``subject_for(event)``; run ``run()`` or ``start()``."""

    def __init__(
        self,
        store: EventStore,
        js: JetStreamContext,
        subject_for: Callable[[RecordedEvent], str],
        *,
        name: str = "event-relay",
        batch_size: int = 500,
        poll_interval: float = 1.0,
        publish_timeout: float = 5.0,
        encode: Callable[[RecordedEvent], bytes] = RecordedEvent.to_json,
        extra_headers: Callable[[RecordedEvent], Mapping[str, str]] | None = None,
        coalesce: float = 0.0,
    ) -> None:
        self._store = store
        self._js = js
        self._sql = store.statements
        self.subject_for = subject_for
        self.name = name
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.publish_timeout = publish_timeout
        self.encode = encode
        self.extra_headers = extra_headers
        self.coalesce = coalesce
        self._wakeup = Wakeup(store.engine, self._sql.events_channel)
        self._conn = PinnedConnection(store.engine)
        self._ensured = False
        self._running = False
        self._task: asyncio.Task[None] | None = None
        self.position = 0
        """The last position this relay checkpointed."""

    def notify(self) -> None:
        self._wakeup.notify()

    async def run(self) -> None:
        """Relay until cancelled; failures are logged and retried from the checkpoint."""
        self._running = True
        try:
            while True:
                try:
                    await self.catch_up()
                except Exception as exc:
                    _log.warning("event_relay_cycle_failed", relay=self.name, error=str(exc))
                if await self._wakeup.wait(self.poll_interval) and self.coalesce > 0:
                    await asyncio.sleep(self.coalesce)  # let the commits right behind join in
        finally:
            self._running = False
            await self._wakeup.close()
            await self._conn.close()

    async def start_at_head(self) -> None:
        """Checkpoint this relay at the store's head, so that it publishes only what is appended
        from now on (a new relay would otherwise first publish every event already stored)."""
        await self._store.save_checkpoint(self.name, await self._store.head_position())

    def start(self) -> asyncio.Task[None]:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self.run(), name=f"event-relay-{self.name}")
        return self._task

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.close()

    async def close(self) -> None:
        """Return the connection a started relay keeps (``stop()`` does this itself)."""
        await self._conn.close()

    async def catch_up(self) -> int:
        """Publish everything after the checkpoint; returns how many events were published."""
        total = 0
        while True:
            published, full = await self.relay_batch()
            total += published
            if not full:
                return total

    async def relay_batch(self) -> tuple[int, bool]:
        """Publish one batch after the checkpoint and advance it. Returns (published, whether a
        full batch was read, i.e. more may follow)."""
        # a running relay keeps its connection; a one-off catch_up() borrows one from the pool
        borrow = self._conn.use() if self._running else self._store.driver()
        async with translate_errors(f"event relay {self.name!r}"), borrow as conn:
            if not self._ensured:
                await conn.execute(self._sql.checkpoint_ensure, self.name)
                self._ensured = True
            # the checkpoint need not reach the disk before the commit returns: one lost with a
            # crash only means events published again, which JetStream drops by their ids
            async with raw_transaction(conn, "BEGIN; SET LOCAL synchronous_commit = off"):
                rows = await conn.fetch(self._sql.checkpoint_lock_read, self.name, self.batch_size)
                if not rows:
                    return 0, False  # another relay of this name holds the checkpoint
                position = rows[0][8]
                events = [decode_event(r) for r in rows if r[0] is not None]
                done = await self._publish(events)
                if done:
                    await conn.execute(self._sql.save_checkpoint, self.name, events[done - 1].position)
                    position = events[done - 1].position
            self.position = int(position)
        if done < len(events):
            raise RetryableError(f"event relay {self.name!r} stopped at position {self.position}")
        return done, len(events) == self.batch_size

    async def _publish(self, events: list[RecordedEvent]) -> int:
        """Publish concurrently (in order on the wire); return the length of the prefix that
        JetStream acknowledged, which is how far the checkpoint may move."""

        async def one(e: RecordedEvent) -> None:
            headers = event_headers(e)
            if self.extra_headers is not None:
                headers = {**self.extra_headers(e), **headers}
            await self._js.publish(
                self.subject_for(e), self.encode(e), timeout=self.publish_timeout, headers=headers
            )

        results = await asyncio.gather(*(one(e) for e in events), return_exceptions=True)
        for i, r in enumerate(results):
            if isinstance(r, asyncio.CancelledError):
                raise r
            if isinstance(r, BaseException):
                _log.warning(
                    "event_publish_failed", relay=self.name, event_id=events[i].event_id, error=repr(r)
                )
                return i
        return len(events)
