"""Template expansion: a request and its template become draft tasks and draft gates.

Per-requirement task templates give one task per functional requirement (routed ones pick the
task type from the requirement's words, and requirements routed to the same type share one
task); shared ones give one task. A dependency on a task the execution preference left out
falls through to that task's own dependencies. Non-functional requirements add validation
tasks (merged with an existing task of the same type) and quality gates with their thresholds.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from taskloom.constructor.domain.nfr import NfrPlan, plan_nfrs
from taskloom.constructor.domain.templates import DecompositionTemplate, GateTemplate, TaskTemplate
from taskloom.constructor.errors import InvalidRequest
from taskloom.contracts.enums import ExecutionPreference, ValidationLevel
from taskloom.contracts.graph import Threshold

__all__ = ["Decomposition", "DraftGate", "DraftTask", "decompose"]

GRAPH_PLACEHOLDER = "$graph"
REQUIREMENT_PLACEHOLDER = "$requirement"


@dataclass
class DraftTask:
    task_id: str
    task_type: str
    name: str
    description: str
    duration: int
    dependencies: list[str] = field(default_factory=list)
    optional: bool = False
    capabilities: list[str] = field(default_factory=list)
    artifacts: list[str] = field(default_factory=list)
    consumes: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    requirements: list[str] = field(default_factory=list)
    success_criteria: list[str] = field(default_factory=list)
    thresholds: dict[str, Threshold] = field(default_factory=dict)
    parallel_safe: bool = True
    template_key: str = ""
    shared: bool = True


@dataclass
class DraftGate:
    gate_id: str
    validation_tasks: list[str]
    trigger_condition: str
    level: ValidationLevel
    failure_actions: list[str]
    thresholds: dict[str, Threshold] = field(default_factory=dict)
    description: str = ""


@dataclass
class Decomposition:
    tasks: list[DraftTask]
    gates: list[DraftGate]
    performance_targets: dict[str, Threshold]
    notes: list[str]


def _slug(text: str, limit: int = 40) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:limit] or "task"


def _route(template: TaskTemplate, requirement: str) -> tuple[str, str | None, list[str], list[str]] | None:
    """(task type, route name, capabilities, artifacts) for one requirement, or None."""
    lowered = requirement.lower()
    for route in template.route:
        if any(re.search(rf"\b{re.escape(word)}", lowered) for word in route.match):
            return route.task_type, route.name, route.capabilities, route.artifacts
    if template.route:
        if template.default_task_type is None:
            return None
        return template.default_task_type, None, list(template.capabilities), list(template.artifacts)
    assert template.task_type is not None
    return template.task_type, None, list(template.capabilities), list(template.artifacts)


def _included(template: TaskTemplate | GateTemplate, preference: ExecutionPreference) -> bool:
    if preference.value not in template.modes:
        return False
    return not (preference == ExecutionPreference.FAST and template.optional)


class _Expander:
    def __init__(self, template: DecompositionTemplate, functional: Sequence[str], scale: float) -> None:
        self.template = template
        self.functional = list(functional)
        self.scale = scale
        self.by_key = {t.key: t for t in template.tasks}
        self.tasks: dict[str, DraftTask] = {}
        # template key -> requirement index -> task id (per-requirement), or [task id] (shared)
        self.per_req: dict[str, dict[int, str]] = {}
        self.ids: dict[str, list[str]] = {}

    def duration(self, minutes: int) -> int:
        return max(1, round(minutes * self.scale))

    def add(self, tt: TaskTemplate, preference: ExecutionPreference) -> None:
        if not _included(tt, preference):
            return
        if tt.scope == "shared":
            assert tt.task_type is not None
            task = DraftTask(
                task_id=tt.key,
                task_type=tt.task_type,
                name=tt.name,
                description=tt.description,
                duration=self.duration(tt.duration),
                optional=tt.optional,
                capabilities=list(tt.capabilities),
                artifacts=list(tt.artifacts),
                consumes=list(tt.consumes),
                params=dict(tt.params),
                requirements=list(self.functional),
                parallel_safe=tt.parallel_safe,
                template_key=tt.key,
            )
            self.tasks[task.task_id] = task
            self.ids[tt.key] = [task.task_id]
            return
        mapping: dict[int, str] = {}
        by_type: dict[str, DraftTask] = {}
        for index, requirement in enumerate(self.functional):
            routed = _route(tt, requirement)
            if routed is None:
                continue
            task_type, route_name, caps, artifacts = routed
            if tt.route and task_type in by_type:
                merged = by_type[task_type]
                merged.requirements.append(requirement)
                merged.name = f"{tt.name.split(':')[0]}: {'; '.join(merged.requirements)}"
                mapping[index] = merged.task_id
                continue
            task_id = f"{tt.key}-{_slug(task_type)}" if tt.route else f"{tt.key}-{index + 1}"
            params = {k: (requirement if v == REQUIREMENT_PLACEHOLDER else v) for k, v in tt.params.items()}
            task = DraftTask(
                task_id=task_id,
                task_type=task_type,
                name=(route_name or tt.name).format(requirement=requirement),
                description=tt.description,
                duration=self.duration(tt.duration),
                optional=tt.optional,
                capabilities=caps or list(tt.capabilities),
                artifacts=artifacts or list(tt.artifacts),
                consumes=list(tt.consumes),
                params=params,
                requirements=[requirement],
                parallel_safe=tt.parallel_safe,
                template_key=tt.key,
                shared=False,
            )
            by_type[task_type] = task
            self.tasks[task_id] = task
            mapping[index] = task_id
        self.per_req[tt.key] = mapping
        self.ids[tt.key] = list(dict.fromkeys(mapping.values()))

    def resolve(self, key: str, index: int | None) -> list[str]:
        """Task ids a dependency on ``key`` means for requirement ``index`` (None = all)."""
        if key in self.per_req and self.per_req[key] and index is not None:
            found = self.per_req[key].get(index)
            if found is not None:
                return [found]
        if self.ids.get(key):
            return list(self.ids[key])
        # left out (mode, preference, no requirement routed to it): depend on what it depended on
        out: list[str] = []
        for dep in self.by_key[key].depends_on:
            out.extend(self.resolve(dep, index))
        return list(dict.fromkeys(out))

    def wire(self) -> None:
        for tt in self.template.tasks:
            if tt.key not in self.per_req and tt.key not in self.ids:
                continue
            if tt.scope == "shared":
                targets: list[tuple[str, int | None]] = [(i, None) for i in self.ids.get(tt.key, [])]
            else:
                targets = [(tid, idx) for idx, tid in self.per_req[tt.key].items()]
            for task_id, index in targets:
                task = self.tasks[task_id]
                for dep in tt.depends_on:
                    for dep_id in self.resolve(dep, index):
                        if dep_id != task_id and dep_id not in task.dependencies:
                            task.dependencies.append(dep_id)


def _gate_from_template(gt: GateTemplate, expander: _Expander) -> DraftGate | None:
    tasks: list[str] = []
    for key in gt.after:
        tasks.extend(expander.ids.get(key, []))
    if gt.after and not tasks:
        return None
    return DraftGate(
        gate_id=gt.gate_id,
        validation_tasks=list(dict.fromkeys(tasks)),
        trigger_condition=gt.trigger,
        level=gt.level,
        failure_actions=list(gt.failure_actions),
        description=gt.description,
    )


def _add_validation(
    plan: NfrPlan,
    expander: _Expander,
    preference: ExecutionPreference,
    gates: list[DraftGate],
    after: list[str],
    before: list[str],
) -> None:
    existing = next((t for t in expander.tasks.values() if t.task_type == plan.task_type), None)
    category = plan.category
    if existing is None:
        task_id = f"validate-{_slug(plan.task_type)}"
        existing = DraftTask(
            task_id=task_id,
            task_type=plan.task_type,
            name=f"Validate: {'; '.join(plan.texts)}",
            description="Checks the non-functional requirements it names.",
            duration=expander.duration(10),
            capabilities=list(category.capabilities),
            artifacts=list(category.artifacts),
            dependencies=list(after),
            template_key="validation",
        )
        expander.tasks[task_id] = existing
        for downstream in before:
            deps = expander.tasks[downstream].dependencies
            if task_id not in deps:
                deps.append(task_id)
    existing.success_criteria.extend(plan.texts)
    existing.params.update(plan.params)
    existing.params.setdefault("non_functional_requirements", [])
    existing.params["non_functional_requirements"].extend(plan.texts)
    existing.thresholds.update(plan.measured)
    if plan.probe_params and category.probe_task_type:
        probe_id = f"probe-{_slug(category.probe_task_type)}"
        if probe_id not in expander.tasks:
            expander.tasks[probe_id] = DraftTask(
                task_id=probe_id,
                task_type=category.probe_task_type,
                name="Probe the service endpoints",
                description="Measures the latency of the endpoints the request names.",
                duration=expander.duration(5),
                capabilities=["health_monitoring"],
                artifacts=["summary", "probes"],
                params=dict(plan.probe_params),
                dependencies=list(after),
                template_key="validation",
            )
        if probe_id not in existing.dependencies:
            existing.dependencies.append(probe_id)
        if "probes" not in existing.consumes:
            existing.consumes.append("probes")
    if plan.measured:
        gates.append(
            DraftGate(
                gate_id=f"nfr-{_slug(plan.task_type)}",
                validation_tasks=[existing.task_id],
                trigger_condition="after_tasks",
                level=ValidationLevel.OUTPUT,
                failure_actions=["retry", "fail_workflow"] if category.flaky else ["fail_workflow"],
                thresholds=dict(plan.measured),
                description="Stated non-functional requirements: "
                + "; ".join(t.source or name for name, t in plan.measured.items()),
            )
        )
    if plan.advisory and preference != ExecutionPreference.FAST:
        gates.append(
            DraftGate(
                gate_id=f"nfr-{_slug(plan.task_type)}-advisory",
                validation_tasks=[existing.task_id],
                trigger_condition="after_tasks",
                level=ValidationLevel.OUTPUT,
                failure_actions=["notify", "continue"],
                thresholds=dict(plan.advisory),
                description="No built-in agent reports these metrics, so they are reported, not "
                "enforced: " + "; ".join(t.source or n for n, t in plan.advisory.items()),
            )
        )


def decompose(
    template: DecompositionTemplate,
    functional: Sequence[str],
    non_functional: Sequence[str],
    preference: ExecutionPreference,
    request_context: Mapping[str, Any],
    complexity: int,
) -> Decomposition:
    """Draft tasks and gates for one request (dependencies not yet reduced or checked)."""
    scale = 0.5 + complexity / 10  # complexity 5 keeps the template's minutes
    expander = _Expander(template, functional, scale)
    for tt in template.tasks:
        expander.add(tt, preference)
    expander.wire()
    gates = [
        g
        for gt in template.gates
        if _included(gt, preference) and (g := _gate_from_template(gt, expander)) is not None
    ]
    after = [i for key in template.validation_after for i in expander.resolve(key, None)]
    before = [i for key in template.validation_before for i in expander.ids.get(key, [])]
    plans = plan_nfrs(non_functional, request_context)
    performance_targets: dict[str, Threshold] = {}
    for plan in plans:
        _add_validation(plan, expander, preference, gates, after, before)
        performance_targets.update(plan.measured)
        performance_targets.update(plan.advisory)
    notes: list[str] = []
    if not expander.tasks:
        raise InvalidRequest(
            f"nothing to plan: the {template.request_type} template yields no task for these requirements"
        )
    return Decomposition(list(expander.tasks.values()), gates, performance_targets, notes)
