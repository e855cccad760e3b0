"""Stored workflow events → the seed's WebSocket status frames.

Every event of a workflow stream becomes exactly one frame whose ``position`` is the event's
stream version, so a client that remembers the last position it saw can reconnect with
``?since=`` and receive each later event once. The projector folds a small summary (status,
per-task state, counts) from the events it has seen; to start mid-stream it is fed the earlier
events without emitting them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from taskloom.contracts.api import StatusEvent, StatusEventData
from taskloom.contracts.enums import WebSocketEventType

__all__ = ["TERMINAL_EVENTS", "FrameProjector", "TaskSummary", "frame_type"]

TERMINAL_EVENTS = frozenset({"WorkflowCompleted", "WorkflowFailed", "WorkflowCancelled", "WorkflowRejected"})
_ERRORS = frozenset({"TaskFailed", "TaskTimedOut", "QualityGateFailed", "ConflictDetected"})
_COMMUNICATION = frozenset({"CollaborationRequested", "CollaborationCompleted"})
_STATUS_AFTER = {
    "WorkflowSubmitted": "pending",
    "WorkflowQueued": "pending",
    "WorkflowStarted": "running",
    "WorkflowPaused": "paused",
    "WorkflowResumed": "running",
    "WorkflowCompleted": "completed",
    "WorkflowFailed": "failed",
    "WorkflowCancelled": "cancelled",
    "WorkflowRejected": "failed",
}
_TASK_STATE_AFTER = {
    "TaskAssigned": "assigned",
    "TaskStarted": "running",
    "TaskProgressed": "running",
    "TaskCompleted": "completed",
    "TaskFailed": "failed",
    "TaskTimedOut": "failed",
    "TaskRetryScheduled": "pending",
    "TaskReassigned": "pending",
    "TaskSkipped": "skipped",
    "TaskCancelled": "cancelled",
}
_DONE_TASK_STATES = frozenset({"completed", "skipped", "cancelled"})


def frame_type(event_type: str, data: dict[str, Any]) -> WebSocketEventType:
    if event_type in TERMINAL_EVENTS:
        return WebSocketEventType.COMPLETION
    if event_type == "TaskCompleted":
        return WebSocketEventType.TASK_COMPLETED
    if event_type in _ERRORS:
        # a failure that will be retried is still an error worth showing
        return WebSocketEventType.ERROR
    if event_type in _COMMUNICATION:
        return WebSocketEventType.AGENT_COMMUNICATION
    return WebSocketEventType.STATUS_CHANGE


@dataclass(slots=True)
class TaskSummary:
    task_id: str
    task_type: str = ""
    agent: str = ""
    state: str = "pending"
    percentage: float = 0.0
    phase: str = ""
    attempt: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "task_id": self.task_id,
            "task_type": self.task_type,
            "agent": self.agent,
            "state": self.state,
            "completion_percentage": self.percentage,
            "current_phase": self.phase,
            "attempt": self.attempt,
        }


@dataclass(slots=True)
class FrameProjector:
    workflow_id: str
    status: str = "pending"
    position: int = 0
    tasks: dict[str, TaskSummary] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return self.status in ("completed", "failed", "cancelled")

    def apply(
        self, version: int, event_type: str, data: dict[str, Any], at: datetime | None = None
    ) -> StatusEvent:
        """Fold one stored event and return its frame."""
        self.position = version
        self.status = _STATUS_AFTER.get(event_type, self.status)
        task = self._fold_task(event_type, data)
        update: dict[str, Any] = {"type": event_type, "position": version}
        if task is not None:
            update["task"] = task.as_dict()
        for key in ("reason", "error", "gate_id", "strategy", "collaboration_id", "requested_by"):
            if key in data and data[key] not in (None, "", {}):
                update[key] = data[key]
        if event_type == "CollaborationRequested":
            update["request"] = data.get("request", {})
        if event_type in ("WorkflowStarted", "WorkflowQueued"):
            update["tasks"] = [t.as_dict() for t in self.tasks.values()]
        return StatusEvent(
            event_type=frame_type(event_type, data),
            timestamp=at or _occurred(data),
            workflow_id=self.workflow_id,
            position=version,
            data=StatusEventData(
                current_status=self.status,
                progress=self.progress(task),
                active_agents=sorted(
                    {t.agent for t in self.tasks.values() if t.state in ("assigned", "running") and t.agent}
                ),
                recent_updates=[update],
            ),
        )

    def progress(self, task: TaskSummary | None = None) -> dict[str, Any]:
        total = len(self.tasks)
        done = sum(1 for t in self.tasks.values() if t.state in _DONE_TASK_STATES)
        completed = sum(1 for t in self.tasks.values() if t.state == "completed")
        progress: dict[str, Any] = {
            "completed_tasks": completed,
            "total_tasks": total,
            "completion_percentage": round(100.0 * done / total, 1) if total else 0.0,
        }
        if task is not None:
            progress["task"] = task.as_dict()
        return progress

    def _fold_task(self, event_type: str, data: dict[str, Any]) -> TaskSummary | None:
        if event_type in ("WorkflowStarted", "WorkflowQueued"):
            for spec in (data.get("graph") or {}).get("tasks", []):
                self._add(spec)
            return None
        if event_type == "TaskAdded":
            return self._add(data.get("task") or {})
        task_id = data.get("task_id")
        if not isinstance(task_id, str) or event_type not in _TASK_STATE_AFTER:
            return None
        task = self.tasks.setdefault(task_id, TaskSummary(task_id))
        task.state = _TASK_STATE_AFTER[event_type]
        task.agent = str(data.get("agent") or data.get("to_agent") or task.agent)
        task.attempt = int(data.get("attempt") or data.get("next_attempt") or task.attempt)
        if event_type == "TaskProgressed":
            task.percentage = float(data.get("completion_percentage") or 0.0)
            task.phase = str(data.get("current_phase") or "")
        elif event_type == "TaskCompleted":
            task.percentage = 100.0
        elif event_type in ("TaskAssigned", "TaskRetryScheduled", "TaskReassigned"):
            task.percentage = 0.0
        return task

    def _add(self, spec: dict[str, Any]) -> TaskSummary | None:
        task_id = spec.get("task_id")
        if not isinstance(task_id, str):
            return None
        task = self.tasks.setdefault(task_id, TaskSummary(task_id))
        task.task_type = str(spec.get("task_type") or task.task_type)
        task.agent = str(spec.get("assigned_agent") or task.agent)
        return task


def _occurred(data: dict[str, Any]) -> datetime:
    from taskloom.contracts.base import utcnow

    raw = data.get("occurred_at")
    if isinstance(raw, str):
        try:
            return datetime.fromisoformat(raw)
        except ValueError:
            return utcnow()
    return utcnow()
