"""The outbox relay: publishes the outbox rows committed with the events to JetStream.

Delivery is at-least-once into JetStream and exactly-once as seen in the stream, because every
publish carries ``Nats-Msg-Id`` = ``message_id`` and JetStream drops a repeat inside its
duplicate window. One cycle, in one transaction: claim unpublished rows with
``FOR UPDATE SKIP LOCKED`` (a second relay takes other rows instead of waiting), publish them,
mark them published, commit. A relay that dies before publishing releases its claim with its
transaction, so the rows are picked up again; one that dies after publishing but before the
commit makes the next relay re-publish rows JetStream already has, which the dedup absorbs.

A relay wakes on NOTIFY from the appending transaction, on ``notify()`` and every
``poll_interval``; ``publish_now(message_ids)`` publishes given rows straight away, so dispatch
latency after a commit is one claim round trip plus the publish, not a poll interval.
Published rows are kept for ``retention_seconds`` so that ``republish(since)`` can re-send them
(for instance after a JetStream stream was lost), then purged.

Messages are published in outbox order, but a failed publish is retried later (with backoff)
while later rows go ahead, and two relays interleave: consumers must not rely on strict order.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from nats.js import JetStreamContext

from taskloom.eventstore._pg import translate_errors
from taskloom.eventstore._wakeup import Wakeup
from taskloom.eventstore.store import EventStore
from taskloom.observability import get_logger

__all__ = ["ClaimedMessage", "OutboxRelay", "retry_delay"]

_log = get_logger(__name__)
MSG_ID_HEADER = "Nats-Msg-Id"


@dataclass(frozen=True, slots=True)
class ClaimedMessage:
    """An outbox row claimed by a relay cycle (locked until the cycle's transaction ends)."""

    id: int
    message_id: str
    subject: str
    payload: bytes
    headers: dict[str, str]
    attempts: int


def retry_delay(attempts: int, base: float = 0.5, cap: float = 60.0) -> float:
    """Seconds before retrying a publish that has failed ``attempts`` times (exponential, capped)."""
    return float(min(cap, base * 2 ** max(0, attempts - 1)))


def _claimed(row: Sequence[Any]) -> ClaimedMessage:
    headers = row[4] if not isinstance(row[4], str) else json.loads(row[4])
    return ClaimedMessage(row[0], row[1], row[2], bytes(row[3]), dict(headers), row[5])


class OutboxRelay:
    """Publishes committed outbox rows to JetStream; run one or more per deployment."""

    def __init__(
        self,
        store: EventStore,
        js: JetStreamContext,
        *,
        batch_size: int = 256,
        poll_interval: float = 1.0,
        publish_timeout: float = 5.0,
        retention_seconds: float = 7 * 24 * 3600,
        purge_interval: float = 300.0,
        min_age: float = 0.0,
    ) -> None:
        self._store = store
        self._js = js
        self._sql = store.statements
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.publish_timeout = publish_timeout
        self.retention_seconds = retention_seconds
        self.purge_interval = purge_interval
        self.min_age = min_age  # rows younger than this are left to whoever committed them
        self._wakeup = Wakeup(store.engine, self._sql.outbox_channel)
        self._task: asyncio.Task[None] | None = None
        self.published_total = 0

    # --- running ----------------------------------------------------------------------------
    def notify(self) -> None:
        """Wake the relay now (e.g. right after a commit in this process)."""
        self._wakeup.notify()

    async def run(self) -> None:
        """Relay until cancelled. Failures are logged and retried; they never end the loop."""
        loop = asyncio.get_running_loop()
        next_purge = loop.time()
        try:
            while True:
                try:
                    await self.drain()
                    if loop.time() >= next_purge:
                        await self.purge()
                        next_purge = loop.time() + self.purge_interval
                except Exception as exc:
                    _log.warning("outbox_relay_cycle_failed", error=str(exc))
                await self._wakeup.wait(self.poll_interval)
        finally:
            await self._wakeup.close()

    def start(self) -> asyncio.Task[None]:
        """Run in a background task (``stop()`` ends it)."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self.run(), name="outbox-relay")
        return self._task

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # --- one cycle --------------------------------------------------------------------------
    async def drain(self) -> int:
        """Publish every row that is ready now; returns how many were published."""
        total = 0
        while True:
            published, claimed = await self._cycle(None)
            total += published
            if claimed < self.batch_size:
                return total

    async def publish_now(self, message_ids: Sequence[str]) -> int:
        """Publish these rows immediately (the low-latency path after a commit); rows another
        relay holds are left to it. Returns how many this call published."""
        if not message_ids:
            return 0
        published, _ = await self._cycle(list(message_ids))
        return published

    async def _cycle(self, message_ids: list[str] | None) -> tuple[int, int]:
        async with translate_errors("outbox relay"), self._store.driver() as conn, conn.transaction():
            if message_ids is None:
                rows = await conn.fetch(self._sql.outbox_claim, self.batch_size, float(self.min_age))
            else:
                rows = await conn.fetch(self._sql.outbox_claim_ids, len(message_ids), message_ids)
            if not rows:
                return 0, 0
            claimed = [_claimed(r) for r in rows]
            errors = await self.publish_batch(claimed)
            await self.mark_published(conn, claimed, errors)
        done = sum(e is None for e in errors)
        self.published_total += done
        return done, len(claimed)

    async def publish_batch(self, messages: Sequence[ClaimedMessage]) -> list[BaseException | None]:
        """Publish claimed rows concurrently, in order on the wire; one error (or None) per row."""

        async def one(m: ClaimedMessage) -> None:
            headers = {**m.headers, MSG_ID_HEADER: m.message_id}
            await self._js.publish(m.subject, m.payload, timeout=self.publish_timeout, headers=headers)

        results = await asyncio.gather(*(one(m) for m in messages), return_exceptions=True)
        errors: list[BaseException | None] = []
        for r in results:
            if isinstance(r, asyncio.CancelledError):
                raise r
            errors.append(r if isinstance(r, BaseException) else None)
        return errors

    async def mark_published(
        self, conn: Any, messages: Sequence[ClaimedMessage], errors: Sequence[BaseException | None]
    ) -> None:
        """Record the outcome of a publish in the claiming transaction."""
        ok = [m.id for m, e in zip(messages, errors, strict=True) if e is None]
        failed = [(m, e) for m, e in zip(messages, errors, strict=True) if e is not None]
        if ok:
            await conn.execute(self._sql.outbox_mark_published, ok)
        if failed:
            for m, e in failed:
                _log.warning(
                    "outbox_publish_failed", message_id=m.message_id, subject=m.subject, error=repr(e)
                )
            await conn.execute(
                self._sql.outbox_mark_failed,
                [m.id for m, _ in failed],
                [repr(e)[:1000] for _, e in failed],
                [retry_delay(m.attempts + 1) for m, _ in failed],
            )

    # --- housekeeping -----------------------------------------------------------------------
    async def purge(self) -> int:
        """Delete rows published more than ``retention_seconds`` ago; returns how many."""
        async with translate_errors("outbox purge"), self._store.driver() as conn:
            status = await conn.execute(self._sql.outbox_purge, float(self.retention_seconds))
        return _count(status)

    async def republish(self, since: datetime) -> int:
        """Queue every row published at or after ``since`` for publishing again (they are still
        kept if within the retention); returns how many were re-queued."""
        async with translate_errors("outbox republish"), self._store.driver() as conn:
            status = await conn.execute(self._sql.outbox_requeue, since)
        self.notify()
        return _count(status)

    async def pending(self) -> int:
        """How many rows wait to be published."""
        async with translate_errors("outbox pending"), self._store.driver() as conn:
            return int(await conn.fetchval(self._sql.outbox_pending))


def _count(status: str) -> int:
    """The row count of a command tag such as ``DELETE 3``."""
    return int(status.rsplit(" ", 1)[-1])
