"""Whole-pipeline construction on the seed's samples, for every request type and preference."""

from __future__ import annotations

import networkx as nx
import pytest

from taskloom.constructor.domain.assignment import pool_from_catalog
from taskloom.constructor.domain.construct import Defaults, construct
from taskloom.contracts.catalog import BUILTIN_CATALOG
from taskloom.contracts.enums import ExecutionStrategyType
from taskloom.contracts.graph import TaskGraph

from .samples import PARALLEL_ANALYSIS_REQUEST, REQUEST_TYPES, SAMPLE_COMPLEX_REQUEST, request

POOL = pool_from_catalog()


def check_valid(graph: TaskGraph) -> None:
    ids = {t.task_id for t in graph.tasks}
    g = nx.DiGraph()
    g.add_nodes_from(ids)
    g.add_edges_from((d, t.task_id) for t in graph.tasks for d in t.dependencies)
    assert nx.is_directed_acyclic_graph(g)
    for t in graph.tasks:
        assert t.task_type in BUILTIN_CATALOG[t.assigned_agent].task_types
        assert set(t.dependencies) <= ids
        assert t.retry_policy.failure_escalation == t.backup_agents
        assert 0 < t.confidence_score <= 1
    for gate in graph.quality_gates:
        assert set(gate.validation_tasks) <= ids
    groups = graph.execution_strategy.parallelization_groups
    assert sorted(t for gr in groups for t in gr) == sorted(ids)
    # a group never holds a task together with one of its dependencies
    for gr in groups:
        for t in gr:
            assert not set(graph.task(t).dependencies) & set(gr)
    # the JSON on the wire round-trips
    assert TaskGraph.model_validate_json(graph.model_dump_json()) == graph


@pytest.mark.parametrize("request_type", REQUEST_TYPES)
@pytest.mark.parametrize("preference", ["fast", "balanced", "thorough"])
def test_every_type_and_preference_gives_a_valid_graph_for_the_seed_sample(
    request_type: str, preference: str
) -> None:
    req = request(SAMPLE_COMPLEX_REQUEST, request_type=request_type, preference=preference)
    built = construct(req, POOL)
    check_valid(built.graph)
    assert built.graph.request_type is not None and built.graph.request_type.value == request_type
    assert built.graph.metadata["agent_source"] == "catalog"


@pytest.mark.parametrize("request_type", REQUEST_TYPES)
def test_every_type_gives_a_valid_graph_for_the_parallel_request(request_type: str) -> None:
    built = construct(request(PARALLEL_ANALYSIS_REQUEST, request_type=request_type), POOL)
    check_valid(built.graph)


def test_system_analysis_runs_the_four_analyses_in_one_parallel_group() -> None:
    built = construct(request(PARALLEL_ANALYSIS_REQUEST, complexity_level=5), POOL)
    graph = built.graph
    assert graph.execution_strategy.type == ExecutionStrategyType.PARALLEL
    analyses = [t for t in graph.tasks if t.task_id.startswith("analysis-")]
    assert {t.task_type for t in analyses} == {
        "code_review",
        "coverage_analysis",
        "documentation_review",
        "performance_assessment",
    }
    assert sorted(t.task_id for t in analyses) in graph.execution_strategy.parallelization_groups
    report = graph.task("report")
    assert sorted(report.dependencies) == sorted(t.task_id for t in analyses)
    # hand-checked: 15 min analyses at complexity 5, then a 10 min report
    assert graph.estimated_duration == 25
    assert graph.execution_strategy.critical_path[-1] == "report"
    assert len(graph.execution_strategy.critical_path) == 2
    assert {t.assigned_agent for t in analyses} == {
        "agent-design-architect",
        "testing-specialist",
        "docs-integration",
        "core-services",
    }


def test_feature_sample_expands_per_requirement_with_shared_tasks_merged() -> None:
    graph = construct(request(SAMPLE_COMPLEX_REQUEST), POOL).graph
    impl = [t for t in graph.tasks if t.task_type == "implementation_plan"]
    assert len(impl) == 3
    assert sorted(t.inputs.input_parameters["requirement"] for t in impl) == sorted(
        SAMPLE_COMPLEX_REQUEST["requirements"]["functional"]
    )
    for t in impl:
        assert t.inputs.input_parameters["project_path"] == "/test/project"
        assert t.inputs.required_context == ["project_path", "requirement"]
    # one shared test plan waits for every implementation
    (plan,) = [t for t in graph.tasks if t.task_type == "test_plan"]
    assert sorted(plan.dependencies) == sorted(t.task_id for t in impl)
    # hand-checked critical path at complexity 7 (x1.2): 12+18+24+12+12+12+6
    assert graph.estimated_duration == 96
    assert graph.execution_strategy.critical_path[:3] == ["requirements", "architecture", "implementation-1"]


def test_feature_sample_turns_non_functional_requirements_into_validation_and_gates() -> None:
    graph = construct(request(SAMPLE_COMPLEX_REQUEST), POOL).graph
    perf = graph.task("validate-performance_assessment")
    cov = graph.task("validate-coverage_analysis")
    assert perf.dependencies == ["tests"] and cov.dependencies == ["tests"]
    acceptance = graph.task("acceptance")
    assert {perf.task_id, cov.task_id} <= set(acceptance.dependencies)
    # acceptance reads the test results, so that edge survives the transitive reduction
    assert "tests" in acceptance.dependencies
    assert acceptance.inputs.input_parameters["inputs_from"] == {"results": ["tests"]}
    advisory = next(g for g in graph.quality_gates if g.gate_id.endswith("-advisory"))
    assert advisory.validation_tasks == [perf.task_id]
    assert advisory.failure_actions == ["notify", "continue"]
    assert {(t.metric, t.op, t.value) for t in advisory.thresholds.values()} == {
        ("response_time", "<", 500.0),
        ("cache_hit_rate", ">=", 95.0),
    }
    targets = graph.success_criteria.performance_targets
    assert set(targets) == {"response_time", "cache_hit_rate"}


def test_measurable_thresholds_get_enforcing_gates_on_the_agents_metric() -> None:
    req = request(
        SAMPLE_COMPLEX_REQUEST,
        requirements={
            "functional": ["Add a search box"],
            "non_functional": ["coverage ≥ 90%", "p99 latency under 2 s"],
        },
        context={"project_path": "/p", "health_urls": ["http://127.0.0.1:8000/health"]},
    )
    graph = construct(req, POOL).graph
    cov_gate = next(g for g in graph.quality_gates if g.gate_id == "nfr-coverage_analysis")
    (threshold,) = cov_gate.thresholds.values()
    assert (threshold.metric, threshold.op, threshold.value) == ("coverage.percent", ">=", 90.0)
    assert cov_gate.failure_actions == ["fail_workflow"]
    (coverage_task,) = (graph.task(t) for t in cov_gate.validation_tasks)
    assert coverage_task.inputs.input_parameters["coverage_threshold"] == 90.0
    latency_gate = next(g for g in graph.quality_gates if g.gate_id == "nfr-performance_validation")
    (latency,) = latency_gate.thresholds.values()
    assert (latency.metric, latency.op, latency.value) == ("measured.probe_latency_ms", "<", 2000.0)
    validation = graph.task(latency_gate.validation_tasks[0])
    assert validation.assigned_agent == "production-ops"
    probe = graph.task("probe-health_probe")
    assert probe.inputs.input_parameters["urls"] == ["http://127.0.0.1:8000/health"]
    assert probe.task_id in validation.dependencies
    assert validation.inputs.input_parameters["budgets"] == {"probe_latency_ms": 2000.0}
    assert "probes" in validation.inputs.required_context


def test_quality_gate_preferences_are_thresholds_too() -> None:
    req = request(SAMPLE_COMPLEX_REQUEST, preferences={"quality_gates": ["at least 80% docstring coverage"]})
    graph = construct(req, POOL).graph
    gate = next(g for g in graph.quality_gates if g.gate_id == "nfr-docstring_coverage")
    assert next(iter(gate.thresholds.values())).metric == "coverage.coverage_percent"


def _no_nfr(preference: str) -> TaskGraph:
    req = request(
        SAMPLE_COMPLEX_REQUEST,
        requirements={"functional": SAMPLE_COMPLEX_REQUEST["requirements"]["functional"]},
        preference=preference,
    )
    return construct(req, POOL).graph


def test_execution_preference_changes_the_graph() -> None:
    fast, balanced, thorough = _no_nfr("fast"), _no_nfr("balanced"), _no_nfr("thorough")
    assert len(fast.tasks) < len(balanced.tasks) < len(thorough.tasks)
    assert not [t for t in fast.tasks if t.optional]
    assert {t.task_id for t in balanced.tasks if t.optional} == {"stories", "code_review", "api_docs"}
    assert len(fast.quality_gates) < len(balanced.quality_gates) < len(thorough.quality_gates)
    assert {t.retry_policy.max_attempts for t in fast.tasks} == {2}
    assert {t.retry_policy.max_attempts for t in balanced.tasks} == {3}
    added = {t.task_type for t in thorough.tasks} - {t.task_type for t in balanced.tasks}
    assert {"task_graph_review", "coverage_analysis", "secret_scan"} <= added
    # a dropped optional task's dependents wait for what it waited for
    assert "stories" not in fast.task("acceptance").dependencies
    review = next(t for t in thorough.tasks if t.task_type == "task_graph_review")
    doc = review.inputs.input_parameters["task_graph"]
    assert {t["task_id"] for t in doc["tasks"]} == {t.task_id for t in thorough.tasks}


def test_requested_sequential_runs_one_task_at_a_time() -> None:
    req = request(SAMPLE_COMPLEX_REQUEST, execution_strategy="sequential")
    graph = construct(req, POOL).graph
    assert graph.execution_strategy.type == ExecutionStrategyType.SEQUENTIAL
    assert not any(t.parallel_safe for t in graph.tasks)
    assert graph.estimated_duration == sum(t.estimated_duration for t in graph.tasks)


def test_timeouts_and_retries_come_from_the_defaults() -> None:
    built = construct(
        request(SAMPLE_COMPLEX_REQUEST), POOL, defaults=Defaults(task_timeout=3600, max_attempts=5)
    )
    assert {t.timeout for t in built.graph.tasks} == {3600}
    assert {t.retry_policy.max_attempts for t in built.graph.tasks} == {5}


def test_classified_request_and_determinism() -> None:
    req = request(
        {"requirements": {"functional": ["Investigate why checkout crashes", "Reproduce the failing test"]}},
        context={"project_path": "/p"},
    )
    first = construct(req, POOL)
    again = construct(req, POOL)
    assert first.request.request_type is not None
    assert first.request.request_type.value == "bug_investigation"
    assert first.graph.metadata["classification"]["source"] == "classified"
    assert first.graph.model_dump(exclude={"created_at"}) == again.graph.model_dump(exclude={"created_at"})
    reproduce = [t for t in first.graph.tasks if t.task_type == "bug_reproduction"]
    assert sorted(t.inputs.input_parameters["bug"] for t in reproduce) == sorted(req.requirements.functional)


def test_missing_project_path_is_a_warning_not_a_failure() -> None:
    built = construct(request(PARALLEL_ANALYSIS_REQUEST), POOL)
    assert any("project_path" in w for w in built.graph.metadata["warnings"])
    assert all("project_path" not in t.inputs.required_context for t in built.graph.tasks)
