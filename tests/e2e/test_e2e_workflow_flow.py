"""Submit → watch over the WebSocket → completion, against the full stack, with the frame
sequence checked against the event store (no gap, no duplicate), including a client that
joins mid-run with ``since``; the same through the CLI and the MCP tools."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import httpx
import pytest
import websockets
from e2e_helpers import needs_full_stack
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from taskloom.eventstore import EventStore
from taskloom.gateway.config import GatewaySettings
from taskloom.gateway.security import mint_token
from taskloom.settings import Settings

pytestmark = [needs_full_stack, pytest.mark.slow]

REQUEST = {
    "request": {
        "type": "system_analysis",
        "requirements": {
            "functional": ["Analyze code quality", "Check test coverage", "Review documentation"]
        },
        "strategy": "fast",
    },
    "context": {"project_path": "examples/sample-project"},
}
TERMINAL = {"completed", "failed", "cancelled"}


def token(user: str) -> str:
    return mint_token(GatewaySettings(), user, ["developer"])


async def frames_of(url: str, tok: str) -> tuple[list[dict], int | None]:
    frames: list[dict] = []
    async with websockets.connect(url, additional_headers={"Authorization": f"Bearer {tok}"}) as socket:
        try:
            async for raw in socket:
                frames.append(json.loads(raw))
        except websockets.ConnectionClosed:
            pass
    return frames, socket.close_code


async def test_submit_watch_complete_matches_the_event_store(full_stack, stack):
    tok = token("e2e-ws")
    async with httpx.AsyncClient(
        base_url=full_stack.gateway_url, headers={"Authorization": f"Bearer {tok}"}
    ) as http:
        submitted = (await http.post("/api/v1/workflows", json=REQUEST)).json()
        wf = submitted["workflow_id"]
        watcher = asyncio.create_task(frames_of(submitted["websocket_endpoint"], tok))
        late = None
        for _ in range(600):
            version = (await http.get(f"/api/v1/workflows/{wf}")).json()["version"]
            if version >= 4 and late is None:
                late = asyncio.create_task(frames_of(submitted["websocket_endpoint"] + "?since=3", tok))
            if watcher.done():
                break
            await asyncio.sleep(0.2)
        frames, code = await asyncio.wait_for(watcher, 300)
        late_frames, late_code = await asyncio.wait_for(late, 60) if late else ([], None)
        state = (await http.get(f"/api/v1/workflows/{wf}")).json()

    store = EventStore.from_settings(Settings(database_url=stack.database_url, nats_url=stack.nats_url))
    try:
        stored = await store.read_stream(wf)
    finally:
        await store.close()
    assert state["current_state"] in TERMINAL
    assert [f["position"] for f in frames] == [e.version for e in stored]
    assert frames[-1]["event_type"] == "completion" and code == 1000
    assert late is not None, "the workflow finished before a mid-run client could join"
    assert [f["position"] for f in late_frames] == [e.version for e in stored if e.version > 3]
    assert late_code == 1000
    assert state["current_state"] == "completed", state.get("error")


def test_cli_submit_and_watch_to_completion(full_stack, tmp_path):
    env = {
        **__import__("os").environ,
        "TASKLOOM_GATEWAY_URL": full_stack.gateway_url,
        "TASKLOOM_TOKEN": token("e2e-cli"),
        "COLUMNS": "200",
    }
    run = subprocess.run(
        [sys.executable, "-m", "taskloom.cli", "submit", "examples/requests/system-analysis.yaml", "--watch"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert run.returncode == 0, run.stderr
    assert "submitted workflow" in run.stdout and "completed after position" in run.stdout


async def test_mcp_tools_drive_a_workflow_to_completion(full_stack):
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "taskloom.cli", "mcp", "--url", full_stack.gateway_url, "--token", token("e2e-mcp")],
    )
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        result = await session.call_tool(
            "submit_complex_request",
            {
                "request_type": "system_analysis",
                "requirements": {"functional": ["Check test coverage"]},
                "execution_strategy": "fast",
                "context": {"project_path": "examples/sample-project"},
            },
        )
        wf = (result.structured_content or json.loads(result.content[0].text))["workflow_id"]
        collab = await session.call_tool(
            "agent_collaboration_request",
            {
                "requesting_agent": "testing-specialist",
                "target_agents": ["core-services"],
                "collaboration_type": "consultation",
                "context": {"workflow_id": wf},
            },
        )
        assert not collab.is_error
        state = {}
        for _ in range(600):
            status = await session.call_tool("get_workflow_status", {"workflow_id": wf})
            state = status.structured_content or json.loads(status.content[0].text)
            if state["current_state"] in TERMINAL:
                break
            await asyncio.sleep(0.5)
        assert state["current_state"] == "completed", state.get("error")
