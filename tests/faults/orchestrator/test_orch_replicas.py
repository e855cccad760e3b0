"""Two orchestrator replicas (two real processes) on the same NATS and PostgreSQL share one
load: every workflow finishes, no task completes twice, no attempt is dispatched twice, and
replaying each stream gives exactly the read model."""

from __future__ import annotations

import uuid
from collections import Counter

import pytest
from orch_fault_support import (
    Processes,
    assert_replay_matches,
    completions,
    free_port,
    submit_graph,
    wait_all_terminal,
    wait_ready,
)

from taskloom.bus import Bus
from taskloom.contracts.enums import WorkflowStateName
from taskloom.contracts.graph import TaskGraph, TaskSpec
from taskloom.eventstore import EventStore
from taskloom.orchestrator import queries
from taskloom.settings import Settings


def graph() -> TaskGraph:
    def t(i: str, deps: list[str]) -> TaskSpec:
        return TaskSpec(
            task_id=i, task_type="work", assigned_agent="core-services", dependencies=deps, timeout=15
        )

    return TaskGraph(request_id="r", tasks=[t("A", []), t("B", ["A"]), t("C", ["A"]), t("D", ["B", "C"])])


@pytest.mark.slow
@pytest.mark.timeout(150)
async def test_two_replicas_process_the_same_load(settings: Settings, namespace: str) -> None:
    procs = Processes(settings, schema=namespace)
    bus = await Bus.connect(settings, name="replica-test")
    store = EventStore.connect(settings.database_url or "", 4, schema=namespace)
    try:
        await bus.ensure_streams()
        procs.agent("core-services", "complete", "--dup3")
        ports = [free_port(), free_port()]
        first, second = (procs.orchestrator(TASKLOOM_HTTP_PORT=str(p)) for p in ports)
        for port in ports:
            await wait_ready(port)  # both consume before the load arrives
        ids = [str(uuid.uuid4()) for _ in range(20)]
        for wf in ids:
            await submit_graph(bus, wf, graph())
        states = await wait_all_terminal(store, ids, timeout=90)
        assert first.poll() is None and second.poll() is None  # neither replica crashed
        for wf in ids:
            state = states[wf]
            assert state.current_state == WorkflowStateName.COMPLETED, wf
            assert await completions(store, wf) == Counter("ABCD")
            records = await queries.get_events(store, wf)
            attempts = Counter(
                (r.data["task_id"], r.data["attempt"]) for r in records if r.type == "TaskAssigned"
            )
            assert set(attempts.values()) == {1}, attempts  # no attempt dispatched by both replicas
            assert [r.version for r in records] == list(range(1, len(records) + 1))
            await assert_replay_matches(store, wf, state)
    finally:
        procs.close()
        await store.close()
        await bus.drain(timeout=5)
