"""Completeness and consistency checks on a finished graph, before it is published."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from taskloom.constructor.domain.assignment import AgentPool
from taskloom.contracts.catalog import BUILTIN_CATALOG
from taskloom.contracts.graph import QualityGate, TaskSpec

__all__ = ["graph_problems"]


def graph_problems(
    tasks: Sequence[TaskSpec],
    gates: Sequence[QualityGate],
    pool: AgentPool,
    request_context: Mapping[str, object],
) -> list[str]:
    """Every problem found (empty = the graph is complete and consistent)."""
    problems: list[str] = []
    by_id = {t.task_id: t for t in tasks}
    if len(by_id) != len(tasks):
        problems.append("duplicate task ids")
    context_keys = {k for k, v in request_context.items() if v not in (None, "", {}, [])}
    for t in tasks:
        missing = [d for d in t.dependencies if d not in by_id]
        if missing:
            problems.append(f"{t.task_id} depends on unknown tasks {missing}")
        able = {c.agent_id for c in pool.for_task_type(t.task_type)}
        if not t.assigned_agent or t.assigned_agent not in able:
            problems.append(
                f"{t.task_id} ({t.task_type}) is assigned to {t.assigned_agent!r}, which cannot do it"
            )
        profile = BUILTIN_CATALOG.get(t.assigned_agent)
        if profile is not None and t.task_type not in profile.task_types:
            problems.append(
                f"{t.task_id}: built-in agent {t.assigned_agent} has no task type {t.task_type!r}"
            )
        if t.timeout <= 0 or t.retry_policy.max_attempts < 1:
            problems.append(f"{t.task_id} has no usable timeout or retry policy")
        if t.assigned_agent in t.retry_policy.failure_escalation:
            problems.append(f"{t.task_id} escalates to its own agent")
        unknown_backups = [b for b in t.backup_agents if b not in able]
        if unknown_backups:
            problems.append(f"{t.task_id} has backup agents that cannot do it: {unknown_backups}")
        available = set(t.inputs.input_parameters) | context_keys
        for dep in t.dependencies:
            if dep in by_id:
                available |= set(by_id[dep].outputs.expected_artifacts)
        unmet = [k for k in t.inputs.required_context if k not in available]
        if unmet:
            problems.append(f"{t.task_id} requires context nobody provides: {unmet}")
    for g in gates:
        unknown = [v for v in g.validation_tasks if v not in by_id]
        if unknown:
            problems.append(f"quality gate {g.gate_id} names unknown tasks {unknown}")
    return problems
