"""Through NATS: agents in a workflow see upstream outputs and the shared context they may read;
agents without permission see nothing of it, and every denial is audited."""

from __future__ import annotations

import asyncio

import pytest

from taskloom.context import ContextClient, ContextRequestError
from taskloom.context.service import ContextService
from taskloom.contracts.base import new_id
from taskloom.contracts.context import (
    AuditDecision,
    ContextErrorCode,
    ContextGetRequest,
    ContextScope,
    ContributeRequest,
)

pytestmark = pytest.mark.usefixtures("service")


async def seed_workflow(client: ContextClient, wf: str) -> None:
    await client.put("orchestrator", "global", "system_state", {"agents": 8})
    await client.put("orchestrator", "global", "user_preferences", {"style": "terse"})
    await client.put("orchestrator", "global", "style_guide", "pep8")
    await client.put("orchestrator", "project", "project_metadata", {"name": "demo"}, project_id="p1")
    await client.put("orchestrator", "project", "dependencies", ["httpx"], project_id="p1")
    await client.put(
        "orchestrator",
        "project",
        "deploy.db_password",
        "pw-9f8e7d",
        project_id="p1",
        classification="confidential",
    )
    await client.put("orchestrator", "workflow", "project_id", "p1", workflow_id=wf)
    await client.put("orchestrator", "workflow", "task_graph", {"tasks": ["t1", "t2"]}, workflow_id=wf)


async def test_downstream_agent_receives_upstream_outputs(client: ContextClient) -> None:
    wf = new_id()
    await seed_workflow(client, wf)
    reply = await client.contribute(
        ContributeRequest(
            agent_id="testing-specialist",
            workflow_id=wf,
            task_id="t1",
            outputs_summary={"tests_passed": 41, "failures": ["test_login"]},
            recommendations=["fix the login test first"],
            resource_usage={"seconds": 3.5},
        )
    )
    assert reply.key == "outputs.t1"
    view = await client.get("core-services", wf, "t2", requirements=["dependencies"])
    assert view.context["outputs.t1"]["outputs_summary"] == {"tests_passed": 41, "failures": ["test_login"]}
    assert view.context["outputs.t1"]["agent_id"] == "testing-specialist"
    assert view.context["dependencies"] == ["httpx"]  # the project found through the workflow
    assert view.context["system_state"] == {"agents": 8}  # always included
    assert view.context["project_metadata"] == {"name": "demo"}
    assert "style_guide" not in view.context and view.pruned_count >= 2  # not required
    assert view.key_sources["outputs.t1"] is ContextScope.WORKFLOW
    assert [s.scope for s in view.scopes] == list(ContextScope)


async def test_agent_without_permission_sees_none_of_it(client: ContextClient) -> None:
    wf = new_id()
    await seed_workflow(client, wf)
    await client.contribute(
        ContributeRequest(
            agent_id="testing-specialist", workflow_id=wf, task_id="t1", outputs_summary={"x": 1}
        )
    )
    view = await client.get("third-party-agent", wf, "t2")
    assert view.context == {}
    assert view.denied_count >= 8
    assert "pw-9f8e7d" not in view.model_dump_json()
    page = await client.audit(workflow_id=wf, agent_id="third-party-agent", decision=AuditDecision.DENY)
    assert len(page.records) == 1
    assert "workflow:outputs.t1" in page.records[0].keys
    assert page.records[0].denied_count == view.denied_count


async def test_confidential_values_reach_only_agents_cleared_for_them(client: ContextClient) -> None:
    wf = new_id()
    await seed_workflow(client, wf)
    ops = await client.get("production-ops", wf, "t3")
    assert ops.context["deploy.db_password"] == "pw-9f8e7d"
    mcp = await client.get("mcp-protocol", wf, "t3")
    assert "deploy.db_password" not in mcp.context
    assert "pw-9f8e7d" not in mcp.model_dump_json()
    assert mcp.denied_count == 1
    assert mcp.context["dependencies"] == ["httpx"]


async def test_the_most_specific_scope_wins_over_nats(client: ContextClient) -> None:
    wf = new_id()
    await client.put("orchestrator", "global", "verbosity", "global")
    await client.put("orchestrator", "workflow", "verbosity", "workflow", workflow_id=wf)
    view = await client.get("docs-integration", wf, "t1")
    assert view.context["verbosity"] == "workflow"
    await client.put("docs-integration", "task", "verbosity", "task", workflow_id=wf, task_id="t1")
    await client.put("docs-integration", "agent", "verbosity", "agent")
    assert (await client.get("docs-integration", wf, "t1")).context["verbosity"] == "agent"
    # another agent on the same task sees the task value, not docs-integration's own memory
    assert (await client.get("technical-writer", wf, "t1")).context["verbosity"] == "task"
    assert (await client.get("technical-writer", wf, "t2")).context["verbosity"] == "workflow"


async def test_writes_outside_the_policy_are_refused_and_audited(client: ContextClient) -> None:
    wf = new_id()
    with pytest.raises(ContextRequestError) as caught:
        await client.put("core-services", "agent", "notes", "x", scope_id="mcp-protocol", workflow_id=wf)
    assert caught.value.code is ContextErrorCode.DENIED
    assert "may not write 'notes'" in caught.value.message
    with pytest.raises(ContextRequestError, match="default deny"):
        await client.put("core-services", "workflow", "task_graph", {}, workflow_id=wf)
    with pytest.raises(ContextRequestError, match="ceiling"):
        await client.put(
            "core-services", "task", "k", 1, workflow_id=wf, task_id="t", classification="restricted"
        )
    page = await client.audit(workflow_id=wf)
    assert [r.decision for r in page.records] == [AuditDecision.DENY] * 3
    assert (await client.get("mcp-protocol", wf, "t1")).context == {}


async def test_two_replicas_share_requests_and_keep_caches_coherent(
    make_service: object, service: ContextService, client: ContextClient
) -> None:
    other: ContextService = await make_service()  # type: ignore[operator]
    wf = new_id()
    await client.put("orchestrator", "workflow", "plan", "v1", workflow_id=wf)
    # warm both caches directly (the first put's invalidation may still be on its way), then
    # write through the bus
    req = ContextGetRequest(agent_id="core-services", workflow_id=wf)
    for _ in range(100):
        await service.handlers.get(req)
        await other.handlers.get(req)
        await asyncio.sleep(0.02)
        if len(service.handlers.cache) == len(other.handlers.cache) == 1:
            break
    assert len(service.handlers.cache) == len(other.handlers.cache) == 1
    await client.put("orchestrator", "workflow", "plan", "v2", workflow_id=wf)
    for _ in range(100):
        if len(service.handlers.cache) == 0 and len(other.handlers.cache) == 0:
            break
        await asyncio.sleep(0.02)
    assert len(service.handlers.cache) == len(other.handlers.cache) == 0
    for _ in range(6):
        assert (await client.get("core-services", wf)).context["plan"] == "v2"
