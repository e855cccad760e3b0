"""Quality gates and conditional tasks end to end: real NATS + PostgreSQL, the orchestrator in
this process and a scripted agent subprocess whose outputs come from each task's parameters."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from orch_helpers import event_types, events_of, submit_graph, terminal, wait_for

from taskloom.contracts.enums import TaskStateName, WorkflowStateName
from taskloom.contracts.graph import (
    Condition,
    QualityGate,
    RetryPolicy,
    TaskGraph,
    TaskInputs,
    TaskSpec,
    Threshold,
)
from taskloom.orchestrator import queries

COVERAGE = Threshold(metric="coverage", op=">=", value=80)
FAST_RETRY = RetryPolicy(max_attempts=2, backoff_strategy="fixed", base_delay_seconds=0.1)


def spec(
    task_id: str, deps: list[str] | None = None, params: dict[str, Any] | None = None, **kw: Any
) -> TaskSpec:
    kw.setdefault("timeout", 20)
    return TaskSpec(
        task_id=task_id,
        task_type="work",
        assigned_agent="core-services",
        dependencies=deps or [],
        inputs=TaskInputs(input_parameters=params or {}),
        **kw,
    )


def gated(emit_by_attempt: list[dict[str, Any]]) -> TaskGraph:
    """build → deploy, with a gate on build's coverage that retries, then fails the workflow."""
    return TaskGraph(
        request_id="r",
        tasks=[
            spec("build", params={"emit_by_attempt": emit_by_attempt}, retry_policy=FAST_RETRY),
            spec("deploy", ["build"]),
        ],
        quality_gates=[
            QualityGate(
                gate_id="coverage",
                validation_tasks=["build"],
                thresholds={"coverage": COVERAGE},
                failure_actions=["retry", "fail_workflow"],
            )
        ],
    )


def lenient() -> TaskGraph:
    """Two failing gates that let the workflow go on: one notifies, one continues."""
    return TaskGraph(
        request_id="r",
        tasks=[
            spec("lint", params={"emit": {"coverage": 40}}, retry_policy=FAST_RETRY),
            spec("docs", ["lint"], params={"emit": {"coverage": 10}}),
            spec("ship", ["docs"]),
        ],
        quality_gates=[
            QualityGate(
                gate_id="lint_gate",
                validation_tasks=["lint"],
                thresholds={"coverage": COVERAGE},
                failure_actions=["notify"],
            ),
            QualityGate(
                gate_id="docs_gate",
                validation_tasks=["docs"],
                thresholds={"coverage": COVERAGE},
                failure_actions=["continue"],
            ),
        ],
    )


async def test_quality_gate_failure_retries_then_fails_or_passes_or_lets_finish(
    orchestrator, bus, store, agents
) -> None:
    agents("core-services", "complete")
    doomed, healed, notified = (str(uuid.uuid4()) for _ in range(3))
    await submit_graph(bus, doomed, gated([{"coverage": 50}]))
    await submit_graph(bus, healed, gated([{"coverage": 50}, {"coverage": 95}]))
    await submit_graph(bus, notified, lenient())
    states = await asyncio.gather(*(wait_for(store, wf, terminal) for wf in (doomed, healed, notified)))
    doomed_state, healed_state, notified_state = states

    # coverage stays at 50: the gate retries build once, then fails the workflow
    assert doomed_state.current_state == WorkflowStateName.FAILED
    assert "quality gate coverage failed" in (doomed_state.error or "")
    failed = await events_of(store, doomed, "QualityGateFailed")
    assert [e["action"] for e in failed] == ["retry", "fail_workflow"]
    assert all(e["result"]["issues"][0]["task_id"] == "build" for e in failed)
    tasks = {t.task_id: t for t in doomed_state.task_states}
    assert tasks["build"].attempts == 2
    assert tasks["build"].validation_results["coverage"]["success"] is False
    assert tasks["deploy"].state == TaskStateName.CANCELLED
    assigned = [e["task_id"] for e in await events_of(store, doomed, "TaskAssigned")]
    assert assigned == ["build", "build"]  # deploy was never released by the gate
    assert doomed_state.quality_metrics["gates"]["coverage"] == {
        "passed": False,
        "action": "fail_workflow",
        "runs": 2,
    }
    result = await queries.get_result(store, doomed)
    assert result is not None and not result.success
    assert result.metadata["error_recovery"]["quality_gate_failures"] == 2

    # the retried build reaches 95: the gate passes on its second run and deploy follows
    assert healed_state.current_state == WorkflowStateName.COMPLETED
    types = await event_types(store, healed)
    assert types.count("QualityGateFailed") == 1 and types.count("QualityGatePassed") == 1
    assert types.index("TaskRetryScheduled") < types.index("QualityGatePassed")
    tasks = {t.task_id: t for t in healed_state.task_states}
    assert tasks["build"].outputs["coverage"] == 95 and tasks["build"].attempts == 2
    assert tasks["build"].validation_results["coverage"]["gate_passed"] is True
    assert tasks["deploy"].state == TaskStateName.COMPLETED
    assert types.index("QualityGatePassed") < max(
        i for i, t in enumerate(types) if t == "TaskAssigned"
    )  # deploy was assigned only after the gate let build through

    # notify / continue: both gates fail, nothing is retried, and the workflow still finishes
    assert notified_state.current_state == WorkflowStateName.COMPLETED
    failed = await events_of(store, notified, "QualityGateFailed")
    assert sorted((e["gate_id"], e["action"]) for e in failed) == [
        ("docs_gate", "continue"),
        ("lint_gate", "notify"),
    ]
    types = await event_types(store, notified)
    assert "TaskRetryScheduled" not in types and types.count("TaskCompleted") == 3
    tasks = {t.task_id: t for t in notified_state.task_states}
    assert all(t.state == TaskStateName.COMPLETED and t.attempts == 1 for t in tasks.values())
    assert tasks["lint"].validation_results["lint_gate"]["issues"][0]["check"] == "gate_threshold"
    result = await queries.get_result(store, notified)
    assert result is not None
    assert result.metadata["notifications"] == [{"gate_id": "lint_gate", "action": "notify", "issues": 1}]
    assert result.metadata["quality_gates"]["docs_gate"]["passed"] is False
    for wf, state in zip((doomed, healed, notified), states, strict=True):
        assert (await queries.state_at(store, wf)).model_dump() == state.model_dump()


def branching(deploy: bool) -> TaskGraph:
    """probe → deploy (if probe says so) → announce (skips with it) / report (runs anyway);
    mitigate runs when the probe's risk is above 5."""
    deploy_if = Condition(task="probe", path="outputs.deploy", op="truthy")
    risky = Condition(task="probe", path="outputs.risk", op="gt", value=5)
    return TaskGraph(
        request_id="r",
        tasks=[
            spec("probe", params={"emit": {"deploy": deploy, "risk": 7}}),
            spec("deploy", ["probe"], condition=deploy_if),
            spec("announce", ["deploy"]),
            spec("report", ["deploy"], when_dependency_skipped="run"),
            spec("mitigate", ["probe"], condition=risky),
        ],
    )


async def test_conditional_task_is_skipped_or_runs_by_upstream_output(
    orchestrator, bus, store, agents
) -> None:
    agents("core-services", "complete")
    skipping, running = str(uuid.uuid4()), str(uuid.uuid4())
    await submit_graph(bus, skipping, branching(deploy=False))
    await submit_graph(bus, running, branching(deploy=True))
    skipped_state = await wait_for(store, skipping, terminal)
    ran_state = await wait_for(store, running, terminal)

    assert skipped_state.current_state == WorkflowStateName.COMPLETED
    tasks = {t.task_id: t.state for t in skipped_state.task_states}
    assert tasks == {
        "probe": TaskStateName.COMPLETED,
        "deploy": TaskStateName.SKIPPED,
        "announce": TaskStateName.SKIPPED,
        "report": TaskStateName.COMPLETED,
        "mitigate": TaskStateName.COMPLETED,
    }
    skips = {e["task_id"]: e["reason"] for e in await events_of(store, skipping, "TaskSkipped")}
    assert skips == {"deploy": "condition false", "announce": "dependency deploy was skipped"}
    assigned = {e["task_id"] for e in await events_of(store, skipping, "TaskAssigned")}
    assert assigned == {"probe", "report", "mitigate"}
    result = await queries.get_result(store, skipping)
    assert result is not None and sorted(result.skipped_tasks) == ["announce", "deploy"]
    assert result.completion_percentage == 100

    assert ran_state.current_state == WorkflowStateName.COMPLETED
    assert all(t.state == TaskStateName.COMPLETED for t in ran_state.task_states)
    assert "TaskSkipped" not in await event_types(store, running)
    for wf, state in ((skipping, skipped_state), (running, ran_state)):
        assert (await queries.state_at(store, wf)).model_dump() == state.model_dump()
