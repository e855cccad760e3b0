"""max_concurrent_workflows against the real stores: a burst of workflows over the limit is
queued, not refused, admitted in priority order as running ones finish, and the number running
never exceeds the limit."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime

from orch_helpers import submit_graph, terminal, wait_for

from taskloom.bus import Bus
from taskloom.contracts.enums import Priority
from taskloom.contracts.graph import TaskGraph, TaskInputs, TaskSpec
from taskloom.eventstore import EventStore
from taskloom.orchestrator import queries
from taskloom.orchestrator.domain import Limits
from taskloom.orchestrator.service import Orchestrator

LIMIT = 2


def graph(priority: Priority) -> TaskGraph:
    task = TaskSpec(
        task_id="A",
        task_type="work",
        assigned_agent="core-services",
        inputs=TaskInputs(input_parameters={"sleep": 0.4}),
        timeout=30,
    )
    return TaskGraph(request_id="r", tasks=[task], priority=priority)


async def test_a_burst_over_the_limit_is_queued_and_admitted_in_turn(
    orchestrator_with: Callable[[Limits], Awaitable[Orchestrator]],
    bus: Bus,
    store: EventStore,
    agents: object,
) -> None:
    await orchestrator_with(Limits(max_concurrent_workflows=LIMIT, heartbeat_timeout_seconds=30))
    agents("core-services", "complete")  # type: ignore[operator]
    first = [str(uuid.uuid4()) for _ in range(LIMIT)]
    for wf in first:
        await submit_graph(bus, wf, graph(Priority.MEDIUM))
    for wf in first:
        await wait_for(store, wf, lambda s: s.current_state.value == "running")
    # the limit is reached: these wait; the urgent one was submitted last but goes first
    low = [str(uuid.uuid4()) for _ in range(3)]
    for wf in low:
        await submit_graph(bus, wf, graph(Priority.LOW))
    urgent = str(uuid.uuid4())
    await submit_graph(bus, urgent, graph(Priority.URGENT))
    everyone = [*first, *low, urgent]
    states = await asyncio.gather(*(wait_for(store, wf, terminal, timeout=60) for wf in everyone))
    assert all(s.current_state.value == "completed" for s in states)

    # from the event history: how many were running at each moment, and who started when
    spans: dict[str, tuple[datetime, datetime]] = {}
    for wf in everyone:
        records = await queries.get_events(store, wf)
        started = next(r.data["occurred_at"] for r in records if r.type == "WorkflowStarted")
        ended = next(r.data["occurred_at"] for r in records if r.type == "WorkflowCompleted")
        spans[wf] = (datetime.fromisoformat(started), datetime.fromisoformat(ended))
        if wf in low or wf == urgent:
            assert "WorkflowQueued" in [r.type for r in records], "over the limit: queued first"
    moments = sorted({t for span in spans.values() for t in span})
    for t in moments:
        running = sum(1 for s, e in spans.values() if s <= t < e)
        assert running <= LIMIT, f"{running} workflows running at {t}"
    assert spans[urgent][0] <= min(spans[wf][0] for wf in low), "priority order of admission"


async def test_the_admission_loop_ends_when_woken_as_it_is_cancelled(
    orchestrator_with: Callable[[Limits], Awaitable[Orchestrator]],
) -> None:
    """A finished workflow wakes the admission loop; a cancellation in the same loop turn (the
    orchestrator stopping) must still end it: asyncio.wait_for on Python 3.11 swallowed it, and
    stop() then waited for the loop forever."""
    orchestrator = await orchestrator_with(Limits(max_concurrent_workflows=LIMIT))
    [admission] = [t for t in orchestrator._tasks if t.get_name() == "orchestrator-admission"]
    await asyncio.sleep(0.3)  # the loop waits for its event
    orchestrator._admission.set()
    admission.cancel()
    await asyncio.wait({admission}, timeout=5)
    try:
        assert admission.done() and admission.cancelled()
    finally:
        while not admission.done():  # a loop that swallowed its cancellation is cancelled again
            admission.cancel()
            await asyncio.wait({admission}, timeout=1)
