"""The constructor's input: the seed's Input Schema (``ComplexRequest``)."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from taskloom.contracts.base import OpenModel, Versioned, WireModel, new_id
from taskloom.contracts.enums import ExecutionPreference, ExecutionStrategyType, Priority, RequestType

__all__ = ["ComplexRequest", "Preferences", "RequestContext", "Requirements"]


class RequestContext(OpenModel):
    """The seed's ``context`` object. Its three named fields are typed; like the seed's samples
    (``project_path``, ``user_preferences``) any further keys are kept as given."""

    user_session: dict[str, Any] = Field(default_factory=dict)
    project_state: dict[str, Any] = Field(default_factory=dict)
    previous_interactions: list[Any] = Field(default_factory=list)
    project_path: str | None = None
    user_preferences: dict[str, Any] = Field(default_factory=dict)


class Requirements(WireModel):
    functional: list[str] = Field(default_factory=list)
    non_functional: list[str] = Field(default_factory=list)
    constraints: list[str] = Field(default_factory=list)

    @field_validator("functional", "non_functional", "constraints")
    @classmethod
    def _no_blank_items(cls, items: list[str]) -> list[str]:
        cleaned = [i.strip() for i in items]
        if any(not i for i in cleaned):
            raise ValueError("requirement texts must not be empty")
        return cleaned


class Preferences(WireModel):
    execution_strategy: ExecutionPreference = ExecutionPreference.BALANCED
    quality_gates: list[Any] = Field(default_factory=list)
    notification_settings: dict[str, Any] = Field(default_factory=dict)


class ComplexRequest(Versioned):
    """A complex request handed to the Task Graph Constructor.

    ``request_type`` and ``complexity_level`` may be left out: the constructor classifies the
    request and scores its complexity from the requirement texts. ``execution_strategy`` (a
    Taskloom addition, as in the seed's integration-test sample) asks for a graph shape.
    """

    request_id: str = Field(default_factory=new_id)
    request_type: RequestType | None = None
    complexity_level: int | None = Field(default=None, ge=1, le=10)
    priority: Priority = Priority.MEDIUM
    context: RequestContext = Field(default_factory=RequestContext)
    requirements: Requirements
    preferences: Preferences = Field(default_factory=Preferences)
    execution_strategy: ExecutionStrategyType | None = None

    @field_validator("request_type", mode="before")
    @classmethod
    def _auto_means_classify(cls, value: Any) -> Any:
        return None if value in ("auto", "") else value
