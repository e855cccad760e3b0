"""The constructor's output: the seed's "Output Schema (Task Graph)", plus the conditions,
thresholds and assignment scores Taskloom adds to it."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, Self

from pydantic import Field, model_validator

from taskloom.contracts.base import Versioned, WireModel, new_id, utcnow
from taskloom.contracts.enums import (
    BackoffStrategy,
    ExecutionStrategyType,
    Priority,
    RequestType,
    ValidationLevel,
)

__all__ = [
    "Condition",
    "ExecutionStrategy",
    "QualityGate",
    "RetryPolicy",
    "SuccessCriteria",
    "TaskGraph",
    "TaskInputs",
    "TaskOutputs",
    "TaskSpec",
    "Threshold",
    "ValidationCriteria",
    "GATE_ACTIONS",
    "GATE_TRIGGERS",
]

ComparisonOp = Literal[
    "eq", "ne", "gt", "ge", "lt", "le", "in", "not_in", "contains", "exists", "truthy", "falsy"
]


class Condition(WireModel):
    """A safe structured predicate over upstream outputs (no ``eval``).

    Exactly one form is used:

    * a comparison: ``{"task": "<task_id>", "path": "outputs.key.sub", "op": "gt", "value": 3}``
      (``path`` is a dotted path into that task's state; ``outputs`` is the usual root);
    * ``{"all_of": [...]}``, ``{"any_of": [...]}`` or ``{"not": {...}}`` combining others.
    """

    task: str | None = None
    path: str | None = None
    op: ComparisonOp | None = None
    value: Any = None
    all_of: list[Condition] | None = None
    any_of: list[Condition] | None = None
    not_: Condition | None = Field(default=None, alias="not")

    @model_validator(mode="after")
    def _one_form(self) -> Self:
        forms = [
            self.op is not None,
            self.all_of is not None,
            self.any_of is not None,
            self.not_ is not None,
        ]
        if sum(forms) != 1:
            raise ValueError(
                "a condition is exactly one of: a comparison (task, path, op), all_of, any_of, not"
            )
        if self.op is not None and (not self.task or not self.path):
            raise ValueError("a comparison needs 'task' and 'path'")
        if self.all_of is not None and not self.all_of or self.any_of is not None and not self.any_of:
            raise ValueError("all_of / any_of need at least one condition")
        return self

    def referenced_tasks(self) -> set[str]:
        found: set[str] = {self.task} if self.task else set()
        for child in (self.all_of or []) + (self.any_of or []) + ([self.not_] if self.not_ else []):
            found |= child.referenced_tasks()
        return found


class Threshold(WireModel):
    """A measurable threshold parsed from a requirement, e.g. "Response time < 500ms"."""

    metric: str = Field(min_length=1)
    op: Literal["<", "<=", ">", ">=", "=="]
    value: float
    unit: str | None = None
    source: str | None = Field(default=None, description="The requirement text it came from")

    def holds(self, measured: float) -> bool:
        return {
            "<": measured < self.value,
            "<=": measured <= self.value,
            ">": measured > self.value,
            ">=": measured >= self.value,
            "==": measured == self.value,
        }[self.op]


class RetryPolicy(WireModel):
    max_attempts: int = Field(default=3, ge=1, le=20)
    backoff_strategy: BackoffStrategy = BackoffStrategy.EXPONENTIAL_JITTER
    failure_escalation: list[str] = Field(
        default_factory=list, description="Backup agents, in order, once attempts on the first are spent"
    )
    base_delay_seconds: float = Field(default=1.0, ge=0, le=3600)
    max_delay_seconds: float = Field(default=60.0, ge=0, le=86400)


class TaskInputs(WireModel):
    required_context: list[str] = Field(default_factory=list)
    input_parameters: dict[str, Any] = Field(default_factory=dict)
    resource_requirements: dict[str, Any] = Field(default_factory=dict)


class TaskOutputs(WireModel):
    expected_artifacts: list[str] = Field(default_factory=list)
    success_criteria: list[str] = Field(default_factory=list)
    quality_metrics: dict[str, Any] = Field(default_factory=dict)


class ValidationCriteria(WireModel):
    acceptance_tests: list[str] = Field(default_factory=list)
    performance_thresholds: dict[str, Threshold] = Field(default_factory=dict)
    quality_gates: list[str] = Field(default_factory=list)


class TaskSpec(WireModel):
    """One task of the graph (the seed's task object, plus Taskloom's fields below ``timeout``)."""

    task_id: str = Field(default_factory=new_id, min_length=1)
    task_type: str = Field(min_length=1)
    assigned_agent: str = Field(min_length=1)
    priority: int = Field(default=5, ge=1, le=10)
    dependencies: list[str] = Field(default_factory=list)
    inputs: TaskInputs = Field(default_factory=TaskInputs)
    outputs: TaskOutputs = Field(default_factory=TaskOutputs)
    validation_criteria: ValidationCriteria = Field(default_factory=ValidationCriteria)
    parallel_safe: bool = True
    timeout: int = Field(default=1800, gt=0, description="Seconds")
    retry_policy: RetryPolicy = Field(default_factory=RetryPolicy)
    # Taskloom additions
    name: str = ""
    description: str = ""
    estimated_duration: int = Field(default=5, ge=0, description="Minutes")
    required_capabilities: list[str] = Field(default_factory=list)
    confidence_score: float = Field(default=1.0, ge=0, le=1)
    backup_agents: list[str] = Field(default_factory=list)
    condition: Condition | None = None
    when_dependency_skipped: Literal["skip", "run"] = Field(
        default="skip",
        description="'skip': a skipped dependency skips this task too; 'run': it counts as done",
    )
    optional: bool = Field(default=False, description="Dropped by the 'fast' execution preference")
    heartbeat_timeout: float | None = Field(default=None, gt=0, description="Seconds without progress = dead")

    @model_validator(mode="after")
    def _not_own_dependency(self) -> Self:
        if self.task_id in self.dependencies:
            raise ValueError(f"task {self.task_id} depends on itself")
        if len(set(self.dependencies)) != len(self.dependencies):
            raise ValueError(f"task {self.task_id} lists a dependency twice")
        return self


class ExecutionStrategy(WireModel):
    type: ExecutionStrategyType = ExecutionStrategyType.MIXED
    parallelization_groups: list[list[str]] = Field(default_factory=list)
    critical_path: list[str] = Field(default_factory=list)
    optimization_hints: dict[str, Any] = Field(default_factory=dict)


GATE_TRIGGERS = ("after_tasks", "workflow_end")
GATE_ACTIONS = ("retry", "escalate", "fail_workflow", "continue", "notify")


class QualityGate(WireModel):
    """A checkpoint. ``trigger_condition`` is ``after_tasks`` (runs once every task in
    ``validation_tasks`` has finished) or ``workflow_end``; ``failure_actions`` are taken in
    order from ``retry``, ``escalate``, ``fail_workflow``, ``continue``, ``notify``."""

    gate_id: str = Field(min_length=1)
    trigger_condition: str = "after_tasks"
    validation_tasks: list[str] = Field(default_factory=list)
    failure_actions: list[str] = Field(default_factory=lambda: ["retry", "fail_workflow"])
    level: ValidationLevel = ValidationLevel.OUTPUT
    thresholds: dict[str, Threshold] = Field(default_factory=dict)
    description: str = ""

    @model_validator(mode="after")
    def _known_words(self) -> Self:
        if self.trigger_condition not in GATE_TRIGGERS:
            raise ValueError(
                f"trigger_condition must be one of {GATE_TRIGGERS}, not {self.trigger_condition!r}"
            )
        unknown = [a for a in self.failure_actions if a not in GATE_ACTIONS]
        if unknown:
            raise ValueError(f"unknown failure_actions {unknown}; allowed: {GATE_ACTIONS}")
        return self


class SuccessCriteria(WireModel):
    completion_percentage: int = Field(default=100, ge=0, le=100)
    quality_threshold: float = Field(default=0.8, ge=0, le=1)
    performance_targets: dict[str, Threshold] = Field(default_factory=dict)


class TaskGraph(Versioned):
    graph_id: str = Field(default_factory=new_id)
    request_id: str
    created_at: datetime = Field(default_factory=utcnow)
    estimated_duration: int = Field(default=0, ge=0, description="Minutes, from the critical path")
    tasks: list[TaskSpec] = Field(min_length=1)
    execution_strategy: ExecutionStrategy = Field(default_factory=ExecutionStrategy)
    quality_gates: list[QualityGate] = Field(default_factory=list)
    success_criteria: SuccessCriteria = Field(default_factory=SuccessCriteria)
    # Taskloom additions
    request_type: RequestType | None = None
    priority: Priority = Priority.MEDIUM
    metadata: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _references_exist(self) -> Self:
        ids = [t.task_id for t in self.tasks]
        if len(set(ids)) != len(ids):
            dupes = sorted({i for i in ids if ids.count(i) > 1})
            raise ValueError(f"duplicate task ids: {dupes}")
        known = set(ids)
        for t in self.tasks:
            missing = [d for d in t.dependencies if d not in known]
            if missing:
                raise ValueError(f"task {t.task_id} depends on unknown tasks {missing}")
            if t.condition and not t.condition.referenced_tasks() <= known:
                raise ValueError(f"task {t.task_id} has a condition on unknown tasks")
        for g in self.quality_gates:
            missing = [v for v in g.validation_tasks if v not in known]
            if missing:
                raise ValueError(f"quality gate {g.gate_id} names unknown tasks {missing}")
        for path_id in self.execution_strategy.critical_path:
            if path_id not in known:
                raise ValueError(f"critical path names unknown task {path_id}")
        return self

    def task(self, task_id: str) -> TaskSpec:
        for t in self.tasks:
            if t.task_id == task_id:
                return t
        raise KeyError(task_id)
