"""The workflow aggregate's state (folded from events), the decider's inputs and its output.

``Workflow`` is what ``evolve`` builds; it holds the graph and one ``TaskRun`` per task. It is
an internal model: the read model and the API see it through ``projection.to_state``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from taskloom.contracts.enums import TaskStateName, WorkflowStateName
from taskloom.contracts.events import WorkflowEvent
from taskloom.contracts.graph import TaskGraph, TaskSpec
from taskloom.contracts.messages import (
    AgentCollaborationRequest,
    CancelWorkflow,
    PauseWorkflow,
    ProgressUpdate,
    ResumeWorkflow,
    TaskAssignment,
)
from taskloom.contracts.requests import ComplexRequest
from taskloom.contracts.workflow import WorkflowResult

__all__ = [
    "ACTIVE",
    "Admit",
    "Candidate",
    "CollaborationRecord",
    "Collaborate",
    "Control",
    "Decision",
    "GateRecord",
    "Input",
    "Limits",
    "LimitsSource",
    "RejectGraph",
    "StartGraph",
    "TaskRun",
    "Tick",
    "Timer",
    "TimerFired",
    "Workflow",
    "RECENT_MESSAGES",
]

ACTIVE = frozenset({TaskStateName.ASSIGNED, TaskStateName.RUNNING})
RECENT_MESSAGES = 32
"""How many message ids per task are remembered to drop exact redeliveries."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Candidate(_Frozen):
    """One output gathered for a task (an attempt, a reviewer, a merged task)."""

    source: str
    outputs: dict[str, Any] = Field(default_factory=dict)
    confidence: float = 1.0
    priority: int = 5


class TaskRun(_Frozen):
    """Everything the engine knows about one task of a running workflow."""

    spec: TaskSpec
    state: TaskStateName = TaskStateName.PENDING
    agent: str
    attempt: int = Field(default=0, description="Number of the latest dispatch (0: never)")
    agent_attempts: int = Field(default=0, description="Dispatches counted against the current agent")
    reissues: int = Field(default=0, description="Re-sends of an assignment nobody started")
    assigned_at: datetime | None = None
    deadline: datetime | None = None
    started_at: datetime | None = None
    last_seen: datetime | None = None
    completed_at: datetime | None = None
    not_before: datetime | None = Field(default=None, description="A scheduled retry waits until then")
    outputs: dict[str, Any] = Field(default_factory=dict)
    performance_metrics: dict[str, Any] = Field(default_factory=dict)
    validation_results: dict[str, Any] = Field(default_factory=dict)
    completion_percentage: float = 0.0
    current_phase: str = ""
    milestones: tuple[str, ...] = ()
    error: dict[str, Any] | None = None
    skip_reason: str | None = None
    skipped_by_condition: bool = False
    candidates: tuple[Candidate, ...] = ()
    recent_messages: tuple[str, ...] = ()
    added: bool = Field(default=False, description="Joined the graph while running (collaboration)")

    @property
    def active(self) -> bool:
        return self.state in ACTIVE

    @property
    def terminal(self) -> bool:
        return self.state.terminal

    def agent_chain(self) -> list[str]:
        """The agent first assigned, then the escalation agents and backups, each once."""
        chain: list[str] = []
        for a in [
            self.spec.assigned_agent,
            *self.spec.retry_policy.failure_escalation,
            *self.spec.backup_agents,
        ]:
            if a not in chain:
                chain.append(a)
        return chain


class GateRecord(_Frozen):
    gate_id: str
    passed: bool | None = None
    runs: int = 0
    action: str | None = None
    evaluated_at_version: int = 0


class CollaborationRecord(_Frozen):
    request: AgentCollaborationRequest
    added_tasks: tuple[str, ...] = ()
    completed: bool = False


class Workflow(_Frozen):
    """The aggregate: built only by folding a workflow's events with ``evolve``."""

    workflow_id: str
    version: int = 0
    status: WorkflowStateName = WorkflowStateName.PENDING
    queued: bool = False
    rejected: bool = False
    owner: str = ""
    request: ComplexRequest | None = None
    graph: TaskGraph | None = None
    order: tuple[str, ...] = ()
    tasks: dict[str, TaskRun] = Field(default_factory=dict)
    submitted_at: datetime | None = None
    queued_at: datetime | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    updated_at: datetime | None = None
    gates: dict[str, GateRecord] = Field(default_factory=dict)
    collaborations: dict[str, CollaborationRecord] = Field(default_factory=dict)
    error_recovery: tuple[dict[str, Any], ...] = ()
    notifications: tuple[dict[str, Any], ...] = ()
    conflicts_detected: int = 0
    stale_updates: int = 0
    result: WorkflowResult | None = None
    error: str | None = None

    @property
    def terminal(self) -> bool:
        return self.status.terminal

    def task(self, task_id: str) -> TaskRun:
        return self.tasks[task_id]


class LimitsSource(Protocol):
    """Anything shaped like ``Settings`` (the decider does not import the settings)."""

    max_concurrent_tasks_per_workflow: int
    max_concurrent_workflows: int
    heartbeat_timeout_seconds: float
    workflow_timeout_default: int


class Limits(_Frozen):
    max_concurrent_tasks_per_workflow: int = Field(default=8, ge=1)
    max_concurrent_workflows: int = Field(default=10, ge=1)
    heartbeat_timeout_seconds: float = Field(default=30.0, gt=0)
    workflow_timeout_seconds: float = Field(default=14400.0, gt=0)
    reissue_limit: int = Field(default=3, ge=0, description="Re-sends of an unstarted assignment")

    @classmethod
    def from_settings(cls, settings: LimitsSource) -> Limits:
        return cls(
            max_concurrent_tasks_per_workflow=settings.max_concurrent_tasks_per_workflow,
            max_concurrent_workflows=settings.max_concurrent_workflows,
            heartbeat_timeout_seconds=settings.heartbeat_timeout_seconds,
            workflow_timeout_seconds=float(settings.workflow_timeout_default),
        )


# --- inputs of the decider -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StartGraph:
    """A constructed graph arrived; ``admitted`` says whether a workflow slot is free."""

    graph: TaskGraph
    owner: str
    request: ComplexRequest | None
    admitted: bool
    message_id: str


@dataclass(frozen=True, slots=True)
class RejectGraph:
    reason: str
    missing_capabilities: tuple[str, ...]
    message_id: str


@dataclass(frozen=True, slots=True)
class Admit:
    """A queued workflow got a slot."""


@dataclass(frozen=True, slots=True)
class Control:
    command: CancelWorkflow | PauseWorkflow | ResumeWorkflow


@dataclass(frozen=True, slots=True)
class Collaborate:
    request: AgentCollaborationRequest


@dataclass(frozen=True, slots=True)
class TimerFired:
    timer_id: str
    kind: str
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Tick:
    """Nothing happened but time passed: dispatch whatever became ready."""


Input = StartGraph | RejectGraph | Admit | Control | Collaborate | ProgressUpdate | TimerFired | Tick


@dataclass(frozen=True, slots=True)
class Timer:
    """A durable timer the shell keeps in Postgres; ``timer_id`` is unique per workflow."""

    timer_id: str
    due_at: datetime
    kind: Literal["deadline", "heartbeat", "retry", "workflow_timeout"]
    payload: dict[str, Any]


@dataclass(slots=True)
class Decision:
    """What ``decide`` returns: the events to append, the assignments to send through the
    outbox, the tasks whose agents must be told to stop, and the state after the events."""

    state: Workflow
    events: list[WorkflowEvent] = field(default_factory=list)
    assignments: list[TaskAssignment] = field(default_factory=list)
    cancel_signals: list[str] = field(default_factory=list)
    # the attempt each signal is for: an agent must never stop a later re-issue of the task
    cancel_attempts: dict[str, int] = field(default_factory=dict)
