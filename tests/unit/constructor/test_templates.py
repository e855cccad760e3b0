"""Templates as data: the built-in five fit the agent catalogue; custom ones can be added."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from taskloom.constructor.domain.assignment import pool_from_catalog
from taskloom.constructor.domain.construct import construct
from taskloom.constructor.domain.templates import (
    DecompositionTemplate,
    TemplateRegistry,
    builtin_templates,
    load_template,
)
from taskloom.constructor.errors import DependencyCycle, InvalidRequest, MissingCapability
from taskloom.contracts.catalog import BUILTIN_CATALOG, agents_for_task_type
from taskloom.contracts.enums import RequestType

from .samples import request


def test_one_builtin_template_per_request_type() -> None:
    assert set(builtin_templates()) == {t.value for t in RequestType}


@pytest.mark.parametrize("name", sorted(t.value for t in RequestType))
def test_builtin_templates_use_catalogue_task_types_and_capabilities(name: str) -> None:
    template = builtin_templates()[name]
    for task in template.tasks:
        routes = [(r.task_type, r.capabilities or task.capabilities) for r in task.route]
        if task.task_type:
            routes.append((task.task_type, task.capabilities))
        if task.default_task_type:
            routes.append((task.default_task_type, task.capabilities))
        for task_type, caps in routes:
            agents = agents_for_task_type(task_type)
            assert agents, f"{name}/{task.key}: no built-in agent does {task_type}"
            assert set(caps) <= set(BUILTIN_CATALOG[agents[0]].capabilities), (name, task.key, task_type)


def _custom(tasks: list[dict[str, object]]) -> DecompositionTemplate:
    return DecompositionTemplate.model_validate({"request_type": "feature_development", "tasks": tasks})


def test_registering_a_custom_template_replaces_the_builtin_only_when_asked() -> None:
    registry = TemplateRegistry()
    custom = _custom(
        [
            {"key": "deps", "task_type": "dependency_analysis", "name": "Deps", "duration": 7},
            {"key": "notes", "task_type": "release_notes", "name": "Notes", "depends_on": ["deps"]},
        ]
    )
    with pytest.raises(ValueError, match="already registered"):
        registry.register(custom)
    registry.register(custom, replace=True)
    graph = construct(
        request({"request_type": "feature_development", "requirements": {"functional": ["x"]}}),
        pool_from_catalog(),
        templates=registry,
    ).graph
    assert [t.task_id for t in graph.tasks] == ["deps", "notes"]
    assert graph.task("notes").dependencies == ["deps"]


def test_custom_template_with_a_cycle_is_rejected_naming_it() -> None:
    registry = TemplateRegistry()
    registry.register(
        _custom(
            [
                {"key": "a", "task_type": "test_plan", "name": "A", "depends_on": ["c"]},
                {"key": "b", "task_type": "test_execution", "name": "B", "depends_on": ["a"]},
                {"key": "c", "task_type": "coverage_analysis", "name": "C", "depends_on": ["b"]},
            ]
        ),
        replace=True,
    )
    req = request({"request_type": "feature_development", "requirements": {"functional": ["x"]}})
    with pytest.raises(DependencyCycle) as err:
        construct(req, pool_from_catalog(), templates=registry)
    assert set(err.value.cycle) == {"a", "b", "c"}
    assert err.value.reason.startswith("dependency cycle: ")


def test_custom_template_with_an_unknown_task_type_is_a_missing_capability() -> None:
    registry = TemplateRegistry()
    registry.register(
        _custom([{"key": "q", "task_type": "quantum_annealing", "name": "Q", "capabilities": ["qubits"]}]),
        replace=True,
    )
    req = request({"request_type": "feature_development", "requirements": {"functional": ["x"]}})
    with pytest.raises(MissingCapability, match="quantum_annealing.*qubits"):
        construct(req, pool_from_catalog(), templates=registry)


def test_template_files_load_and_bad_ones_say_what_is_wrong(tmp_path: Path) -> None:
    good = tmp_path / "t.yaml"
    good.write_text(
        yaml.safe_dump(
            {"request_type": "custom", "tasks": [{"key": "a", "task_type": "changelog", "name": "A"}]}
        )
    )
    assert load_template(good).tasks[0].task_type == "changelog"
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        yaml.safe_dump(
            {
                "request_type": "custom",
                "tasks": [{"key": "a", "task_type": "changelog", "name": "A", "depends_on": ["zz"]}],
            }
        )
    )
    with pytest.raises(ValidationError, match="unknown keys"):
        load_template(bad)
    with pytest.raises(ValidationError, match="needs a task_type or a route"):
        DecompositionTemplate.model_validate({"request_type": "x", "tasks": [{"key": "a", "name": "A"}]})


def test_request_with_nothing_to_plan_is_rejected() -> None:
    req = request({"request_type": "feature_development", "requirements": {}})
    with pytest.raises(InvalidRequest, match="nothing to plan"):
        construct(req, pool_from_catalog())


def test_release_checks_route_only_matching_requirements() -> None:
    req = request(
        {
            "request_type": "release_management",
            "requirements": {"functional": ["Prepare release 2.0", "Validate the MCP tools"]},
            "context": {"project_path": "/p"},
        }
    )
    graph = construct(req, pool_from_catalog()).graph
    extra = [t for t in graph.tasks if t.task_id.startswith("extra_check")]
    assert [(t.task_type, t.inputs.input_parameters["requirement"]) for t in extra] == [
        ("mcp_tool_validation", "Validate the MCP tools")
    ]
    assert extra[0].task_id in graph.task("readiness").dependencies
