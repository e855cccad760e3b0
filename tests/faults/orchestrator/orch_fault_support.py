"""Processes and waits shared by the orchestrator's fault tests: orchestrators and scripted
agents as real subprocesses (every one killed in ``close``), graphs submitted over the bus."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import httpx

from taskloom.bus import Bus
from taskloom.contracts.graph import TaskGraph
from taskloom.contracts.messages import GraphConstructed
from taskloom.contracts.requests import ComplexRequest, Requirements
from taskloom.contracts.workflow import WorkflowState
from taskloom.eventstore import EventStore
from taskloom.orchestrator import queries
from taskloom.settings import Settings

AGENT = Path(__file__).resolve().parents[2] / "integration" / "orchestrator" / "scripted_agent.py"


class Processes:
    """Every subprocess a test starts; ``close`` kills whatever still runs."""

    def __init__(self, settings: Settings, schema: str) -> None:
        self.settings = settings
        self.schema = schema
        self.started: list[subprocess.Popen[bytes]] = []

    def orchestrator(self, **env: str) -> subprocess.Popen[bytes]:
        s = self.settings
        full = {
            **os.environ,
            "TASKLOOM_NATS_URL": s.nats_url or "",
            "TASKLOOM_DATABASE_URL": s.database_url or "",
            "TASKLOOM_NAMESPACE": s.namespace,
            "TASKLOOM_DB_SCHEMA": self.schema,
            "TASKLOOM_HTTP_PORT": "0",
            "TASKLOOM_MAX_CONCURRENT_WORKFLOWS": "20",
            "TASKLOOM_LOG_LEVEL": "WARNING",
            **env,
        }
        return self._start([sys.executable, "-m", "taskloom.orchestrator"], full)

    def agent(
        self, agent: str = "core-services", mode: str = "complete", *extra: str
    ) -> subprocess.Popen[bytes]:
        s = self.settings
        cmd = [sys.executable, str(AGENT), "--nats", s.nats_url or "", "--namespace", s.namespace]
        env = {**os.environ, "TASKLOOM_LOG_LEVEL": "WARNING"}
        return self._start([*cmd, "--agent", agent, "--mode", mode, *extra], env)

    def _start(self, cmd: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(cmd, env=env)  # noqa: S603 - our own programs
        self.started.append(proc)
        return proc

    def close(self) -> None:
        for p in self.started:
            if p.poll() is None:
                p.kill()
            p.wait(timeout=10)


async def submit_graph(bus: Bus, workflow_id: str, graph: TaskGraph) -> None:
    request = ComplexRequest(requirements=Requirements(functional=["do it"]))
    msg = GraphConstructed(workflow_id=workflow_id, owner="alice", request=request, graph=graph)
    await bus.publish(bus.subjects.graph_constructed(workflow_id), msg)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_ready(port: int, timeout: float = 30.0) -> None:
    """Wait until the process serving probes on ``port`` has started (its consumers run)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    async with httpx.AsyncClient() as client:
        while loop.time() < end:
            try:
                if (await client.get(f"http://127.0.0.1:{port}/ready", timeout=2)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)
    raise AssertionError(f"the process on port {port} was not ready within {timeout}s")


async def wait_schema(store: EventStore, timeout: float = 30.0) -> None:
    """Wait until an orchestrator has migrated the read model the test polls."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        try:
            await queries.get_workflow(store, "nothing")
            return
        except Exception:
            if loop.time() > end:
                raise
            await asyncio.sleep(0.2)


async def wait_all_terminal(
    store: EventStore, ids: Iterable[str], timeout: float
) -> dict[str, WorkflowState]:
    """Every workflow's terminal state; fails naming the stragglers after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    await wait_schema(store)
    pending = set(ids)
    done: dict[str, WorkflowState] = {}
    while pending and loop.time() < end:
        for wf in list(pending):
            state = await queries.get_workflow(store, wf)
            if state is not None and state.current_state.terminal:
                done[wf] = state
                pending.discard(wf)
        if pending:
            await asyncio.sleep(0.25)
    assert not pending, f"{len(pending)} workflows never finished: {sorted(pending)[:3]}"
    return done


async def completions(store: EventStore, workflow_id: str) -> Counter[str]:
    """How many ``TaskCompleted`` events each task of the workflow has."""
    records = await queries.get_events(store, workflow_id)
    return Counter(r.data["task_id"] for r in records if r.type == "TaskCompleted")


async def assert_replay_matches(store: EventStore, workflow_id: str, state: WorkflowState) -> None:
    replayed = await queries.state_at(store, workflow_id)
    assert replayed.model_dump() == state.model_dump(), workflow_id
