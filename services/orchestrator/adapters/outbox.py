"""The outbox relay with a post-commit fast path: assignments are published to JetStream straight
after their transaction commits, from memory, and the NEXT commit of this process marks those
rows published in its own statement (``take_published``), so the steady state needs no relay
cycle at all. The relay still polls: rows that no later commit marked (a quiet process), and rows
whose fast-path publish failed (which wake it at once), are claimed and finished there.

The outbox row stays the source of truth: until a relay cycle commits ``published_at`` the row is
unpublished, so a crash anywhere in between makes the next relay publish it again (JetStream
drops the repeat by its ``Nats-Msg-Id``). A relay cycle that claims a row whose fast-path publish
is still under way waits for its outcome and publishes the row itself when it failed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Sequence
from typing import Any, Final

from nats.js import JetStreamContext

from taskloom.eventstore import EventStore, OutboxMessage, OutboxRelay
from taskloom.eventstore.outbox import MSG_ID_HEADER, ClaimedMessage
from taskloom.observability import get_logger

__all__ = ["DirectRelay"]

_log = get_logger(__name__)
_PENDING_LIMIT: Final = 100_000


class DirectRelay(OutboxRelay):
    """``expect(ids)`` before the commit, ``publish_direct(messages)`` after it."""

    def __init__(
        self,
        store: EventStore,
        js: JetStreamContext,
        *,
        coalesce: float = 0.02,
        min_age: float = 1.0,
        **options: Any,
    ) -> None:
        # min_age: the relay leaves rows alone while the next commit is still likely to mark them
        super().__init__(store, js, min_age=min_age, **options)
        self.coalesce = coalesce
        self._jetstream = js
        self._direct: dict[str, asyncio.Future[bool]] = {}
        self._unmarked: dict[str, None] = {}  # published here, not yet marked in the store
        self._sent: dict[str, None] = {}  # published here (bounded, oldest dropped first)

    def expect(self, message_ids: Iterable[str]) -> None:
        """Announce rows this process will publish itself once they commit."""
        loop = asyncio.get_running_loop()
        if len(self._direct) > _PENDING_LIMIT:  # nobody marks them (relay stopped): do not grow
            self.forget(list(self._direct))
        for mid in message_ids:
            old = self._direct.get(mid)
            if old is None or old.done():
                self._direct[mid] = loop.create_future()

    def forget(self, message_ids: Iterable[str]) -> None:
        """Rows that will not be published here (their transaction rolled back or stored
        nothing new): a relay cycle waiting for them publishes them itself."""
        for mid in message_ids:
            fut = self._direct.pop(mid, None)
            if fut is not None and not fut.done():
                fut.set_result(False)

    async def publish_direct(self, messages: Sequence[OutboxMessage]) -> None:
        """Publish committed rows now, concurrently; the outcome of each is kept for the relay
        cycle that marks it."""

        async def one(m: OutboxMessage) -> bool:
            try:
                headers = {**m.headers, MSG_ID_HEADER: m.message_id}
                await self._jetstream.publish(
                    m.subject, m.payload, timeout=self.publish_timeout, headers=headers
                )
            except Exception as exc:  # the relay cycle publishes it again
                _log.warning("outbox_direct_publish_failed", message_id=m.message_id, error=repr(exc))
                return False
            return True

        outcomes = await asyncio.gather(*(one(m) for m in messages))
        for m, ok in zip(messages, outcomes, strict=True):
            fut = self._direct.get(m.message_id)
            if fut is not None and not fut.done():
                fut.set_result(ok)
            if ok:
                self._unmarked[m.message_id] = None
                self._sent[m.message_id] = None
        while len(self._sent) > _PENDING_LIMIT:
            del self._sent[next(iter(self._sent))]
        if not all(outcomes) or len(self._unmarked) > _PENDING_LIMIT:
            self.notify()  # the relay publishes what failed (and marks what waits) now

    def take_published(self) -> list[str]:
        """Rows published here since the last call, for the next commit to mark published. If
        that commit fails they stay unpublished in the store, and a relay cycle publishes them
        again (JetStream drops the repeat by its message id)."""
        taken = list(self._unmarked)
        self._unmarked.clear()
        for mid in taken:
            fut = self._direct.get(mid)
            if fut is not None and fut.done():
                del self._direct[mid]
        return taken

    def marked(self, message_ids: Iterable[str]) -> None:
        """A commit has marked these rows published: nothing here needs to remember them."""
        for mid in message_ids:
            self._sent.pop(mid, None)

    async def drain(self) -> int:
        """One relay pass, ``coalesce`` seconds after a wake-up (a failed fast-path publish, a
        commit of another process): what the relay finds then is claimed in one cycle."""
        if self.coalesce > 0:
            await asyncio.sleep(self.coalesce)
        return await super().drain()

    async def publish_batch(self, messages: Sequence[ClaimedMessage]) -> list[BaseException | None]:
        """Publish claimed rows, except those the fast path has published already."""
        done: dict[str, bool] = {}
        for m in messages:
            if m.message_id in self._sent:  # published here already: only mark it
                del self._sent[m.message_id]
                self._unmarked.pop(m.message_id, None)
                done[m.message_id] = True
                continue
            fut = self._direct.get(m.message_id)
            if fut is None:
                continue
            # asyncio.timeout: wait_for may swallow the cancellation that stops the relay
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.publish_timeout):
                    done[m.message_id] = await asyncio.shield(fut)
            if self._direct.get(m.message_id) is fut:
                del self._direct[m.message_id]
            self._unmarked.pop(m.message_id, None)
        rest = [m for m in messages if not done.get(m.message_id)]
        errors = iter(await super().publish_batch(rest) if rest else [])
        return [None if done.get(m.message_id) else next(errors) for m in messages]

    async def stop(self) -> None:
        await super().stop()
        self.forget(list(self._direct))
        self._unmarked.clear()
        self._sent.clear()
