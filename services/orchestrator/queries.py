"""Read helpers for the gateway and the CLI: workflow status and result from the read models,
the event history, and time travel (the state at any version, rebuilt by replay)."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime

from taskloom.contracts.workflow import WorkflowResult, WorkflowState
from taskloom.eventstore import EventStore, RecordedEvent
from taskloom.eventstore.migrator import quote_ident
from taskloom.orchestrator.adapters.postgres import load_workflow
from taskloom.orchestrator.domain import to_state

__all__ = ["WorkflowPage", "get_events", "get_result", "get_workflow", "list_workflows", "state_at"]


@dataclass(frozen=True, slots=True)
class WorkflowPage:
    items: list[WorkflowState]
    next_cursor: str | None


def _doc(value: object) -> object:
    return json.loads(value) if isinstance(value, str) else value


async def get_workflow(store: EventStore, workflow_id: str) -> WorkflowState | None:
    s = quote_ident(store.schema)
    async with store.driver() as conn:
        sql = f"SELECT document FROM {s}.workflow_read_model WHERE workflow_id = $1"  # noqa: S608
        row = await conn.fetchval(sql, workflow_id)
    return None if row is None else WorkflowState.model_validate(_doc(row))


async def get_result(store: EventStore, workflow_id: str) -> WorkflowResult | None:
    s = quote_ident(store.schema)
    async with store.driver() as conn:
        sql = f"SELECT document FROM {s}.workflow_result WHERE workflow_id = $1"  # noqa: S608
        row = await conn.fetchval(sql, workflow_id)
    return None if row is None else WorkflowResult.model_validate(_doc(row))


def _encode_cursor(submitted_at: datetime | None, workflow_id: str) -> str:
    raw = json.dumps([submitted_at.isoformat() if submitted_at else None, workflow_id])
    return base64.urlsafe_b64encode(raw.encode()).decode()


def _decode_cursor(cursor: str) -> tuple[datetime | None, str]:
    try:
        at, wf = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        return (datetime.fromisoformat(at) if at else None), str(wf)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"invalid cursor {cursor!r}") from exc


async def list_workflows(
    store: EventStore,
    *,
    owner: str | None = None,
    state: str | None = None,
    request_type: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> WorkflowPage:
    """Newest first; pass ``next_cursor`` back for the following page."""
    if not 1 <= limit <= 500:
        raise ValueError("limit must be between 1 and 500")
    s = quote_ident(store.schema)
    where = [
        "($1::text IS NULL OR owner = $1)",
        "($2::text IS NULL OR current_state = $2)",
        "($3::text IS NULL OR request_type = $3)",
    ]
    args: list[object] = [owner, state, request_type]
    if cursor:
        at, wf = _decode_cursor(cursor)
        args += [at or datetime.min, wf]
        where.append("(coalesce(submitted_at, '-infinity'), workflow_id) < ($4, $5)")
    sql = (
        f"SELECT document, submitted_at, workflow_id FROM {s}.workflow_read_model WHERE {' AND '.join(where)}"  # noqa: S608
        f" ORDER BY coalesce(submitted_at, '-infinity') DESC, workflow_id DESC LIMIT {int(limit) + 1}"
    )
    async with store.driver() as conn:
        rows = await conn.fetch(sql, *args)
    items = [WorkflowState.model_validate(_doc(r[0])) for r in rows[:limit]]
    nxt = _encode_cursor(rows[limit - 1][1], rows[limit - 1][2]) if len(rows) > limit else None
    return WorkflowPage(items, nxt)


async def get_events(store: EventStore, workflow_id: str, after_version: int = 0) -> list[RecordedEvent]:
    return await store.read_stream(workflow_id, after_version + 1)


async def state_at(store: EventStore, workflow_id: str, version: int | None = None) -> WorkflowState:
    """The workflow as it was right after its ``version``-th event (now, when None)."""
    return to_state(await load_workflow(store, workflow_id, version))
