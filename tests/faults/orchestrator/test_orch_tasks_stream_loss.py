"""Deleting the TASKS stream mid-run (assignments waiting in it are gone, with the agents'
consumer) loses no task: once the platform re-creates the stream and an agent comes back, the
orchestrator re-issues every assignment that shows no progress by its deadline and every
workflow completes, each task exactly once."""

from __future__ import annotations

import asyncio
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
from orch_helpers import log_lines, wait_until  # noqa: E402

from taskloom.bus import Bus, StreamKind  # noqa: E402
from taskloom.contracts.enums import WorkflowStateName  # noqa: E402
from taskloom.contracts.graph import RetryPolicy, TaskGraph, TaskInputs, TaskSpec  # noqa: E402
from taskloom.eventstore import EventStore  # noqa: E402
from taskloom.orchestrator import queries  # noqa: E402
from taskloom.settings import Settings  # noqa: E402


def graph() -> TaskGraph:
    def t(i: str, deps: list[str]) -> TaskSpec:
        return TaskSpec(
            task_id=i,
            task_type="work",
            assigned_agent="core-services",
            dependencies=deps,
            inputs=TaskInputs(input_parameters={"sleep": 0.5}),
            timeout=4,  # an assignment nobody started is re-issued 4 s after it was sent
            retry_policy=RetryPolicy(max_attempts=3, backoff_strategy="fixed", base_delay_seconds=0.2),
        )

    return TaskGraph(request_id="r", tasks=[t("A", []), t("B", ["A"]), t("C", ["B"])])


@pytest.mark.slow
@pytest.mark.timeout(150)
async def test_deleting_the_tasks_stream_loses_no_task(
    settings: Settings, namespace: str, tmp_path: Path
) -> None:
    procs = Processes(settings, schema=namespace)
    bus = await Bus.connect(settings, name="stream-loss-test")
    store = EventStore.connect(settings.database_url or "", 4, schema=namespace)
    first_log = tmp_path / "first.log"
    tasks_stream = bus.stream_name(StreamKind.TASKS)
    try:
        await bus.ensure_streams()
        port = free_port()
        procs.orchestrator(TASKLOOM_HTTP_PORT=str(port))
        first = procs.agent("core-services", "complete", "--log", str(first_log))
        await wait_ready(port)
        ids = [str(uuid.uuid4()) for _ in range(10)]
        for wf in ids:
            await submit_graph(bus, wf, graph())
        # the agent works on four tasks at a time: the other assignments wait in the stream
        await wait_until(
            lambda: sum(1 for line in log_lines(first_log) if line[0] == "assigned") >= 4,
            "the agent got busy",
        )
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        waiting = (await bus.js.stream_info(tasks_stream)).state.messages
        assert waiting > 0  # assignments that only the stream held

        await bus.js.delete_stream(tasks_stream)
        await asyncio.sleep(0.5)
        await bus.ensure_streams()  # the platform comes back: an empty TASKS stream
        procs.agent("core-services", "complete")

        states = await wait_all_terminal(store, ids, timeout=90)
        reissued = 0
        for wf in ids:
            assert states[wf].current_state == WorkflowStateName.COMPLETED, wf
            assert await completions(store, wf) == Counter("ABC")
            records = await queries.get_events(store, wf)
            reissued += sum(
                1 for r in records if r.type == "TaskTimedOut" and r.data["reason"] == "not_started"
            )
            await assert_replay_matches(store, wf, states[wf])
        assert reissued >= waiting - 4  # the in-flight ones time out by deadline instead
        assert reissued > 0
    finally:
        procs.close()
        await store.close()
        await bus.drain(timeout=5)
