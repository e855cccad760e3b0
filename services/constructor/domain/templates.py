"""Decomposition templates: the shape of a task graph for each request type, as data.

A template lists task templates (shared, or one per functional requirement, optionally routed
to a task type by the requirement's words) with their dependencies by key, plus quality gates.
The five built-in templates live in ``template_data/*.yaml`` next to this module; more can be
registered at run time with ``TemplateRegistry.register`` or loaded from a YAML file.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from taskloom.constructor.errors import UnknownTemplate
from taskloom.contracts.enums import ExecutionPreference, RequestType, ValidationLevel
from taskloom.contracts.graph import GATE_ACTIONS

__all__ = [
    "DecompositionTemplate",
    "GateTemplate",
    "Route",
    "TaskTemplate",
    "TemplateRegistry",
    "builtin_templates",
    "load_template",
]

_BUILTIN_DIR = Path(__file__).with_name("template_data")
_ALL_MODES = [m.value for m in ExecutionPreference]


class _Data(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Route(_Data):
    """Send a requirement whose text contains any of ``match`` to ``task_type``."""

    match: list[str] = Field(min_length=1)
    task_type: str
    name: str | None = None
    capabilities: list[str] = Field(default_factory=list)
    artifacts: list[str] = Field(default_factory=list)


class TaskTemplate(_Data):
    key: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    task_type: str | None = Field(default=None, description="Fixed type; routed tasks leave it out")
    name: str
    description: str = ""
    scope: Literal["shared", "per_requirement"] = "shared"
    route: list[Route] = Field(default_factory=list)
    default_task_type: str | None = Field(
        default=None, description="Routed tasks: the type when no route matches (None = no task)"
    )
    depends_on: list[str] = Field(default_factory=list)
    duration: int = Field(default=10, ge=1, le=600, description="Minutes at complexity 5")
    optional: bool = False
    modes: list[str] = Field(default_factory=lambda: list(_ALL_MODES))
    capabilities: list[str] = Field(default_factory=list)
    artifacts: list[str] = Field(default_factory=lambda: ["summary"])
    consumes: list[str] = Field(default_factory=list, description="Upstream artifacts it reads")
    params: dict[str, Any] = Field(default_factory=dict)
    parallel_safe: bool = True

    @model_validator(mode="after")
    def _typed(self) -> Self:
        if self.task_type is None and not self.route:
            raise ValueError(f"task template {self.key!r} needs a task_type or a route")
        if self.route and self.scope != "per_requirement":
            raise ValueError(f"task template {self.key!r}: routes are for per_requirement tasks")
        bad = [m for m in self.modes if m not in _ALL_MODES]
        if bad:
            raise ValueError(f"task template {self.key!r}: unknown modes {bad}")
        return self

    def task_types(self) -> set[str]:
        types = {r.task_type for r in self.route}
        types |= {t for t in (self.task_type, self.default_task_type) if t}
        return types


class GateTemplate(_Data):
    gate_id: str = Field(pattern=r"^[a-z][a-z0-9_\-]*$")
    after: list[str] = Field(default_factory=list, description="Task keys it judges ([] = all)")
    trigger: Literal["after_tasks", "workflow_end"] = "after_tasks"
    level: ValidationLevel = ValidationLevel.OUTPUT
    failure_actions: list[str] = Field(default_factory=lambda: ["retry", "fail_workflow"])
    optional: bool = False
    modes: list[str] = Field(default_factory=lambda: list(_ALL_MODES))
    description: str = ""

    @model_validator(mode="after")
    def _actions(self) -> Self:
        bad = [a for a in self.failure_actions if a not in GATE_ACTIONS]
        if bad:
            raise ValueError(f"gate {self.gate_id!r}: unknown failure actions {bad}")
        return self


class DecompositionTemplate(_Data):
    request_type: str = Field(min_length=1)
    description: str = ""
    tasks: list[TaskTemplate] = Field(min_length=1)
    gates: list[GateTemplate] = Field(default_factory=list)
    validation_after: list[str] = Field(
        default_factory=list, description="Keys that validation tasks of non-functional requirements wait for"
    )
    validation_before: list[str] = Field(
        default_factory=list, description="Keys that wait for those validation tasks"
    )

    @model_validator(mode="after")
    def _keys_resolve(self) -> Self:
        keys = [t.key for t in self.tasks]
        if len(set(keys)) != len(keys):
            raise ValueError(f"template {self.request_type}: duplicate task keys")
        known = set(keys)
        for t in self.tasks:
            unknown = [d for d in t.depends_on if d not in known]
            if unknown:
                raise ValueError(f"template {self.request_type}: {t.key} depends on unknown keys {unknown}")
        for g in self.gates:
            unknown = [k for k in g.after if k not in known]
            if unknown:
                raise ValueError(
                    f"template {self.request_type}: gate {g.gate_id} names unknown keys {unknown}"
                )
        for k in [*self.validation_after, *self.validation_before]:
            if k not in known:
                raise ValueError(f"template {self.request_type}: unknown validation anchor {k!r}")
        return self

    def task_types(self) -> set[str]:
        return {t for task in self.tasks for t in task.task_types()}


def load_template(path: Path | str) -> DecompositionTemplate:
    """A template from a YAML file (raises ``ValueError`` saying what is wrong)."""
    raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    return DecompositionTemplate.model_validate(raw)


@lru_cache(maxsize=1)
def builtin_templates() -> dict[str, DecompositionTemplate]:
    found = [load_template(p) for p in sorted(_BUILTIN_DIR.glob("*.yaml"))]
    return {t.request_type: t for t in found}


class TemplateRegistry:
    """The templates a constructor uses: the built-in five plus any registered ones."""

    def __init__(self, templates: dict[str, DecompositionTemplate] | None = None) -> None:
        self._templates = dict(builtin_templates() if templates is None else templates)

    def register(self, template: DecompositionTemplate, replace: bool = False) -> None:
        if template.request_type in self._templates and not replace:
            raise ValueError(f"a template for {template.request_type!r} is already registered")
        self._templates[template.request_type] = template

    def get(self, request_type: RequestType | str) -> DecompositionTemplate:
        key = str(request_type.value if isinstance(request_type, RequestType) else request_type)
        try:
            return self._templates[key]
        except KeyError:
            raise UnknownTemplate(f"no decomposition template for request type {key!r}") from None

    def request_types(self) -> list[str]:
        return sorted(self._templates)
