"""PostgreSQL access of the gateway: one asyncpg pool for the hot read path (status queries
return the stored JSON untouched), the audit trail, idempotency records and migrations."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg

from taskloom.settings import Settings, asyncpg_dsn

__all__ = ["AuditRecord", "GatewayDb", "IdempotencyRecord", "MIGRATIONS_DIR", "WorkflowRow"]

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


@dataclass(frozen=True, slots=True)
class AuditRecord:
    actor: str
    roles: Sequence[str]
    action: str
    resource: str
    outcome: str
    reason: str | None = None
    ip: str | None = None
    user_agent: str | None = None
    details: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    request_hash: str
    workflow_id: str
    command: str
    response: str | None


@dataclass(frozen=True, slots=True)
class WorkflowRow:
    workflow_id: str
    owner: str
    request_type: str | None
    current_state: str
    priority: str | None
    submitted_at: datetime | None
    updated_at: datetime | None
    version: int
    progress: dict[str, Any]


async def _keep_session(_: asyncpg.Connection) -> None:
    """Release a connection without asyncpg's default reset query (``pg_advisory_unlock_all();
    CLOSE ALL; UNLISTEN *; RESET ALL``), a second round trip for every pooled query. The gateway
    never takes advisory locks, opens cursors outside a transaction, listens or sets session
    state on these connections; asyncpg still rolls back an open transaction on release."""


class GatewayDb:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    @classmethod
    async def connect(cls, settings: Settings) -> GatewayDb:
        if not settings.database_url:
            raise ValueError("TASKLOOM_DATABASE_URL is not set")
        pool = await asyncpg.create_pool(
            asyncpg_dsn(settings.database_url),
            min_size=1,
            max_size=settings.db_pool_size,
            reset=_keep_session,
        )
        return cls(pool)

    async def close(self) -> None:
        await self.pool.close()

    async def ping(self) -> bool:
        return bool(await self.pool.fetchval("select 1") == 1)

    # --- audit ------------------------------------------------------------------------------
    async def write_audit(self, records: Sequence[AuditRecord]) -> None:
        if not records:
            return
        await self.pool.executemany(
            "insert into audit_log (actor, roles, action, resource, outcome, reason, ip, user_agent, details)"
            " values ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb)",
            [
                (
                    r.actor,
                    list(r.roles),
                    r.action,
                    r.resource,
                    r.outcome,
                    r.reason,
                    r.ip,
                    r.user_agent,
                    json.dumps(r.details or {}),
                )
                for r in records
            ],
        )

    async def audit_entries(self, actor: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        rows = await self.pool.fetch(
            "select id, at, actor, roles, action, resource, outcome, reason, details from audit_log"
            " where ($1::text is null or actor = $1) order by id desc limit $2",
            actor,
            limit,
        )
        return [dict(r) for r in rows]

    # --- idempotent submissions -------------------------------------------------------------
    async def claim_idempotency_key(
        self, owner: str, key: str, request_hash: str, workflow_id: str, command: str
    ) -> IdempotencyRecord:
        """Store the key's first use, or return what its first use stored."""
        row = await self.pool.fetchrow(
            "with ins as (insert into gateway_idempotency (owner, key, request_hash, workflow_id, command)"
            " values ($1, $2, $3, $4, $5::jsonb) on conflict (owner, key) do nothing"
            " returning request_hash, workflow_id, command::text, response::text)"
            " select * from ins union all"
            " select request_hash, workflow_id, command::text, response::text from gateway_idempotency"
            " where owner = $1 and key = $2 and not exists (select 1 from ins)",
            owner,
            key,
            request_hash,
            workflow_id,
            command,
        )
        assert row is not None
        return IdempotencyRecord(row[0], row[1], row[2], row[3])

    async def save_idempotent_response(self, owner: str, key: str, response: str) -> None:
        await self.pool.execute(
            "update gateway_idempotency set response = $3::jsonb where owner = $1 and key = $2",
            owner,
            key,
            response,
        )

    # --- webhooks -----------------------------------------------------------------------------
    async def subscribe_webhook(
        self, workflow_id: str, namespace: str, url: str, events: Sequence[str]
    ) -> None:
        await self.pool.execute(
            "insert into webhook_subscriptions (workflow_id, namespace, url, events) values ($1, $2, $3, $4)"
            " on conflict (workflow_id) do nothing",
            workflow_id,
            namespace,
            url,
            list(events),
        )

    # --- read models (owned by the orchestrator) ----------------------------------------------
    async def workflow_document(self, workflow_id: str) -> tuple[str, str] | None:
        """``(owner, WorkflowState JSON)`` straight from the read model."""
        row = await self.pool.fetchrow(
            "select owner, document::text from workflow_read_model where workflow_id = $1", workflow_id
        )
        return None if row is None else (row[0], row[1])

    async def workflow_owner(self, workflow_id: str) -> str | None:
        value = await self.pool.fetchval(
            "select owner from workflow_read_model where workflow_id = $1", workflow_id
        )
        return None if value is None else str(value)

    async def workflow_result(self, workflow_id: str) -> str | None:
        value = await self.pool.fetchval(
            "select document::text from workflow_result where workflow_id = $1", workflow_id
        )
        return None if value is None else str(value)

    async def list_workflows(
        self,
        *,
        owner: str | None,
        state: str | None,
        request_type: str | None,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> list[WorkflowRow]:
        rows = await self.pool.fetch(
            "select workflow_id, owner, request_type, current_state, priority, submitted_at, updated_at,"
            " version, coalesce(document->'progress', '{}'::jsonb)::text"
            " from workflow_read_model"
            " where ($1::text is null or owner = $1) and ($2::text is null or current_state = $2)"
            " and ($3::text is null or request_type = $3)"
            " and ($4::timestamptz is null or (submitted_at, workflow_id) < ($4, $5))"
            " order by submitted_at desc, workflow_id desc limit $6",
            owner,
            state,
            request_type,
            after[0] if after else None,
            after[1] if after else None,
            limit,
        )
        return [
            WorkflowRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], int(r[7] or 0), json.loads(r[8]))
            for r in rows
        ]
