"""Builders for the orchestrator's pure-core tests: graphs, progress updates, and a loop that
plays agents against the decider."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from taskloom.contracts.enums import ProgressStatus, WorkflowStateName
from taskloom.contracts.graph import RetryPolicy, TaskGraph, TaskSpec
from taskloom.contracts.messages import PerformanceMetrics, ProgressInfo, ProgressUpdate, TaskAssignment
from taskloom.orchestrator.domain import (
    Decision,
    Input,
    Limits,
    StartGraph,
    TimerFired,
    Workflow,
    decide,
    empty,
    fold,
    timers_for,
)

T0 = datetime(2030, 1, 1, tzinfo=UTC)
WF = "wf-1"


def task(task_id: str, deps: Iterable[str] = (), agent: str = "core-services", **kw: Any) -> TaskSpec:
    kw.setdefault("retry_policy", RetryPolicy(max_attempts=2, backoff_strategy="fixed", base_delay_seconds=1))
    kw.setdefault("timeout", 60)
    return TaskSpec(task_id=task_id, task_type="work", assigned_agent=agent, dependencies=list(deps), **kw)


def graph(*tasks: TaskSpec, **kw: Any) -> TaskGraph:
    return TaskGraph(request_id="r-1", tasks=list(tasks), **kw)


def feature_graph(**kw: Any) -> TaskGraph:
    """The seed's 8-task shape: A -> B,C,D -> E -> F,G -> H."""
    return graph(
        task("A"),
        task("B", ["A"]),
        task("C", ["A"]),
        task("D", ["A"]),
        task("E", ["B", "C", "D"]),
        task("F", ["E"]),
        task("G", ["E"]),
        task("H", ["F", "G"]),
        **kw,
    )


def update(
    a: TaskAssignment | tuple[str, int, str],
    status: ProgressStatus,
    *,
    outputs: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    retryable: bool = True,
    percentage: float = 0.0,
    message_id: str | None = None,
    at: datetime = T0,
) -> ProgressUpdate:
    if isinstance(a, TaskAssignment):
        task_id, attempt, agent = a.task_id, a.attempt, a.assigned_agent
    else:
        task_id, attempt, agent = a
    fields: dict[str, Any] = {}
    if message_id:
        fields["message_id"] = message_id
    return ProgressUpdate(
        workflow_id=WF,
        timestamp=at,
        task_id=task_id,
        agent_id=agent,
        status=status,
        attempt=attempt,
        progress=ProgressInfo(completion_percentage=percentage),
        outputs=outputs if status == ProgressStatus.COMPLETED else None,
        error_context={"message": "boom"} if status == ProgressStatus.FAILED else None,
        retryable=retryable,
        performance_metrics=PerformanceMetrics(**(metrics or {})),
        **fields,
    )


class Run:
    """A workflow driven through ``decide``; every decision's events are checked to fold to
    the decision's state (replay equals live)."""

    def __init__(self, g: TaskGraph, limits: Limits | None = None, admitted: bool = True) -> None:
        self.limits = limits or Limits()
        self.now = T0
        self.state: Workflow = empty(WF)
        self.events: list[Any] = []
        self.sent: list[TaskAssignment] = []
        self.signals: list[str] = []
        self.signal_attempts: list[tuple[str, int]] = []
        self.apply(StartGraph(g, "alice", None, admitted, "m-graph"))

    def apply(self, command: Input) -> Decision:
        d = decide(self.state, command, self.now, self.limits)
        assert fold(self.state, d.events) == d.state
        self.state = d.state
        self.events.extend(d.events)
        self.sent.extend(d.assignments)
        self.signals.extend(d.cancel_signals)
        self.signal_attempts.extend((t, d.cancel_attempts[t]) for t in d.cancel_signals)
        return d

    def types(self) -> list[str]:
        return [e.type for e in self.events]

    def outstanding(self) -> list[TaskAssignment]:
        """Assignments of the tasks' current attempts that are still active."""
        out = []
        for a in self.sent:
            run = self.state.tasks[a.task_id]
            if run.active and run.attempt == a.attempt:
                out.append(a)
        return out

    def complete(self, task_id: str, outputs: dict[str, Any] | None = None, **kw: Any) -> Decision:
        a = self.current(task_id)
        return self.apply(update(a, ProgressStatus.COMPLETED, outputs=outputs or {"done": task_id}, **kw))

    def fail(self, task_id: str, retryable: bool = True) -> Decision:
        return self.apply(update(self.current(task_id), ProgressStatus.FAILED, retryable=retryable))

    def current(self, task_id: str) -> TaskAssignment:
        return next(a for a in reversed(self.sent) if a.task_id == task_id)

    def advance_to(self, when: datetime) -> None:
        """Let time pass, firing every timer that falls due, in due order."""
        while True:
            timers = timers_for(self.state, self.limits, self.now)
            due = sorted((t for t in timers if t.due_at <= when), key=lambda t: t.due_at)
            if not due:
                break
            t = due[0]
            self.now = max(self.now, t.due_at)
            self.apply(TimerFired(t.timer_id, t.kind, t.payload))
        self.now = max(self.now, when)

    def drive(
        self, answer: Callable[[TaskAssignment], ProgressStatus] | None = None, limit: int = 500
    ) -> None:
        """Answer outstanding assignments (completing by default) until the workflow ends."""
        for _ in range(limit):
            if self.state.status.terminal:
                return
            pending = self.outstanding()
            if not pending:
                nxt = min((t.due_at for t in timers_for(self.state, self.limits, self.now)), default=None)
                if nxt is None:
                    return
                self.advance_to(nxt)
                continue
            a = pending[0]
            status = answer(a) if answer else ProgressStatus.COMPLETED
            self.now += timedelta(milliseconds=10)
            self.apply(update(a, status, outputs={"done": a.task_id}))

    @property
    def status(self) -> WorkflowStateName:
        return self.state.status


def essence(state: Workflow) -> dict[str, Any]:
    """The state without delivery bookkeeping (versions, remembered message ids, stale counts)."""
    data = state.model_dump(mode="json", exclude={"version", "updated_at", "stale_updates"})
    for t in data["tasks"].values():
        t.pop("recent_messages")
    if data["result"]:
        data["result"]["metadata"].pop("stale_updates")
    return data
