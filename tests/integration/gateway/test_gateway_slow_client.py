"""A WebSocket client that stops reading is dropped with 1013 while a normal client on the same
workflow keeps receiving every event, without gap or duplicate.

The slow client speaks WebSocket through ``websockets``' sans-I/O protocol over a raw socket with
a tiny receive buffer, and reads nothing until the gateway reports the drop on ``/metrics``; by
then the kernel buffers, the gateway's transport buffer and its bounded per-client queue are
full. (The ``websockets`` asyncio client keeps reading into memory whether or not ``recv`` is
called, so it cannot stall a socket.) The normal client is never more than one batch of events
behind, so its queue never comes close to its bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import uuid
from collections.abc import Callable
from urllib.parse import urlsplit

import httpx
import pytest
import websockets
from gateway_helpers import SAMPLE_BODY, relayed_store
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.protocol import State
from websockets.uri import parse_uri

from taskloom.contracts.events import (
    DomainEvent,
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
from taskloom.infra import StackInfo

BUFFER_FRAMES = 16
BATCH = 8  # events appended at a time; the normal client catches up before the next batch
PROGRESS_EVENTS = 600  # ~8 KiB frames: several MiB, far more than the socket and queue hold
PHASE = "p" * 8192
DROPPED_METRIC = 'taskloom_gateway_websocket_dropped_total{reason="slow_client"}'
WAIT = 30.0  # generous bound on any single wait, so a broken gateway fails instead of hanging


def workflow_events(wf: str) -> list[DomainEvent]:
    graph = TaskGraph(
        request_id=str(uuid.uuid4()),
        tasks=[TaskSpec(task_id="t1", task_type="code_analysis", assigned_agent="core-services")],
    )
    events: list[DomainEvent] = [
        WorkflowStarted(workflow_id=wf, graph=graph, owner="x"),
        TaskAssigned(workflow_id=wf, task_id="t1", agent="core-services", attempt=1, message_id="m1"),
        TaskStarted(workflow_id=wf, task_id="t1", agent="core-services", attempt=1),
    ]
    events += [
        TaskProgressed(
            workflow_id=wf,
            task_id="t1",
            attempt=1,
            completion_percentage=round(100 * i / PROGRESS_EVENTS, 2),
            current_phase=f"{i}:{PHASE}",
        )
        for i in range(PROGRESS_EVENTS)
    ]
    result = WorkflowResult(workflow_id=wf, success=True, completion_percentage=100.0, completed_tasks=["t1"])
    events += [
        TaskCompleted(workflow_id=wf, task_id="t1", agent="core-services", attempt=1),
        WorkflowCompleted(workflow_id=wf, result=result),
    ]
    return events


class StalledClient:
    """A WebSocket client that reads from its socket only when asked to."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.protocol = ClientProtocol(parse_uri(url), max_size=None)
        self.positions: list[int] = []

    async def connect(self) -> None:
        parts = urlsplit(self.url)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # as small as the kernel allows
        sock.connect((parts.hostname, parts.port))
        sock.setblocking(False)
        self.reader, self.writer = await asyncio.open_connection(sock=sock, limit=4096)
        self.protocol.send_request(self.protocol.connect())
        self._flush()
        while self.protocol.state is State.CONNECTING:
            await self._read_once()
        assert self.protocol.state is State.OPEN, self.protocol.handshake_exc

    async def read_until_closed(self) -> int | None:
        """Read every frame left; the close code, or ``None`` if the TCP connection just ended."""
        while self.protocol.state is not State.CLOSED:
            if not await self._read_once():
                break
        self.writer.close()
        return None if self.protocol.close_rcvd is None else self.protocol.close_rcvd.code

    async def _read_once(self) -> bool:
        data = await self.reader.read(65536)
        if data:
            self.protocol.receive_data(data)
        else:
            self.protocol.receive_eof()
        for event in self.protocol.events_received():
            if isinstance(event, Frame) and event.opcode is Opcode.TEXT:
                assert event.fin, "status frames are never fragmented"
                self.positions.append(json.loads(event.data)["position"])
        self._flush()
        return bool(data)

    def _flush(self) -> None:
        for chunk in self.protocol.data_to_send():
            if chunk:
                self.writer.write(chunk)


async def slow_drops(http: httpx.AsyncClient) -> float:
    for line in (await http.get("/metrics")).text.splitlines():
        if line.startswith(DROPPED_METRIC):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


@pytest.mark.slow
async def test_a_slow_client_is_dropped_and_the_others_miss_nothing(
    start_gateway: Callable[..., str],
    stack: StackInfo,
    token_for: Callable[..., str],
    user: Callable[[str], str],
) -> None:
    namespace = f"g{uuid.uuid4().hex[:10]}"
    base = start_gateway(
        namespace,
        TASKLOOM_WS_BUFFER_FRAMES=str(BUFFER_FRAMES),
        TASKLOOM_PLAN_ON_SUBMIT="false",
    )
    token = token_for(user("slow"), "user")
    url = base.replace("http://", "ws://") + "/ws/workflows/{}?token=" + token

    async with (
        httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {token}"}) as http,
        relayed_store(stack, namespace) as (store, relay),
    ):
        submitted = await http.post("/api/v1/workflows", json=SAMPLE_BODY)
        assert submitted.status_code == 202, submitted.text
        wf = submitted.json()["workflow_id"]
        events = workflow_events(wf)
        last = len(events) + 1  # position 1 is WorkflowSubmitted
        assert await slow_drops(http) == 0

        normal_positions: list[int] = []
        normal_progress = asyncio.Event()

        async def normal() -> int | None:
            async with websockets.connect(url.format(wf), open_timeout=WAIT) as ws:
                with contextlib.suppress(websockets.ConnectionClosed):
                    async for raw in ws:
                        normal_positions.append(json.loads(raw)["position"])
                        normal_progress.set()
            return ws.close_code

        stalled = StalledClient(url.format(wf))
        resume_reading = asyncio.Event()

        async def slow() -> int | None:
            await resume_reading.wait()
            return await stalled.read_until_closed()

        async def normal_reached(position: int) -> None:
            while not normal_positions or normal_positions[-1] < position:
                normal_progress.clear()
                await asyncio.wait_for(normal_progress.wait(), WAIT)

        normal_task = asyncio.create_task(normal())
        slow_task = asyncio.create_task(slow())
        try:
            await asyncio.wait_for(stalled.connect(), WAIT)
            await normal_reached(1)
            version = 1
            for start in range(0, len(events), BATCH):
                batch = events[start : start + BATCH]
                await store.append(
                    wf, [NewEvent(e.event_id, e.type, e.model_dump(mode="json")) for e in batch], version
                )
                version += len(batch)
                relay.notify()
                await normal_reached(version)
                if not resume_reading.is_set() and await slow_drops(http) >= 1:
                    resume_reading.set()
            normal_code = await asyncio.wait_for(normal_task, WAIT)
            for _ in range(int(WAIT * 10)):
                if resume_reading.is_set() or await slow_drops(http) >= 1:
                    break
                await asyncio.sleep(0.1)
            assert await slow_drops(http) == 1, "the stalled client was never dropped"
            resume_reading.set()
            slow_code = await asyncio.wait_for(slow_task, WAIT)
        finally:
            for task in (normal_task, slow_task):
                task.cancel()

    assert normal_positions == list(range(1, last + 1))
    assert normal_code == 1000
    assert slow_code == 1013
    assert 1 < len(stalled.positions) < last
    assert stalled.positions == list(range(1, len(stalled.positions) + 1))
