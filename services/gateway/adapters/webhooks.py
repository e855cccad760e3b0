"""Webhook delivery: a dispatcher tails the global event log, turns each event of a workflow
with a ``callback_url`` into the chosen status frames, records one delivery row per frame, and
POSTs them signed (HMAC-SHA256 over the body) with exponential backoff. Rows live in
PostgreSQL, so deliveries survive restarts and several gateway replicas share the work."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections import OrderedDict
from typing import Any

import asyncpg
import httpx

from taskloom.eventstore import EventStore, RecordedEvent
from taskloom.gateway.domain.frames import FrameProjector
from taskloom.gateway.domain.webhooks import (
    SIGNATURE_HEADER,
    CallbackRefused,
    backoff_seconds,
    check_callback_url,
    check_resolved_addresses,
    sign,
)
from taskloom.observability import get_logger

__all__ = ["WebhookDispatcher", "check_callback"]

_log = get_logger(__name__)
_CURSOR = "webhooks"


async def check_callback(url: str, allow_private: bool) -> None:
    """Refuse a callback URL that is not http(s) or resolves to a non-public address."""
    host = check_callback_url(url)
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError:
        raise CallbackRefused(f"callback host {host!r} does not resolve") from None
    check_resolved_addresses(host, {str(info[4][0]) for info in infos}, allow_private)


class WebhookDispatcher:
    def __init__(
        self,
        pool: asyncpg.Pool,
        store: EventStore,
        secret: bytes,
        namespace: str,
        *,
        allow_private: bool = False,
        max_attempts: int = 6,
        backoff_base: float = 1.0,
        timeout: float = 10.0,
        poll_interval: float = 0.5,
    ) -> None:
        self.pool = pool
        self.store = store
        self.secret = secret
        self.namespace = namespace
        self.cursor = f"{_CURSOR}:{namespace}"
        self.allow_private = allow_private
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.poll_interval = poll_interval
        self._http = httpx.AsyncClient(timeout=timeout, follow_redirects=False)
        self._targets: OrderedDict[str, tuple[str, frozenset[str]] | None] = OrderedDict()
        self._projectors: OrderedDict[str, FrameProjector] = OrderedDict()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._loop(self.tail_once), name="webhook-tail"),
            asyncio.create_task(self._loop(self.deliver_due), name="webhook-deliver"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._http.aclose()

    async def _loop(self, step: Any) -> None:
        while True:
            try:
                busy = await step()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                _log.warning("webhook step failed", step=step.__name__, error=str(exc))
                busy = False
            if not busy:
                await asyncio.sleep(self.poll_interval)

    async def tail_once(self, limit: int = 500) -> bool:
        """Turn the next events of the global log into delivery rows; ``True`` if any were read."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "insert into gateway_cursor (name, position) values ($1, 0) on conflict do nothing",
                self.cursor,
            )
            after = await conn.fetchval(
                "select position from gateway_cursor where name = $1 for update", self.cursor
            )
            events = await self.store.read_all(int(after), limit)
            if not events:
                return False
            await self._load_targets(conn, {e.stream_id for e in events})
            rows = []
            for event in events:
                rows.extend(await self._deliveries_for(event))
            if rows:
                await conn.executemany(
                    "insert into webhook_deliveries"
                    " (workflow_id, position, event_type, url, payload, namespace)"
                    " values ($1, $2, $3, $4, $5, $6)"
                    " on conflict on constraint webhook_deliveries_once do nothing",
                    rows,
                )
            await conn.execute(
                "update gateway_cursor set position = $2 where name = $1", self.cursor, events[-1].position
            )
        return len(events) == limit

    async def _deliveries_for(self, event: RecordedEvent) -> list[tuple[str, int, str, str, bytes, str]]:
        target = self._targets.get(event.stream_id)  # looked up for the batch by _load_targets
        if target is None:
            return []
        url, wanted = target
        projector = await self._projector(event)
        frame = projector.apply(event.version, event.type, event.data, event.recorded_at)
        if frame.event_type.value not in wanted:
            return []
        body = frame.model_dump_json().encode()
        return [(event.stream_id, event.version, frame.event_type.value, url, body, self.namespace)]

    async def _load_targets(self, conn: asyncpg.Connection, workflow_ids: set[str]) -> None:
        """Look up the subscriptions of every workflow not seen before in one query (a busy
        gateway sees hundreds of new workflows a second; one round trip each adds up). A
        subscription is stored before its workflow's first event, so a miss stays a miss."""
        unknown = [wf for wf in workflow_ids if wf not in self._targets]
        if not unknown:
            return
        rows = await conn.fetch(
            "select workflow_id, url, events from webhook_subscriptions"
            " where workflow_id = any($1::text[]) and namespace = $2",
            unknown,
            self.namespace,
        )
        found = {r["workflow_id"]: (r["url"], frozenset(r["events"])) for r in rows}
        for wf in unknown:
            self._targets[wf] = found.get(wf)
        while len(self._targets) > 100_000:
            self._targets.popitem(last=False)

    async def _projector(self, event: RecordedEvent) -> FrameProjector:
        wf = event.stream_id
        projector = self._projectors.get(wf)
        if projector is None or projector.position != event.version - 1:
            projector = FrameProjector(wf)
            for earlier in await self.store.read_stream(wf, 1, event.version - 1):
                projector.apply(earlier.version, earlier.type, earlier.data, earlier.recorded_at)
            self._projectors[wf] = projector
        self._projectors.move_to_end(wf)
        if len(self._projectors) > 1000:
            self._projectors.popitem(last=False)
        return projector

    async def deliver_due(self, limit: int = 20) -> bool:
        """POST the deliveries that are due; ``True`` when a full batch was taken."""
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                "select id, url, payload, attempts, event_type from webhook_deliveries"
                " where status = 'pending' and namespace = $2 and next_attempt_at <= now()"
                " order by next_attempt_at, id limit $1 for update skip locked",
                limit,
                self.namespace,
            )
            results = await asyncio.gather(*(self._post(r) for r in rows))
            await conn.executemany(
                "update webhook_deliveries set attempts = attempts + 1, status = $2, last_status_code = $3,"
                " last_error = $4, delivered_at = case when $2 = 'delivered' then now() end,"
                " next_attempt_at = now() + make_interval(secs => $5) where id = $1",
                results,
            )
        return len(rows) == limit

    async def _post(self, row: asyncpg.Record) -> tuple[int, str, int | None, str | None, float]:
        attempt = int(row["attempts"]) + 1
        body = bytes(row["payload"])
        try:
            await check_callback(row["url"], self.allow_private)
            response = await self._http.post(
                row["url"],
                content=body,
                headers={
                    "Content-Type": "application/json",
                    SIGNATURE_HEADER: sign(self.secret, body),
                    "X-Taskloom-Event": row["event_type"],
                    "X-Taskloom-Delivery": str(row["id"]),
                    "User-Agent": "taskloom-webhooks/1",
                },
            )
        except CallbackRefused as exc:
            return (row["id"], "refused", None, str(exc), 0.0)
        except httpx.HTTPError as exc:
            return self._retry(row["id"], attempt, None, f"{type(exc).__name__}: {exc}")
        if 200 <= response.status_code < 300:
            return (row["id"], "delivered", response.status_code, None, 0.0)
        return self._retry(row["id"], attempt, response.status_code, f"HTTP {response.status_code}")

    def _retry(
        self, delivery_id: int, attempt: int, code: int | None, error: str
    ) -> tuple[int, str, int | None, str | None, float]:
        if attempt >= self.max_attempts:
            return (delivery_id, "failed", code, error, 0.0)
        return (delivery_id, "pending", code, error, backoff_seconds(attempt, self.backoff_base))
