"""Retries with backoff, escalation, final failure with partial success, timeouts, stale and
duplicate updates."""

from __future__ import annotations

from datetime import timedelta

from orch_support import Run, essence, graph, task, update

from taskloom.contracts.enums import BackoffStrategy, ProgressStatus, TaskStateName, WorkflowStateName
from taskloom.contracts.graph import RetryPolicy
from taskloom.orchestrator.domain import Limits, TimerFired, backoff_delay, timers_for


def test_failed_attempt_is_retried_after_its_backoff() -> None:
    r = Run(
        graph(
            task(
                "A", retry_policy=RetryPolicy(max_attempts=3, backoff_strategy="fixed", base_delay_seconds=5)
            )
        )
    )
    d = r.fail("A")
    assert [e.type for e in d.events] == ["TaskFailed", "TaskRetryScheduled"]
    retry = d.events[1]
    assert retry.delay_seconds == 5 and retry.next_attempt == 2
    assert d.assignments == []  # not before the delay
    timer = next(t for t in timers_for(r.state, r.limits) if t.kind == "retry")
    r.now = retry.due_at - timedelta(seconds=1)
    assert r.apply(TimerFired(timer.timer_id, timer.kind, timer.payload)).assignments == []
    r.now = retry.due_at
    d = r.apply(TimerFired(timer.timer_id, timer.kind, timer.payload))
    assert [(a.task_id, a.attempt) for a in d.assignments] == [("A", 2)]


def test_attempts_spent_escalate_to_the_backup_agent_then_fail_finally() -> None:
    g = graph(
        task("A", backup_agents=["mcp-protocol"]),
        task("B", ["A"]),
        task("C"),
    )
    r = Run(g)
    r.complete("C")
    r.fail("A")
    r.advance_to(r.now + timedelta(seconds=2))
    assert r.current("A").attempt == 2 and r.current("A").assigned_agent == "core-services"
    d = r.fail("A")
    assert [e.type for e in d.events][:2] == ["TaskFailed", "TaskReassigned"]
    assert (r.current("A").attempt, r.current("A").assigned_agent) == (3, "mcp-protocol")
    r.fail("A")
    r.advance_to(r.now + timedelta(seconds=2))
    d = r.fail("A")
    final = [e for e in d.events if e.type == "TaskFailed"][-1]
    assert final.final is True
    assert r.state.tasks["B"].state == TaskStateName.SKIPPED  # its dependency failed
    assert r.status == WorkflowStateName.FAILED
    result = r.state.result
    assert result is not None
    assert result.partial_success is True and result.failed_tasks == ["A"] and result.completed_tasks == ["C"]
    recovery = result.metadata["error_recovery"]
    assert recovery["reassignments"] == 1 and recovery["retries"] == 2 and recovery["failed_attempts"] == 4


def test_a_non_retryable_failure_escalates_at_once() -> None:
    r = Run(graph(task("A", retry_policy=RetryPolicy(failure_escalation=["testing-specialist"]))))
    d = r.fail("A", retryable=False)
    assert [e.type for e in d.events] == ["TaskFailed", "TaskReassigned", "TaskAssigned"]
    assert d.assignments[0].assigned_agent == "testing-specialist"


def test_success_criteria_below_100_lets_a_workflow_with_failures_complete_partially() -> None:
    from taskloom.contracts.graph import SuccessCriteria

    g = graph(
        task("A", retry_policy=RetryPolicy(max_attempts=1)),
        task("B"),
        success_criteria=SuccessCriteria(completion_percentage=50),
    )
    r = Run(g)
    r.complete("B")
    r.fail("A")
    assert r.status == WorkflowStateName.FAILED  # a failed task is never a completed workflow
    assert r.state.result is not None and r.state.result.partial_success


def test_backoff_strategies() -> None:
    fixed = RetryPolicy(backoff_strategy=BackoffStrategy.FIXED, base_delay_seconds=2)
    exp = RetryPolicy(
        backoff_strategy=BackoffStrategy.EXPONENTIAL, base_delay_seconds=2, max_delay_seconds=10
    )
    jit = RetryPolicy(backoff_strategy=BackoffStrategy.EXPONENTIAL_JITTER, base_delay_seconds=2)
    assert [backoff_delay(fixed, n, "t", n + 1) for n in (1, 2, 3)] == [2, 2, 2]
    assert [backoff_delay(exp, n, "t", n + 1) for n in (1, 2, 3, 4)] == [2, 4, 8, 10]
    delays = [backoff_delay(jit, 3, f"t{i}", 4) for i in range(20)]
    assert all(4 <= d <= 8 for d in delays) and len(set(delays)) > 10
    assert backoff_delay(jit, 3, "t1", 4) == backoff_delay(jit, 3, "t1", 4)  # replay gives the same delay


def test_an_update_from_an_older_attempt_is_recorded_and_changes_nothing() -> None:
    r = Run(graph(task("A")))
    old = r.current("A")
    r.fail("A")
    before = r.state
    d = r.apply(update(old, ProgressStatus.COMPLETED, outputs={"x": 1}))
    assert [e.type for e in d.events] == ["StaleUpdateRecorded"]
    assert essence(d.state) == essence(before)
    assert d.state.stale_updates == 1


def test_an_exact_redelivery_is_dropped() -> None:
    r = Run(graph(task("A"), task("B", ["A"])))
    u = update(r.current("A"), ProgressStatus.STARTED, message_id="m-1")
    assert [e.type for e in r.apply(u).events] == ["TaskStarted"]
    assert r.apply(u).events == []
    done = update(r.current("A"), ProgressStatus.COMPLETED, outputs={"k": 1}, message_id="m-2")
    r.apply(done)
    assert r.apply(done).events == []
    assert r.types().count("TaskCompleted") == 1


def test_an_assignment_nobody_starts_is_reissued_by_its_deadline() -> None:
    r = Run(graph(task("A", timeout=30)), limits=Limits(reissue_limit=2))
    r.advance_to(r.now + timedelta(seconds=30))
    assert ["TaskTimedOut", "TaskAssigned"] == r.types()[-2:]
    a = r.current("A")
    assert a.attempt == 2 and r.state.tasks["A"].agent_attempts == 1  # a re-send costs no retry
    # the stop signal names the silent attempt, so the agent that gets attempt 2 keeps running it
    assert r.signal_attempts == [("A", 1)]
    r.advance_to(r.now + timedelta(seconds=30))
    r.advance_to(r.now + timedelta(seconds=30))  # third silence: re-sends are spent, a retry is due
    kinds = [e.reason for e in r.events if e.type == "TaskTimedOut"]
    assert kinds == ["not_started"] * 3
    assert "TaskRetryScheduled" in r.types()


def test_a_silent_running_agent_times_out_by_heartbeat() -> None:
    r = Run(graph(task("A", heartbeat_timeout=5, timeout=600)))
    r.apply(update(r.current("A"), ProgressStatus.STARTED))
    r.now += timedelta(seconds=4)
    r.apply(update(r.current("A"), ProgressStatus.IN_PROGRESS, percentage=40))
    r.advance_to(r.now + timedelta(seconds=4))  # the update pushed the heartbeat deadline on
    assert "TaskTimedOut" not in r.types()
    r.advance_to(r.now + timedelta(seconds=2))
    timed_out = [e for e in r.events if e.type == "TaskTimedOut"]
    assert [t.reason for t in timed_out] == ["heartbeat"]
    assert "A" in r.signals  # the presumed-dead agent is told to stop
    assert r.types()[-2:] == ["TaskRetryScheduled", "TaskAssigned"]  # retried after its 1 s backoff
    assert r.current("A").attempt == 2


def test_a_running_task_past_its_deadline_times_out() -> None:
    r = Run(graph(task("A", timeout=10, heartbeat_timeout=100)))
    r.apply(update(r.current("A"), ProgressStatus.STARTED))
    r.advance_to(r.now + timedelta(seconds=10))
    assert [e.reason for e in r.events if e.type == "TaskTimedOut"] == ["deadline"]


def test_progress_is_folded_into_the_task_state() -> None:
    r = Run(graph(task("A")))
    r.apply(update(r.current("A"), ProgressStatus.STARTED))
    r.apply(update(r.current("A"), ProgressStatus.IN_PROGRESS, percentage=70))
    r.apply(update(r.current("A"), ProgressStatus.IN_PROGRESS, percentage=30))
    run = r.state.tasks["A"]
    assert run.state == TaskStateName.RUNNING and run.completion_percentage == 70
    r.complete("A", outputs={"report": "ok"}, metrics={"execution_time": 1.5})
    run = r.state.tasks["A"]
    assert run.outputs == {"report": "ok"} and run.performance_metrics["execution_time"] == 1.5


def test_workflow_timeout_fails_it_and_stops_its_tasks() -> None:
    r = Run(
        graph(task("A", timeout=10_000, heartbeat_timeout=10_000)),
        limits=Limits(workflow_timeout_seconds=100),
    )
    r.advance_to(r.now + timedelta(seconds=100))
    assert r.status == WorkflowStateName.FAILED and r.state.error == "workflow timed out"
    assert r.state.tasks["A"].state == TaskStateName.CANCELLED and "A" in r.signals
