"""Postgres side of the orchestrator: loading a workflow by folding its stream (from a
snapshot when there is one), writing read models, timers and agent statistics inside the
event store's transaction, and the queries the timer loop and recovery need."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from sqlalchemy.ext.asyncio import AsyncConnection

from taskloom.contracts.enums import Priority, WorkflowStateName
from taskloom.contracts.events import TaskCompleted, TaskFailed, WorkflowEvent, parse_event
from taskloom.eventstore import EventStore, NewEvent, RecordedEvent, migrate
from taskloom.eventstore.migrator import quote_ident
from taskloom.orchestrator.domain import (
    Timer,
    Workflow,
    WorkflowSummary,
    empty,
    evolve,
    synthesize_result,
    to_state,
)

__all__ = ["MIGRATIONS_DIR", "Tables", "fold_records", "load_workflow", "new_event"]

MIGRATIONS_DIR: Final = Path(__file__).resolve().parent.parent / "migrations"
COMPONENT: Final = "orchestrator"
SNAPSHOT_EVERY: Final = 500
_ACTIVE = ("pending", "running", "paused")


def new_event(event: WorkflowEvent) -> NewEvent:
    return NewEvent(event.event_id, event.type, event.model_dump(mode="json"))


def fold_records(state: Workflow, records: Sequence[RecordedEvent]) -> Workflow:
    for r in records:
        state = evolve(state, parse_event(r.data))
    return state


async def load_workflow(store: EventStore, workflow_id: str, to_version: int | None = None) -> Workflow:
    """The workflow's state by folding its events (from the latest snapshot when ``to_version``
    is not before it)."""
    state = empty(workflow_id)
    snapshot = await store.load_snapshot(workflow_id)
    if snapshot is not None and (to_version is None or snapshot.version <= to_version):
        state = Workflow.model_validate(snapshot.state)
    records = await store.read_stream(workflow_id, state.version + 1, to_version)
    return fold_records(state, records)


class Tables:
    """SQL on the orchestrator's tables in one schema."""

    def __init__(self, store: EventStore) -> None:
        self.store = store
        s = quote_ident(store.schema)
        self.s = s
        self.upsert_read_model = f"""
            INSERT INTO {s}.workflow_read_model
                (workflow_id, owner, request_type, current_state, priority, submitted_at, updated_at,
                 version, document)
            VALUES ($1, $2, $3, $4, $5, $6, coalesce($7, now()), $8, $9::jsonb)
            ON CONFLICT (workflow_id) DO UPDATE SET
                owner = excluded.owner, request_type = excluded.request_type,
                current_state = excluded.current_state, priority = excluded.priority,
                submitted_at = coalesce(excluded.submitted_at, {s}.workflow_read_model.submitted_at),
                updated_at = excluded.updated_at, version = excluded.version, document = excluded.document
            WHERE {s}.workflow_read_model.version <= excluded.version"""  # noqa: S608
        self.upsert_result = f"""
            INSERT INTO {s}.workflow_result (workflow_id, document) VALUES ($1, $2::jsonb)
            ON CONFLICT (workflow_id) DO UPDATE SET document = excluded.document"""  # noqa: S608
        self.delete_timers = f"DELETE FROM {s}.timers WHERE workflow_id = $1"  # noqa: S608
        self.delete_timer = f"DELETE FROM {s}.timers WHERE workflow_id = $1 AND timer_id = $2 AND due_at = $3"  # noqa: S608
        self.insert_timer = f"""
            INSERT INTO {s}.timers (workflow_id, timer_id, due_at, kind, payload)
            VALUES ($1, $2, $3, $4, $5::jsonb)
            ON CONFLICT (workflow_id, timer_id) DO UPDATE SET due_at = excluded.due_at,
                kind = excluded.kind, payload = excluded.payload"""  # noqa: S608
        self.bump_performance = f"""
            INSERT INTO {s}.agent_performance (agent_id, task_type, completed, failed, total_seconds)
            VALUES ($1, $2, $3, $4, $5)
            ON CONFLICT (agent_id, task_type) DO UPDATE SET
                completed = {s}.agent_performance.completed + excluded.completed,
                failed = {s}.agent_performance.failed + excluded.failed,
                total_seconds = {s}.agent_performance.total_seconds + excluded.total_seconds"""  # noqa: S608

    async def migrate(self) -> list[int]:
        return await migrate(self.store.engine, COMPONENT, MIGRATIONS_DIR, schema=self.store.schema)

    # --- inside a unit of work ----------------------------------------------------------------
    async def write(
        self,
        conn: AsyncConnection,
        state: Workflow,
        events: Sequence[WorkflowEvent],
        timers: Sequence[Timer],
    ) -> None:
        """Read models, result, timers and agent statistics of one decided workflow."""
        doc = to_state(state)
        run = conn.exec_driver_sql
        await run(
            self.upsert_read_model,
            (
                state.workflow_id,
                doc.owner,
                doc.request_type.value if doc.request_type else None,
                doc.current_state.value,
                doc.priority.value,
                doc.submitted_at,
                state.updated_at,
                state.version,
                doc.model_dump_json(),
            ),
        )
        if state.terminal:
            result = state.result or synthesize_result(state)
            await run(self.upsert_result, (state.workflow_id, result.model_dump_json()))
        await run(self.delete_timers, (state.workflow_id,))
        if timers:
            await run(
                self.insert_timer,
                [(state.workflow_id, t.timer_id, t.due_at, t.kind, json.dumps(t.payload)) for t in timers],
            )
        rows = _performance_rows(state, events)
        if rows:
            await run(self.bump_performance, rows)

    async def settle_timers(
        self,
        conn: AsyncConnection,
        workflow_id: str,
        fired: Sequence[tuple[str, datetime]],
        wanted: Sequence[Timer],
    ) -> None:
        """A decision without events: drop the fired rows the state no longer needs."""
        keep = {(t.timer_id, t.due_at) for t in wanted}
        gone = [(workflow_id, tid, due) for tid, due in fired if (tid, due) not in keep]
        if gone:
            await conn.exec_driver_sql(self.delete_timer, gone)

    # --- queries ------------------------------------------------------------------------------
    async def due_timers(
        self, now: datetime, limit: int = 500
    ) -> list[tuple[str, str, datetime, str, dict[str, Any]]]:
        async with self.store.driver() as conn:
            rows = await conn.fetch(
                f"SELECT workflow_id, timer_id, due_at, kind, payload FROM {self.s}.timers"  # noqa: S608
                " WHERE due_at <= $1 ORDER BY due_at LIMIT $2",
                now,
                limit,
            )
        return [(r[0], r[1], r[2], r[3], r[4] if isinstance(r[4], dict) else json.loads(r[4])) for r in rows]

    async def active_workflow_ids(self) -> list[str]:
        async with self.store.driver() as conn:
            rows = await conn.fetch(
                f"SELECT workflow_id FROM {self.s}.workflow_read_model WHERE current_state = ANY($1::text[])",  # noqa: S608
                list(_ACTIVE),
            )
        return [r[0] for r in rows]

    async def summaries(self) -> list[WorkflowSummary]:
        """Running and queued workflows, for admission."""
        async with self.store.driver() as conn:
            rows = await conn.fetch(
                f"SELECT workflow_id, current_state, priority, document->'resource_utilization'->>'queued',"  # noqa: S608
                f" updated_at FROM {self.s}.workflow_read_model WHERE current_state = ANY($1::text[])",
                list(_ACTIVE),
            )
        out = []
        for r in rows:
            queued = r[3] == "true"
            running = r[1] in (WorkflowStateName.RUNNING.value, WorkflowStateName.PAUSED.value)
            out.append(WorkflowSummary(r[0], running, queued, Priority(r[2] or "medium"), r[4]))
        return out

    async def running_count(self, conn: AsyncConnection) -> tuple[int, int]:
        """(running, queued) workflows, read inside the caller's transaction."""
        result = await conn.exec_driver_sql(
            f"SELECT count(*) FILTER (WHERE current_state IN ('running', 'paused')),"  # noqa: S608
            " count(*) FILTER (WHERE current_state = 'pending'"
            " AND document->'resource_utilization'->>'queued' = 'true')"
            f" FROM {self.s}.workflow_read_model WHERE current_state = ANY($1::text[])",
            (list(_ACTIVE),),
        )
        row = tuple(result.one())
        return int(row[0]), int(row[1])


def _performance_rows(
    state: Workflow, events: Sequence[WorkflowEvent]
) -> list[tuple[str, str, int, int, float]]:
    rows = []
    for e in events:
        run = state.tasks.get(getattr(e, "task_id", ""))
        if run is None:
            continue
        if isinstance(e, TaskCompleted):
            seconds = e.performance_metrics.get("execution_time")
            if not isinstance(seconds, int | float):
                seconds = (
                    (run.completed_at - run.started_at).total_seconds()
                    if run.started_at and run.completed_at
                    else 0.0
                )
            rows.append((e.agent, run.spec.task_type, 1, 0, float(seconds)))
        elif isinstance(e, TaskFailed):
            rows.append((e.agent, run.spec.task_type, 0, 1, 0.0))
    return rows
