"""Messages on the bus: the seed's ``task_assignment`` and ``progress_update``, the commands,
the constructor's output messages and the agent collaboration request.

Every message carries ``message_type``, ``message_id``, ``timestamp``, ``workflow_id`` and
``schema_version``; ``parse_message`` picks the model by ``message_type``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, TypeAdapter

from taskloom.contracts.base import OpenModel, Versioned, WireModel, new_id, utcnow
from taskloom.contracts.enums import CollaborationType, IssueType, ProgressStatus, Urgency, WebSocketEventType
from taskloom.contracts.graph import RetryPolicy, TaskGraph
from taskloom.contracts.requests import ComplexRequest

__all__ = [
    "AgentCollaborationRequest",
    "AssignmentContext",
    "AssignmentInputs",
    "AssignmentSuccessCriteria",
    "CancelWorkflow",
    "CollaborationRequested",
    "CommunicationChannels",
    "GraphConstructed",
    "GraphRejected",
    "Issue",
    "Message",
    "PauseWorkflow",
    "PerformanceMetrics",
    "ProgressInfo",
    "ProgressUpdate",
    "ResumeWorkflow",
    "SubmitWorkflow",
    "TaskAssignment",
    "TaskDetails",
    "parse_message",
]


class Envelope(Versioned):
    message_id: str = Field(default_factory=new_id, min_length=1)
    timestamp: datetime = Field(default_factory=utcnow)
    workflow_id: str = Field(min_length=1)


# --- task_assignment ----------------------------------------------------------------------


class TaskDetails(WireModel):
    task_type: str = Field(min_length=1)
    priority: int = Field(ge=1, le=10)
    estimated_duration: int = Field(ge=0, description="Minutes")
    timeout: int = Field(gt=0, description="Seconds")
    retry_policy: RetryPolicy = Field(default_factory=RetryPolicy)


class AssignmentContext(OpenModel):
    global_context: dict[str, Any] = Field(default_factory=dict)
    task_context: dict[str, Any] = Field(default_factory=dict)
    agent_context: dict[str, Any] = Field(default_factory=dict)


class AssignmentInputs(WireModel):
    parameters: dict[str, Any] = Field(default_factory=dict)
    dependencies: list[dict[str, Any]] = Field(default_factory=list, description="Upstream task results")
    resources: dict[str, Any] = Field(default_factory=dict)


class AssignmentSuccessCriteria(WireModel):
    acceptance_tests: list[str] = Field(default_factory=list)
    quality_metrics: dict[str, Any] = Field(default_factory=dict)
    output_requirements: dict[str, Any] = Field(default_factory=dict)


class CommunicationChannels(WireModel):
    status_updates: str = ""
    collaboration_requests: str = ""
    error_reporting: str = ""


class TaskAssignment(Envelope):
    message_type: Literal["task_assignment"] = "task_assignment"
    task_id: str = Field(min_length=1)
    assigned_agent: str = Field(min_length=1)
    task_details: TaskDetails
    context: AssignmentContext = Field(default_factory=AssignmentContext)
    inputs: AssignmentInputs = Field(default_factory=AssignmentInputs)
    success_criteria: AssignmentSuccessCriteria = Field(default_factory=AssignmentSuccessCriteria)
    communication_channels: CommunicationChannels = Field(default_factory=CommunicationChannels)
    # Taskloom additions
    attempt: int = Field(
        default=1, ge=1, description="Numbered dispatch; updates for older attempts change nothing"
    )
    required_context: list[str] = Field(default_factory=list)
    deadline: datetime | None = None


# --- progress_update ----------------------------------------------------------------------


class ProgressInfo(WireModel):
    completion_percentage: float = Field(default=0.0, ge=0, le=100)
    current_phase: str = ""
    completed_milestones: list[str] = Field(default_factory=list)
    next_milestone: str = ""


class PerformanceMetrics(WireModel):
    execution_time: float = Field(default=0.0, ge=0, description="Seconds")
    resource_usage: dict[str, Any] = Field(default_factory=dict)
    quality_indicators: dict[str, Any] = Field(default_factory=dict)


class Issue(WireModel):
    issue_type: IssueType
    description: str
    suggested_resolution: str = ""
    escalation_required: bool = False


class AgentCollaborationRequest(WireModel):
    """The seed's ``agent_collaboration_request`` tool arguments."""

    requesting_agent: str = Field(min_length=1)
    target_agents: list[str] = Field(min_length=1)
    collaboration_type: CollaborationType
    context: dict[str, Any] = Field(default_factory=dict)
    urgency: Urgency = Urgency.NORMAL
    # Taskloom additions
    collaboration_id: str = Field(default_factory=new_id)
    workflow_id: str | None = None
    task_id: str | None = None


class ProgressUpdate(Envelope):
    message_type: Literal["progress_update"] = "progress_update"
    task_id: str = Field(min_length=1)
    agent_id: str = Field(min_length=1)
    status: ProgressStatus
    progress: ProgressInfo = Field(default_factory=ProgressInfo)
    intermediate_results: dict[str, Any] | None = None
    performance_metrics: PerformanceMetrics = Field(default_factory=PerformanceMetrics)
    issues: list[Issue] = Field(default_factory=list)
    collaboration_requests: list[AgentCollaborationRequest] | None = None
    # Taskloom additions
    attempt: int = Field(default=1, ge=1)
    instance_id: str | None = None
    outputs: dict[str, Any] | None = Field(default=None, description="Set with status 'completed'")
    error_context: dict[str, Any] | None = Field(default=None, description="Set with status 'failed'")
    retryable: bool = Field(default=True, description="With 'failed': may another attempt succeed?")


# --- commands and constructor output --------------------------------------------------------


class SubmitWorkflow(Envelope):
    message_type: Literal["submit_workflow"] = "submit_workflow"
    owner: str = Field(min_length=1)
    request: ComplexRequest
    callback_url: str | None = None
    webhook_events: list[WebSocketEventType] = Field(default_factory=list)


class _Control(Envelope):
    requested_by: str = "system"
    reason: str = ""


class CancelWorkflow(_Control):
    message_type: Literal["cancel_workflow"] = "cancel_workflow"


class PauseWorkflow(_Control):
    message_type: Literal["pause_workflow"] = "pause_workflow"


class ResumeWorkflow(_Control):
    message_type: Literal["resume_workflow"] = "resume_workflow"


class CollaborationRequested(Envelope):
    message_type: Literal["collaboration_requested"] = "collaboration_requested"
    request: AgentCollaborationRequest


class GraphConstructed(Envelope):
    message_type: Literal["graph_constructed"] = "graph_constructed"
    owner: str = Field(min_length=1)
    request: ComplexRequest
    graph: TaskGraph
    assignment_scores: dict[str, dict[str, float]] = Field(
        default_factory=dict, description="Per task id: agent → score"
    )
    callback_url: str | None = None
    webhook_events: list[WebSocketEventType] = Field(default_factory=list)


class GraphRejected(Envelope):
    message_type: Literal["graph_rejected"] = "graph_rejected"
    owner: str = Field(min_length=1)
    reason: str = Field(min_length=1)
    missing_capabilities: list[str] = Field(default_factory=list)


Message = Annotated[
    TaskAssignment
    | ProgressUpdate
    | SubmitWorkflow
    | CancelWorkflow
    | PauseWorkflow
    | ResumeWorkflow
    | CollaborationRequested
    | GraphConstructed
    | GraphRejected,
    Field(discriminator="message_type"),
]

_MESSAGE = TypeAdapter[Message](Message)


def parse_message(data: bytes | str) -> Message:
    """Validate a bus message of any type; raises ``pydantic.ValidationError`` with the reason."""
    return _MESSAGE.validate_json(data)
