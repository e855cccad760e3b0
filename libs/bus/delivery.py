"""One JetStream delivery as a handler sees it: the raw message, where it came from, and the
controls that settle it (ack, nak, term, dead-letter) or keep it alive (in_progress).

A delivery is settled at most once; later settle calls are ignored, so a handler may settle it
itself and the consumer loop then leaves it alone. Settling never raises on a transport failure:
an unconfirmed ack only means JetStream redelivers the message, which every Taskloom handler
tolerates (delivery is at-least-once; handlers are idempotent by message id).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Literal

from nats.aio.msg import Msg

from taskloom.bus.codec import MSG_ID_HEADER
from taskloom.observability import get_logger

__all__ = ["DeadLetterFn", "Delivery", "Outcome"]

_log = get_logger(__name__)

Outcome = Literal["acked", "naked", "termed", "dead_lettered"]
DeadLetterFn = Callable[["Delivery", str, BaseException | str | None], Awaitable[bool]]


class Delivery:
    """A message delivered by a durable pull consumer, with its settle controls."""

    def __init__(
        self,
        msg: Msg,
        *,
        ack_wait: float,
        dead_letter: DeadLetterFn,
        ack_timeout: float = 5.0,
        confirm_ack: bool = True,
    ) -> None:
        self.msg = msg
        meta = msg.metadata
        self.stream: str = meta.stream
        self.consumer: str = meta.consumer
        self.stream_sequence: int = meta.sequence.stream
        self.num_delivered: int = meta.num_delivered
        """1 on the first delivery, 2 on the first redelivery, ..."""
        self.ack_wait = ack_wait
        self.outcome: Outcome | None = None
        self._dead_letter = dead_letter
        self._ack_timeout = ack_timeout
        self._confirm_ack = confirm_ack

    # --- what was delivered --------------------------------------------------------------
    @property
    def subject(self) -> str:
        return self.msg.subject

    @property
    def data(self) -> bytes:
        return self.msg.data

    @property
    def headers(self) -> Mapping[str, str]:
        return self.msg.headers or {}

    @property
    def msg_id(self) -> str | None:
        return self.headers.get(MSG_ID_HEADER)

    @property
    def settled(self) -> bool:
        return self.outcome is not None

    # --- settling --------------------------------------------------------------------------
    def _settle(self, outcome: Outcome) -> bool:
        if self.outcome is not None:
            return False
        self.outcome = outcome
        return True

    async def ack(self) -> bool:
        """Acknowledge and wait for the server to confirm, so that a process stopped right after
        never sees this message again. Returns whether the server confirmed. A delivery of a
        loop with ``confirm_acks=False`` sends the ack without waiting (one message instead of a
        round trip): its handler tolerates the rare redelivery of an ack lost in transit."""
        if not self._settle("acked"):
            return False
        if not self._confirm_ack:
            return await self._send(self.msg.ack(), "ack")
        try:
            await self.msg.ack_sync(timeout=self._ack_timeout)
            return True
        except Exception as exc:
            _log.warning(
                "bus_ack_unconfirmed", subject=self.subject, seq=self.stream_sequence, error=str(exc)
            )
            return False

    async def nak(self, delay: float | None = None) -> bool:
        """Ask for redelivery after ``delay`` seconds (at once when ``None``)."""
        if not self._settle("naked"):
            return False
        return await self._send(self.msg.nak(delay=delay), "nak")

    async def term(self) -> bool:
        """Tell JetStream never to redeliver this message (without dead-lettering it)."""
        if not self._settle("termed"):
            return False
        return await self._send(self.msg.term(), "term")

    async def in_progress(self) -> None:
        """Reset the ack deadline: the handler is alive and still working on it."""
        if self.outcome is None:
            await self._send(self.msg.in_progress(), "in_progress")

    async def dead_letter(self, reason: str, error: BaseException | str | None = None) -> bool:
        """Publish this message to the dead-letter stream with ``reason``, then ack it. If the
        dead letter cannot be stored, the message is nak'ed instead so that nothing is lost."""
        if self.outcome is not None:
            return False
        return await self._dead_letter(self, reason, error)

    @contextlib.asynccontextmanager
    async def keep_alive(self, interval: float | None = None) -> AsyncIterator[None]:
        """Call ``in_progress`` every ``interval`` seconds (a third of the ack wait by default)
        while the block runs, for work that may outlast the ack wait."""
        every = interval if interval is not None else max(self.ack_wait / 3, 0.05)

        async def beat() -> None:
            while self.outcome is None:
                await asyncio.sleep(every)
                await self.in_progress()

        task = asyncio.create_task(beat(), name=f"keep-alive-{self.stream}-{self.stream_sequence}")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _send(self, op: Awaitable[None], what: str) -> bool:
        try:
            await op
            return True
        except Exception as exc:
            _log.warning(f"bus_{what}_failed", subject=self.subject, seq=self.stream_sequence, error=str(exc))
            return False

    def _mark_dead_lettered(self) -> bool:
        """Used by the consumer loop's dead-letterer, which then acks the raw message."""
        return self._settle("dead_lettered")

    def __repr__(self) -> str:
        return (
            f"Delivery({self.subject!r}, stream={self.stream}, seq={self.stream_sequence}, "
            f"delivered={self.num_delivered}, outcome={self.outcome})"
        )
