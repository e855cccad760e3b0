"""Plan without running: build the task graph a request would get and show it the way
``terraform plan`` shows changes — tasks with their agents and scores, dependencies, quality
gates, parallel groups, the critical path and the estimated duration.

``taskloom plan request.yaml`` is ``print(render_plan(load_request(path)))``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from taskloom.constructor.domain.assignment import AgentPool, PerformanceStats, pool_from_catalog
from taskloom.constructor.domain.construct import Construction, Defaults, construct
from taskloom.constructor.domain.templates import TemplateRegistry
from taskloom.constructor.errors import InvalidRequest
from taskloom.contracts.graph import Threshold
from taskloom.contracts.requests import ComplexRequest

__all__ = ["Plan", "load_request", "plan", "render_plan"]

Plan = Construction


def load_request(path: str | Path) -> ComplexRequest:
    """A request from a YAML or JSON file. A relative ``context.project_path`` is resolved
    against the current directory, so the agents find the project wherever they run."""
    source = Path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidRequest(f"cannot read {source}: {exc.strerror or exc}") from None
    try:
        raw: Any = json.loads(text) if source.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise InvalidRequest(f"{source} is not valid {source.suffix.lstrip('.') or 'YAML'}: {exc}") from None
    if not isinstance(raw, dict):
        raise InvalidRequest(f"{source} must hold one request object, not {type(raw).__name__}")
    context = raw.get("context")
    if isinstance(context, dict) and isinstance(context.get("project_path"), str):
        project = Path(context["project_path"]).expanduser()
        if not project.is_absolute():
            raw = {**raw, "context": {**context, "project_path": str(Path.cwd() / project)}}
    try:
        return ComplexRequest.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'request'}: {e['msg']}" for e in exc.errors()
        )
        raise InvalidRequest(f"{source}: {problems}") from None


def plan(
    request: ComplexRequest | Mapping[str, Any],
    pool: AgentPool | None = None,
    history: Mapping[tuple[str, str], PerformanceStats] | None = None,
    *,
    defaults: Defaults | None = None,
    templates: TemplateRegistry | None = None,
) -> Plan:
    """The graph a request would get; offline by default (built-in agents, no history)."""
    if not isinstance(request, ComplexRequest):
        try:
            request = ComplexRequest.model_validate(dict(request))
        except ValidationError as exc:
            raise InvalidRequest(f"invalid request: {exc.errors()[0]['msg']}") from None
    return construct(request, pool or pool_from_catalog(), history, defaults=defaults, templates=templates)


def _threshold(t: Threshold) -> str:
    unit = f" {t.unit}" if t.unit and t.unit != "%" else (t.unit or "")
    return f"{t.metric} {t.op} {t.value:g}{unit}"


def _short(ids: list[str], limit: int = 6) -> str:
    if not ids:
        return "-"
    shown = ", ".join(ids[:limit])
    return shown + (f", … (+{len(ids) - limit})" if len(ids) > limit else "")


def render_plan(target: ComplexRequest | Construction) -> str:
    """The plan as plain text (no markup, so it prints the same through rich or print)."""
    built = target if isinstance(target, Construction) else plan(target)
    g = built.graph
    meta = g.metadata
    cls = meta.get("classification", {})
    strategy = g.execution_strategy
    hints = strategy.optimization_hints
    on_path = set(strategy.critical_path)
    lines: list[str] = []
    add = lines.append
    source = cls.get("source", "given")
    kind = f"{built.classification.request_type.value} ({source}"
    kind += f", confidence {built.classification.confidence:.0%})" if source == "classified" else ")"
    add(f"Taskloom plan for request {g.request_id}")
    add(f"  type {kind}, complexity {built.complexity}/10, preference {meta.get('execution_preference')}")
    agents_from = meta.get("agent_source")
    add(f"  agents from {'the live registry' if agents_from == 'registry' else 'the built-in catalogue'}")
    add("")
    add(f"Tasks ({len(g.tasks)}), * = on the critical path:")
    for t in g.tasks:
        mark = "*" if t.task_id in on_path else "+"
        opt = ", optional" if t.optional else ""
        add(f"  {mark} {t.task_id}  {t.task_type}  {t.estimated_duration} min{opt}")
        add(f"      {t.name}")
        scores = built.assignments[t.task_id].scores
        best = scores[0]
        add(
            f"      agent {t.assigned_agent}  score {t.confidence_score:.2f}"
            f"  (expertise {best.expertise:.2f}, workload {best.workload:.2f},"
            f" history {best.history:.2f}, context {best.context:.2f})"
        )
        if t.backup_agents:
            backups = ", ".join(f"{s.agent_id} {s.total:.2f}" for s in scores[1:4])
            add(f"      backups {backups}")
        add(f"      depends on {_short(t.dependencies)}")
        if t.validation_criteria.performance_thresholds:
            th = "; ".join(_threshold(x) for x in t.validation_criteria.performance_thresholds.values())
            add(f"      thresholds {th}")
    add("")
    add(f"Quality gates ({len(g.quality_gates)}):")
    for q in g.quality_gates:
        when = (
            "at workflow end"
            if q.trigger_condition == "workflow_end"
            else f"after {_short(q.validation_tasks, 4)}"
        )
        add(f"  # {q.gate_id}  {q.level.value} check {when}; on failure {' -> '.join(q.failure_actions)}")
        for name, limit in q.thresholds.items():
            add(f"      {name}: {_threshold(limit)}")
    add("")
    add(f"Execution strategy: {strategy.type.value}")
    add("  parallel groups:")
    for i, group in enumerate(strategy.parallelization_groups, 1):
        add(f"    {i}. {_short(group, 8)}")
    path = " -> ".join(strategy.critical_path)
    add(f"  critical path ({hints.get('critical_path_minutes', 0)} min): {path}")
    add(
        f"  total work {hints.get('total_work_minutes', 0)} min, max parallelism "
        f"{hints.get('max_parallelism', 0)}, speed-up {hints.get('speedup', 1.0)}x"
    )
    for key in ("note", "note_concurrency", "requested_strategy"):
        if key in hints:
            add(f"  note: {hints[key]}")
    add("")
    add(f"Estimated duration: {g.estimated_duration} min")
    for warning in built.warnings:
        add(f"Warning: {warning}")
    agents = sorted({t.assigned_agent for t in g.tasks})
    add("")
    gates = f"{len(g.quality_gates)} quality gate{'s' if len(g.quality_gates) != 1 else ''}"
    add(f"Plan: {len(g.tasks)} tasks, {gates}, {len(agents)} agents ({', '.join(agents)}).")
    return "\n".join(lines)
