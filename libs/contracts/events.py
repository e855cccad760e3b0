"""Domain events of a workflow's stream in the event store (past tense, versioned).

Each event is a frozen model with a ``type`` literal; ``parse_event`` rebuilds one from the
stored type and JSON data. Changing an event means a new ``schema_version`` plus an upcaster
registered in ``UPCASTERS`` — stored history is never edited.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, TypeAdapter

from taskloom.contracts.base import Versioned, WireModel, new_id, utcnow
from taskloom.contracts.enums import (
    CollaborationType,
    ConflictType,
    ResolutionStrategy,
    WebSocketEventType,
)
from taskloom.contracts.graph import TaskGraph, TaskSpec
from taskloom.contracts.messages import AgentCollaborationRequest
from taskloom.contracts.requests import ComplexRequest
from taskloom.contracts.results import ValidationResult
from taskloom.contracts.workflow import WorkflowResult

__all__ = [
    "CollaborationCompleted",
    "CollaborationRequested",
    "Conflict",
    "ConflictDetected",
    "ConflictResolved",
    "DomainEvent",
    "EVENT_TYPES",
    "QualityGateFailed",
    "QualityGatePassed",
    "StaleUpdateRecorded",
    "TaskAdded",
    "TaskAssigned",
    "TaskCancelled",
    "TaskCompleted",
    "TaskFailed",
    "TaskProgressed",
    "TaskReassigned",
    "TaskRetryScheduled",
    "TaskSkipped",
    "TaskStarted",
    "TaskTimedOut",
    "UPCASTERS",
    "WorkflowCancelled",
    "WorkflowCompleted",
    "WorkflowEvent",
    "WorkflowFailed",
    "WorkflowPaused",
    "WorkflowQueued",
    "WorkflowRejected",
    "WorkflowResumed",
    "WorkflowStarted",
    "WorkflowSubmitted",
    "parse_event",
]


class DomainEvent(Versioned):
    event_id: str = Field(default_factory=new_id)
    workflow_id: str = Field(min_length=1)
    occurred_at: datetime = Field(default_factory=utcnow)


# --- workflow life --------------------------------------------------------------------------


class WorkflowSubmitted(DomainEvent):
    type: Literal["WorkflowSubmitted"] = "WorkflowSubmitted"
    owner: str
    request: ComplexRequest
    callback_url: str | None = None
    webhook_events: list[WebSocketEventType] = Field(default_factory=list)


class WorkflowRejected(DomainEvent):
    type: Literal["WorkflowRejected"] = "WorkflowRejected"
    reason: str
    missing_capabilities: list[str] = Field(default_factory=list)


class WorkflowQueued(DomainEvent):
    """The graph is ready but ``max_concurrent_workflows`` are running; it waits its turn."""

    type: Literal["WorkflowQueued"] = "WorkflowQueued"
    graph: TaskGraph
    owner: str = ""


class WorkflowStarted(DomainEvent):
    """The constructed graph was accepted and execution began (graph constructed + started)."""

    type: Literal["WorkflowStarted"] = "WorkflowStarted"
    graph: TaskGraph
    owner: str = ""


class WorkflowPaused(DomainEvent):
    type: Literal["WorkflowPaused"] = "WorkflowPaused"
    requested_by: str = "system"
    reason: str = ""


class WorkflowResumed(DomainEvent):
    type: Literal["WorkflowResumed"] = "WorkflowResumed"
    requested_by: str = "system"


class WorkflowCancelled(DomainEvent):
    type: Literal["WorkflowCancelled"] = "WorkflowCancelled"
    requested_by: str = "system"
    reason: str = ""


class WorkflowCompleted(DomainEvent):
    type: Literal["WorkflowCompleted"] = "WorkflowCompleted"
    result: WorkflowResult


class WorkflowFailed(DomainEvent):
    type: Literal["WorkflowFailed"] = "WorkflowFailed"
    reason: str
    result: WorkflowResult | None = None


# --- task life ------------------------------------------------------------------------------


class TaskAssigned(DomainEvent):
    type: Literal["TaskAssigned"] = "TaskAssigned"
    task_id: str
    agent: str
    attempt: int = Field(ge=1)
    message_id: str
    deadline: datetime | None = None


class TaskStarted(DomainEvent):
    type: Literal["TaskStarted"] = "TaskStarted"
    task_id: str
    agent: str
    attempt: int = Field(ge=1)
    instance_id: str | None = None
    message_id: str | None = None


class TaskProgressed(DomainEvent):
    type: Literal["TaskProgressed"] = "TaskProgressed"
    task_id: str
    attempt: int = Field(ge=1)
    completion_percentage: float = Field(ge=0, le=100)
    current_phase: str = ""
    completed_milestones: list[str] = Field(default_factory=list)
    message_id: str | None = None


class TaskCompleted(DomainEvent):
    type: Literal["TaskCompleted"] = "TaskCompleted"
    task_id: str
    agent: str
    attempt: int = Field(ge=1)
    outputs: dict[str, Any] = Field(default_factory=dict)
    performance_metrics: dict[str, Any] = Field(default_factory=dict)
    message_id: str | None = None


class TaskFailed(DomainEvent):
    type: Literal["TaskFailed"] = "TaskFailed"
    task_id: str
    agent: str
    attempt: int = Field(ge=1)
    error: dict[str, Any] = Field(default_factory=dict)
    retryable: bool = True
    final: bool = Field(default=False, description="No retry or escalation is left")
    message_id: str | None = None


class TaskTimedOut(DomainEvent):
    type: Literal["TaskTimedOut"] = "TaskTimedOut"
    task_id: str
    attempt: int = Field(ge=1)
    reason: Literal["deadline", "heartbeat", "not_started"] = "deadline"


class TaskRetryScheduled(DomainEvent):
    type: Literal["TaskRetryScheduled"] = "TaskRetryScheduled"
    task_id: str
    next_attempt: int = Field(ge=2)
    agent: str
    delay_seconds: float = Field(ge=0)
    due_at: datetime


class TaskReassigned(DomainEvent):
    """Attempts on one agent are spent: the task moves to the next backup agent."""

    type: Literal["TaskReassigned"] = "TaskReassigned"
    task_id: str
    from_agent: str
    to_agent: str
    next_attempt: int = Field(ge=2)


class TaskSkipped(DomainEvent):
    type: Literal["TaskSkipped"] = "TaskSkipped"
    task_id: str
    reason: str


class TaskCancelled(DomainEvent):
    type: Literal["TaskCancelled"] = "TaskCancelled"
    task_id: str
    attempt: int = Field(default=0, ge=0)


class TaskAdded(DomainEvent):
    """A task joined the running graph (for example a review requested by an agent)."""

    type: Literal["TaskAdded"] = "TaskAdded"
    task: TaskSpec
    reason: str = ""


class StaleUpdateRecorded(DomainEvent):
    """An update for an older attempt (a zombie agent) arrived: recorded, changes nothing."""

    type: Literal["StaleUpdateRecorded"] = "StaleUpdateRecorded"
    task_id: str
    attempt: int = Field(ge=1)
    current_attempt: int = Field(ge=0)
    status: str
    agent: str = ""
    message_id: str | None = None


# --- quality, conflicts, collaboration --------------------------------------------------------


class QualityGatePassed(DomainEvent):
    type: Literal["QualityGatePassed"] = "QualityGatePassed"
    gate_id: str
    result: ValidationResult


class QualityGateFailed(DomainEvent):
    type: Literal["QualityGateFailed"] = "QualityGateFailed"
    gate_id: str
    result: ValidationResult
    action: str = Field(description="The failure action taken")


class Conflict(WireModel):
    conflict_type: ConflictType
    key: str = ""
    values: list[Any] = Field(default_factory=list)
    sources: list[str] = Field(default_factory=list, description="Agents or attempts that disagree")
    description: str = ""


class ConflictDetected(DomainEvent):
    type: Literal["ConflictDetected"] = "ConflictDetected"
    task_id: str
    conflicts: list[Conflict] = Field(min_length=1)


class ConflictResolved(DomainEvent):
    type: Literal["ConflictResolved"] = "ConflictResolved"
    task_id: str
    strategy: ResolutionStrategy
    resolved_output: dict[str, Any] = Field(default_factory=dict)
    rationale: str = ""


class CollaborationRequested(DomainEvent):
    type: Literal["CollaborationRequested"] = "CollaborationRequested"
    request: AgentCollaborationRequest


class CollaborationCompleted(DomainEvent):
    type: Literal["CollaborationCompleted"] = "CollaborationCompleted"
    collaboration_id: str
    collaboration_type: CollaborationType
    outcome: dict[str, Any] = Field(default_factory=dict)


WorkflowEvent = Annotated[
    WorkflowSubmitted
    | WorkflowRejected
    | WorkflowQueued
    | WorkflowStarted
    | WorkflowPaused
    | WorkflowResumed
    | WorkflowCancelled
    | WorkflowCompleted
    | WorkflowFailed
    | TaskAssigned
    | TaskStarted
    | TaskProgressed
    | TaskCompleted
    | TaskFailed
    | TaskTimedOut
    | TaskRetryScheduled
    | TaskReassigned
    | TaskSkipped
    | TaskCancelled
    | TaskAdded
    | StaleUpdateRecorded
    | QualityGatePassed
    | QualityGateFailed
    | ConflictDetected
    | ConflictResolved
    | CollaborationRequested
    | CollaborationCompleted,
    Field(discriminator="type"),
]

_EVENT = TypeAdapter[WorkflowEvent](WorkflowEvent)

EVENT_TYPES: tuple[str, ...] = tuple(cls.model_fields["type"].default for cls in DomainEvent.__subclasses__())

# (type, stored schema_version) -> function turning that version's data into the next one
UPCASTERS: dict[tuple[str, int], Callable[[dict[str, Any]], dict[str, Any]]] = {}


def upcast(data: dict[str, Any]) -> dict[str, Any]:
    """Bring stored event data up to the current schema, one version at a time."""
    while (key := (str(data.get("type")), int(data.get("schema_version", 1)))) in UPCASTERS:
        data = UPCASTERS[key](dict(data))
    return data


def parse_event(data: dict[str, Any] | bytes | str) -> WorkflowEvent:
    """Rebuild a domain event from its stored form (upcasting older versions first)."""
    if isinstance(data, dict):
        return _EVENT.validate_python(upcast(data))
    return _EVENT.validate_json(data) if not UPCASTERS else _EVENT.validate_python(upcast(_loads(data)))


def _loads(data: bytes | str) -> dict[str, Any]:
    import json

    loaded = json.loads(data)
    if not isinstance(loaded, dict):
        raise ValueError("an event is a JSON object")
    return loaded
