"""Dispatch order, concurrency limits, strategies, admission and queueing."""

from __future__ import annotations

from datetime import timedelta

from orch_support import T0, Run, feature_graph, graph, task

from taskloom.contracts.enums import ExecutionStrategyType, Priority, WorkflowStateName
from taskloom.contracts.graph import ExecutionStrategy
from taskloom.orchestrator.domain import Admit, Limits, RejectGraph, WorkflowSummary, admit


def test_only_tasks_without_dependencies_start_first() -> None:
    r = Run(feature_graph())
    assert [a.task_id for a in r.sent] == ["A"]
    assert r.status == WorkflowStateName.RUNNING
    assert r.types()[:2] == ["WorkflowStarted", "TaskAssigned"]


def test_dependants_start_together_once_their_dependency_completes() -> None:
    r = Run(feature_graph())
    d = r.complete("A")
    assert sorted(a.task_id for a in d.assignments) == ["B", "C", "D"]
    assert all(a.attempt == 1 for a in d.assignments)
    # the join waits for all three
    r.complete("B")
    r.complete("C")
    assert "E" not in [a.task_id for a in r.sent]
    d = r.complete("D")
    assert [a.task_id for a in d.assignments] == ["E"]


def test_assignment_carries_upstream_outputs_and_attempt() -> None:
    r = Run(feature_graph())
    d = r.complete("A", outputs={"plan": "x"})
    b = next(a for a in d.assignments if a.task_id == "B")
    assert b.inputs.dependencies[0]["task_id"] == "A"
    assert b.inputs.dependencies[0]["outputs"] == {"plan": "x"}
    assert b.message_id == "wf-1:B:1"
    assert b.deadline == T0 + timedelta(seconds=60)


def test_per_workflow_concurrency_limit_is_respected() -> None:
    r = Run(feature_graph(), limits=Limits(max_concurrent_tasks_per_workflow=2))
    d = r.complete("A")
    assert len(d.assignments) == 2
    d = r.complete(d.assignments[0].task_id)
    assert len(d.assignments) == 1


def test_sequential_strategy_runs_one_task_at_a_time() -> None:
    g = feature_graph(execution_strategy=ExecutionStrategy(type=ExecutionStrategyType.SEQUENTIAL))
    r = Run(g)
    d = r.complete("A")
    assert len(d.assignments) == 1
    r.drive()
    assert r.status == WorkflowStateName.COMPLETED


def test_critical_path_then_priority_decides_the_order() -> None:
    g = graph(
        task("A"),
        task("low", ["A"], priority=2),
        task("high", ["A"], priority=9),
        task("crit", ["A"], priority=1),
        execution_strategy=ExecutionStrategy(critical_path=["A", "crit"]),
    )
    r = Run(g, limits=Limits(max_concurrent_tasks_per_workflow=1))
    order = []
    for _ in range(3):
        d = r.complete(r.outstanding()[0].task_id)
        order.extend(a.task_id for a in d.assignments)
    assert order == ["crit", "high", "low"]


def test_a_task_that_is_not_parallel_safe_runs_alone() -> None:
    g = graph(task("A"), task("solo", parallel_safe=False), task("C"))
    r = Run(g)
    assert [a.task_id for a in r.sent] == ["A"]  # solo waits for the running task, C waits behind solo
    d = r.complete("A")
    assert [a.task_id for a in d.assignments] == ["solo"]
    d = r.complete("solo")
    assert [a.task_id for a in d.assignments] == ["C"]


def test_a_workflow_without_a_free_slot_is_queued_then_admitted() -> None:
    r = Run(feature_graph(), admitted=False)
    assert r.types() == ["WorkflowQueued"]
    assert r.state.queued and r.status == WorkflowStateName.PENDING and not r.sent
    r.apply(Admit())
    assert r.types()[-2:] == ["WorkflowStarted", "TaskAssigned"]
    r.apply(Admit())  # idempotent
    assert r.types().count("WorkflowStarted") == 1


def test_a_graph_arriving_twice_starts_once() -> None:
    from taskloom.orchestrator.domain import StartGraph

    r = Run(feature_graph())
    d = r.apply(StartGraph(feature_graph(), "alice", None, True, "m-graph"))
    assert d.events == [] and d.assignments == []


def test_rejected_graph_fails_the_workflow() -> None:
    from taskloom.orchestrator.domain import decide, empty

    d = decide(empty("wf-9"), RejectGraph("no agent can do x", ("x",), "m"), T0)
    assert [e.type for e in d.events] == ["WorkflowRejected"]
    assert d.state.status == WorkflowStateName.FAILED and d.state.error == "no agent can do x"


def test_admission_takes_the_highest_priority_first_within_the_limit() -> None:
    def s(i: str, running: bool = False, queued: bool = False, p: Priority = Priority.MEDIUM, age: int = 0):
        return WorkflowSummary(i, running, queued, p, T0 + timedelta(seconds=age))

    summaries = [
        s("r1", running=True),
        s("q-low", queued=True, p=Priority.LOW, age=0),
        s("q-urgent", queued=True, p=Priority.URGENT, age=5),
        s("q-med-old", queued=True, age=1),
        s("q-med-new", queued=True, age=2),
    ]
    assert admit(summaries, Limits(max_concurrent_workflows=4)) == ["q-urgent", "q-med-old", "q-med-new"]
    assert admit(summaries, Limits(max_concurrent_workflows=1)) == []
