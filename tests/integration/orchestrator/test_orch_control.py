"""Cancel, pause and resume over NATS commands during a run, with a scripted agent subprocess
that logs the assignments and cancel signals it receives."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from orch_helpers import event_types, events_of, log_lines, submit_graph, terminal, wait_for, wait_until

from taskloom.contracts.enums import TaskStateName, WorkflowStateName
from taskloom.contracts.graph import TaskGraph, TaskInputs, TaskSpec
from taskloom.contracts.messages import CancelWorkflow, PauseWorkflow, ResumeWorkflow
from taskloom.orchestrator import queries


def spec(task_id: str, deps: list[str] | None = None, sleep: float = 0.0) -> TaskSpec:
    return TaskSpec(
        task_id=task_id,
        task_type="work",
        assigned_agent="core-services",
        dependencies=deps or [],
        inputs=TaskInputs(input_parameters={"sleep": sleep} if sleep else {}),
        timeout=30,
    )


def task_state(state: Any, task_id: str) -> TaskStateName:
    return next(t.state for t in state.task_states if t.task_id == task_id)


async def send_twice(
    bus: Any, command: str, message: CancelWorkflow | PauseWorkflow | ResumeWorkflow
) -> None:
    """The same message twice (a redelivery) and a second, distinct request for the same thing."""
    subject = bus.subjects.command(command)
    await bus.publish(subject, message)
    await bus.publish(subject, message)
    await bus.publish(subject, message.model_copy(update={"message_id": str(uuid.uuid4())}))


async def test_pause_holds_dispatch_and_resume_continues(orchestrator, bus, store, agents, tmp_path) -> None:
    log = tmp_path / "agent.log"
    agents("core-services", "complete", "--log", str(log))
    wf = str(uuid.uuid4())
    await submit_graph(bus, wf, TaskGraph(request_id="r", tasks=[spec("A", sleep=1.0), spec("B", ["A"])]))
    await wait_for(store, wf, lambda s: task_state(s, "A") == TaskStateName.RUNNING)

    await send_twice(bus, "pause", PauseWorkflow(workflow_id=wf, requested_by="alice"))
    paused = await wait_for(store, wf, lambda s: s.current_state == WorkflowStateName.PAUSED)
    assert task_state(paused, "A") == TaskStateName.RUNNING  # pausing does not stop running work
    # A finishes while paused: its completion is recorded, but B is not dispatched
    done = await wait_for(store, wf, lambda s: task_state(s, "A") == TaskStateName.COMPLETED)
    assert done.current_state == WorkflowStateName.PAUSED
    await asyncio.sleep(0.5)  # room for a wrong dispatch to show up
    still = await queries.get_workflow(store, wf)
    assert still is not None and still.current_state == WorkflowStateName.PAUSED
    assert task_state(still, "B") == TaskStateName.PENDING
    assert [e["task_id"] for e in await events_of(store, wf, "TaskAssigned")] == ["A"]
    assert [line[2] for line in log_lines(log) if line[0] == "assigned"] == ["A"]

    await send_twice(bus, "resume", ResumeWorkflow(workflow_id=wf, requested_by="alice"))
    final = await wait_for(store, wf, terminal)
    assert final.current_state == WorkflowStateName.COMPLETED
    types = await event_types(store, wf)
    assert types.count("WorkflowPaused") == 1 and types.count("WorkflowResumed") == 1
    assert types.index("WorkflowPaused") < types.index("TaskCompleted") < types.index("WorkflowResumed")
    assert types.index("WorkflowResumed") < len(types) - 1 - types[::-1].index("TaskAssigned")
    assert [line[2] for line in log_lines(log) if line[0] == "assigned"] == ["A", "B"]
    # a resume or pause of a finished workflow changes nothing
    await send_twice(bus, "pause", PauseWorkflow(workflow_id=wf))
    await send_twice(bus, "resume", ResumeWorkflow(workflow_id=wf))
    await asyncio.sleep(0.3)
    assert (await queries.get_workflow(store, wf)).version == final.version  # type: ignore[union-attr]


async def test_cancel_stops_running_tasks_and_is_idempotent(
    orchestrator, bus, store, agents, tmp_path
) -> None:
    log = tmp_path / "agent.log"
    agents("core-services", "complete", "--log", str(log))
    wf, other = str(uuid.uuid4()), str(uuid.uuid4())
    graph = TaskGraph(
        request_id="r",
        tasks=[spec("A", sleep=20), spec("B", sleep=20), spec("C", ["A", "B"])],
    )
    await submit_graph(bus, wf, graph)
    await submit_graph(bus, other, TaskGraph(request_id="r", tasks=[spec("A", sleep=0.5), spec("B", ["A"])]))
    await wait_for(
        store,
        wf,
        lambda s: task_state(s, "A") == TaskStateName.RUNNING and task_state(s, "B") == TaskStateName.RUNNING,
    )

    await send_twice(
        bus, "cancel", CancelWorkflow(workflow_id=wf, requested_by="alice", reason="changed plans")
    )
    final = await wait_for(store, wf, terminal)
    assert final.current_state == WorkflowStateName.CANCELLED
    assert {t.task_id: t.state for t in final.task_states} == {
        "A": TaskStateName.CANCELLED,
        "B": TaskStateName.CANCELLED,
        "C": TaskStateName.CANCELLED,
    }
    # the agent is told to stop both running tasks, and stops them
    await wait_until(
        lambda: {(w, t) for kind, w, t, *_ in log_lines(log) if kind == "stopped"} == {(wf, "A"), (wf, "B")},
        "the agent stopped A and B",
    )
    assert sorted(line[2] for line in log_lines(log) if line[0] == "cancel" and line[1] == wf) == ["A", "B"]
    # the other workflow is untouched
    assert (await wait_for(store, other, terminal)).current_state == WorkflowStateName.COMPLETED
    assert not any(line[1] == other for line in log_lines(log) if line[0] in ("cancel", "stopped"))

    await send_twice(bus, "cancel", CancelWorkflow(workflow_id=wf, requested_by="bob"))
    await send_twice(bus, "resume", ResumeWorkflow(workflow_id=wf))
    await asyncio.sleep(0.3)
    types = await event_types(store, wf)
    assert types.count("WorkflowCancelled") == 1 and types.count("TaskCancelled") == 3
    assert "TaskCompleted" not in types
    cancelled = (await events_of(store, wf, "WorkflowCancelled"))[0]
    assert cancelled["requested_by"] == "alice" and cancelled["reason"] == "changed plans"
    after = await queries.get_workflow(store, wf)
    assert after is not None and after.version == final.version
    assert after.model_dump() == (await queries.state_at(store, wf)).model_dump()
    result = await queries.get_result(store, wf)
    assert result is not None and not result.success
    assert sorted(result.metadata["cancelled_tasks"]) == ["A", "B", "C"]
