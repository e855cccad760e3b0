"""REST and WebSocket shapes of the gateway: the seed's workflow submission request and
response, and the WebSocket status event."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from taskloom.contracts.base import WireModel, utcnow
from taskloom.contracts.enums import (
    ExecutionPreference,
    ExecutionStrategyType,
    RequestType,
    WebSocketEventType,
)
from taskloom.contracts.requests import Requirements

__all__ = [
    "StatusEvent",
    "StatusEventData",
    "SubmissionRequest",
    "WorkflowSubmissionRequest",
    "WorkflowSubmissionResponse",
]


class SubmissionRequest(WireModel):
    """The seed's ``request`` object of ``POST /api/v1/workflows``."""

    type: RequestType | None = Field(default=None, description="Leave out (or 'auto') to classify")
    requirements: Requirements
    complexity: int | None = Field(default=None, ge=1, le=10)
    strategy: ExecutionPreference | ExecutionStrategyType | None = None


class WorkflowSubmissionRequest(WireModel):
    request: SubmissionRequest
    context: dict[str, Any] = Field(default_factory=dict)
    preferences: dict[str, Any] = Field(default_factory=dict)
    callback_url: str | None = None
    webhook_events: list[WebSocketEventType] = Field(default_factory=list)


class WorkflowSubmissionResponse(WireModel):
    workflow_id: str
    estimated_duration: int | None = Field(default=None, ge=0, description="Minutes")
    task_count: int | None = Field(default=None, ge=0)
    assigned_agents: list[str] = Field(default_factory=list)
    status_endpoint: str
    websocket_endpoint: str


class StatusEventData(WireModel):
    current_status: str
    progress: dict[str, Any] = Field(default_factory=dict)
    active_agents: list[str] = Field(default_factory=list)
    recent_updates: list[dict[str, Any]] = Field(default_factory=list)


class StatusEvent(WireModel):
    """One WebSocket frame. ``position`` is the workflow stream version it reflects, so a client
    can reconnect with ``?since=<position>`` and miss nothing."""

    event_type: WebSocketEventType
    timestamp: datetime = Field(default_factory=utcnow)
    workflow_id: str
    data: StatusEventData
    position: int = Field(default=0, ge=0)
