"""The audit trail writer: records are queued and inserted in batches by one background task,
so a burst of refused requests costs the hot path a queue put, not a database round trip."""

from __future__ import annotations

import asyncio
import contextlib

from taskloom.gateway.adapters.postgres import AuditRecord, GatewayDb
from taskloom.observability import get_logger

__all__ = ["AuditTrail"]

_log = get_logger(__name__)


class AuditTrail:
    def __init__(self, db: GatewayDb, max_queue: int = 10_000, batch: int = 200) -> None:
        self.db = db
        self.batch = batch
        self._queue: asyncio.Queue[AuditRecord] = asyncio.Queue(max_queue)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="audit-writer")

    async def record(self, record: AuditRecord) -> None:
        # a full queue slows the caller down rather than dropping a security record
        await self._queue.put(record)
        # the audit_log table is the record; the log line is for operators watching refusals,
        # so allowed actions (one per submission, cancel, ...) stay below info
        log = _log.debug if record.outcome == "allowed" else _log.info
        log(
            "audit",
            actor=record.actor,
            action=record.action,
            resource=record.resource,
            outcome=record.outcome,
            reason=record.reason,
        )

    async def flush(self) -> None:
        await self._queue.join()

    async def stop(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._queue.join(), timeout=5)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            first = await self._queue.get()
            records = [first]
            while len(records) < self.batch and not self._queue.empty():
                records.append(self._queue.get_nowait())
            for attempt in range(5):
                try:
                    await self.db.write_audit(records)
                    break
                except Exception as exc:
                    _log.warning("audit write failed; retrying", error=str(exc), attempt=attempt + 1)
                    await asyncio.sleep(0.2 * 2**attempt)
            else:
                _log.error("audit records could not be stored", count=len(records))
            for _ in records:
                self._queue.task_done()
