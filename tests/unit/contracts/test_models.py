"""Every seed schema round-trips; bounds and unknown fields are rejected with readable errors."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from taskloom.contracts import (
    AgentCollaborationRequest,
    AgentRegistration,
    CancelWorkflow,
    ComplexRequest,
    Condition,
    GraphConstructed,
    GraphRejected,
    ProgressUpdate,
    QualityGate,
    StatusEvent,
    SubmitWorkflow,
    TaskAssignment,
    TaskGraph,
    TaskResult,
    TaskSpec,
    Threshold,
    ValidationResult,
    WorkflowResult,
    WorkflowState,
    WorkflowSubmissionRequest,
    WorkflowSubmissionResponse,
    parse_event,
    parse_message,
)
from taskloom.contracts.events import TaskCompleted, WorkflowStarted
from taskloom.contracts.samples import SEED_PARALLEL_ANALYSIS_REQUEST, seed_request
from taskloom.contracts.samples import SEED_SAMPLE_REQUEST as SEED_SAMPLE

SEED_SAMPLE_REQUEST: dict[str, Any] = seed_request(SEED_SAMPLE)
SEED_PARALLEL_REQUEST: dict[str, Any] = seed_request(SEED_PARALLEL_ANALYSIS_REQUEST)


def _graph() -> TaskGraph:
    return TaskGraph(
        request_id="r-1",
        estimated_duration=30,
        tasks=[
            TaskSpec(
                task_id="a", task_type="requirements_analysis", assigned_agent="product-manager", priority=8
            ),
            TaskSpec(
                task_id="b",
                task_type="test_execution",
                assigned_agent="testing-specialist",
                dependencies=["a"],
                condition=Condition.model_validate({"task": "a", "path": "outputs.stories", "op": "exists"}),
                validation_criteria={  # type: ignore[arg-type]
                    "performance_thresholds": {
                        "latency": {"metric": "response_time_ms", "op": "<", "value": 500, "unit": "ms"}
                    }
                },
            ),
        ],
        quality_gates=[QualityGate(gate_id="g1", validation_tasks=["b"])],
    )


def _samples() -> list[BaseModel]:
    graph = _graph()
    request = ComplexRequest.model_validate(SEED_SAMPLE_REQUEST)
    return [
        request,
        ComplexRequest.model_validate(SEED_PARALLEL_REQUEST),
        graph,
        WorkflowState(workflow_id="w", graph_id=graph.graph_id, task_states=[{"task_id": "a"}]),  # type: ignore[list-item]
        WorkflowResult(
            workflow_id="w",
            success=False,
            completion_percentage=50,
            failed_tasks=["b"],
            partial_success=True,
            metadata={"error_recovery": {"attempts": 3}},
        ),
        TaskAssignment(
            workflow_id="w",
            task_id="a",
            assigned_agent="product-manager",
            attempt=2,
            task_details={"task_type": "user_stories", "priority": 5, "estimated_duration": 3, "timeout": 60},  # type: ignore[arg-type]
        ),
        ProgressUpdate(
            workflow_id="w",
            task_id="a",
            agent_id="product-manager",
            status="in_progress",  # type: ignore[arg-type]
            progress={"completion_percentage": 40, "current_phase": "drafting"},  # type: ignore[arg-type]
            issues=[{"issue_type": "warning", "description": "slow disk"}],  # type: ignore[list-item]
        ),
        SubmitWorkflow(workflow_id="w", owner="alice", request=request),
        CancelWorkflow(workflow_id="w", requested_by="alice"),
        GraphConstructed(workflow_id="w", owner="alice", request=request, graph=graph),
        GraphRejected(
            workflow_id="w", owner="alice", reason="no agent can do 'x'", missing_capabilities=["x"]
        ),
        AgentCollaborationRequest(requesting_agent="a", target_agents=["b"], collaboration_type="review"),  # type: ignore[arg-type]
        WorkflowSubmissionRequest.model_validate(
            {
                "request": {
                    "type": "system_analysis",
                    "requirements": {"functional": ["x"]},
                    "complexity": 3,
                    "strategy": "fast",
                },
                "webhook_events": ["completion"],
            }
        ),
        WorkflowSubmissionResponse(
            workflow_id="w",
            estimated_duration=5,
            task_count=2,
            assigned_agents=["x"],
            status_endpoint="/api/v1/workflows/w",
            websocket_endpoint="/ws/workflows/w",
        ),
        StatusEvent(event_type="status_change", workflow_id="w", data={"current_status": "running"}),  # type: ignore[arg-type]
        TaskResult(success=True, outputs={"k": 1}),
        ValidationResult(success=True, level="output", validator_id="v", checks_passed=3, checks_failed=0),  # type: ignore[arg-type]
        AgentRegistration(agent_id="core-services", instance_id="i1", capacity=2, load=1),
        WorkflowStarted(workflow_id="w", graph=graph),
        TaskCompleted(workflow_id="w", task_id="a", agent="x", attempt=1, outputs={"n": 2}),
    ]


@pytest.mark.parametrize("model", _samples(), ids=lambda m: type(m).__name__)
def test_round_trip(model: BaseModel) -> None:
    again = type(model).model_validate_json(model.model_dump_json())
    assert again == model
    assert json.loads(again.model_dump_json()) == json.loads(model.model_dump_json())


def test_every_message_has_the_envelope() -> None:
    for model in _samples():
        if hasattr(model, "message_type"):
            data = json.loads(model.model_dump_json())
            assert {"message_type", "message_id", "timestamp", "workflow_id", "schema_version"} <= data.keys()
            assert parse_message(model.model_dump_json()) == model


def test_events_parse_by_type() -> None:
    event = TaskCompleted(workflow_id="w", task_id="a", agent="x", attempt=1)
    assert parse_event(event.model_dump(mode="json")) == event
    with pytest.raises(ValidationError, match="does not match any of the expected tags"):
        parse_event({"type": "NoSuchEvent", "workflow_id": "w"})


def test_seed_sample_request_keeps_its_context() -> None:
    request = ComplexRequest.model_validate(SEED_SAMPLE_REQUEST)
    assert request.context.project_path == "/test/project"
    assert request.requirements.non_functional[0] == "Response time < 500ms"
    assert ComplexRequest.model_validate({**SEED_SAMPLE_REQUEST, "request_type": "auto"}).request_type is None


def _error(exc: pytest.ExceptionInfo[ValidationError]) -> str:
    return str(exc.value)


@pytest.mark.parametrize(
    ("model", "data", "needle"),
    [
        (ComplexRequest, {**SEED_SAMPLE_REQUEST, "complexity_level": 11}, "less than or equal to 10"),
        (ComplexRequest, {**SEED_SAMPLE_REQUEST, "complexity_level": 0}, "greater than or equal to 1"),
        (
            ComplexRequest,
            {**SEED_SAMPLE_REQUEST, "priority": "whenever"},
            "'low', 'medium', 'high' or 'urgent'",
        ),
        (ComplexRequest, {**SEED_SAMPLE_REQUEST, "request_type": "party"}, "feature_development"),
        (TaskSpec, {"task_type": "x", "assigned_agent": "y", "priority": 11}, "less than or equal to 10"),
        (TaskSpec, {"task_type": "x", "assigned_agent": "y", "priority": 0}, "greater than or equal to 1"),
        (TaskSpec, {"task_type": "x", "assigned_agent": "y", "timeout": 0}, "greater than 0"),
        (
            TaskSpec,
            {"task_id": "a", "task_type": "x", "assigned_agent": "y", "dependencies": ["a"]},
            "depends on itself",
        ),
        (
            ProgressUpdate,
            {
                "workflow_id": "w",
                "task_id": "t",
                "agent_id": "a",
                "status": "in_progress",
                "progress": {"completion_percentage": 101},
            },
            "less than or equal to 100",
        ),
        (
            ProgressUpdate,
            {
                "workflow_id": "w",
                "task_id": "t",
                "agent_id": "a",
                "status": "in_progress",
                "progress": {"completion_percentage": -1},
            },
            "greater than or equal to 0",
        ),
        (
            TaskAssignment,
            {
                "workflow_id": "w",
                "task_id": "t",
                "assigned_agent": "a",
                "task_details": {"task_type": "x", "priority": 5, "estimated_duration": 1, "timeout": -5},
            },
            "greater than 0",
        ),
        (Condition, {"task": "a", "path": "outputs.x"}, "exactly one of"),
        (Condition, {"op": "eq", "value": 1}, "needs 'task' and 'path'"),
        (QualityGate, {"gate_id": "g", "trigger_condition": "sometimes"}, "trigger_condition must be one of"),
        (QualityGate, {"gate_id": "g", "failure_actions": ["explode"]}, "unknown failure_actions"),
        (Threshold, {"metric": "x", "op": "~", "value": 1}, "Input should be"),
    ],
)
def test_bounds_are_enforced(model: type[BaseModel], data: dict[str, Any], needle: str) -> None:
    with pytest.raises(ValidationError) as exc:
        model.model_validate(data)
    assert needle in _error(exc)


def test_graph_references_are_checked() -> None:
    with pytest.raises(ValidationError, match=r"depends on unknown tasks \['zz'\]"):
        TaskGraph(
            request_id="r",
            tasks=[TaskSpec(task_id="a", task_type="x", assigned_agent="y", dependencies=["zz"])],
        )
    with pytest.raises(ValidationError, match="duplicate task ids"):
        TaskGraph(request_id="r", tasks=[TaskSpec(task_id="a", task_type="x", assigned_agent="y")] * 2)
    with pytest.raises(ValidationError, match="quality gate g names unknown tasks"):
        TaskGraph(
            request_id="r",
            tasks=[TaskSpec(task_id="a", task_type="x", assigned_agent="y")],
            quality_gates=[QualityGate(gate_id="g", validation_tasks=["nope"])],
        )


@pytest.mark.parametrize("model", _samples(), ids=lambda m: type(m).__name__)
def test_unknown_fields_are_rejected(model: BaseModel) -> None:
    data = json.loads(model.model_dump_json())
    data["surprise_field"] = 1
    with pytest.raises(ValidationError) as exc:
        type(model).model_validate(data)
    assert "surprise_field" in _error(exc) and "Extra inputs are not permitted" in _error(exc)


def test_unknown_nested_fields_are_rejected() -> None:
    bad = {**SEED_SAMPLE_REQUEST, "requirements": {"functional": ["x"], "nonfunctional": ["typo"]}}
    with pytest.raises(ValidationError, match="requirements.nonfunctional"):
        ComplexRequest.model_validate(bad)


def test_malformed_bus_message_reports_the_reason() -> None:
    with pytest.raises(ValidationError, match="message_type"):
        parse_message(b'{"message_type": "gossip", "workflow_id": "w"}')
    with pytest.raises(ValidationError, match="Invalid JSON"):
        parse_message(b"{not json")


def test_threshold_holds() -> None:
    t = Threshold(metric="response_time_ms", op="<", value=500)
    assert t.holds(499) and not t.holds(500)
