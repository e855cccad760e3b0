"""Conditions, quality gates (four levels, failure actions) and control commands."""

from __future__ import annotations

from orch_support import WF, Run, graph, task

from taskloom.contracts.enums import TaskStateName, ValidationLevel, WorkflowStateName
from taskloom.contracts.graph import (
    Condition,
    QualityGate,
    TaskInputs,
    TaskOutputs,
    Threshold,
    ValidationCriteria,
)
from taskloom.contracts.messages import CancelWorkflow, PauseWorkflow, ResumeWorkflow
from taskloom.orchestrator.domain import Control, evaluate


def cond(**kw: object) -> Condition:
    return Condition.model_validate(kw)


# --- conditions ---------------------------------------------------------------------------


def test_condition_language() -> None:
    r = Run(graph(task("A")))
    r.complete("A", outputs={"coverage": {"percent": 72}, "tags": ["api"], "ok": True})
    tasks = r.state.tasks
    assert evaluate(cond(task="A", path="outputs.coverage.percent", op="lt", value=80), tasks)
    assert not evaluate(cond(task="A", path="outputs.coverage.percent", op="ge", value=80), tasks)
    assert evaluate(cond(task="A", path="tags", op="contains", value="api"), tasks)
    assert evaluate(cond(task="A", path="outputs.missing", op="falsy"), tasks)
    assert not evaluate(cond(task="A", path="outputs.missing", op="gt", value=1), tasks)
    assert not evaluate(cond(task="A", path="outputs.tags", op="gt", value=1), tasks)  # unlike types: false
    assert evaluate(cond(task="A", path="state", op="eq", value="completed"), tasks)
    both = cond(
        all_of=[
            {"task": "A", "path": "ok", "op": "truthy"},
            {"not": {"task": "A", "path": "ok", "op": "falsy"}},
        ]
    )
    assert evaluate(both, tasks)
    assert evaluate(
        cond(
            any_of=[{"task": "A", "path": "ok", "op": "falsy"}, {"task": "A", "path": "ok", "op": "exists"}]
        ),
        tasks,
    )


def test_false_condition_skips_the_task_and_dependants_follow_their_rule() -> None:
    g = graph(
        task("A"),
        task("fix", ["A"], condition=cond(task="A", path="outputs.failures", op="gt", value=0)),
        task("after_fix", ["fix"]),
        task("report", ["fix"], when_dependency_skipped="run"),
    )
    r = Run(g)
    d = r.complete("A", outputs={"failures": 0})
    assert [(e.type, e.task_id) for e in d.events if e.type == "TaskSkipped"] == [
        ("TaskSkipped", "fix"),
        ("TaskSkipped", "after_fix"),
    ]
    assert [a.task_id for a in d.assignments] == ["report"]
    r.complete("report")
    assert r.status == WorkflowStateName.COMPLETED
    result = r.state.result
    assert result is not None and result.success and result.completion_percentage == 100
    assert sorted(result.skipped_tasks) == ["after_fix", "fix"]


def test_true_condition_runs_the_task() -> None:
    g = graph(
        task("A"), task("fix", ["A"], condition=cond(task="A", path="outputs.failures", op="gt", value=0))
    )
    r = Run(g)
    d = r.complete("A", outputs={"failures": 3})
    assert [a.task_id for a in d.assignments] == ["fix"]


# --- quality gates ------------------------------------------------------------------------


def gated(level: ValidationLevel, actions: list[str], **spec: object) -> Run:
    g = graph(
        task("A", **spec),  # type: ignore[arg-type]
        task("B", ["A"], inputs=TaskInputs(required_context=["report"])),
        quality_gates=[
            QualityGate(gate_id="g", validation_tasks=["A"], level=level, failure_actions=actions)
        ],
    )
    return Run(g)


def test_passing_gate_releases_the_dependants() -> None:
    r = gated(ValidationLevel.OUTPUT, ["fail_workflow"], outputs=TaskOutputs(expected_artifacts=["report"]))
    d = r.complete("A", outputs={"report": "text"})
    assert [e.type for e in d.events][:2] == ["TaskCompleted", "QualityGatePassed"]
    assert [a.task_id for a in d.assignments] == ["B"]
    assert r.state.tasks["A"].validation_results["g"]["success"] is True


def test_failing_output_gate_retries_the_task_and_reconciles_the_outputs() -> None:
    r = gated(
        ValidationLevel.OUTPUT, ["retry", "fail_workflow"], outputs=TaskOutputs(expected_artifacts=["report"])
    )
    d = r.complete("A", outputs={"summary": "no report", "quality_score": 0.2})
    failed = next(e for e in d.events if e.type == "QualityGateFailed")
    assert failed.action == "retry" and failed.result.checks_failed == 1
    assert failed.result.issues[0]["check"] == "expected_artifact"
    assert "B" not in [a.task_id for a in r.sent]  # held back by the gate
    r.advance_to(r.now.replace(second=r.now.second + 2))
    assert r.current("A").attempt == 2
    d = r.complete("A", outputs={"summary": "with report", "report": "text", "quality_score": 0.9})
    types = [e.type for e in d.events]
    assert types[:4] == ["TaskCompleted", "ConflictDetected", "ConflictResolved", "QualityGatePassed"]
    detected = d.events[1]
    assert {c.conflict_type.value for c in detected.conflicts} == {"contradiction", "quality_disagreement"}
    assert r.state.tasks["A"].outputs["report"] == "text"
    assert [a.task_id for a in d.assignments] == ["B"]


def test_failing_gate_with_retries_spent_fails_the_workflow() -> None:
    r = gated(
        ValidationLevel.OUTPUT, ["retry", "fail_workflow"], outputs=TaskOutputs(expected_artifacts=["report"])
    )
    r.complete("A", outputs={})
    r.advance_to(r.now.replace(second=r.now.second + 2))
    d = r.complete("A", outputs={})
    assert next(e for e in d.events if e.type == "QualityGateFailed").action == "fail_workflow"
    assert r.status == WorkflowStateName.FAILED and "quality gate g failed" in (r.state.error or "")
    assert r.state.tasks["B"].state == TaskStateName.CANCELLED


def test_failing_gate_can_escalate_or_continue() -> None:
    r = gated(
        ValidationLevel.OUTPUT,
        ["escalate"],
        outputs=TaskOutputs(expected_artifacts=["report"]),
        backup_agents=["mcp-protocol"],
    )
    d = r.complete("A", outputs={})
    assert d.assignments[0].assigned_agent == "mcp-protocol"
    r2 = gated(
        ValidationLevel.OUTPUT, ["notify", "continue"], outputs=TaskOutputs(expected_artifacts=["report"])
    )
    d = r2.complete("A", outputs={})
    assert next(e for e in d.events if e.type == "QualityGateFailed").action == "continue"
    assert [a.task_id for a in d.assignments] == ["B"]
    assert r2.state.notifications and r2.state.notifications[0]["gate_id"] == "g"


def test_process_gate_checks_performance_thresholds() -> None:
    criteria = ValidationCriteria(
        performance_thresholds={"rt": Threshold(metric="response_ms", op="<", value=500)}
    )
    r = gated(ValidationLevel.PROCESS, ["continue"], validation_criteria=criteria)
    d = r.complete("A", outputs={"response_ms": 900}, metrics={"execution_time": 1.0})
    failed = next(e for e in d.events if e.type == "QualityGateFailed")
    assert [i["check"] for i in failed.result.issues] == ["performance_threshold"]
    r2 = gated(ValidationLevel.PROCESS, ["continue"], validation_criteria=criteria)
    d = r2.complete("A", outputs={"response_ms": 120}, metrics={"execution_time": 1.0})
    assert any(e.type == "QualityGatePassed" for e in d.events)


def test_input_and_integration_gates() -> None:
    g = graph(
        task("A", outputs=TaskOutputs(expected_artifacts=["schema"])),
        task("B", ["A"], inputs=TaskInputs(required_context=["schema", "project_path"])),
        task("C", ["B"]),
        quality_gates=[
            QualityGate(
                gate_id="integ",
                validation_tasks=["A"],
                level=ValidationLevel.INTEGRATION,
                failure_actions=["continue"],
            ),
            QualityGate(
                gate_id="inp",
                validation_tasks=["B"],
                level=ValidationLevel.INPUT,
                failure_actions=["continue"],
            ),
        ],
    )
    r = Run(g)
    d = r.complete("A", outputs={"other": 1})
    integ = next(e for e in d.events if e.type == "QualityGateFailed")
    assert integ.result.issues[0]["check"] == "downstream_compatibility"
    d = r.complete("B")
    inp = next(e for e in d.events if e.type == "QualityGateFailed")
    assert sorted(i["message"] for i in inp.result.issues) == [
        "required input 'project_path' available",
        "required input 'schema' available",
    ]


def test_workflow_end_gate_runs_before_completion() -> None:
    g = graph(
        task("A"),
        quality_gates=[
            QualityGate(
                gate_id="final",
                trigger_condition="workflow_end",
                level=ValidationLevel.OUTPUT,
                thresholds={"q": Threshold(metric="quality", op=">=", value=0.8)},
                failure_actions=["fail_workflow"],
            )
        ],
    )
    r = Run(g)
    d = r.complete("A", outputs={"quality": 0.95})
    assert [e.type for e in d.events][-2:] == ["QualityGatePassed", "WorkflowCompleted"]
    r2 = Run(g)
    r2.complete("A", outputs={"quality": 0.5})
    assert r2.status == WorkflowStateName.FAILED
    assert (
        r2.state.result is not None and r2.state.result.metadata["quality_gates"]["final"]["passed"] is False
    )


# --- control ------------------------------------------------------------------------------


def test_pause_dispatches_nothing_new_until_resumed() -> None:
    r = Run(graph(task("A"), task("B", ["A"])))
    r.apply(Control(PauseWorkflow(workflow_id=WF)))
    assert r.status == WorkflowStateName.PAUSED
    d = r.complete("A")  # the running task still reports
    assert d.assignments == [] and r.state.tasks["A"].state == TaskStateName.COMPLETED
    assert r.apply(Control(PauseWorkflow(workflow_id=WF))).events == []  # idempotent
    d = r.apply(Control(ResumeWorkflow(workflow_id=WF)))
    assert [e.type for e in d.events] == ["WorkflowResumed", "TaskAssigned"]
    assert r.apply(Control(ResumeWorkflow(workflow_id=WF))).events == []


def test_cancel_stops_running_tasks_and_is_idempotent() -> None:
    r = Run(graph(task("A"), task("B"), task("C", ["A"])))
    d = r.apply(Control(CancelWorkflow(workflow_id=WF, requested_by="bob", reason="no longer needed")))
    assert [e.type for e in d.events] == ["TaskCancelled"] * 3 + ["WorkflowCancelled"]
    assert sorted(d.cancel_signals) == ["A", "B"]
    assert r.status == WorkflowStateName.CANCELLED
    assert r.apply(Control(CancelWorkflow(workflow_id=WF))).events == []
    late = r.complete("A")  # a late completion changes nothing
    assert late.events == [] and r.state.tasks["A"].state == TaskStateName.CANCELLED
