"""Which tasks may run now, in what order, and which queued workflows get a slot.

Dependency rules: a dependency is *satisfied* once it completed, every ``after_tasks`` gate that
judges it has let it through, and no review/merge/handoff collaboration on it is still open. A
dependency that failed or was cancelled skips its dependants; a skipped dependency skips them
too unless the dependant says ``when_dependency_skipped: run``. Ready tasks start critical-path
first, then by priority, then in graph order, within the per-workflow concurrency limit (one at
a time for the sequential strategy); a task that is not ``parallel_safe`` runs alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from taskloom.contracts.enums import CollaborationType, ExecutionStrategyType, Priority, TaskStateName
from taskloom.orchestrator.domain.model import Limits, TaskRun, Workflow

__all__ = [
    "BLOCKING_COLLABORATIONS",
    "WorkflowSummary",
    "admit",
    "blocked_reason",
    "capacity",
    "dispatch_order",
    "is_satisfied",
    "ready_tasks",
]

BLOCKING_COLLABORATIONS = frozenset(
    {CollaborationType.REVIEW, CollaborationType.MERGE, CollaborationType.HANDOFF}
)


def _released_by_gates(state: Workflow, task_id: str) -> bool:
    if state.graph is None:
        return True
    for gate in state.graph.quality_gates:
        if gate.trigger_condition != "after_tasks" or task_id not in gate.validation_tasks:
            continue
        record = state.gates.get(gate.gate_id)
        if record is None or record.passed is None:
            return False
        if record.passed is False and record.action not in ("continue", "notify"):
            return False
    return True


def _open_collaboration(state: Workflow, task_id: str) -> bool:
    return any(
        not r.completed
        and r.request.task_id == task_id
        and r.request.collaboration_type in BLOCKING_COLLABORATIONS
        for r in state.collaborations.values()
    )


def is_satisfied(state: Workflow, task_id: str) -> bool:
    run = state.tasks[task_id]
    return (
        run.state == TaskStateName.COMPLETED
        and _released_by_gates(state, task_id)
        and not _open_collaboration(state, task_id)
    )


def blocked_reason(state: Workflow, run: TaskRun) -> str | None:
    """Why a pending task can never run (it is to be skipped), or None."""
    for dep in run.spec.dependencies:
        dep_run = state.tasks.get(dep)
        if dep_run is None:
            continue
        if dep_run.state in (TaskStateName.FAILED, TaskStateName.CANCELLED):
            return f"dependency {dep} {dep_run.state.value}"
        if dep_run.state == TaskStateName.SKIPPED and run.spec.when_dependency_skipped == "skip":
            return f"dependency {dep} was skipped"
    return None


def _deps_done(state: Workflow, run: TaskRun) -> bool:
    for dep in run.spec.dependencies:
        dep_run = state.tasks.get(dep)
        if dep_run is None:
            continue
        if dep_run.state == TaskStateName.SKIPPED and run.spec.when_dependency_skipped == "run":
            continue
        if not is_satisfied(state, dep) and not _collaborates_on(run, dep_run):
            return False
    if run.spec.condition is not None:
        for ref in run.spec.condition.referenced_tasks():
            ref_run = state.tasks.get(ref)
            if ref_run is not None and not ref_run.terminal:
                return False
    return True


def _collaborates_on(run: TaskRun, dep_run: TaskRun) -> bool:
    """A review or handoff task added for ``dep_run`` needs it completed, not released: the
    collaboration it serves is what holds the release back."""
    return (
        run.added
        and run.spec.inputs.input_parameters.get("collaboration_of") == dep_run.spec.task_id
        and dep_run.state == TaskStateName.COMPLETED
    )


def ready_tasks(state: Workflow, now: datetime) -> list[str]:
    """Pending tasks whose dependencies are satisfied and whose retry delay has passed."""
    return [
        t
        for t in state.order
        if (run := state.tasks[t]).state == TaskStateName.PENDING
        and (run.not_before is None or run.not_before <= now)
        and blocked_reason(state, run) is None
        and _deps_done(state, run)
    ]


def dispatch_order(state: Workflow, task_ids: Sequence[str]) -> list[str]:
    critical = set(state.graph.execution_strategy.critical_path) if state.graph else set()
    index = {t: i for i, t in enumerate(state.order)}
    return sorted(task_ids, key=lambda t: (t not in critical, -state.tasks[t].spec.priority, index[t]))


def capacity(state: Workflow, limits: Limits) -> int:
    limit = limits.max_concurrent_tasks_per_workflow
    if state.graph is not None and state.graph.execution_strategy.type == ExecutionStrategyType.SEQUENTIAL:
        limit = 1
    return limit


@dataclass(frozen=True, slots=True)
class WorkflowSummary:
    """What admission needs to know of one workflow."""

    workflow_id: str
    running: bool
    queued: bool
    priority: Priority
    queued_at: datetime | None


def admit(summaries: Sequence[WorkflowSummary], limits: Limits) -> list[str]:
    """The queued workflows to start now: highest priority first, then oldest, while the number
    of running workflows stays within ``max_concurrent_workflows``."""
    free = limits.max_concurrent_workflows - sum(1 for s in summaries if s.running)
    if free <= 0:
        return []
    queued = [s for s in summaries if s.queued and not s.running]
    queued.sort(
        key=lambda s: (
            -s.priority.weight,
            s.queued_at is None,
            s.queued_at.timestamp() if s.queued_at else 0.0,
            s.workflow_id,
        )
    )
    return [s.workflow_id for s in queued[:free]]
