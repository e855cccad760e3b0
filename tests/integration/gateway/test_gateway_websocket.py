"""The WebSocket status stream against a real gateway: replay then live with no gap or
duplicate (also for a client joining mid-run with ``since``), handshake authentication, the
Origin allowlist, and the 1008 close when the token expires.

Events are appended to the event store the way the orchestrator appends them, and a real
``EventRelay`` publishes them to NATS."""

from __future__ import annotations

import asyncio
import json
import uuid

import httpx
import pytest
import websockets
from gateway_helpers import SAMPLE_BODY, relayed_store
from websockets.exceptions import InvalidStatus

from taskloom.contracts.events import (
    TaskAssigned,
    TaskCompleted,
    TaskProgressed,
    TaskStarted,
    WorkflowCompleted,
    WorkflowStarted,
)
from taskloom.contracts.graph import TaskGraph, TaskSpec
from taskloom.contracts.workflow import WorkflowResult
from taskloom.eventstore import NewEvent


def ws_url(base: str, wf: str, **params: object) -> str:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return base.replace("http://", "ws://") + f"/ws/workflows/{wf}" + (f"?{query}" if query else "")


def submit(base: str, token: str) -> str:
    r = httpx.post(f"{base}/api/v1/workflows", json=SAMPLE_BODY, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 202, r.text
    return str(r.json()["workflow_id"])


def run_events(wf: str) -> list:
    graph = TaskGraph(
        request_id=str(uuid.uuid4()),
        tasks=[
            TaskSpec(task_id="t1", task_type="code_analysis", assigned_agent="core-services"),
            TaskSpec(
                task_id="t2", task_type="test_run", assigned_agent="testing-specialist", dependencies=["t1"]
            ),
        ],
    )
    events = [WorkflowStarted(workflow_id=wf, graph=graph, owner="x")]
    for task, agent in (("t1", "core-services"), ("t2", "testing-specialist")):
        events += [
            TaskAssigned(workflow_id=wf, task_id=task, agent=agent, attempt=1, message_id=str(uuid.uuid4())),
            TaskStarted(workflow_id=wf, task_id=task, agent=agent, attempt=1),
        ]
        events += [
            TaskProgressed(
                workflow_id=wf, task_id=task, attempt=1, completion_percentage=p, current_phase="work"
            )
            for p in (20.0, 40.0, 60.0, 80.0)
        ]
        events.append(TaskCompleted(workflow_id=wf, task_id=task, agent=agent, attempt=1))
    result = WorkflowResult(
        workflow_id=wf, success=True, completion_percentage=100.0, completed_tasks=["t1", "t2"]
    )
    events.append(WorkflowCompleted(workflow_id=wf, result=result))
    return events


async def collect(url: str, headers: dict[str, str]) -> tuple[list[dict], int | None, str]:
    frames = []
    async with websockets.connect(url, additional_headers=headers, open_timeout=10) as socket:
        try:
            async for raw in socket:
                frames.append(json.loads(raw))
        except websockets.ConnectionClosed:
            pass
    return frames, socket.close_code, socket.close_reason


@pytest.fixture
async def relay(stack, gateway_namespace):
    async with relayed_store(stack, gateway_namespace) as (store, _):
        yield store


async def test_replay_then_live_without_gaps_or_duplicates(gateway_url, token_for, user, relay):
    store = relay
    token = token_for(user("wanda"), "user")
    headers = {"Authorization": f"Bearer {token}"}
    wf = submit(gateway_url, token)
    events = run_events(wf)
    first = asyncio.create_task(collect(ws_url(gateway_url, wf), headers))
    await asyncio.sleep(0.3)
    version = 1
    late = None
    for i, event in enumerate(events):
        await store.append(wf, [NewEvent(event.event_id, event.type, event.model_dump(mode="json"))], version)
        version += 1
        if i == 6:
            late = asyncio.create_task(collect(ws_url(gateway_url, wf, since=5), headers))
        await asyncio.sleep(0.01)
    frames, code, _ = await asyncio.wait_for(first, 30)
    late_frames, late_code, _ = await asyncio.wait_for(late, 30)

    stored = await store.read_stream(wf)
    assert [f["position"] for f in frames] == [e.version for e in stored] == list(range(1, len(events) + 2))
    assert [f["position"] for f in late_frames] == list(range(6, len(events) + 2))
    assert frames[-1]["event_type"] == "completion" and frames[-1]["data"]["current_status"] == "completed"
    assert sum(f["event_type"] == "task_completed" for f in frames) == 2
    assert code == late_code == 1000
    assert set(frames[0]) == {"event_type", "timestamp", "workflow_id", "data", "position"}


async def test_a_finished_workflow_replays_and_closes(gateway_url, token_for, user, relay):
    store = relay
    token = token_for(user("fin"), "viewer", "user")
    wf = submit(gateway_url, token)
    events = run_events(wf)
    for v, event in enumerate(events, start=1):
        await store.append(wf, [NewEvent(event.event_id, event.type, event.model_dump(mode="json"))], v)
    head = len(events) + 1
    frames, code, reason = await collect(ws_url(gateway_url, wf, token=token), {})
    assert [f["position"] for f in frames] == list(range(1, head + 1))
    assert code == 1000 and reason == "workflow finished"
    frames, _, _ = await collect(ws_url(gateway_url, wf, token=token, since=head - 1), {})
    assert [f["position"] for f in frames] == [head]


async def test_subprotocol_bearer_is_accepted(gateway_url, token_for, user):
    token = token_for(user("sub"), "user")
    wf = submit(gateway_url, token)
    async with websockets.connect(ws_url(gateway_url, wf), subprotocols=["bearer", token]) as socket:
        assert socket.subprotocol == "bearer"
        first = json.loads(await asyncio.wait_for(socket.recv(), 10))
        assert first["position"] == 1 and first["data"]["recent_updates"][0]["type"] == "WorkflowSubmitted"


async def test_handshake_refusals(gateway_url, token_for, user):
    owner = token_for(user("own"), "user")
    wf = submit(gateway_url, owner)
    cases = {
        "no token": (ws_url(gateway_url, wf), {}),
        "bad token": (ws_url(gateway_url, wf, token="abc"), {}),
        "someone else": (ws_url(gateway_url, wf, token=token_for(user("eve"), "developer")), {}),
        "bad origin": (ws_url(gateway_url, wf, token=owner), {"Origin": "http://evil.example"}),
        "no role": (ws_url(gateway_url, wf, token=token_for(user("own"), "privileged_user")), {}),
    }
    for name, (url, headers) in cases.items():
        with pytest.raises(InvalidStatus) as refused:
            async with websockets.connect(url, additional_headers=headers, open_timeout=10):
                pass
        assert refused.value.response.status_code == 403, name
    async with websockets.connect(
        ws_url(gateway_url, wf, token=owner), additional_headers={"Origin": "http://good.example"}
    ) as ok:
        assert json.loads(await asyncio.wait_for(ok.recv(), 10))["position"] == 1


async def test_token_expiry_closes_with_1008(gateway_url, token_for, user):
    name = user("brief")
    wf = submit(gateway_url, token_for(name, "user"))
    short = token_for(name, "user", ttl=2)
    frames, code, reason = await asyncio.wait_for(collect(ws_url(gateway_url, wf, token=short), {}), 20)
    assert [f["position"] for f in frames] == [1]
    assert code == 1008 and reason == "token expired"
