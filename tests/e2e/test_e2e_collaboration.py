"""Agent-to-agent collaboration end to end: consultation, review, handoff and merge issued by
agents through the SDK, run by the real agents host against the full stack, each checked in the
workflow's event history."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e_helpers import needs_full_stack

from taskloom.bus import Bus
from taskloom.cli.devstack import DevStack
from taskloom.contracts.graph import TaskGraph, TaskInputs, TaskSpec
from taskloom.contracts.messages import GraphConstructed
from taskloom.contracts.requests import ComplexRequest, Requirements
from taskloom.eventstore import EventStore
from taskloom.infra import StackInfo
from taskloom.orchestrator import queries
from taskloom.settings import Settings

pytestmark = [needs_full_stack, pytest.mark.slow, pytest.mark.timeout(120)]

HERE = Path(__file__).parent
SAMPLE = HERE.parents[1] / "examples" / "sample-project"
REQUESTER, HELPER = "collab-requester", "collab-helper"


@pytest.fixture(scope="module")
def collab_agents(full_stack: DevStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The two collaboration test agents in one real agents-host process on the stack's bus."""
    log = tmp_path_factory.mktemp("collab") / "agents.log"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
        "TASKLOOM_NATS_URL": full_stack.nats_url,
        "TASKLOOM_DATABASE_URL": full_stack.database_url,
        "TASKLOOM_NAMESPACE": full_stack.settings.namespace,
        "TASKLOOM_HTTP_PORT": "0",
    }
    with log.open("wb") as out:
        proc = subprocess.Popen(  # noqa: S603 - the project's own entry point
            [
                sys.executable,
                "-m",
                "taskloom.agents",
                "--agents",
                "collab_agents:CollabRequester,collab_agents:CollabHelper",
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            yield
            assert proc.poll() is None, f"the collaboration agents died:\n{log.read_text()[-3000:]}"
        finally:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


@pytest.fixture
async def bus(full_stack: DevStack) -> AsyncIterator[Bus]:
    b = await Bus.connect(
        Settings(nats_url=full_stack.nats_url, namespace=full_stack.settings.namespace), name="collab-test"
    )
    try:
        yield b
    finally:
        await b.drain(timeout=5)


@pytest.fixture
async def store(stack: StackInfo) -> AsyncIterator[EventStore]:
    s = EventStore.from_settings(Settings(database_url=stack.database_url, nats_url=stack.nats_url))
    try:
        yield s
    finally:
        await s.close()


def task(task_id: str, task_type: str, agent: str, deps: list[str] | None = None, **params: Any) -> TaskSpec:
    return TaskSpec(
        task_id=task_id,
        task_type=task_type,
        assigned_agent=agent,
        dependencies=deps or [],
        inputs=TaskInputs(input_parameters=params),
        timeout=60,
    )


async def run_graph(bus: Bus, store: EventStore, *tasks: TaskSpec) -> tuple[str, list[Any]]:
    """Hand a graph to the orchestrator, wait until the workflow ends; its stored events."""
    wf = str(uuid.uuid4())
    await bus.publish(
        bus.subjects.graph_constructed(wf),
        GraphConstructed(
            workflow_id=wf,
            owner="collab-e2e",
            request=ComplexRequest(requirements=Requirements(functional=["collaborate"])),
            graph=TaskGraph(request_id=wf, tasks=list(tasks)),
        ),
    )
    state = None
    for _ in range(900):
        state = await queries.get_workflow(store, wf)
        if state is not None and state.current_state.terminal:
            break
        await asyncio.sleep(0.1)
    assert state is not None and state.current_state.terminal, f"workflow {wf} did not finish: {state}"
    assert state.current_state.value == "completed", state.error
    return wf, await queries.get_events(store, wf)


def of_type(events: list[Any], event_type: str) -> list[dict[str, Any]]:
    return [e.data for e in events if e.type == event_type]


def completed(events: list[Any]) -> dict[str, dict[str, Any]]:
    return {e["task_id"]: e for e in of_type(events, "TaskCompleted")}


async def test_consultation_asks_a_specialist_and_gets_its_analysis(collab_agents, bus, store):
    _, events = await run_graph(
        bus,
        store,
        task(
            "ask",
            "consult_step",
            REQUESTER,
            consult_agent="core-services",
            consult_task_type="dependency_analysis",
            consult_parameters={"project_path": str(SAMPLE)},
        ),
    )
    outputs = completed(events)["ask"]["outputs"]
    assert outputs["ok"] is True, outputs["error"]
    assert outputs["consulted"] == "core-services"
    # the specialist really analysed the sample project for the asker: its unpinned dependency
    assert any("httpx" in str(f) for f in outputs["answer"]["findings"]), outputs["answer"]


async def test_consultation_is_in_the_event_history(collab_agents, bus, store):
    _, events = await run_graph(
        bus,
        store,
        task(
            "ask",
            "consult_step",
            REQUESTER,
            consult_agent="core-services",
            consult_task_type="dependency_analysis",
            consult_parameters={"project_path": str(SAMPLE)},
        ),
    )
    kinds = [e["request"]["collaboration_type"] for e in of_type(events, "CollaborationRequested")]
    assert "consultation" in kinds


async def test_review_adds_a_review_task_that_runs_and_completes(collab_agents, bus, store):
    _, events = await run_graph(bus, store, task("draft", "review_step", REQUESTER))
    [requested] = of_type(events, "CollaborationRequested")
    assert requested["request"]["collaboration_type"] == "review"
    assert requested["request"]["requesting_agent"] == REQUESTER
    cid = requested["request"]["collaboration_id"]
    [added] = of_type(events, "TaskAdded")
    review = added["task"]
    assert added["reason"].endswith(cid)
    assert review["assigned_agent"] == HELPER and review["task_type"] == "review_answer"
    assert review["dependencies"] == ["draft"]
    done = completed(events)
    assert done[review["task_id"]]["agent"] == HELPER
    assert done[review["task_id"]]["outputs"] == {"approved": True, "reviewed": "draft", "focus": "wording"}
    [closed] = of_type(events, "CollaborationCompleted")
    assert closed["collaboration_id"] == cid and closed["collaboration_type"] == "review"
    assert closed["outcome"]["tasks"] == {review["task_id"]: "completed"}
    assert closed["outcome"]["review"]["approved"] is True


async def test_handoff_passes_the_remaining_work_to_another_agent(collab_agents, bus, store):
    _, events = await run_graph(bus, store, task("start", "handoff_step", REQUESTER))
    [requested] = of_type(events, "CollaborationRequested")
    assert requested["request"]["collaboration_type"] == "handoff"
    assert requested["request"]["target_agents"] == [HELPER]
    [added] = of_type(events, "TaskAdded")
    handed = added["task"]
    assert handed["assigned_agent"] == HELPER and handed["task_type"] == "finish_step"
    done = completed(events)
    assert done["start"]["agent"] == REQUESTER
    assert done[handed["task_id"]]["agent"] == HELPER
    assert done[handed["task_id"]]["outputs"]["finished"] == ["write tests", "update docs"]
    assert done[handed["task_id"]]["outputs"]["handoff_of"] == "start"
    [closed] = of_type(events, "CollaborationCompleted")
    assert closed["collaboration_type"] == "handoff"
    assert closed["outcome"]["tasks"] == {handed["task_id"]: "completed"}


async def test_merge_resolves_conflicting_outputs(collab_agents, bus, store):
    _, events = await run_graph(
        bus,
        store,
        task("yes", "opinion_step", HELPER, verdict="ship"),
        task("no", "opinion_step", HELPER, verdict="hold"),
        task("decide", "merge_step", REQUESTER, ["yes", "no"], merge=["yes", "no"]),
    )
    [requested] = of_type(events, "CollaborationRequested")
    assert requested["request"]["collaboration_type"] == "merge"
    assert requested["request"]["context"]["task_ids"] == ["yes", "no"]
    detected = of_type(events, "ConflictDetected")
    assert detected and detected[0]["task_id"] == "decide"
    verdict = next(c for c in detected[0]["conflicts"] if c["key"] == "verdict")
    assert sorted(verdict["values"]) == ["hold", "needs-work", "ship"]
    [resolved] = of_type(events, "ConflictResolved")
    assert resolved["task_id"] == "decide"
    assert resolved["resolved_output"]["verdict"] in {"hold", "needs-work", "ship"}
    [closed] = of_type(events, "CollaborationCompleted")
    assert closed["collaboration_type"] == "merge" and closed["outcome"]["merged"] is True
    assert sorted(closed["outcome"]["sources"]) == sorted(
        [f"decide@{REQUESTER}", f"yes@{HELPER}", f"no@{HELPER}"]
    )
