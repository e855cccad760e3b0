"""The constructor's pipeline as one pure function: request → validated, assigned task graph.

classify → score complexity → expand the template (with the execution preference and the
non-functional requirements) → analyse dependencies → assign agents → generate each task's
context → validate. The agent pool and the performance history are inputs, so the same
function plans offline (static catalogue, no history) and in the service (live registry).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from taskloom.constructor.domain.assignment import (
    AgentPool,
    Assignment,
    PerformanceStats,
    TaskNeeds,
    assign_all,
)
from taskloom.constructor.domain.classify import Classification, classify_request, complexity_score
from taskloom.constructor.domain.decompose import GRAPH_PLACEHOLDER, Decomposition, DraftTask, decompose
from taskloom.constructor.domain.dependencies import GraphAnalysis, analyse
from taskloom.constructor.domain.templates import TemplateRegistry
from taskloom.constructor.domain.validate import graph_problems
from taskloom.constructor.errors import InvalidGraph, InvalidRequest
from taskloom.contracts.base import utcnow
from taskloom.contracts.enums import BackoffStrategy, ExecutionPreference, ExecutionStrategyType
from taskloom.contracts.graph import (
    ExecutionStrategy,
    QualityGate,
    RetryPolicy,
    SuccessCriteria,
    TaskGraph,
    TaskInputs,
    TaskOutputs,
    TaskSpec,
    ValidationCriteria,
)
from taskloom.contracts.requests import ComplexRequest

__all__ = ["Construction", "Defaults", "construct", "graph_id_for"]

_GRAPH_NS = uuid.UUID("5b0f8f1e-7a53-4a43-9d2c-3f1d3c5e9a10")
_QUALITY = {
    ExecutionPreference.FAST: 0.7,
    ExecutionPreference.BALANCED: 0.8,
    ExecutionPreference.THOROUGH: 0.9,
}


@dataclass(frozen=True)
class Defaults:
    """Settings the graph takes its timeouts and retry policies from."""

    task_timeout: int = 1800
    max_concurrent_tasks: int = 8
    max_attempts: int = 3
    base_delay_seconds: float = 1.0
    max_delay_seconds: float = 60.0


@dataclass(frozen=True)
class Construction:
    graph: TaskGraph
    request: ComplexRequest
    classification: Classification
    complexity: int
    assignments: dict[str, Assignment]
    analysis: GraphAnalysis
    warnings: list[str] = field(default_factory=list)

    @property
    def assignment_scores(self) -> dict[str, dict[str, float]]:
        return {tid: {s.agent_id: s.total for s in a.scores} for tid, a in self.assignments.items()}


def graph_id_for(key: str) -> str:
    """A graph id that is the same every time the same workflow or request is planned."""
    return str(uuid.uuid5(_GRAPH_NS, key))


def _quality_gate_texts(items: list[Any]) -> list[str]:
    texts: list[str] = []
    for item in items:
        if isinstance(item, str) and item.strip():
            texts.append(item.strip())
        elif isinstance(item, Mapping):
            text = item.get("requirement") or item.get("threshold")
            if isinstance(text, str) and text.strip():
                texts.append(text.strip())
            else:
                raise InvalidRequest(
                    "preferences.quality_gates items are requirement texts "
                    "(e.g. 'coverage >= 90%') or objects with a 'requirement' text"
                )
        else:
            raise InvalidRequest(f"preferences.quality_gates: cannot use {item!r}")
    return texts


def _needs(draft: DraftTask) -> TaskNeeds:
    return TaskNeeds(
        task_id=draft.task_id,
        task_type=draft.task_type,
        capabilities=tuple(draft.capabilities),
        duration_minutes=draft.duration,
        dependencies=tuple(draft.dependencies),
        text=" ".join([draft.name, draft.description, *draft.requirements[:5]]),
    )


def _data_edges(drafts: Mapping[str, DraftTask]) -> dict[str, set[str]]:
    keep: dict[str, set[str]] = {}
    for d in drafts.values():
        wanted = set(d.consumes)
        keep[d.task_id] = {
            dep
            for dep in d.dependencies
            if "*" in wanted or wanted & set(drafts[dep].artifacts if dep in drafts else [])
        }
    return keep


def _parameters(
    draft: DraftTask, drafts: Mapping[str, DraftTask], request: ComplexRequest
) -> tuple[dict[str, Any], list[str]]:
    """The task's ``input_parameters`` and the ``required_context`` keys it cannot work without."""
    params: dict[str, Any] = {}
    required: list[str] = []
    if request.context.project_path:
        params["project_path"] = request.context.project_path
        required.append("project_path")
    if draft.shared:
        if request.requirements.functional:
            params["functional_requirements"] = list(request.requirements.functional)
    else:
        params["requirement"] = "; ".join(draft.requirements)
        required.append("requirement")
        if len(draft.requirements) > 1:
            params["requirements"] = list(draft.requirements)
    params.update(draft.params)
    if draft.dependencies:
        params["upstream_tasks"] = {d: drafts[d].task_type for d in draft.dependencies}
    wired: dict[str, list[str]] = {}
    for artifact in draft.consumes:
        if artifact == "*":
            continue
        producers = [d for d in draft.dependencies if artifact in drafts[d].artifacts]
        if producers:
            wired[artifact] = producers
            required.append(artifact)
    if wired:
        params["inputs_from"] = wired
    return params, list(dict.fromkeys(required))


def _graph_doc(specs: list[TaskSpec]) -> dict[str, Any]:
    return {
        "tasks": [
            {
                "task_id": s.task_id,
                "task_type": s.task_type,
                "assigned_agent": s.assigned_agent,
                "dependencies": s.dependencies,
                "estimated_duration": s.estimated_duration,
            }
            for s in specs
        ]
    }


def construct(
    request: ComplexRequest,
    pool: AgentPool,
    history: Mapping[tuple[str, str], PerformanceStats] | None = None,
    *,
    defaults: Defaults | None = None,
    templates: TemplateRegistry | None = None,
    graph_id: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    now: datetime | None = None,
) -> Construction:
    """Plan one request. Raises a ``ConstructionError`` saying why when it cannot be planned."""
    defaults = defaults or Defaults()
    templates = templates or TemplateRegistry()
    classification = classify_request(request)
    complexity = complexity_score(request)
    preference = request.preferences.execution_strategy
    reqs = request.requirements
    nfr_texts = [*reqs.non_functional, *_quality_gate_texts(request.preferences.quality_gates)]
    if not reqs.functional and not nfr_texts:
        raise InvalidRequest("nothing to plan: the request has no functional or non-functional requirements")
    template = templates.get(classification.request_type)
    context = request.context.model_dump(mode="json")
    plan: Decomposition = decompose(template, reqs.functional, nfr_texts, preference, context, complexity)
    drafts = {d.task_id: d for d in plan.tasks}

    analysis = analyse(
        {d.task_id: d.duration for d in plan.tasks},
        {d.task_id: d.dependencies for d in plan.tasks},
        request.execution_strategy,
        defaults.max_concurrent_tasks,
        _data_edges(drafts),
    )
    for d in plan.tasks:
        d.dependencies = analysis.dependencies[d.task_id]
    order = [t for group in analysis.groups for t in group]
    assignments = assign_all([_needs(drafts[t]) for t in order], pool, history or {})

    sequential = analysis.strategy == ExecutionStrategyType.SEQUENTIAL
    on_path = set(analysis.critical_path)
    gate_ids: dict[str, list[str]] = {}
    for g in plan.gates:
        for t in g.validation_tasks or order:
            gate_ids.setdefault(t, []).append(g.gate_id)
    attempts = (
        min(2, defaults.max_attempts) if preference == ExecutionPreference.FAST else defaults.max_attempts
    )
    warnings: list[str] = []
    if not request.context.project_path:
        warnings.append("context.project_path is not set: agents that read the project will fail")

    specs: list[TaskSpec] = []
    for task_id in order:
        d = drafts[task_id]
        a = assignments[task_id]
        params, required = _parameters(d, drafts, request)
        specs.append(
            TaskSpec(
                task_id=task_id,
                task_type=d.task_type,
                assigned_agent=a.agent_id,
                priority=min(10, request.priority.weight + (1 if task_id in on_path else 0)),
                dependencies=d.dependencies,
                inputs=TaskInputs(
                    required_context=required,
                    input_parameters=params,
                    resource_requirements={"concurrency_slots": 1},
                ),
                outputs=TaskOutputs(
                    expected_artifacts=d.artifacts,
                    success_criteria=d.success_criteria
                    or [f"{d.task_type} completes with its {', '.join(d.artifacts)}"],
                ),
                validation_criteria=ValidationCriteria(
                    acceptance_tests=list(d.success_criteria),
                    performance_thresholds=dict(d.thresholds),
                    quality_gates=gate_ids.get(task_id, []),
                ),
                parallel_safe=d.parallel_safe and not sequential,
                timeout=max(defaults.task_timeout, d.duration * 60 * 2),
                retry_policy=RetryPolicy(
                    max_attempts=attempts,
                    backoff_strategy=BackoffStrategy.EXPONENTIAL_JITTER,
                    failure_escalation=a.backup_agents,
                    base_delay_seconds=defaults.base_delay_seconds,
                    max_delay_seconds=defaults.max_delay_seconds,
                ),
                name=d.name,
                description=d.description,
                estimated_duration=d.duration,
                required_capabilities=d.capabilities,
                confidence_score=a.confidence_score,
                backup_agents=a.backup_agents,
                optional=d.optional,
            )
        )
    if any(GRAPH_PLACEHOLDER in s.inputs.input_parameters.values() for s in specs):
        doc = _graph_doc(specs)
        specs = [
            s.model_copy(
                update={
                    "inputs": s.inputs.model_copy(
                        update={
                            "input_parameters": {
                                k: (doc if v == GRAPH_PLACEHOLDER else v)
                                for k, v in s.inputs.input_parameters.items()
                            }
                        }
                    )
                }
            )
            for s in specs
        ]
    gates = [
        QualityGate(
            gate_id=g.gate_id,
            trigger_condition=g.trigger_condition,
            validation_tasks=g.validation_tasks,
            failure_actions=g.failure_actions,
            level=g.level,
            thresholds=g.thresholds,
            description=g.description,
        )
        for g in plan.gates
    ]
    problems = graph_problems(specs, gates, pool, context)
    if problems:
        raise InvalidGraph(problems)
    filled = request.model_copy(
        update={"request_type": classification.request_type, "complexity_level": complexity}
    )
    meta: dict[str, Any] = {
        "classification": {
            "request_type": classification.request_type.value,
            "source": classification.source,
            "confidence": classification.confidence,
            "scores": dict(classification.scores),
        },
        "complexity_score": complexity,
        "execution_preference": preference.value,
        "template": template.request_type,
        "agent_source": pool.source,
        "scoring_weights": {"expertise": 0.4, "workload": 0.25, "history": 0.2, "context": 0.15},
        "warnings": warnings,
        **(metadata or {}),
    }
    try:
        graph = TaskGraph(
            graph_id=graph_id or graph_id_for(request.request_id),
            request_id=request.request_id,
            created_at=now or utcnow(),
            estimated_duration=analysis.estimated_duration,
            tasks=specs,
            execution_strategy=ExecutionStrategy(
                type=analysis.strategy,
                parallelization_groups=analysis.groups,
                critical_path=analysis.critical_path,
                optimization_hints=analysis.hints,
            ),
            quality_gates=gates,
            success_criteria=SuccessCriteria(
                completion_percentage=100,
                quality_threshold=_QUALITY[preference],
                performance_targets=plan.performance_targets,
            ),
            request_type=classification.request_type,
            priority=request.priority,
            metadata=meta,
        )
    except ValidationError as exc:
        raise InvalidGraph([str(e["msg"]) for e in exc.errors()]) from None
    return Construction(graph, filled, classification, complexity, assignments, analysis, warnings)
