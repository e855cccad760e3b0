"""Live status frames of a workflow, shared by every WebSocket of this process that watches it.

One ``WorkflowFeed`` per watched workflow holds the one NATS subscription, the one projector and
the one serialisation of each event, however many clients watch; every client receives the same
frame text in its own bounded queue. The feed's positions are contiguous: an event that skips
ahead is filled in from the store, an idle feed checks the store now and then (core NATS drops
messages while it reconnects), and a frame is published only once its predecessors have been.
A client that joins at feed position F replays the store itself (up to a head >= F) and then
takes the feed's frames after its last position: no gap, no duplicate.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from taskloom.eventstore import EventStore
from taskloom.gateway.adapters.nats import GatewayBus
from taskloom.gateway.domain.frames import FrameProjector
from taskloom.observability import get_logger

__all__ = ["FEED_FAILED", "Feeds", "Frame", "Subscriber", "WorkflowFeed"]

_log = get_logger(__name__)
_IDLE_POLL_SECONDS = 5.0
_UNSUBSCRIBING: set[asyncio.Task[None]] = set()


@dataclass(frozen=True, slots=True)
class Frame:
    """One serialised status frame; ``final`` after the workflow's terminal event."""

    position: int
    text: str
    final: bool


FEED_FAILED = Frame(-1, "", True)
"""Put in every subscriber's queue when the feed cannot go on (the store did not answer)."""


@dataclass(eq=False, slots=True)
class Subscriber:
    """One client's bounded queue; ``on_overflow`` runs (once) when the client falls behind."""

    queue: asyncio.Queue[Frame]
    on_overflow: Callable[[], None]
    overflowed: bool = field(default=False)

    def offer(self, frame: Frame) -> None:
        if self.overflowed:
            return
        try:
            self.queue.put_nowait(frame)
        except asyncio.QueueFull:
            self.overflowed = True
            self.on_overflow()


class WorkflowFeed:
    def __init__(
        self, workflow_id: str, store: EventStore, bus: GatewayBus, on_done: Callable[[WorkflowFeed], None]
    ):
        self.workflow_id = workflow_id
        self.store = store
        self.bus = bus
        self.projector = FrameProjector(workflow_id)
        self.last = 0
        self.subscribers: set[Subscriber] = set()
        self._on_done = on_done
        self._inbox: asyncio.Queue[bytes] = asyncio.Queue()
        self._ready = asyncio.Event()
        self._subscription: Subscription | None = None
        self._task: asyncio.Task[None] | None = None
        self.failed = False

    async def start(self) -> None:
        # subscribe before reading the store, so no event falls between the two
        self._subscription = await self.bus.subscribe_events(self.workflow_id, self._on_message)
        self._task = asyncio.create_task(self._run(), name=f"feed-{self.workflow_id}")

    async def join(self, subscriber: Subscriber) -> None:
        """From here on ``subscriber`` receives every frame after ``self.last`` (or
        ``FEED_FAILED``). A feed that ended with its workflow has nothing more to send: the
        subscriber's own replay of the store reaches the end."""
        await self._ready.wait()
        if self.failed:
            subscriber.offer(FEED_FAILED)
        self.subscribers.add(subscriber)

    def fail(self) -> None:
        self.failed = True
        self._ready.set()
        for subscriber in list(self.subscribers):
            subscriber.offer(FEED_FAILED)

    def leave(self, subscriber: Subscriber) -> None:
        self.subscribers.discard(subscriber)
        if not self.subscribers and self._ready.is_set():
            self._finish()

    async def stop(self) -> None:
        self._finish()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    async def _on_message(self, msg: Msg) -> None:
        self._inbox.put_nowait(msg.data)

    async def _run(self) -> None:
        try:
            await self._catch_up()
            self._ready.set()
            while not self.projector.finished:
                try:
                    # asyncio.timeout: wait_for may swallow the cancellation that stops the feed
                    async with asyncio.timeout(_IDLE_POLL_SECONDS):
                        raw = await self._inbox.get()
                except TimeoutError:
                    if not self.subscribers:
                        return  # every client that was waiting for the feed went away
                    await self._catch_up()
                    continue
                await self._live(raw)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            _log.warning("workflow feed failed", workflow_id=self.workflow_id, error=str(exc))
            self.fail()
        finally:
            self._ready.set()
            self._finish()

    async def _live(self, raw: bytes) -> None:
        try:
            event = json.loads(raw)
            version = int(event["version"])
        except (ValueError, KeyError, TypeError):
            await self._catch_up()
            return
        if version <= self.last:
            return
        if version > self.last + 1:
            # an event is missing between what was published and this one: the store has it
            await self._catch_up(upto=version - 1)
        if version == self.last + 1:
            self._publish(version, str(event["type"]), dict(event["data"]), _ts(event.get("recorded_at")))

    async def _catch_up(self, upto: int | None = None) -> None:
        for event in await self.store.read_stream(self.workflow_id, self.last + 1, upto):
            self._publish(event.version, event.type, event.data, event.recorded_at)
            if self.projector.finished:
                return

    def _publish(self, version: int, event_type: str, data: dict[str, Any], at: datetime | None) -> None:
        frame = self.projector.apply(version, event_type, data, at)
        self.last = version
        if self.subscribers:
            shared = Frame(version, frame.model_dump_json(), self.projector.finished)
            for subscriber in list(self.subscribers):
                subscriber.offer(shared)

    def _finish(self) -> None:
        """Unsubscribe and forget the feed (idempotent); current subscribers keep their queues."""
        if self._subscription is not None:
            subscription, self._subscription = self._subscription, None
            task = asyncio.get_running_loop().create_task(_unsubscribe(subscription))
            _UNSUBSCRIBING.add(task)  # the loop holds tasks weakly
            task.add_done_callback(_UNSUBSCRIBING.discard)
        if self._task is not None and not self._task.done() and self._task is not asyncio.current_task():
            self._task.cancel()
        self._on_done(self)


class Feeds:
    """The feeds of this process, one per watched workflow, created on the first join."""

    def __init__(self, store: EventStore, bus: GatewayBus) -> None:
        self.store = store
        self.bus = bus
        self._feeds: dict[str, WorkflowFeed] = {}

    async def join(self, workflow_id: str, subscriber: Subscriber) -> WorkflowFeed:
        feed = self._feeds.get(workflow_id)
        if feed is None:
            feed = self._feeds[workflow_id] = WorkflowFeed(workflow_id, self.store, self.bus, self._forget)
            try:
                await feed.start()
            except BaseException:
                feed.fail()  # joiners already waiting for it learn it failed
                self._forget(feed)
                raise
        await feed.join(subscriber)
        return feed

    def _forget(self, feed: WorkflowFeed) -> None:
        if self._feeds.get(feed.workflow_id) is feed:
            del self._feeds[feed.workflow_id]

    def __len__(self) -> int:
        return len(self._feeds)

    async def close(self) -> None:
        for feed in list(self._feeds.values()):
            await feed.stop()


async def _unsubscribe(subscription: Subscription) -> None:
    with contextlib.suppress(Exception):
        await subscription.unsubscribe()


def _ts(value: Any) -> datetime | None:
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return datetime.fromisoformat(value)
    return None
