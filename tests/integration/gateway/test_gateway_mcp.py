"""The MCP tools through the official SDK's own client: over stdio (``taskloom mcp``) and over
streamable HTTP on the gateway (with the caller's bearer token)."""

from __future__ import annotations

import json
import sys

import httpx2
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client

TOOLS = {
    "submit_complex_request",
    "get_workflow_status",
    "agent_collaboration_request",
    "list_workflows",
    "get_workflow_events",
    "cancel_workflow",
}


def payload(result) -> dict:
    assert not result.is_error, result.content
    if result.structured_content is not None:
        return result.structured_content
    return json.loads(result.content[0].text)


async def exercise(session: ClientSession) -> None:
    await session.initialize()
    listed = await session.list_tools()
    assert {t.name for t in listed.tools} == TOOLS
    submitted = payload(
        await session.call_tool(
            "submit_complex_request",
            {
                "request_type": "system_analysis",
                "requirements": {"functional": ["Analyze code quality"]},
                "complexity_level": 3,
                "execution_strategy": "fast",
                "context": {"project_path": "examples/sample-project"},
            },
        )
    )
    wf = submitted["workflow_id"]
    status = payload(await session.call_tool("get_workflow_status", {"workflow_id": wf}))
    assert status["workflow_id"] == wf and status["current_state"] in ("pending", "running", "completed")
    listing = payload(await session.call_tool("list_workflows", {}))
    assert wf in [i["workflow_id"] for i in listing["items"]]
    events = payload(await session.call_tool("get_workflow_events", {"workflow_id": wf}))
    assert events["events"][0]["type"] == "WorkflowSubmitted"
    collab = payload(
        await session.call_tool(
            "agent_collaboration_request",
            {
                "requesting_agent": "core-services",
                "target_agents": ["testing-specialist"],
                "collaboration_type": "review",
                "context": {"workflow_id": wf, "topic": "coverage"},
            },
        )
    )
    assert collab["workflow_id"] == wf and collab["status"] == "requested"
    refused = await session.call_tool("get_workflow_status", {"workflow_id": "no-such-workflow"})
    assert refused.is_error and "404" in refused.content[0].text


async def test_tools_over_stdio(gateway_url, token_for, user):
    params = StdioServerParameters(
        command=sys.executable,
        args=[
            "-m",
            "taskloom.cli",
            "mcp",
            "--url",
            gateway_url,
            "--token",
            token_for(user("mcp"), "developer"),
        ],
    )
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await exercise(session)


async def test_tools_over_streamable_http(gateway_url, token_for, user):
    headers = {"Authorization": f"Bearer {token_for(user('mcph'), 'developer')}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=30) as http,
        streamable_http_client(f"{gateway_url}/mcp", http_client=http) as streams,
    ):
        read, write = streams[0], streams[1]
        async with ClientSession(read, write) as session:
            await exercise(session)


async def test_http_tools_without_a_token_are_refused(gateway_url):
    async with (
        httpx2.AsyncClient(timeout=30) as http,
        streamable_http_client(f"{gateway_url}/mcp", http_client=http) as streams,
    ):
        async with ClientSession(streams[0], streams[1]) as session:
            await session.initialize()
            result = await session.call_tool("list_workflows", {})
            assert result.is_error and "401" in result.content[0].text
