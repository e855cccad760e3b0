"""The durable timers a workflow needs, derived from its state alone.

The shell replaces a workflow's timer rows with ``timers_for(state)`` after every decision, so
re-arming after a restart is the same computation, and a timer that fires late or twice is
harmless: ``decide`` re-checks the attempt and the due time before acting.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from taskloom.contracts.enums import TaskStateName, WorkflowStateName
from taskloom.orchestrator.domain.decide import heartbeat_due
from taskloom.orchestrator.domain.model import Limits, Timer, Workflow

__all__ = ["timers_for"]


def timers_for(state: Workflow, limits: Limits, now: datetime | None = None) -> list[Timer]:
    """Every timer the state needs. A retry whose delay has passed (``now``) needs none: it
    waits for a free slot, which a finishing task's own decision hands out."""
    if state.status.terminal or state.graph is None:
        return []
    timers: list[Timer] = []
    if state.started_at is not None:
        timers.append(
            Timer(
                "workflow_timeout",
                state.started_at + timedelta(seconds=limits.workflow_timeout_seconds),
                "workflow_timeout",
                {},
            )
        )
    for task_id in state.order:
        run = state.tasks[task_id]
        payload = {"task_id": task_id, "attempt": run.attempt}
        if run.active and run.deadline is not None:
            timers.append(Timer(f"deadline:{task_id}:{run.attempt}", run.deadline, "deadline", payload))
        if run.state == TaskStateName.RUNNING:
            due = heartbeat_due(run, limits)
            if due is not None:
                timers.append(Timer(f"heartbeat:{task_id}:{run.attempt}", due, "heartbeat", payload))
        if (
            run.state == TaskStateName.PENDING
            and run.not_before is not None
            and state.status == WorkflowStateName.RUNNING
            and (now is None or run.not_before > now)
        ):
            timers.append(Timer(f"retry:{task_id}:{run.attempt}", run.not_before, "retry", payload))
    return timers
