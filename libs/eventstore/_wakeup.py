"""Wake a relay loop when there is work: PostgreSQL LISTEN/NOTIFY from the committing
transaction, an in-process ``notify()``, and a poll interval as the fallback when a
notification is lost (for instance while the listening connection was being re-opened)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from taskloom.observability import get_logger

__all__ = ["Wakeup"]

_log = get_logger(__name__)


class Wakeup:
    def __init__(self, engine: AsyncEngine, channel: str) -> None:
        self._engine = engine
        self._channel = channel
        self._event = asyncio.Event()
        self._conn: AsyncConnection | None = None
        self._driver: Any = None

    def notify(self) -> None:
        """Wake the waiter now (callable from any coroutine of this event loop)."""
        self._event.set()

    def _on_notification(self, *_args: object) -> None:
        self._event.set()

    async def wait(self, seconds: float) -> bool:
        """Wait for a notification or ``seconds``; True when notified."""
        await self._ensure_listening()
        try:
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a cancellation that
            # arrives just as the event is set, and the relay's loop would then never stop
            async with asyncio.timeout(seconds):
                await self._event.wait()
            return True
        except TimeoutError:
            return False
        finally:
            self._event.clear()

    async def _ensure_listening(self) -> None:
        if self._driver is not None and not self._driver.is_closed():
            return
        await self.close()
        try:
            conn = await self._engine.connect()
            driver = (await conn.get_raw_connection()).driver_connection
            assert driver is not None
            await driver.add_listener(self._channel, self._on_notification)
        except Exception as exc:
            # polling still works; the next wait tries again
            _log.warning("listen_failed", channel=self._channel, error=str(exc))
            return
        self._conn, self._driver = conn, driver
        # anything committed while nobody listened must not wait for the poll interval
        self._event.set()

    async def close(self) -> None:
        conn, driver = self._conn, self._driver
        self._conn = self._driver = None
        if conn is None:
            return
        with contextlib.suppress(Exception):
            if not driver.is_closed():
                await driver.remove_listener(self._channel, self._on_notification)
        with contextlib.suppress(Exception):
            await conn.close()
