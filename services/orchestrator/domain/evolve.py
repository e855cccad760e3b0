"""``evolve``: the one way a workflow's state changes — by folding one event into it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from taskloom.contracts.enums import TaskStateName, WorkflowStateName
from taskloom.contracts.events import (
    CollaborationCompleted,
    CollaborationRequested,
    ConflictDetected,
    ConflictResolved,
    QualityGateFailed,
    QualityGatePassed,
    StaleUpdateRecorded,
    TaskAdded,
    TaskAssigned,
    TaskCancelled,
    TaskCompleted,
    TaskFailed,
    TaskProgressed,
    TaskReassigned,
    TaskRetryScheduled,
    TaskSkipped,
    TaskStarted,
    TaskTimedOut,
    WorkflowCancelled,
    WorkflowCompleted,
    WorkflowEvent,
    WorkflowFailed,
    WorkflowPaused,
    WorkflowQueued,
    WorkflowRejected,
    WorkflowResumed,
    WorkflowStarted,
    WorkflowSubmitted,
)
from taskloom.contracts.graph import TaskGraph
from taskloom.orchestrator.domain.model import (
    RECENT_MESSAGES,
    Candidate,
    CollaborationRecord,
    GateRecord,
    TaskRun,
    Workflow,
)

__all__ = ["candidate_confidence", "empty", "evolve", "fold"]

COLLABORATION_REASON = "collaboration:"


def empty(workflow_id: str) -> Workflow:
    return Workflow(workflow_id=workflow_id)


def fold(state: Workflow, events: Iterable[WorkflowEvent]) -> Workflow:
    for event in events:
        state = evolve(state, event)
    return state


def candidate_confidence(run: TaskRun, outputs: dict[str, Any], metrics: dict[str, Any]) -> float:
    """An output's confidence: its own ``confidence`` if it reports one, else the graph's."""
    for source in (outputs, metrics.get("quality_indicators") or {}):
        value = source.get("confidence") if isinstance(source, dict) else None
        if isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= 1:
            return float(value)
    return run.spec.confidence_score


def _with_graph(state: Workflow, graph: TaskGraph) -> dict[str, Any]:
    if state.graph is not None:
        return {}
    tasks = {t.task_id: TaskRun(spec=t, agent=t.assigned_agent) for t in graph.tasks}
    gates = {g.gate_id: GateRecord(gate_id=g.gate_id) for g in graph.quality_gates}
    return {"graph": graph, "tasks": tasks, "order": tuple(tasks), "gates": gates}


def _remember(run: TaskRun, message_id: str | None) -> tuple[str, ...]:
    if not message_id or message_id in run.recent_messages:
        return run.recent_messages
    return (*run.recent_messages, message_id)[-RECENT_MESSAGES:]


def _task(wf: Workflow, task_id: str, /, **changes: Any) -> dict[str, Any]:
    run = wf.tasks.get(task_id)
    if run is None:
        return {}
    return {"tasks": {**wf.tasks, task_id: run.model_copy(update=changes)}}


def _recovery(state: Workflow, record: dict[str, Any]) -> dict[str, Any]:
    return {"error_recovery": (*state.error_recovery, record)}


def evolve(state: Workflow, event: WorkflowEvent) -> Workflow:  # noqa: C901 - one branch per event
    """The state after ``event``. Pure; unknown tasks in an event change nothing."""
    at = event.occurred_at
    upd: dict[str, Any] = {"version": state.version + 1, "updated_at": at}
    match event:
        case WorkflowSubmitted():
            upd |= {"owner": event.owner, "request": event.request, "submitted_at": at}
        case WorkflowRejected():
            upd |= {
                "status": WorkflowStateName.FAILED,
                "rejected": True,
                "error": event.reason,
                "completed_at": at,
            }
        case WorkflowQueued():
            upd |= _with_graph(state, event.graph) | {"queued": True, "queued_at": at}
            if event.owner and not state.owner:
                upd["owner"] = event.owner
        case WorkflowStarted():
            upd |= _with_graph(state, event.graph)
            upd |= {"status": WorkflowStateName.RUNNING, "queued": False, "started_at": at}
            if event.owner and not state.owner:
                upd["owner"] = event.owner
        case WorkflowPaused():
            upd["status"] = WorkflowStateName.PAUSED
        case WorkflowResumed():
            upd["status"] = WorkflowStateName.RUNNING
        case WorkflowCancelled():
            upd |= {"status": WorkflowStateName.CANCELLED, "completed_at": at, "queued": False}
            upd["error"] = event.reason or f"cancelled by {event.requested_by}"
        case WorkflowCompleted():
            upd |= {"status": WorkflowStateName.COMPLETED, "completed_at": at, "result": event.result}
        case WorkflowFailed():
            upd |= {"status": WorkflowStateName.FAILED, "completed_at": at, "error": event.reason}
            upd |= {"result": event.result, "queued": False}
        case TaskAssigned():
            run = state.tasks.get(event.task_id)
            if run is not None:
                counted = (
                    run.agent_attempts if run.error and run.error.get("reissue") else run.agent_attempts + 1
                )
                upd |= _task(
                    state,
                    event.task_id,
                    state=TaskStateName.ASSIGNED,
                    agent=event.agent,
                    attempt=event.attempt,
                    agent_attempts=counted,
                    assigned_at=at,
                    deadline=event.deadline,
                    started_at=None,
                    last_seen=at,
                    not_before=None,
                    completion_percentage=0.0,
                    current_phase="",
                    milestones=(),
                    error=None,
                    recent_messages=_remember(run, event.message_id),
                )
        case TaskStarted():
            run = state.tasks.get(event.task_id)
            if run is not None:
                upd |= _task(
                    state,
                    event.task_id,
                    state=TaskStateName.RUNNING,
                    started_at=run.started_at or at,
                    last_seen=at,
                    recent_messages=_remember(run, event.message_id),
                )
        case TaskProgressed():
            run = state.tasks.get(event.task_id)
            if run is not None:
                milestones = run.milestones + tuple(
                    m for m in event.completed_milestones if m not in run.milestones
                )
                upd |= _task(
                    state,
                    event.task_id,
                    state=TaskStateName.RUNNING,
                    started_at=run.started_at or at,
                    last_seen=max(at, run.last_seen) if run.last_seen else at,
                    completion_percentage=max(run.completion_percentage, event.completion_percentage),
                    current_phase=event.current_phase or run.current_phase,
                    milestones=milestones,
                    recent_messages=_remember(run, event.message_id),
                )
        case TaskCompleted():
            run = state.tasks.get(event.task_id)
            if run is not None:
                candidate = Candidate(
                    source=f"{event.agent}#{event.attempt}",
                    outputs=event.outputs,
                    confidence=candidate_confidence(run, event.outputs, event.performance_metrics),
                    priority=run.spec.priority,
                )
                upd |= _task(
                    state,
                    event.task_id,
                    state=TaskStateName.COMPLETED,
                    started_at=run.started_at or at,
                    completed_at=at,
                    last_seen=at,
                    outputs=event.outputs,
                    performance_metrics=event.performance_metrics,
                    completion_percentage=100.0,
                    error=None,
                    candidates=(*run.candidates, candidate),
                    recent_messages=_remember(run, event.message_id),
                )
        case TaskFailed():
            run = state.tasks.get(event.task_id)
            if run is not None:
                changes: dict[str, Any] = {
                    "error": {**event.error, "attempt": event.attempt, "agent": event.agent},
                    "recent_messages": _remember(run, event.message_id),
                }
                if event.final:
                    changes |= {"state": TaskStateName.FAILED, "completed_at": at}
                upd |= _task(state, event.task_id, **changes)
                upd |= _recovery(
                    state,
                    {
                        "event": "task_failed",
                        "task_id": event.task_id,
                        "attempt": event.attempt,
                        "agent": event.agent,
                        "final": event.final,
                        "error": event.error.get("message", event.error.get("reason", "")),
                    },
                )
        case TaskTimedOut():
            run = state.tasks.get(event.task_id)
            if run is not None:
                reissue = event.reason == "not_started"
                upd |= _task(
                    state,
                    event.task_id,
                    state=TaskStateName.PENDING,
                    not_before=None,
                    reissues=run.reissues + (1 if reissue else 0),
                    error={
                        "reason": f"timeout: {event.reason}",
                        "attempt": event.attempt,
                        "reissue": reissue,
                    },
                )
                upd |= _recovery(
                    state,
                    {
                        "event": "task_timed_out",
                        "task_id": event.task_id,
                        "attempt": event.attempt,
                        "reason": event.reason,
                    },
                )
        case TaskRetryScheduled():
            run = state.tasks.get(event.task_id)
            if run is not None:
                error = {k: v for k, v in (run.error or {}).items() if k != "reissue"} or None
                upd |= _task(
                    state,
                    event.task_id,
                    state=TaskStateName.PENDING,
                    agent=event.agent,
                    not_before=event.due_at,
                    error=error,
                )
                upd |= _recovery(
                    state,
                    {
                        "event": "retry_scheduled",
                        "task_id": event.task_id,
                        "next_attempt": event.next_attempt,
                        "agent": event.agent,
                        "delay_seconds": event.delay_seconds,
                    },
                )
        case TaskReassigned():
            run = state.tasks.get(event.task_id)
            if run is not None:
                error = {k: v for k, v in (run.error or {}).items() if k != "reissue"} or None
                upd |= _task(
                    state,
                    event.task_id,
                    state=TaskStateName.PENDING,
                    agent=event.to_agent,
                    agent_attempts=0,
                    not_before=None,
                    error=error,
                )
                upd |= _recovery(
                    state,
                    {
                        "event": "reassigned",
                        "task_id": event.task_id,
                        "from_agent": event.from_agent,
                        "to_agent": event.to_agent,
                        "next_attempt": event.next_attempt,
                    },
                )
        case TaskSkipped():
            upd |= _task(
                state,
                event.task_id,
                state=TaskStateName.SKIPPED,
                completed_at=at,
                skip_reason=event.reason,
                skipped_by_condition=event.reason.startswith("condition")
                or event.reason.endswith("was skipped"),
            )
        case TaskCancelled():
            run = state.tasks.get(event.task_id)
            if run is not None and not run.terminal:
                upd |= _task(state, event.task_id, state=TaskStateName.CANCELLED, completed_at=at)
        case TaskAdded():
            if event.task.task_id not in state.tasks:
                run = TaskRun(spec=event.task, agent=event.task.assigned_agent, added=True)
                upd |= {
                    "tasks": {**state.tasks, run.spec.task_id: run},
                    "order": (*state.order, run.spec.task_id),
                }
                if event.reason.startswith(COLLABORATION_REASON):
                    cid = event.reason[len(COLLABORATION_REASON) :]
                    record = state.collaborations.get(cid)
                    if record is not None:
                        added = (*record.added_tasks, run.spec.task_id)
                        upd["collaborations"] = {
                            **state.collaborations,
                            cid: record.model_copy(update={"added_tasks": added}),
                        }
        case StaleUpdateRecorded():
            run = state.tasks.get(event.task_id)
            upd["stale_updates"] = state.stale_updates + 1
            if run is not None:
                upd |= _task(state, event.task_id, recent_messages=_remember(run, event.message_id))
        case QualityGatePassed() | QualityGateFailed():
            passed = isinstance(event, QualityGatePassed)
            action = None if passed else event.action  # type: ignore[union-attr]
            gate_record = state.gates.get(event.gate_id) or GateRecord(gate_id=event.gate_id)
            # a retry or escalation re-runs the tasks, and the gate judges them again afterwards
            verdict: bool | None = passed if action not in ("retry", "escalate") else None
            gates = {
                **state.gates,
                event.gate_id: gate_record.model_copy(
                    update={
                        "passed": verdict,
                        "runs": gate_record.runs + 1,
                        "action": action,
                        "evaluated_at_version": state.version + 1,
                    }
                ),
            }
            upd["gates"] = gates
            tasks = dict(state.tasks)
            per_task: dict[str, list[dict[str, Any]]] = {}
            for issue in event.result.issues:
                per_task.setdefault(str(issue.get("task_id", "")), []).append(issue)
            for task_id in _gate_tasks(state, event.gate_id):
                run = tasks[task_id]
                entry = {
                    "level": event.result.level.value,
                    "success": not per_task.get(task_id),
                    "issues": per_task.get(task_id, []),
                    "gate_passed": passed,
                }
                tasks[task_id] = run.model_copy(
                    update={"validation_results": {**run.validation_results, event.gate_id: entry}}
                )
            upd["tasks"] = tasks
            if not passed:
                gate = _gate(state, event.gate_id)
                if gate is not None and "notify" in gate.failure_actions:
                    note = {"gate_id": event.gate_id, "action": action, "issues": len(event.result.issues)}
                    upd["notifications"] = (*state.notifications, note)
                upd |= _recovery(
                    state, {"event": "quality_gate_failed", "gate_id": event.gate_id, "action": action}
                )
        case ConflictDetected():
            upd["conflicts_detected"] = state.conflicts_detected + len(event.conflicts)
        case ConflictResolved():
            upd |= _task(state, event.task_id, outputs=event.resolved_output)
        case CollaborationRequested():
            cid = event.request.collaboration_id
            if cid not in state.collaborations:
                upd["collaborations"] = {
                    **state.collaborations,
                    cid: CollaborationRecord(request=event.request),
                }
        case CollaborationCompleted():
            record = state.collaborations.get(event.collaboration_id)
            if record is not None:
                upd["collaborations"] = {
                    **state.collaborations,
                    event.collaboration_id: record.model_copy(update={"completed": True}),
                }
    return state.model_copy(update=upd)


def _gate(state: Workflow, gate_id: str) -> Any:
    if state.graph is None:
        return None
    return next((g for g in state.graph.quality_gates if g.gate_id == gate_id), None)


def _gate_tasks(state: Workflow, gate_id: str) -> list[str]:
    gate = _gate(state, gate_id)
    if gate is None:
        return []
    ids = gate.validation_tasks or list(state.order)
    return [i for i in ids if i in state.tasks and state.tasks[i].state == TaskStateName.COMPLETED]
