"""The seed's Workflow State Schema (what status queries return) and the workflow result."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from taskloom.contracts.base import Versioned, WireModel
from taskloom.contracts.enums import Priority, RequestType, TaskStateName, WorkflowStateName

__all__ = ["TaskState", "WorkflowProgress", "WorkflowResult", "WorkflowState"]


class WorkflowProgress(WireModel):
    completed_tasks: int = Field(default=0, ge=0)
    total_tasks: int = Field(default=0, ge=0)
    completion_percentage: float = Field(default=0.0, ge=0, le=100)
    current_phase: str = ""


class TaskState(WireModel):
    task_id: str
    state: TaskStateName = TaskStateName.PENDING
    assigned_agent: str | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    attempts: int = Field(default=0, ge=0)
    outputs: dict[str, Any] = Field(default_factory=dict)
    validation_results: dict[str, Any] = Field(default_factory=dict)
    performance_metrics: dict[str, Any] = Field(default_factory=dict)
    # Taskloom additions
    task_type: str | None = None
    completion_percentage: float = Field(default=0.0, ge=0, le=100)
    current_phase: str | None = None
    error: dict[str, Any] | None = None


class WorkflowState(Versioned):
    workflow_id: str
    graph_id: str | None = None
    current_state: WorkflowStateName = WorkflowStateName.PENDING
    started_at: datetime | None = None
    estimated_completion: datetime | None = None
    progress: WorkflowProgress = Field(default_factory=WorkflowProgress)
    task_states: list[TaskState] = Field(default_factory=list)
    active_agents: list[str] = Field(default_factory=list)
    resource_utilization: dict[str, Any] = Field(default_factory=dict)
    quality_metrics: dict[str, Any] = Field(default_factory=dict)
    # Taskloom additions
    owner: str | None = None
    request_type: RequestType | None = None
    priority: Priority = Priority.MEDIUM
    submitted_at: datetime | None = None
    completed_at: datetime | None = None
    version: int = Field(default=0, ge=0, description="Events folded into this state")
    error: str | None = None


class WorkflowResult(WireModel):
    """What a finished workflow produced (the seed's ``WorkflowResult`` as its tests use it)."""

    workflow_id: str
    success: bool
    completion_percentage: float = Field(ge=0, le=100)
    completed_tasks: list[str] = Field(default_factory=list)
    failed_tasks: list[str] = Field(default_factory=list)
    skipped_tasks: list[str] = Field(default_factory=list)
    partial_success: bool = False
    outputs: dict[str, dict[str, Any]] = Field(default_factory=dict, description="Per task id")
    metrics: dict[str, dict[str, Any]] = Field(default_factory=dict, description="Per task id")
    artifacts: list[Any] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)
