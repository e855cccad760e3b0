"""Plan without running: request files and the terraform-plan-like rendering."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from taskloom.constructor.errors import InvalidRequest
from taskloom.constructor.plan import load_request, plan, render_plan

from .samples import PARALLEL_ANALYSIS_REQUEST, SAMPLE_COMPLEX_REQUEST

EXAMPLES = Path(__file__).parents[3] / "examples" / "requests"


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.stem)
def test_example_requests_load_and_plan(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(EXAMPLES.parents[1])
    req = load_request(path)
    assert req.context.project_path == str(EXAMPLES.parents[1] / "examples" / "sample-project")
    assert Path(req.context.project_path).is_dir()
    text = render_plan(req)
    assert "Estimated duration:" in text


def test_required_examples_exist() -> None:
    assert (EXAMPLES / "system-analysis.yaml").is_file()
    assert (EXAMPLES / "feature-development.yaml").is_file()


def test_json_requests_load(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_text(json.dumps(SAMPLE_COMPLEX_REQUEST))
    assert load_request(path).request_id == "test-request-123"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("requirements: [unclosed", "not valid"),
        ("- a list", "one request object"),
        ("request_type: bogus\nrequirements: {functional: [x]}", "request_type"),
        ("requirements: {functional: ['']}", "requirements.functional"),
    ],
)
def test_bad_request_files_say_what_is_wrong(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(content)
    with pytest.raises(InvalidRequest, match=message):
        load_request(path)
    with pytest.raises(InvalidRequest, match="cannot read"):
        load_request(tmp_path / "missing.yaml")


def test_rendered_plan_shows_tasks_agents_scores_groups_and_critical_path() -> None:
    built = plan(PARALLEL_ANALYSIS_REQUEST)
    text = render_plan(built)
    graph = built.graph
    for t in graph.tasks:
        assert t.task_id in text
        assert f"agent {t.assigned_agent}  score {t.confidence_score:.2f}" in text
    assert "Execution strategy: parallel" in text
    assert "critical path (" in text and " -> ".join(graph.execution_strategy.critical_path) in text
    assert f"1. {', '.join(graph.execution_strategy.parallelization_groups[0])}" in text
    assert f"Estimated duration: {graph.estimated_duration} min" in text
    assert "[" not in text  # nothing rich would read as markup


def test_plan_of_the_sample_shows_gates_with_thresholds() -> None:
    text = render_plan(plan(SAMPLE_COMPLEX_REQUEST))
    assert "response_time < 500 ms" in text
    assert "cache_hit_rate >= 95%" in text
    assert "depends on implementation-1, implementation-2, implementation-3" in text
