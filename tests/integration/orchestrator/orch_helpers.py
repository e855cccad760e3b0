"""Helpers of the orchestrator's bus/database tests: submit a graph, wait for an outcome."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from taskloom.bus import Bus
from taskloom.contracts.graph import TaskGraph
from taskloom.contracts.messages import GraphConstructed
from taskloom.contracts.requests import ComplexRequest, Requirements
from taskloom.contracts.workflow import WorkflowState
from taskloom.eventstore import EventStore
from taskloom.orchestrator import queries

AGENT = Path(__file__).with_name("scripted_agent.py")


async def submit_graph(bus: Bus, workflow_id: str, graph: TaskGraph) -> None:
    msg = GraphConstructed(
        workflow_id=workflow_id,
        owner="alice",
        request=ComplexRequest(requirements=Requirements(functional=["do it"])),
        graph=graph,
    )
    await bus.publish(bus.subjects.graph_constructed(workflow_id), msg)


async def wait_for(
    store: EventStore, workflow_id: str, done: Callable[[WorkflowState], bool], timeout: float = 30.0
) -> WorkflowState:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    state = None
    while loop.time() < end:
        state = await queries.get_workflow(store, workflow_id)
        if state is not None and done(state):
            return state
        await asyncio.sleep(0.05)
    raise AssertionError(f"workflow {workflow_id} did not get there in {timeout}s; last state: {state}")


def terminal(state: WorkflowState) -> bool:
    return state.current_state.terminal


async def event_types(store: EventStore, workflow_id: str) -> list[str]:
    return [r.type for r in await queries.get_events(store, workflow_id)]


async def events_of(store: EventStore, workflow_id: str, event_type: str) -> list[dict[str, object]]:
    """The data of the workflow's stored events of one type, in order."""
    return [r.data for r in await queries.get_events(store, workflow_id) if r.type == event_type]


async def wait_until(check: Callable[[], object], what: str, timeout: float = 20.0) -> None:
    """Poll ``check`` (sync or async) until it is truthy."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while loop.time() < end:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{what}: not within {timeout}s")


def log_lines(path: Path) -> list[list[str]]:
    """A scripted agent's ``--log`` file as split lines (empty while it wrote nothing)."""
    return [line.split() for line in path.read_text().splitlines()] if path.exists() else []
