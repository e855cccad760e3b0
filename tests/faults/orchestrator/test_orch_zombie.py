"""A zombie agent: frozen with SIGSTOP past its heartbeat timeout, its task is re-issued as a
new attempt to another instance and completed; woken with SIGCONT, its late completion of the
old attempt is recorded as stale and never completes the task a second time."""

from __future__ import annotations

import signal
import sys
import uuid
from collections import Counter
from pathlib import Path

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

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "integration" / "orchestrator"))
from orch_helpers import events_of, log_lines, wait_for, wait_until  # noqa: E402

from taskloom.bus import Bus  # noqa: E402
from taskloom.contracts.enums import TaskStateName, WorkflowStateName  # noqa: E402
from taskloom.contracts.graph import RetryPolicy, TaskGraph, TaskInputs, TaskSpec  # noqa: E402
from taskloom.contracts.workflow import TaskState, WorkflowState  # noqa: E402
from taskloom.eventstore import EventStore  # noqa: E402
from taskloom.settings import Settings  # noqa: E402


def graph() -> TaskGraph:
    retry = RetryPolicy(max_attempts=3, backoff_strategy="fixed", base_delay_seconds=0.2)
    return TaskGraph(
        request_id="r",
        tasks=[
            TaskSpec(
                task_id="A",
                task_type="work",
                assigned_agent="core-services",
                inputs=TaskInputs(input_parameters={"sleep": 2.0}),
                heartbeat_timeout=1.5,
                retry_policy=retry,
                timeout=30,
            ),
            # long enough to be running when the zombie wakes up, so the workflow is still live
            TaskSpec(
                task_id="B",
                task_type="work",
                assigned_agent="core-services",
                dependencies=["A"],
                inputs=TaskInputs(input_parameters={"sleep": 4.0}),
                timeout=30,
            ),
        ],
    )


def task_of(state: WorkflowState, task_id: str) -> TaskState:
    return next(t for t in state.task_states if t.task_id == task_id)


@pytest.mark.slow
@pytest.mark.timeout(120)
async def test_zombie_agent_never_completes_twice(settings: Settings, namespace: str, tmp_path: Path) -> None:
    procs = Processes(settings, schema=namespace)
    bus = await Bus.connect(settings, name="zombie-test")
    store = EventStore.connect(settings.database_url or "", 4, schema=namespace)
    zombie_log, healthy_log = tmp_path / "zombie.log", tmp_path / "healthy.log"
    zombie = None
    try:
        await bus.ensure_streams()
        port = free_port()
        procs.orchestrator(TASKLOOM_HTTP_PORT=str(port))
        zombie = procs.agent(
            "core-services", "complete", "--instance", "zombie", "--log", str(zombie_log), "--ignore-cancel"
        )
        await wait_ready(port)
        wf = str(uuid.uuid4())
        await submit_graph(bus, wf, graph())
        await wait_for(store, wf, lambda s: task_of(s, "A").state == TaskStateName.RUNNING)
        await wait_until(lambda: ["assigned", wf, "A", "1"] in log_lines(zombie_log), "the zombie took A")

        zombie.send_signal(signal.SIGSTOP)
        procs.agent("core-services", "complete", "--instance", "healthy", "--log", str(healthy_log))
        state = await wait_for(
            store,
            wf,
            lambda s: (
                task_of(s, "A").state == TaskStateName.COMPLETED
                and task_of(s, "B").state == TaskStateName.RUNNING
            ),
            timeout=30,
        )
        assert task_of(state, "A").attempts == 2 and task_of(state, "A").outputs["instance"] == "healthy"
        timed_out = await events_of(store, wf, "TaskTimedOut")
        assert [(e["task_id"], e["attempt"], e["reason"]) for e in timed_out] == [("A", 1, "heartbeat")]
        assert ["assigned", wf, "A", "2"] in log_lines(healthy_log)

        zombie.send_signal(signal.SIGCONT)
        await wait_until(
            lambda: ["completed", wf, "A", "1"] in log_lines(zombie_log), "the zombie finished", 15
        )

        async def stale_completion_recorded() -> bool:
            stale = await events_of(store, wf, "StaleUpdateRecorded")
            return any(
                e["task_id"] == "A" and e["attempt"] == 1 and e["status"] == "completed" for e in stale
            )

        await wait_until(stale_completion_recorded, "the late completion was recorded as stale", 15)
        final = (await wait_all_terminal(store, [wf], timeout=30))[wf]
        assert final.current_state == WorkflowStateName.COMPLETED
        assert await completions(store, wf) == Counter("AB")
        done = await events_of(store, wf, "TaskCompleted")
        assert [(e["task_id"], e["attempt"]) for e in done] == [("A", 2), ("B", 1)]
        stale = await events_of(store, wf, "StaleUpdateRecorded")
        # the zombie's updates for attempt 1, and any progress of attempt 2 that the concurrent
        # consumers delivered after its completion, are recorded; none of them changed A
        from_zombie = [e for e in stale if e["task_id"] == "A" and e["attempt"] == 1]
        assert from_zombie and all(e["current_attempt"] == 2 for e in from_zombie)
        late = [e for e in stale if e not in from_zombie]
        assert all(e["attempt"] == e["current_attempt"] and e["status"] != "completed" for e in late)
        assert task_of(final, "A").outputs["instance"] == "healthy"  # the zombie's outputs are not taken
        assert final.quality_metrics["stale_updates"] == len(stale)
        await assert_replay_matches(store, wf, final)
    finally:
        if zombie is not None and zombie.poll() is None:
            zombie.send_signal(signal.SIGCONT)  # never leave a frozen process behind
        procs.close()
        await store.close()
        await bus.drain(timeout=5)
