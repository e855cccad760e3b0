"""Read audits are buffered and written in batches off the request path; writes audit in their
own transaction. ``flush()`` makes everything buffered so far durable (the audit op and stop
call it)."""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from collections.abc import Sequence

from taskloom.context.adapters.store import AuditEntry, ContextStore
from taskloom.context.domain.errors import ContextServiceError
from taskloom.observability import get_logger

__all__ = ["AuditBacklogFull", "AuditBuffer"]


class AuditBacklogFull(ContextServiceError):
    """The audit cannot be written (database away) and the backlog is at its limit: reads are
    refused rather than served unaudited."""


_log = get_logger(__name__)


class AuditBuffer:
    def __init__(
        self, store: ContextStore, interval: float = 0.05, batch: int = 500, max_pending: int = 100_000
    ) -> None:
        self._store = store
        self._interval = interval
        self._batch = batch
        self._max_pending = max_pending
        # short inserts: encoding a chunk blocks the loop, and requests wait behind it
        self._chunk = 50
        self._pending: list[tuple[AuditEntry, Sequence[str] | None]] = []
        self._known: OrderedDict[bytes, None] = OrderedDict()  # key lists already stored
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def add(self, *records: tuple[AuditEntry, Sequence[str] | None]) -> None:
        """Buffer records, all or none; each is an entry and the keys behind its ``keyset``."""
        if len(self._pending) + len(records) > self._max_pending:
            raise AuditBacklogFull(
                f"{len(self._pending)} audit records are waiting for the database; "
                "refusing reads until it is back"
            )
        self._pending.extend(records)
        self._wake.set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="context-audit-flush")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()

    async def flush(self) -> None:
        async with self._lock:
            while self._pending:
                batch, self._pending = self._pending[: self._chunk], self._pending[self._chunk :]
                keysets = {
                    e.keyset: keys
                    for e, keys in batch
                    if e.keyset is not None and keys is not None and e.keyset not in self._known
                }
                try:
                    await self._store.record_audit([e for e, _ in batch], list(keysets.items()))
                except BaseException:
                    # keep the records for the next attempt rather than lose them
                    self._pending[:0] = batch
                    raise
                for digest in keysets:
                    self._known[digest] = None
                while len(self._known) > 10_000:
                    self._known.popitem(last=False)

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            if len(self._pending) < self._batch:
                await asyncio.sleep(self._interval)  # gather a batch
            self._wake.clear()
            try:
                await self.flush()
            except Exception as exc:
                _log.warning("audit flush failed, will retry", error=str(exc), pending=len(self._pending))
                await asyncio.sleep(min(1.0, self._interval * 10))
