"""Results of work and of checks: the seed's ``TaskResult`` and ``ValidationResult``."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from taskloom.contracts.base import WireModel
from taskloom.contracts.enums import ValidationLevel

__all__ = ["TaskResult", "ValidationResult"]


class TaskResult(WireModel):
    success: bool
    outputs: dict[str, Any] = Field(default_factory=dict)
    performance_metrics: dict[str, Any] = Field(default_factory=dict)
    intermediate_artifacts: list[Any] = Field(default_factory=list)
    error_context: dict[str, Any] | None = None


class ValidationResult(WireModel):
    success: bool
    level: ValidationLevel
    validator_id: str
    checks_passed: int = Field(ge=0)
    checks_failed: int = Field(ge=0)
    issues: list[dict[str, Any]] = Field(default_factory=list)
    recommendations: list[str] = Field(default_factory=list)
