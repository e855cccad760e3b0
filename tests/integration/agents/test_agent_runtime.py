"""The agent runtime as real processes on the real bus: shared work, redelivery after kill -9,
graceful SIGTERM, cancellation, timeouts, malformed input and the registry."""

from __future__ import annotations

import asyncio
import signal
from typing import Any

import pytest
from agents_testkit import ProgressLog, agent_processes, assignment, wait_registered

from taskloom.bus import DLQ_CONSUMER, DLQ_ERROR, DLQ_REASON, DLQ_SUBJECT, Bus, Topology
from taskloom.contracts import AgentRegistration, Subjects
from taskloom.contracts.subjects import registry_key
from taskloom.settings import Settings

SLEEPER = "agents_testkit:SleepyAgent"


async def publish(js: Any, subjects: Subjects, task: Any) -> None:
    await js.publish(
        subjects.tasks(task.assigned_agent),
        task.model_dump_json().encode(),
        headers={"Nats-Msg-Id": task.message_id},
    )


@pytest.mark.slow
async def test_replicas_share_work_and_a_killed_replica_task_is_redelivered(
    settings: Settings, subjects: Subjects, js: Any, progress_log: ProgressLog
) -> None:
    with agent_processes(settings, [("r1", SLEEPER), ("r2", SLEEPER)], ack_wait=2.0) as procs:
        await wait_registered(js, subjects, [registry_key("sleeper", "r1"), registry_key("sleeper", "r2")])
        for i in range(4):
            await publish(
                js, subjects, assignment("sleeper", "sleep", {"seconds": 0.6}, task_id=f"short-{i}")
            )
        for i in range(4):
            await progress_log.wait_for(
                lambda u, i=i: u.task_id == f"short-{i}" and u.status.value == "completed"
            )
        workers = {
            u.instance_id
            for u in progress_log.updates
            if u.task_id.startswith("short-") and u.status.value == "completed"
        }
        assert workers == {"r1", "r2"}

        await publish(js, subjects, assignment("sleeper", "sleep", {"seconds": 4}, task_id="long"))
        started = await progress_log.wait_for(lambda u: u.task_id == "long" and u.status.value == "started")
        victim = started.instance_id
        assert victim is not None
        procs[victim].send_signal(signal.SIGKILL)
        procs[victim].wait(timeout=10)
        done = await progress_log.wait_for(
            lambda u: u.task_id == "long" and u.status.value == "completed", timeout=40
        )
        assert done.instance_id != victim
        assert done.outputs == {"slept": 4.0, "summary": "slept 4.0s", "findings": []}
        await asyncio.sleep(0.5)
        assert len(progress_log.of("long", "completed")) == 1
        assert {u.instance_id for u in progress_log.of("long", "started")} == {victim, done.instance_id}


@pytest.mark.slow
async def test_sigterm_hands_the_running_task_back_to_another_replica(
    settings: Settings, subjects: Subjects, js: Any, progress_log: ProgressLog
) -> None:
    with agent_processes(settings, [("a1", SLEEPER)], ack_wait=30.0, shutdown_grace=0.3) as procs:
        await wait_registered(js, subjects, [registry_key("sleeper", "a1")])
        await publish(js, subjects, assignment("sleeper", "sleep", {"seconds": 3}, task_id="handed-back"))
        await progress_log.wait_for(lambda u: u.task_id == "handed-back" and u.status.value == "started")
        procs["a1"].send_signal(signal.SIGTERM)
        assert procs["a1"].wait(timeout=20) == 0
        assert progress_log.of("handed-back", "completed") == []
        # the nak makes it available at once (ack_wait is 30 s): a new replica finishes it
        with agent_processes(settings, [("a2", SLEEPER)], ack_wait=30.0):
            done = await progress_log.wait_for(
                lambda u: u.task_id == "handed-back" and u.status.value == "completed", timeout=20
            )
            assert done.instance_id == "a2"


@pytest.mark.slow
async def test_sigterm_lets_a_short_task_finish(
    settings: Settings, subjects: Subjects, js: Any, progress_log: ProgressLog
) -> None:
    with agent_processes(settings, [("g1", SLEEPER)], shutdown_grace=10.0) as procs:
        await wait_registered(js, subjects, [registry_key("sleeper", "g1")])
        await publish(js, subjects, assignment("sleeper", "sleep", {"seconds": 1.0}, task_id="finishes"))
        await progress_log.wait_for(lambda u: u.task_id == "finishes" and u.status.value == "started")
        procs["g1"].send_signal(signal.SIGTERM)
        assert procs["g1"].wait(timeout=20) == 0
        done = await progress_log.wait_for(
            lambda u: u.task_id == "finishes" and u.status.value == "completed", timeout=5
        )
        assert done.instance_id == "g1"


async def test_cancel_signal_stops_a_running_task_and_timeouts_fail_retryably(
    settings: Settings, subjects: Subjects, js: Any, nc: Any, progress_log: ProgressLog
) -> None:
    with agent_processes(settings, [("c1", SLEEPER)]) as _:
        await wait_registered(js, subjects, [registry_key("sleeper", "c1")])
        await publish(
            js,
            subjects,
            assignment("sleeper", "sleep", {"seconds": 60}, workflow_id="wf-c", task_id="doomed"),
        )
        await progress_log.wait_for(lambda u: u.task_id == "doomed" and u.status.value == "started")
        await nc.publish(subjects.cancel_signal("wf-c", "doomed"), b"")
        failed = await progress_log.wait_for(
            lambda u: u.task_id == "doomed" and u.status.value == "failed", timeout=15
        )
        assert failed.error_context and failed.error_context["error_type"] == "TaskCancelled"
        assert failed.retryable is False

        await publish(
            js, subjects, assignment("sleeper", "sleep", {"seconds": 60}, task_id="slow", timeout=1)
        )
        timed_out = await progress_log.wait_for(
            lambda u: u.task_id == "slow" and u.status.value == "failed", timeout=15
        )
        assert timed_out.error_context and timed_out.error_context["error_type"] == "TaskTimeout"
        assert timed_out.retryable is True and timed_out.attempt == 1

        await publish(js, subjects, assignment("sleeper", "line_count", {}, task_id="wrong-type"))
        wrong = await progress_log.wait_for(
            lambda u: u.task_id == "wrong-type" and u.status.value == "failed"
        )
        assert wrong.retryable is False and "line_count" in wrong.error_context["error_message"]  # type: ignore[index]


async def test_cancel_signal_for_an_old_attempt_spares_the_reissue(
    settings: Settings, subjects: Subjects, js: Any, nc: Any, progress_log: ProgressLog
) -> None:
    """The orchestrator stops a timed-out attempt while it re-issues the task: the signal names
    attempt 1, so the agent running attempt 2 must keep it, and a queued cancelled attempt fails."""
    with agent_processes(settings, [("r1", SLEEPER)]) as _:
        await wait_registered(js, subjects, [registry_key("sleeper", "r1")])
        await nc.publish(subjects.cancel_signal("wf-r", "again"), b'{"attempt": 1}')
        await nc.flush()
        await publish(
            js,
            subjects,
            assignment("sleeper", "sleep", {"seconds": 0.5}, workflow_id="wf-r", task_id="again", attempt=2),
        )
        done = await progress_log.wait_for(
            lambda u: u.task_id == "again" and u.status.value in ("completed", "failed"), timeout=15
        )
        assert (done.status.value, done.attempt) == ("completed", 2)

        await nc.publish(subjects.cancel_signal("wf-r", "queued"), b'{"attempt": 3}')
        await nc.flush()
        await publish(
            js,
            subjects,
            assignment("sleeper", "sleep", {"seconds": 30}, workflow_id="wf-r", task_id="queued", attempt=3),
        )
        refused = await progress_log.wait_for(
            lambda u: u.task_id == "queued" and u.status.value == "failed", timeout=15
        )
        assert refused.error_context and refused.error_context["error_type"] == "TaskCancelled"
        assert refused.attempt == 3


async def test_malformed_assignment_goes_to_the_dead_letter_stream(
    settings: Settings, subjects: Subjects, js: Any, progress_log: ProgressLog
) -> None:
    dead_letters = await js.subscribe(subjects.dead_letters_all, ordered_consumer=True)
    bad = b'{"message_type": "task_assignment", "oops": 1}'
    with agent_processes(settings, [("m1", "agents_testkit:EmptyAgent")]):
        await wait_registered(js, subjects, [registry_key("noop", "m1")])
        await js.publish(subjects.tasks("noop"), bad)
        msg = await dead_letters.next_msg(timeout=15)
        assert msg.subject == subjects.dead_letter("agents")
        assert msg.data == bad  # the original body, unchanged
        assert msg.headers[DLQ_REASON] == "parse_error"
        assert "not a task_assignment" in msg.headers[DLQ_ERROR] and "task_id" in msg.headers[DLQ_ERROR]
        assert msg.headers[DLQ_SUBJECT] == subjects.tasks("noop")
        assert msg.headers[DLQ_CONSUMER] == subjects.agent_consumer("noop")
        await publish(js, subjects, assignment("noop", "noop", {}, task_id="after-bad"))
        await progress_log.wait_for(lambda u: u.task_id == "after-bad" and u.status.value == "completed")
    # dead-lettered and acked: nothing of it is left in the work queue
    info = await js.consumer_info(subjects.stream("tasks"), subjects.agent_consumer("noop"))
    assert info.num_pending == 0 and info.num_ack_pending == 0


async def test_registry_heartbeat_and_expiry(settings: Settings, subjects: Subjects, js: Any) -> None:
    # the platform chooses the registry TTL; a short one here so that expiry is quick to see
    platform = await Bus.connect(
        settings, name="registry-platform", topology=Topology.from_settings(settings, agent_registry_ttl=2.0)
    )
    try:
        assert (await platform.ensure_registry()).action == "updated"
    finally:
        await platform.close()
    kv = await js.key_value(subjects.agents_bucket)
    with agent_processes(
        settings, [("h1", "core-services,docs-integration")], extra_args=("--heartbeat-interval", "0.5")
    ) as procs:
        keys = [registry_key("core-services", "h1"), registry_key("docs-integration", "h1")]
        await wait_registered(js, subjects, keys)
        reg = AgentRegistration.model_validate_json((await kv.get(keys[0])).value)
        assert "dependency_analysis" in reg.task_types and reg.capacity == 1 and reg.load == 0
        procs["h1"].send_signal(signal.SIGKILL)
        procs["h1"].wait(timeout=10)

        async def gone() -> None:
            while True:
                try:
                    present = set(await kv.keys())
                except Exception:  # no keys left at all
                    return
                if not set(keys) & present:
                    return
                await asyncio.sleep(0.2)

        await asyncio.wait_for(gone(), 15)
