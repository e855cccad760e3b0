"""Crash safety: the orchestrator process is killed with SIGKILL at random moments while 50
workflows run; every workflow still ends, no task completes twice, no assignment is lost, and
replaying each stream gives exactly the read model."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path

import pytest

from taskloom.bus import Bus
from taskloom.contracts.enums import WorkflowStateName
from taskloom.contracts.graph import TaskGraph, TaskSpec
from taskloom.contracts.messages import GraphConstructed
from taskloom.contracts.requests import ComplexRequest, Requirements
from taskloom.eventstore import EventStore
from taskloom.orchestrator import queries
from taskloom.settings import Settings

AGENT = Path(__file__).resolve().parents[2] / "integration" / "orchestrator" / "scripted_agent.py"


async def submit_graph(bus: Bus, workflow_id: str, graph: TaskGraph) -> None:
    request = ComplexRequest(requirements=Requirements(functional=["do it"]))
    msg = GraphConstructed(workflow_id=workflow_id, owner="alice", request=request, graph=graph)
    await bus.publish(bus.subjects.graph_constructed(workflow_id), msg)


def graph() -> TaskGraph:
    def t(i: str, deps: list[str]) -> TaskSpec:
        return TaskSpec(
            task_id=i, task_type="work", assigned_agent="core-services", dependencies=deps, timeout=8
        )

    return TaskGraph(request_id="r", tasks=[t("A", []), t("B", ["A"]), t("C", ["A"]), t("D", ["B", "C"])])


def start_orchestrator(settings: Settings, schema: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "TASKLOOM_NATS_URL": settings.nats_url or "",
        "TASKLOOM_DATABASE_URL": settings.database_url or "",
        "TASKLOOM_NAMESPACE": settings.namespace,
        "TASKLOOM_DB_SCHEMA": schema,
        "TASKLOOM_HTTP_PORT": "0",
        "TASKLOOM_MAX_CONCURRENT_WORKFLOWS": "20",
        "TASKLOOM_LOG_LEVEL": "WARNING",
    }
    return subprocess.Popen([sys.executable, "-m", "taskloom.orchestrator"], env=env)  # noqa: S603


@pytest.mark.slow
@pytest.mark.timeout(240)
async def test_kill_9_during_50_workflows(settings: Settings, namespace: str) -> None:
    schema = namespace
    procs: list[subprocess.Popen[bytes]] = []
    bus = await Bus.connect(settings, name="crash-test")
    store = EventStore.connect(settings.database_url or "", 4, schema=schema)
    rng = random.Random(7)
    try:
        await bus.ensure_streams()
        agent_cmd = [sys.executable, str(AGENT), "--nats", settings.nats_url or "", "--namespace", namespace]
        procs.append(subprocess.Popen([*agent_cmd, "--agent", "core-services", "--mode", "slow:0.2"]))  # noqa: S603
        orch = start_orchestrator(settings, schema)
        procs.append(orch)
        ids = [str(uuid.uuid4()) for _ in range(50)]
        for wf in ids:
            await submit_graph(bus, wf, graph())
        for _ in range(5):
            await asyncio.sleep(rng.uniform(0.8, 2.0))
            orch.send_signal(signal.SIGKILL)
            orch.wait(timeout=10)
            orch = start_orchestrator(settings, schema)
            procs.append(orch)
        loop = asyncio.get_running_loop()
        end = loop.time() + 150
        pending = set(ids)
        while pending and loop.time() < end:
            for wf in list(pending):
                state = await queries.get_workflow(store, wf)
                if state is not None and state.current_state.terminal:
                    pending.discard(wf)
            await asyncio.sleep(0.5)
        assert not pending, f"{len(pending)} workflows never finished"
        for wf in ids:
            state = await queries.get_workflow(store, wf)
            assert state is not None and state.current_state == WorkflowStateName.COMPLETED
            records = await queries.get_events(store, wf)
            completed = Counter(r.data["task_id"] for r in records if r.type == "TaskCompleted")
            assert completed == Counter("ABCD")  # every task once: nothing lost, nothing twice
            assert (await queries.state_at(store, wf)).model_dump() == state.model_dump()
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait(timeout=10)
        await store.close()
        await bus.drain(timeout=5)
