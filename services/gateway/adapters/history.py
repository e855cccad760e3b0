"""Workflow history from the event store (events, the graph) and the orchestrator's write and
replay paths the gateway reuses: ``record_submission`` and ``state_at``."""

from __future__ import annotations

from typing import Any

from taskloom.contracts.messages import SubmitWorkflow
from taskloom.contracts.workflow import WorkflowState
from taskloom.eventstore import EventStore, RecordedEvent, StreamNotFound
from taskloom.orchestrator import queries
from taskloom.orchestrator.adapters.postgres import Tables
from taskloom.orchestrator.submission import record_submission

__all__ = ["History"]

_GRAPH_EVENTS = ("WorkflowStarted", "WorkflowQueued")


class History:
    def __init__(self, store: EventStore, namespace: str) -> None:
        self.store = store
        self.namespace = namespace
        self.tables = Tables(store)

    async def migrate(self) -> None:
        """The read models ``record_submission`` writes to (the orchestrator's migrations; the
        runner is idempotent and serialised, so either service may apply them first)."""
        await self.tables.migrate()

    async def record_submission(self, cmd: SubmitWorkflow) -> bool:
        """The ``WorkflowSubmitted`` event, its read-model row and the outbox command to the
        constructor in one statement; ``False`` when it was already recorded."""
        return await record_submission(self.store, cmd, self.namespace, tables=self.tables)

    async def events(self, workflow_id: str, after: int = 0, limit: int = 100) -> list[RecordedEvent]:
        return await self.store.read_stream(workflow_id, after + 1, after + limit)

    async def version(self, workflow_id: str) -> int:
        return await self.store.stream_version(workflow_id)

    async def graph(self, workflow_id: str) -> dict[str, Any] | None:
        """The task graph the workflow runs (with tasks added while it ran), else ``None``."""
        graph: dict[str, Any] | None = None
        added: list[dict[str, Any]] = []
        for event in await self.store.read_stream(workflow_id):
            if event.type in _GRAPH_EVENTS:
                graph = dict(event.data["graph"])
            elif event.type == "TaskAdded" and graph is not None:
                added.append(event.data["task"])
        if graph is not None and added:
            known = {t["task_id"] for t in graph["tasks"]}
            graph["tasks"] = [*graph["tasks"], *(t for t in added if t["task_id"] not in known)]
        return graph

    async def owner(self, workflow_id: str) -> str | None:
        first = await self.store.read_stream(workflow_id, 1, 1)
        if first and first[0].type == "WorkflowSubmitted":
            return str(first[0].data.get("owner"))
        return None

    async def state_at(self, workflow_id: str, position: int) -> WorkflowState | None:
        """The workflow as it was right after its ``position``-th event (replayed)."""
        try:
            return await queries.state_at(self.store, workflow_id, position)
        except StreamNotFound:
            return None
