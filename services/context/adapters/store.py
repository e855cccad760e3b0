"""PostgreSQL storage of the context service: versioned entries written as an append-only
event log with a current-version projection, and the access audit."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import create_async_engine

from taskloom.context.domain.errors import ContextTooLarge, VersionConflict
from taskloom.context.domain.scopes import Entry, ScopeKey
from taskloom.contracts.context import AuditDecision, AuditQuery, AuditRecord, Classification, ContextScope
from taskloom.eventstore import migrate
from taskloom.eventstore.migrator import quote_ident
from taskloom.settings import asyncpg_dsn, sqlalchemy_url

__all__ = ["AuditEntry", "ContextStore", "NewVersion", "StoredRow"]

MIGRATIONS = Path(__file__).parent / "migrations"
_SCOPES = {s.value: s for s in ContextScope}
_CLASSES = {c.value: c for c in Classification}


@dataclass(frozen=True, slots=True)
class StoredRow:
    """One key's current version as stored: ``value`` is JSON text, or ``ciphertext`` is set."""

    scope: str
    scope_id: str
    key: str
    version: int
    value: str | None
    ciphertext: bytes | None
    classification: str
    sensitive: bool
    size_bytes: int
    event_id: int = 0


@dataclass(frozen=True, slots=True)
class NewVersion:
    scope: ContextScope
    scope_id: str
    key: str
    value_json: str | None
    ciphertext: bytes | None
    classification: str
    sensitive: bool
    size_bytes: int
    written_by: str
    workflow_id: str | None
    task_id: str | None
    expected_version: int | None = None


@dataclass(frozen=True, slots=True)
class AuditEntry:
    agent_id: str
    operation: str
    decision: AuditDecision
    workflow_id: str | None = None
    task_id: str | None = None
    scope: str | None = None
    scope_id: str | None = None
    keys: tuple[str, ...] = ()
    denied_count: int = 0
    reason: str | None = None
    at: datetime | None = None
    keyset: bytes | None = None  # digest of a key list in context_keysets (read views)

    def row(self) -> tuple[Any, ...]:
        return (
            self.agent_id,
            self.workflow_id,
            self.task_id,
            self.operation,
            self.scope,
            self.scope_id,
            list(self.keys),
            self.denied_count,
            self.decision.value,
            self.reason,
            self.at,
            self.keyset,
        )


_AUDIT_COLUMNS = (
    "agent_id",
    "workflow_id",
    "task_id",
    "operation",
    "scope",
    "scope_id",
    "keys",
    "denied_count",
    "decision",
    "reason",
    "at",
    "keyset",
)

_LOAD = """
SELECT scope, scope_id, key, version, value::text AS value, ciphertext, classification,
       sensitive, size_bytes, event_id
FROM context_current
WHERE (scope, scope_id) IN (SELECT * FROM unnest($1::text[], $2::text[]))
"""

_REPLAY = """
SELECT DISTINCT ON (key) scope, scope_id, key, version, value::text AS value, ciphertext,
       classification, sensitive, size_bytes, event_id
FROM context_events
WHERE scope = $1 AND scope_id = $2 AND ($3::bigint IS NULL OR event_id <= $3)
ORDER BY key, version DESC
"""


class ContextStore:
    def __init__(self, pool: asyncpg.Pool, schema: str = "public") -> None:
        self._pool = pool
        self.schema = schema

    @classmethod
    async def open(
        cls, database_url: str, schema: str = "public", min_size: int = 2, max_size: int = 10
    ) -> ContextStore:
        """Apply the migrations, then open a pool whose search_path is ``schema``."""
        engine = create_async_engine(sqlalchemy_url(database_url))
        try:
            await migrate(engine, component="context", migrations_dir=MIGRATIONS, schema=schema)
        finally:
            await engine.dispose()
        quote_ident(schema)
        pool = await asyncpg.create_pool(
            asyncpg_dsn(database_url),
            min_size=min_size,
            max_size=max_size,
            server_settings={"search_path": schema},
        )
        return cls(pool, schema)

    async def close(self) -> None:
        await self._pool.close()

    async def ping(self) -> bool:
        async with self._pool.acquire() as conn:
            return bool(await conn.fetchval("SELECT 1") == 1)

    async def load(self, scopes: Sequence[ScopeKey]) -> list[Entry]:
        """The current entries of the scopes. Values stay JSON text, and an encrypted value
        stays ciphertext (bytes): the reader decrypts only what it will serve."""
        rows = await self._pool.fetch(_LOAD, [s.scope.value for s in scopes], [s.scope_id for s in scopes])
        return [
            Entry(_SCOPES[r[0]], r[1], r[2], r[4] if r[5] is None else r[5], _CLASSES[r[6]], r[7], r[3], r[8])
            for r in rows
        ]

    async def replay(self, scope: ScopeKey, up_to_event_id: int | None = None) -> list[StoredRow]:
        """The scope as it was after event ``up_to_event_id`` (now when ``None``), from the log."""
        rows = await self._pool.fetch(_REPLAY, scope.scope.value, scope.scope_id, up_to_event_id)
        return [StoredRow(*r) for r in rows]

    async def write(self, new: NewVersion, audit: AuditEntry, max_scope_bytes: int) -> tuple[int, bool]:
        """Append a new version of a key and its audit record in one transaction.

        Returns the new version and whether the key was created by this write."""
        async with self._pool.acquire() as conn, conn.transaction():
            # one writer per key at a time, also for a key that does not exist yet
            await conn.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
                f"{new.scope.value}\x1f{new.scope_id}\x1f{new.key}",
            )
            current = await conn.fetchval(
                "SELECT version FROM context_current WHERE scope = $1 AND scope_id = $2 AND key = $3",
                new.scope.value,
                new.scope_id,
                new.key,
            )
            current = int(current or 0)
            if new.expected_version is not None and new.expected_version != current:
                raise VersionConflict(
                    f"{new.scope.value}:{new.scope_id}/{new.key} is at version {current}, "
                    f"expected {new.expected_version}",
                    current_version=current,
                )
            others = await conn.fetchval(
                "SELECT coalesce(sum(size_bytes), 0) FROM context_current"
                " WHERE scope = $1 AND scope_id = $2 AND key <> $3",
                new.scope.value,
                new.scope_id,
                new.key,
            )
            total = int(others) + new.size_bytes
            if total > max_scope_bytes:
                raise ContextTooLarge(
                    f"scope {new.scope.value}:{new.scope_id} would hold {total} bytes, over "
                    f"max_context_memory_mb ({max_scope_bytes} bytes)",
                    size=total,
                    limit=max_scope_bytes,
                )
            version = current + 1
            event_id, written_at = await conn.fetchrow(
                """INSERT INTO context_events (scope, scope_id, key, version, value, ciphertext,
                       classification, sensitive, size_bytes, written_by, workflow_id, task_id)
                   VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, $8, $9, $10, $11, $12)
                   RETURNING event_id, written_at""",
                new.scope.value,
                new.scope_id,
                new.key,
                version,
                new.value_json,
                new.ciphertext,
                new.classification,
                new.sensitive,
                new.size_bytes,
                new.written_by,
                new.workflow_id,
                new.task_id,
            )
            await conn.execute(
                """INSERT INTO context_current (scope, scope_id, key, version, event_id, value,
                       ciphertext, classification, sensitive, size_bytes, written_by, written_at)
                   VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8, $9, $10, $11, $12)
                   ON CONFLICT (scope, scope_id, key) DO UPDATE SET
                       version = excluded.version, event_id = excluded.event_id,
                       value = excluded.value, ciphertext = excluded.ciphertext,
                       classification = excluded.classification, sensitive = excluded.sensitive,
                       size_bytes = excluded.size_bytes, written_by = excluded.written_by,
                       written_at = excluded.written_at""",
                new.scope.value,
                new.scope_id,
                new.key,
                version,
                event_id,
                new.value_json,
                new.ciphertext,
                new.classification,
                new.sensitive,
                new.size_bytes,
                new.written_by,
                written_at,
            )
            created = version == 1
            entry = replace(audit, operation="create") if created and audit.operation == "write" else audit
            await self._insert_audit(conn, [entry])
            return version, created

    async def record_audit(
        self, entries: Sequence[AuditEntry], keysets: Sequence[tuple[bytes, Sequence[str]]] = ()
    ) -> None:
        """Insert audit records, and first the key lists (by digest) that they reference.

        No explicit transaction: each statement is atomic on its own, and key lists stored for
        a batch that then fails are content-addressed, so a retry finds them and nothing else
        refers to them. That saves the BEGIN and COMMIT round trips on every batch."""
        if not entries and not keysets:
            return
        async with self._pool.acquire() as conn:
            if keysets:
                await conn.executemany(
                    "INSERT INTO context_keysets (digest, keys) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                    [(d, list(k)) for d, k in keysets],
                )
            if entries and all(e.at is not None for e in entries):
                # binary COPY: one statement for the whole batch instead of one insert per row,
                # which leaves this process's loop and the database's CPU to the requests
                await conn.copy_records_to_table(
                    "context_audit", records=[e.row() for e in entries], columns=_AUDIT_COLUMNS
                )
            elif entries:
                await self._insert_audit(conn, entries)

    async def _insert_audit(self, conn: asyncpg.Connection, entries: Sequence[AuditEntry]) -> None:
        await conn.executemany(
            "INSERT INTO context_audit (agent_id, workflow_id, task_id, operation, scope, scope_id,"
            " keys, denied_count, decision, reason, at, keyset)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, coalesce($11, now()), $12)",
            [e.row() for e in entries],
        )

    async def query_audit(self, q: AuditQuery) -> list[AuditRecord]:
        rows = await self._pool.fetch(
            """SELECT a.id, a.agent_id, a.workflow_id, a.task_id, a.operation, a.scope, a.scope_id,
                      coalesce(ks.keys, a.keys) AS keys, a.denied_count, a.decision, a.reason, a.at
               FROM context_audit a LEFT JOIN context_keysets ks ON ks.digest = a.keyset
               WHERE a.id > $1
                 AND ($2::text IS NULL OR a.workflow_id = $2)
                 AND ($3::text IS NULL OR a.agent_id = $3)
                 AND ($4::text IS NULL OR a.decision = $4)
               ORDER BY a.id LIMIT $5""",
            q.after_id,
            q.workflow_id,
            q.agent_id,
            q.decision.value if q.decision else None,
            q.limit,
        )
        return [AuditRecord.model_validate(dict(r)) for r in rows]
