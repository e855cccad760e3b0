"""Response and request bodies of the REST API that are not wire contracts (listings, pages,
acknowledgements, errors)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from taskloom.contracts.context import Classification

__all__ = [
    "AgentInstance",
    "AgentSummary",
    "AgentsPage",
    "CollaborationAccepted",
    "ContextPutBody",
    "ControlAccepted",
    "ControlBody",
    "ErrorBody",
    "EventPage",
    "EventRecord",
    "ERROR_RESPONSES",
    "WorkflowList",
    "WorkflowSummary",
]


class ErrorBody(BaseModel):
    detail: str = Field(description="What was wrong, in words")
    errors: list[dict[str, Any]] | None = Field(default=None, description="Validation errors, per field")


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": ErrorBody} for code in codes}


ERROR_RESPONSES = _errors(401, 403, 404, 413, 422, 429, 503)


class WorkflowSummary(BaseModel):
    workflow_id: str
    owner: str
    request_type: str | None
    current_state: str
    priority: str | None
    submitted_at: str | None
    updated_at: str | None
    version: int
    progress: dict[str, Any]


class WorkflowList(BaseModel):
    items: list[WorkflowSummary]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null on the last")


class EventRecord(BaseModel):
    position: int = Field(description="Version in the workflow's stream (1-based)")
    global_position: int
    event_id: str
    type: str
    recorded_at: str
    data: dict[str, Any]


class EventPage(BaseModel):
    workflow_id: str
    events: list[EventRecord]
    next_after: int | None = Field(description="Pass as ?after= for the next page; null on the last")


class ControlBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(default="", max_length=1000)


class ControlAccepted(BaseModel):
    workflow_id: str
    action: str
    command_id: str
    status: str


class CollaborationAccepted(BaseModel):
    collaboration_id: str
    workflow_id: str
    status: str
    requesting_agent: str
    target_agents: list[str]
    collaboration_type: str
    channels: dict[str, str]


class AgentInstance(BaseModel):
    instance_id: str
    host: str
    version: str
    capacity: int
    load: int
    heartbeat_at: str


class AgentSummary(BaseModel):
    agent_id: str
    capabilities: list[str]
    task_types: list[str]
    capacity: int
    load: int
    instances: list[AgentInstance]


class AgentsPage(BaseModel):
    agents: list[AgentSummary]


class ContextPutBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    value: Any = None
    classification: Classification = Classification.INTERNAL
    sensitive: bool = False
    expected_version: int | None = Field(default=None, ge=0)
