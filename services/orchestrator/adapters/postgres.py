"""Postgres side of the orchestrator: loading a workflow by folding its stream (from a
snapshot when there is one), writing read models, timers and agent statistics inside the
event store's transaction, and the queries the timer loop and recovery need."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from taskloom.contracts.enums import Priority, WorkflowStateName
from taskloom.contracts.events import TaskCompleted, TaskFailed, WorkflowEvent, parse_event
from taskloom.eventstore import EventStore, Fragment, NewEvent, RecordedEvent, migrate
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

__all__ = [
    "MIGRATIONS_DIR",
    "Tables",
    "Write",
    "fold_records",
    "load_workflow",
    "load_workflows",
    "new_event",
]

MIGRATIONS_DIR: Final = Path(__file__).resolve().parent.parent / "migrations"
COMPONENT: Final = "orchestrator"
SNAPSHOT_EVERY: Final = 500
_ACTIVE = ("pending", "running", "paused")


@dataclass(frozen=True, slots=True)
class Write:
    """What one decision changes in the orchestrator's tables.

    ``full``: the read model, result, agent statistics and the whole timer set are rewritten
    (a decision with events, or recovery); otherwise only the ``fired`` timer rows the state no
    longer wants are dropped (a timer decision that changed nothing)."""

    state: Workflow
    events: Sequence[WorkflowEvent] = ()
    timers: Sequence[Timer] = ()
    fired: Sequence[tuple[str, datetime]] = ()
    full: bool = True


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


async def load_workflows(store: EventStore, workflow_ids: Sequence[str]) -> dict[str, Workflow]:
    """The current state of many workflows with one connection and two statements (a batch's
    cache misses), each folded from its latest snapshot."""
    out: dict[str, Workflow] = {}
    for wf, (snapshot, records) in (await store.load_streams(workflow_ids)).items():
        state = empty(wf) if snapshot is None else Workflow.model_validate(snapshot.state)
        out[wf] = fold_records(state, records)
    return out


class Tables:
    """SQL on the orchestrator's tables in one schema."""

    def __init__(self, store: EventStore) -> None:
        self.store = store
        s = quote_ident(store.schema)
        self.s = s
        # $1..$9 read-model rows, $10/$11 results, $12 the workflows whose timer set is replaced,
        # $13..$17 their wanted timers, $18..$20 fired timers to drop, $21..$25 agent statistics.
        # The timer CTEs touch disjoint rows (unwanted ones are deleted, wanted ones upserted),
        # which one statement may do; statistics are summed per key beforehand because an
        # INSERT .. ON CONFLICT may not update the same row twice.
        self.write_ctes = f"""
            rm AS (
                INSERT INTO {s}.workflow_read_model AS t
                    (workflow_id, owner, request_type, current_state, priority, submitted_at,
                     updated_at, version, document)
                SELECT r.workflow_id, r.owner, r.request_type, r.current_state, r.priority,
                       r.submitted_at, coalesce(r.updated_at, now()), r.version, r.document::jsonb
                FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                            $6::timestamptz[], $7::timestamptz[], $8::int[], $9::text[])
                     AS r(workflow_id, owner, request_type, current_state, priority, submitted_at,
                          updated_at, version, document)
                ON CONFLICT (workflow_id) DO UPDATE SET
                    owner = excluded.owner, request_type = excluded.request_type,
                    current_state = excluded.current_state, priority = excluded.priority,
                    submitted_at = coalesce(excluded.submitted_at, t.submitted_at),
                    updated_at = excluded.updated_at, version = excluded.version,
                    document = excluded.document
                WHERE t.version <= excluded.version
                RETURNING 1
            ), res AS (
                INSERT INTO {s}.workflow_result (workflow_id, document)
                SELECT r.workflow_id, r.document::jsonb
                FROM unnest($10::text[], $11::text[]) AS r(workflow_id, document)
                ON CONFLICT (workflow_id) DO UPDATE SET document = excluded.document
                RETURNING 1
            ), wanted AS (
                SELECT * FROM unnest($13::text[], $14::text[], $15::timestamptz[], $16::text[], $17::text[])
                     AS w(workflow_id, timer_id, due_at, kind, payload)
            ), dropped AS (
                DELETE FROM {s}.timers t
                WHERE t.workflow_id = ANY($12::text[]) AND NOT EXISTS (
                    SELECT 1 FROM wanted w WHERE w.workflow_id = t.workflow_id AND w.timer_id = t.timer_id)
                RETURNING 1
            ), armed AS (
                INSERT INTO {s}.timers (workflow_id, timer_id, due_at, kind, payload)
                SELECT w.workflow_id, w.timer_id, w.due_at, w.kind, w.payload::jsonb FROM wanted w
                ON CONFLICT (workflow_id, timer_id) DO UPDATE SET due_at = excluded.due_at,
                    kind = excluded.kind, payload = excluded.payload
                RETURNING 1
            ), settled AS (
                DELETE FROM {s}.timers t
                USING unnest($18::text[], $19::text[], $20::timestamptz[]) AS f(workflow_id, timer_id, due_at)
                WHERE t.workflow_id = f.workflow_id AND t.timer_id = f.timer_id AND t.due_at = f.due_at
                RETURNING 1
            ), stats AS (
                INSERT INTO {s}.agent_performance AS p (agent_id, task_type, completed, failed, total_seconds)
                SELECT * FROM unnest($21::text[], $22::text[], $23::int[], $24::int[], $25::float8[])
                ON CONFLICT (agent_id, task_type) DO UPDATE SET
                    completed = p.completed + excluded.completed,
                    failed = p.failed + excluded.failed,
                    total_seconds = p.total_seconds + excluded.total_seconds
                RETURNING 1
            )"""  # noqa: S608

    async def migrate(self) -> list[int]:
        return await migrate(self.store.engine, COMPONENT, MIGRATIONS_DIR, schema=self.store.schema)

    # --- inside a unit of work ----------------------------------------------------------------
    def fragment(self, writes: Sequence[Write]) -> Fragment | None:
        """The same writes as CTEs to fuse into the event store's ``append_many`` statement:
        events, outbox rows and these tables then commit in one round trip."""
        args = self.write_args(writes)
        return None if args is None else Fragment(self.write_ctes, args)

    def write_args(self, writes: Sequence[Write]) -> tuple[Any, ...] | None:
        """The parameters of ``write_ctes`` (None: the writes change nothing)."""
        rm: list[list[Any]] = [[] for _ in range(9)]
        res: list[list[Any]] = [[], []]
        replaced: list[str] = []
        armed: dict[tuple[str, str], tuple[datetime, str, str]] = {}
        settled: list[list[Any]] = [[], [], []]
        perf: dict[tuple[str, str], list[float]] = {}
        for w in writes:
            state = w.state
            wf = state.workflow_id
            if not w.full:
                keep = {(t.timer_id, t.due_at) for t in w.timers}
                for tid, due in w.fired:
                    if (tid, due) not in keep:
                        settled[0].append(wf)
                        settled[1].append(tid)
                        settled[2].append(due)
                continue
            doc = to_state(state)
            row = (
                wf,
                doc.owner,
                doc.request_type.value if doc.request_type else None,
                doc.current_state.value,
                doc.priority.value,
                doc.submitted_at,
                state.updated_at,
                state.version,
                doc.model_dump_json(),
            )
            for column, value in zip(rm, row, strict=True):
                column.append(value)
            if state.terminal:
                result = state.result or synthesize_result(state)
                res[0].append(wf)
                res[1].append(result.model_dump_json())
            replaced.append(wf)
            for t in w.timers:
                armed[(wf, t.timer_id)] = (t.due_at, t.kind, json.dumps(t.payload))
            for agent, task_type, completed, failed, seconds in _performance_rows(state, w.events):
                acc = perf.setdefault((agent, task_type), [0, 0, 0.0])
                acc[0] += completed
                acc[1] += failed
                acc[2] += seconds
        if not replaced and not settled[0]:
            return None
        timers = [
            [k[0] for k in armed],
            [k[1] for k in armed],
            [v[0] for v in armed.values()],
            [v[1] for v in armed.values()],
            [v[2] for v in armed.values()],
        ]
        stats = [
            [k[0] for k in perf],
            [k[1] for k in perf],
            [int(v[0]) for v in perf.values()],
            [int(v[1]) for v in perf.values()],
            [float(v[2]) for v in perf.values()],
        ]
        return (*rm, *res, replaced, *timers, *settled, *stats)

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

    async def running_count(self, conn: Any) -> tuple[int, int]:
        """(running, queued) workflows, read on the caller's driver connection (inside its
        transaction, under the admission lock)."""
        row = await conn.fetchrow(
            f"SELECT count(*) FILTER (WHERE current_state IN ('running', 'paused')),"  # noqa: S608
            " count(*) FILTER (WHERE current_state = 'pending'"
            " AND document->'resource_utilization'->>'queued' = 'true')"
            f" FROM {self.s}.workflow_read_model WHERE current_state = ANY($1::text[])",
            list(_ACTIVE),
        )
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
