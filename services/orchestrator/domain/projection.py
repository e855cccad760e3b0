"""Views of the aggregate: the seed's Workflow State Schema (read model, API) and the
synthesised ``WorkflowResult`` of a finished workflow."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from taskloom.contracts.enums import TaskStateName, WorkflowStateName
from taskloom.contracts.workflow import TaskState, WorkflowProgress, WorkflowResult, WorkflowState
from taskloom.orchestrator.domain.model import TaskRun, Workflow

__all__ = ["completion_percentage", "synthesize_result", "to_state"]


def _counts_as_done(run: TaskRun) -> bool:
    return run.state == TaskStateName.COMPLETED or (
        run.state == TaskStateName.SKIPPED and run.skipped_by_condition
    )


def completion_percentage(state: Workflow) -> float:
    total = len(state.order)
    if not total:
        return 0.0
    done = sum(1 for t in state.order if _counts_as_done(state.tasks[t]))
    return round(100.0 * done / total, 2)


def _task_state(run: TaskRun) -> TaskState:
    return TaskState(
        task_id=run.spec.task_id,
        state=run.state,
        assigned_agent=run.agent,
        started_at=run.started_at,
        completed_at=run.completed_at,
        attempts=run.attempt,
        outputs=run.outputs,
        validation_results=run.validation_results,
        performance_metrics=run.performance_metrics,
        task_type=run.spec.task_type,
        completion_percentage=run.completion_percentage,
        current_phase=run.current_phase or None,
        error=run.error,
    )


def _phase(state: Workflow) -> str:
    if state.status.terminal:
        return state.status.value
    if state.queued:
        return "queued"
    active = [state.tasks[t] for t in state.order if state.tasks[t].active]
    if not active:
        return "waiting" if state.graph else "constructing"
    return ", ".join(f"{r.spec.name or r.spec.task_type}" for r in active[:4])


def to_state(state: Workflow) -> WorkflowState:
    """The seed's Workflow State Schema for this aggregate."""
    runs = [state.tasks[t] for t in state.order]
    active = [r for r in runs if r.active]
    agents: list[str] = []
    for r in active:
        if r.agent not in agents:
            agents.append(r.agent)
    estimated = None
    if state.started_at is not None and state.graph is not None:
        estimated = state.started_at + timedelta(minutes=state.graph.estimated_duration)
    gates: dict[str, Any] = {
        g: {"passed": r.passed, "action": r.action, "runs": r.runs} for g, r in state.gates.items()
    }
    return WorkflowState(
        workflow_id=state.workflow_id,
        graph_id=state.graph.graph_id if state.graph else None,
        current_state=state.status,
        started_at=state.started_at,
        estimated_completion=estimated,
        progress=WorkflowProgress(
            completed_tasks=sum(1 for r in runs if r.state == TaskStateName.COMPLETED),
            total_tasks=len(runs),
            completion_percentage=completion_percentage(state),
            current_phase=_phase(state),
        ),
        task_states=[_task_state(r) for r in runs],
        active_agents=agents,
        resource_utilization={
            "active_tasks": len(active),
            "pending_tasks": sum(1 for r in runs if r.state == TaskStateName.PENDING),
            "queued": state.queued,
        },
        quality_metrics={
            "gates": gates,
            "conflicts_detected": state.conflicts_detected,
            "stale_updates": state.stale_updates,
        },
        owner=state.owner or None,
        request_type=(state.request.request_type if state.request else None)
        or (state.graph.request_type if state.graph else None),
        priority=state.graph.priority
        if state.graph
        else (state.request.priority if state.request else WorkflowState.model_fields["priority"].default),
        submitted_at=state.submitted_at,
        completed_at=state.completed_at,
        version=state.version,
        error=state.error,
    )


def _recovery_summary(state: Workflow, failed: list[str]) -> dict[str, Any]:
    kinds = [r.get("event") for r in state.error_recovery]
    return {
        "failed_attempts": kinds.count("task_failed"),
        "retries": kinds.count("retry_scheduled"),
        "reassignments": kinds.count("reassigned"),
        "timeouts": kinds.count("task_timed_out"),
        "quality_gate_failures": kinds.count("quality_gate_failed"),
        "failed_tasks": failed,
        "log": list(state.error_recovery[-50:]),
    }


def synthesize_result(state: Workflow) -> WorkflowResult:
    """What the workflow produced, as far as it got."""
    runs = [state.tasks[t] for t in state.order]
    completed = [r.spec.task_id for r in runs if r.state == TaskStateName.COMPLETED]
    failed = [r.spec.task_id for r in runs if r.state == TaskStateName.FAILED]
    skipped = [r.spec.task_id for r in runs if r.state == TaskStateName.SKIPPED]
    cancelled = [r.spec.task_id for r in runs if r.state == TaskStateName.CANCELLED]
    blocked = [
        r.spec.task_id for r in runs if r.state == TaskStateName.SKIPPED and not r.skipped_by_condition
    ]
    percentage = completion_percentage(state)
    threshold = state.graph.success_criteria.completion_percentage if state.graph else 100
    gates_failed = [g for g, r in state.gates.items() if r.passed is False]
    success = (
        not failed
        and not cancelled
        and not blocked
        and not gates_failed
        and percentage >= threshold
        and state.status != WorkflowStateName.CANCELLED
        and bool(runs)
    )
    artifacts: list[Any] = []
    for r in runs:
        if r.state != TaskStateName.COMPLETED:
            continue
        for name in r.spec.outputs.expected_artifacts:
            if name in r.outputs:
                artifacts.append({"task_id": r.spec.task_id, "name": name, "value": r.outputs[name]})
    duration = None
    if state.started_at and state.updated_at:
        duration = (state.updated_at - state.started_at).total_seconds()
    return WorkflowResult(
        workflow_id=state.workflow_id,
        success=success,
        completion_percentage=percentage,
        completed_tasks=completed,
        failed_tasks=failed,
        skipped_tasks=skipped,
        partial_success=not success and bool(completed),
        outputs={r.spec.task_id: r.outputs for r in runs if r.state == TaskStateName.COMPLETED},
        metrics={r.spec.task_id: r.performance_metrics for r in runs if r.performance_metrics},
        artifacts=artifacts,
        metadata={
            "graph_id": state.graph.graph_id if state.graph else None,
            "error_recovery": _recovery_summary(state, failed),
            "cancelled_tasks": cancelled,
            "blocked_tasks": blocked,
            "quality_gates": {
                g: {"passed": r.passed, "action": r.action, "runs": r.runs} for g, r in state.gates.items()
            },
            "conflicts_detected": state.conflicts_detected,
            "stale_updates": state.stale_updates,
            "notifications": list(state.notifications),
            "duration_seconds": duration,
        },
    )
