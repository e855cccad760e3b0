"""End to end against real NATS + PostgreSQL with scripted agents as subprocesses."""

from __future__ import annotations

import asyncio
import uuid

from orch_helpers import submit_graph, terminal, wait_for, wait_until

from taskloom.contracts.enums import ExecutionStrategyType, TaskStateName, WorkflowStateName
from taskloom.contracts.events import parse_event
from taskloom.contracts.graph import ExecutionStrategy, RetryPolicy, TaskGraph, TaskSpec
from taskloom.orchestrator import queries
from taskloom.orchestrator.domain import fold
from taskloom.orchestrator.domain.evolve import empty


def spec(task_id: str, deps: list[str] | None = None, agent: str = "core-services", **kw: object) -> TaskSpec:
    kw.setdefault("timeout", 20)
    return TaskSpec(task_id=task_id, task_type="work", assigned_agent=agent, dependencies=deps or [], **kw)  # type: ignore[arg-type]


def feature(strategy: ExecutionStrategyType = ExecutionStrategyType.MIXED) -> TaskGraph:
    return TaskGraph(
        request_id="r",
        tasks=[
            spec("A"),
            spec("B", ["A"]),
            spec("C", ["A"]),
            spec("D", ["A"]),
            spec("E", ["B", "C", "D"]),
            spec("F", ["E"]),
            spec("G", ["E"]),
            spec("H", ["F", "G"]),
        ],
        execution_strategy=ExecutionStrategy(type=strategy),
    )


async def test_graphs_of_every_strategy_complete(orchestrator, bus, store, agents) -> None:
    agents("core-services", "complete", "--dup3")
    ids = {s: str(uuid.uuid4()) for s in ExecutionStrategyType}
    for s, wf in ids.items():
        await submit_graph(bus, wf, feature(s))
    for s, wf in ids.items():
        state = await wait_for(store, wf, terminal)
        assert state.current_state == WorkflowStateName.COMPLETED, s
        assert state.progress.completion_percentage == 100
        result = await queries.get_result(store, wf)
        assert result is not None and result.success and len(result.completed_tasks) == 8
        records = await queries.get_events(store, wf)
        completed = [r.data["task_id"] for r in records if r.type == "TaskCompleted"]
        assert sorted(completed) == list("ABCDEFGH")  # each exactly once despite triple delivery
        replayed = fold(empty(wf), [parse_event(r.data) for r in records])
        assert replayed.version == state.version
        assert (await queries.state_at(store, wf)).model_dump() == state.model_dump()  # replay == read model
        earlier = await queries.state_at(store, wf, 2)
        assert earlier.version == 2 and earlier.current_state == WorkflowStateName.RUNNING


async def test_failing_agent_retries_escalates_and_partially_succeeds(
    orchestrator, bus, store, agents
) -> None:
    agents("core-services", "fail:1")
    agents("mcp-protocol", "fail-always")
    agents("testing-specialist", "complete")
    fast = RetryPolicy(max_attempts=2, backoff_strategy="exponential", base_delay_seconds=0.2)
    graph = TaskGraph(
        request_id="r",
        tasks=[
            spec("retried", retry_policy=fast),
            spec("escalated", agent="mcp-protocol", retry_policy=fast, backup_agents=["testing-specialist"]),
            spec(
                "doomed",
                agent="mcp-protocol",
                retry_policy=RetryPolicy(max_attempts=2, base_delay_seconds=0.1),
            ),
            spec("after_doomed", ["doomed"]),
        ],
    )
    wf = str(uuid.uuid4())
    await submit_graph(bus, wf, graph)
    state = await wait_for(store, wf, terminal)
    tasks = {t.task_id: t for t in state.task_states}
    assert tasks["retried"].state == TaskStateName.COMPLETED and tasks["retried"].attempts == 2
    assert tasks["escalated"].state == TaskStateName.COMPLETED
    assert tasks["escalated"].assigned_agent == "testing-specialist" and tasks["escalated"].attempts == 3
    assert tasks["doomed"].state == TaskStateName.FAILED
    assert tasks["after_doomed"].state == TaskStateName.SKIPPED
    result = await queries.get_result(store, wf)
    assert result is not None and result.partial_success and result.failed_tasks == ["doomed"]
    assert result.metadata["error_recovery"]["reassignments"] == 1
    types = [r.type for r in await queries.get_events(store, wf)]
    assert "TaskRetryScheduled" in types and "TaskReassigned" in types


async def test_silent_agent_times_out_by_heartbeat(orchestrator, bus, store, agents) -> None:
    agents("core-services", "silent")
    graph = TaskGraph(
        request_id="r",
        tasks=[
            spec("A", heartbeat_timeout=0.5, retry_policy=RetryPolicy(max_attempts=2, base_delay_seconds=0.1))
        ],
    )
    wf = str(uuid.uuid4())
    await submit_graph(bus, wf, graph)
    state = await wait_for(store, wf, terminal)
    assert state.current_state == WorkflowStateName.FAILED
    records = await queries.get_events(store, wf)
    reasons = [r.data["reason"] for r in records if r.type == "TaskTimedOut"]
    assert reasons == ["heartbeat", "heartbeat"]


async def test_a_graph_for_a_finished_workflow_changes_nothing(orchestrator, bus, store, agents) -> None:
    """A graph for a workflow the process does not hold is decided from the empty state without
    a read; for a workflow that exists after all (here: finished, so no longer cached) the
    append collides with its stored versions, nothing is kept, and the retry loads it."""
    agents("core-services", "complete")
    wf = str(uuid.uuid4())
    await submit_graph(bus, wf, feature())
    done = await wait_for(store, wf, terminal)
    processor = orchestrator.processor
    assert wf not in processor.cache
    before = await queries.get_events(store, wf)
    conflicts, batches = processor.conflicts, processor.batches
    await submit_graph(bus, wf, feature())  # a new message id: not dropped as a redelivery
    # the collision, then a successful decision on the loaded state (which appends nothing)
    await wait_until(lambda: processor.conflicts > conflicts and processor.batches > batches, "reload")
    await asyncio.sleep(0.3)  # room for a wrong second start to be committed
    after = await queries.get_events(store, wf)
    assert [r.event_id for r in after] == [r.event_id for r in before]
    assert (await queries.get_workflow(store, wf)) == done
