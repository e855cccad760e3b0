"""The agent runtime against the shared contracts: the context service's request/reply models
(with the fall-back to the assignment's own context), agents that wait for the platform's
streams instead of declaring them, readiness without a database, and the delivery limit that
keeps a task which kills its agent from circulating forever."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
from typing import Any

import httpx
import pytest
from agents_testkit import ProgressLog, agent_processes, assignment, wait_registered
from nats.js.errors import NotFoundError

from taskloom.bus import DLQ_REASON, Bus, StreamKind
from taskloom.contracts import Subjects
from taskloom.contracts.context import (
    ContextError,
    ContextErrorCode,
    ContextGetRequest,
    ContextScope,
    ContextView,
    ContributeReply,
    ContributeRequest,
)
from taskloom.contracts.messages import AssignmentContext, AssignmentInputs
from taskloom.contracts.subjects import registry_key
from taskloom.settings import Settings

ECHO = "agents_testkit:ContextEchoAgent"
SLEEPER = "agents_testkit:SleepyAgent"


async def publish(js: Any, subjects: Subjects, task: Any) -> None:
    await js.publish(
        subjects.tasks(task.assigned_agent),
        task.model_dump_json().encode(),
        headers={"Nats-Msg-Id": task.message_id},
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_context_view_reaches_the_agent_and_it_falls_back_when_refused_or_absent(
    settings: Settings, subjects: Subjects, js: Any, nc: Any, progress_log: ProgressLog
) -> None:
    asked: list[ContextGetRequest] = []
    contributed: list[ContributeRequest] = []

    async def on_get(msg: Any) -> None:
        request = ContextGetRequest.model_validate_json(msg.data)
        asked.append(request)
        if request.task_id == "refused":
            reply: Any = ContextError(code=ContextErrorCode.DENIED, message="not for you")
        else:
            reply = ContextView(
                agent_id=request.agent_id,
                workflow_id=request.workflow_id,
                task_id=request.task_id,
                context={"style": "terse", "budget": 3, "outputs.t0": {"summary": "up"}, "notes": "n"},
                key_sources={
                    "style": ContextScope.GLOBAL,
                    "budget": ContextScope.PROJECT,
                    "outputs.t0": ContextScope.WORKFLOW,
                    "notes": ContextScope.AGENT,
                },
            )
        await msg.respond(reply.model_dump_json().encode())

    async def on_contribute(msg: Any) -> None:
        request = ContributeRequest.model_validate_json(msg.data)
        contributed.append(request)
        reply = ContributeReply(workflow_id=request.workflow_id, key=f"outputs.{request.task_id}", version=1)
        await msg.respond(reply.model_dump_json().encode())

    get_sub = await nc.subscribe(subjects.context("get"), cb=on_get)
    contribute_sub = await nc.subscribe(subjects.context("contribute"), cb=on_contribute)
    own = AssignmentContext(global_context={"style": "verbose"})
    deps = AssignmentInputs(dependencies=[{"task_id": "t0", "outputs": {"summary": "from the assignment"}}])
    with agent_processes(settings, [("e1", ECHO)]):
        await wait_registered(js, subjects, [registry_key("echo", "e1")])
        await publish(
            js,
            subjects,
            assignment(
                "echo", "echo", {}, task_id="served", required_context=["style", "budget"], context=own
            ),
        )
        done = await progress_log.wait_for(lambda u: u.task_id == "served" and u.status.value == "completed")
        assert done.outputs is not None and done.outputs["source"] == "context-service"
        assert done.outputs["global"] == {"style": "terse", "budget": 3}
        assert done.outputs["task"] == {"outputs.t0": {"summary": "up"}}
        assert done.outputs["agent"] == {"notes": "n"}
        assert asked[0].agent_id == "echo" and asked[0].workflow_id == "wf-1"
        assert asked[0].requirements == ["style", "budget"]

        async def contribution_arrived() -> None:
            while not contributed:
                await asyncio.sleep(0.05)

        await asyncio.wait_for(contribution_arrived(), 10)
        assert contributed[0].task_id == "served" and contributed[0].agent_id == "echo"
        assert contributed[0].outputs_summary["summary"] == "echoed the context"
        assert contributed[0].outputs_summary["findings"] == ["one finding"]

        await publish(
            js,
            subjects,
            assignment(
                "echo", "echo", {}, task_id="refused", required_context=["style"], context=own, inputs=deps
            ),
        )
        refused = await progress_log.wait_for(
            lambda u: u.task_id == "refused" and u.status.value == "completed"
        )
        assert refused.outputs is not None and refused.outputs["source"] == "assignment"
        assert refused.outputs["global"] == {"style": "verbose"}

        await get_sub.unsubscribe()
        await contribute_sub.unsubscribe()
        await publish(
            js,
            subjects,
            assignment(
                "echo", "echo", {}, task_id="no-service", required_context=["style"], context=own, inputs=deps
            ),
        )
        alone = await progress_log.wait_for(
            lambda u: u.task_id == "no-service" and u.status.value == "completed", timeout=15
        )
        assert alone.outputs is not None and alone.outputs["source"] == "assignment"
        assert alone.outputs["upstream"][0]["outputs"] == {"summary": "from the assignment"}


async def test_agents_wait_for_the_platform_streams_and_need_no_database(
    settings: Settings, subjects: Subjects, nc: Any
) -> None:
    js = nc.jetstream()
    port = free_port()
    env = {"TASKLOOM_DATABASE_URL": "", "TASKLOOM_HTTP_PORT": str(port), "TASKLOOM_HTTP_HOST": "127.0.0.1"}
    platform: Bus | None = None
    with agent_processes(settings, [("w1", ECHO)], env_overrides=env):
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=2) as http:

            async def ready_status() -> tuple[int, dict[str, Any]]:
                while True:
                    try:
                        r = await http.get("/ready")
                        return r.status_code, r.json()
                    except httpx.TransportError:
                        await asyncio.sleep(0.1)

            status, body = await asyncio.wait_for(ready_status(), 30)
            assert status == 503 and body["checks"] == {"nats": True, "consuming": False}
            await asyncio.sleep(1.0)
            with pytest.raises(NotFoundError):  # the agent declared no stream of its own
                await js.stream_info(subjects.stream("tasks"))
            try:
                platform = await Bus.connect(settings, name="late-platform")
                await platform.ensure_streams()
                await wait_registered(js, subjects, [registry_key("echo", "w1")])

                async def ready() -> dict[str, Any]:
                    while True:
                        code, answer = await ready_status()
                        if code == 200:
                            return answer
                        await asyncio.sleep(0.2)

                answer = await asyncio.wait_for(ready(), 30)
                assert answer["checks"] == {"nats": True, "consuming": True}
                log = await ProgressLog(js, subjects).start()
                try:
                    await publish(js, subjects, assignment("echo", "echo", {}, task_id="late"))
                    await log.wait_for(lambda u: u.task_id == "late" and u.status.value == "completed")
                finally:
                    await log.stop()
            finally:
                if platform is not None:
                    for kind in StreamKind:
                        with contextlib.suppress(Exception):
                            await platform.js.delete_stream(platform.stream_name(kind))
                    with contextlib.suppress(Exception):
                        await platform.js.delete_key_value(subjects.agents_bucket)
                    await platform.close()


@pytest.mark.slow
async def test_an_assignment_that_keeps_killing_its_agent_is_failed_and_dead_lettered(
    settings: Settings, subjects: Subjects, js: Any, progress_log: ProgressLog
) -> None:
    dead_letters = await js.subscribe(subjects.dead_letters_all, ordered_consumer=True)
    options = ("--max-deliver", "1")
    with agent_processes(settings, [("k1", SLEEPER)], ack_wait=1.0, extra_args=options) as procs:
        await wait_registered(js, subjects, [registry_key("sleeper", "k1")])
        await publish(js, subjects, assignment("sleeper", "sleep", {"seconds": 30}, task_id="poison"))
        await progress_log.wait_for(lambda u: u.task_id == "poison" and u.status.value == "started")
        procs["k1"].send_signal(signal.SIGKILL)
        procs["k1"].wait(timeout=10)
    with agent_processes(settings, [("k2", SLEEPER)], ack_wait=1.0, extra_args=options):
        failed = await progress_log.wait_for(
            lambda u: u.task_id == "poison" and u.status.value == "failed", timeout=20
        )
        assert failed.instance_id == "k2" and failed.retryable is False
        assert failed.error_context and failed.error_context["error_type"] == "DeliveryLimitExceeded"
        dead = await dead_letters.next_msg(timeout=10)
        assert dead.headers[DLQ_REASON] == "max_deliver_exceeded"
        assert b'"poison"' in dead.data
        assert len(progress_log.of("poison", "started")) == 1  # the second delivery never ran
