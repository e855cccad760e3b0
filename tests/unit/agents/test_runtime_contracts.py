"""Pure parts of the agent runtime's contracts: how a context-service view is split into the
scopes an agent reads, and what a malformed assignment is reported as."""

from __future__ import annotations

import pytest
from agents_unit_helpers import assignment

from taskloom.agents.adapters.context_client import contribution
from taskloom.agents.adapters.jetstream import parse_assignment
from taskloom.agents.sdk import AgentContextView
from taskloom.contracts.context import ContextScope, ContextView


def test_a_context_view_is_split_by_the_scope_each_key_came_from() -> None:
    task = assignment("echo", "echo", {"project_path": "/p"})
    view = ContextView(
        agent_id="echo",
        context={"style": "terse", "budget": 3, "plan": [1], "scratch": "s", "notes": "n", "orphan": 0},
        key_sources={
            "style": ContextScope.GLOBAL,
            "budget": ContextScope.PROJECT,
            "plan": ContextScope.WORKFLOW,
            "scratch": ContextScope.TASK,
            "notes": ContextScope.AGENT,
        },
    )
    ctx = AgentContextView.from_assignment(task, view)
    assert ctx.source == "context-service"
    assert ctx.global_context == {"style": "terse", "budget": 3}
    assert ctx.task_context == {"plan": [1], "scratch": "s", "orphan": 0}
    assert ctx.agent_context == {"notes": "n"}
    assert ctx.lookup("project_path") == "/p" and ctx.lookup("budget") == 3


def test_without_a_view_the_assignment_context_is_used() -> None:
    task = assignment("echo", "echo", {}, deps=[{"task_id": "t0", "outputs": {"x": 1}}])
    ctx = AgentContextView.from_assignment(task, None)
    assert ctx.source == "assignment" and ctx.upstream_output("x") == 1


def test_a_malformed_assignment_names_what_is_wrong() -> None:
    with pytest.raises(ValueError, match=r"not a task_assignment: .*task_id"):
        parse_assignment(b'{"message_type": "task_assignment", "oops": 1}')
    with pytest.raises(ValueError, match="not a task_assignment"):
        parse_assignment(b"not json")
    task = assignment("echo", "echo", {})
    assert parse_assignment(task.model_dump_json().encode()) == task


def test_a_contribution_summarises_the_outputs() -> None:
    task = assignment("echo", "echo", {})
    outputs = {"summary": "s", "findings": [f"f{i}" for i in range(80)], "recommendations": ["r"]}
    c = contribution(task, "echo", outputs, {"execution_time": 0.1})
    assert c.workflow_id == "wf-unit" and c.task_id == task.task_id and c.agent_id == "echo"
    assert c.outputs_summary["summary"] == "s" and len(c.outputs_summary["findings"]) == 50
    assert c.outputs_summary["task_type"] == "echo"
    assert c.recommendations == ["r"] and c.resource_usage == {"execution_time": 0.1}
