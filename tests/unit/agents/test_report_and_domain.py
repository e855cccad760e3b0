"""The demo report and pure domain functions (no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from taskloom.agents.domain.contracts import compare_openapi
from taskloom.agents.domain.dependencies import (
    Declared,
    analyze_dependencies,
    parse_importtime,
    resolve_versions,
)
from taskloom.agents.domain.operations import shannon_entropy
from taskloom.agents.domain.testing import parse_junit
from taskloom.agents.domain.writing import changelog, parse_git_log
from taskloom.agents.report import render_report
from taskloom.contracts import (
    RequestType,
    TaskState,
    TaskStateName,
    WorkflowResult,
    WorkflowState,
    WorkflowStateName,
)


def test_report_names_every_agent_finding_the_graph_and_timings() -> None:
    t0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    tasks = [
        TaskState(
            task_id="tests",
            task_type="test_execution",
            assigned_agent="testing-specialist",
            state=TaskStateName.COMPLETED,
            started_at=t0,
            completed_at=t0 + timedelta(seconds=2.5),
            attempts=1,
            outputs={
                "summary": "3 passed, 1 failed",
                "findings": ["failing test 'tests.test_cart::test_discount_applies_to_total'"],
            },
        ),
        TaskState(
            task_id="graph",
            task_type="import_graph_analysis",
            assigned_agent="agent-design-architect",
            state=TaskStateName.FAILED,
            attempts=3,
            error={"error_type": "TaskTimeout", "error_message": "exceeded 60s"},
        ),
    ]
    state = WorkflowState(
        workflow_id="wf-9",
        current_state=WorkflowStateName.COMPLETED,
        task_states=tasks,
        request_type=RequestType.SYSTEM_ANALYSIS,
        started_at=t0,
        completed_at=t0 + timedelta(seconds=9),
    )
    result = WorkflowResult(workflow_id="wf-9", success=False, partial_success=True, completion_percentage=50)
    events = [
        {
            "type": "GraphAttached",
            "data": {
                "graph": {
                    "tasks": [
                        {
                            "task_id": "tests",
                            "task_type": "test_execution",
                            "assigned_agent": "testing-specialist",
                            "dependencies": [],
                        },
                        {
                            "task_id": "graph",
                            "task_type": "import_graph_analysis",
                            "assigned_agent": "agent-design-architect",
                            "dependencies": ["tests"],
                        },
                    ]
                }
            },
        }
    ]
    md = render_report(state, result, events)
    assert "test_discount_applies_to_total" in md
    assert "t_tests --> t_graph" in md and "```mermaid" in md
    assert "| tests | test_execution | testing-specialist | completed | 1 | 12:00:00 | 2.50 |" in md
    assert "**Failed:** TaskTimeout exceeded 60s" in md
    assert "partial success" in md and "9.0 s" in md


def test_dependency_analysis_classifies_each_problem() -> None:
    declared = [
        Declared(name="a", specifier="", source="pyproject.toml", raw="a"),
        Declared(name="b", specifier=">=2", source="pyproject.toml", raw="b>=2"),
        Declared(name="c", specifier=">=1", source="pyproject.toml", raw="c>=1"),
        Declared(name="d", specifier="==1.0", source="requirements.txt", raw="d==1.0"),
        Declared(name="d", specifier="==2.0", source="pyproject.toml", raw="d==2.0"),
    ]
    report = analyze_dependencies(
        declared, {"a": "1.0", "b": "1.5", "d": "2.0"}, dependents={"a": [("x", "<1")]}
    )
    assert report.unpinned == ["a"] and report.missing == ["c"] and report.violated == ["b", "d"]
    assert report.conflicting == ["a", "d"]
    resolution = resolve_versions(declared[:2], {"a": ["1.0", "1.2"], "b": ["1.5"]})
    assert resolution.lock_lines == ["a==1.2"] and resolution.unresolved == ["b"]


def test_parsers() -> None:
    timings = parse_importtime(
        "import time: self [us] | cumulative | imported package\n"
        "import time:       120 |        120 |   shopcart.cart\nimport time:   50 |   400 | shopcart\n"
    )
    assert [t.module for t in timings] == ["shopcart", "shopcart.cart"] and timings[1].depth == 1
    junit = parse_junit(
        '<testsuites><testsuite><testcase classname="tests.t" name="test_a" time="0.5"/>'
        '<testcase classname="tests.t" name="test_b" time="0.1"><failure message="boom"/></testcase>'
        "</testsuite></testsuites>"
    )
    assert junit.passed == ["tests.t::test_a"] and junit.failures == {"tests.t::test_b": "boom"}
    commits = parse_git_log(
        "abc\x1f2026-01-01\x1fAnn\x1ffeat(cart)!: coupons\ndef\x1f2026-01-02\x1fBo\x1fFix rounding\n"
    )
    assert [(c.kind, c.breaking) for c in commits] == [("feat", True), ("fix", False)]
    assert "### Breaking changes" in changelog(commits) and "- cart: coupons" in changelog(commits)
    assert shannon_entropy("aaaa") == 0.0 and shannon_entropy("abcd") == 2.0


def test_openapi_breaking_changes() -> None:
    old = {"openapi": "3.1.0", "paths": {"/a": {"get": {"responses": {"200": {}}}}, "/b": {"get": {}}}}
    new = {
        "openapi": "3.1.0",
        "paths": {
            "/a": {"get": {"responses": {}, "parameters": [{"in": "query", "name": "q", "required": True}]}}
        },
    }
    kinds = sorted(c.kind for c in compare_openapi(old, new) if c.breaking)
    assert kinds == ["parameter_required", "path_removed", "response_removed"]
