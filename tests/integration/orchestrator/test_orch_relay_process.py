"""The orchestrator's event relay in a child process of its own (``event_relay="process"``, the
deployed default): events reach NATS, a child that dies is started again, a stop ends it, and its
secrets never appear on a command line. (That it goes when the orchestrator is killed is a fault
test: ``tests/faults/orchestrator/test_orch_relay_child.py``.)"""

from __future__ import annotations

import json
import os
import signal
import uuid

import psutil
from orch_helpers import submit_graph, wait_until
from pydantic import SecretStr

from taskloom.bus import Bus
from taskloom.contracts.graph import TaskGraph, TaskSpec
from taskloom.orchestrator.relay import EventRelayProcess, launch_spec
from taskloom.orchestrator.service import Orchestrator
from taskloom.settings import Settings


def _graph() -> TaskGraph:
    return TaskGraph(
        request_id="r", tasks=[TaskSpec(task_id="A", task_type="work", assigned_agent="core-services")]
    )


async def _collect(bus: Bus, subject: str) -> tuple[list[str], object]:
    seen: list[str] = []

    async def on(msg: object) -> None:
        seen.append(msg.subject)  # type: ignore[attr-defined]

    sub = await bus.nc.subscribe(subject, cb=on)
    return seen, sub


def test_the_launch_spec_carries_the_connection_and_its_secrets() -> None:
    settings = Settings(
        nats_url="nats://n:4222", database_url="postgresql://d/db", namespace="ns",
        nats_user="orchestrator", nats_password=SecretStr("s3cret"),
    )  # fmt: skip
    spec = json.loads(launch_spec(settings, schema="wf", name="ns-wf-events"))
    assert spec["schema"] == "wf" and spec["name"] == "ns-wf-events"
    assert spec["settings"]["nats_password"] == "s3cret"  # revealed for the child, on its stdin only
    assert spec["settings"]["nats_url"] == "nats://n:4222"
    assert spec["settings"]["database_url"] == "postgresql://d/db"
    assert Settings(**spec["settings"]).namespace == "ns"


async def test_the_relay_process_publishes_a_workflows_events(
    settings: Settings, schema: str, bus: Bus
) -> None:
    wf = str(uuid.uuid4())
    seen, sub = await _collect(bus, bus.subjects.events_of(wf))
    o = Orchestrator(settings, schema=schema, event_relay="process", timer_interval=0.1)
    await o.start()
    try:
        assert o.events is None and o.events_process is not None  # not in this event loop
        await submit_graph(bus, wf, _graph())
        await wait_until(
            lambda: bus.subjects.event(wf, "TaskAssigned") in seen, "TaskAssigned relayed", timeout=30
        )
        assert seen[0] == bus.subjects.event(wf, "WorkflowStarted")
        child = o.events_process.pid
        assert child is not None and child != os.getpid()
        # its connection settings came on stdin, not on a command line anyone can read
        cmdline = psutil.Process(child).cmdline()
        assert cmdline[-2:] == ["-m", "taskloom.orchestrator.relay"]
        assert not any(settings.database_url in arg for arg in cmdline if settings.database_url)
    finally:
        await o.stop()
        await sub.unsubscribe()  # type: ignore[attr-defined]
    assert o.events_process is not None and not o.events_process.alive


async def test_a_relay_process_that_dies_is_started_again(settings: Settings, schema: str, bus: Bus) -> None:
    o = Orchestrator(settings, schema=schema, event_relay="process", timer_interval=0.1)
    await o.start()
    relay = o.events_process
    assert relay is not None
    relay.restart_delay = 0.1
    try:
        await wait_until(lambda: relay.pid is not None, "relay process running", timeout=30)
        first = relay.pid
        assert first is not None
        os.kill(first, signal.SIGKILL)
        await wait_until(lambda: relay.pid not in (None, first), "relay process started again", timeout=30)
        assert relay.restarts == 1
        wf = str(uuid.uuid4())  # and the new one relays
        seen, sub = await _collect(bus, bus.subjects.events_of(wf))
        await submit_graph(bus, wf, _graph())
        await wait_until(
            lambda: bus.subjects.event(wf, "WorkflowStarted") in seen, "relayed after restart", timeout=30
        )
        await sub.unsubscribe()  # type: ignore[attr-defined]
    finally:
        await o.stop()


async def test_stop_ends_the_relay_process(settings: Settings, schema: str) -> None:
    relay = EventRelayProcess(settings, schema=schema, name=f"{schema}-events")
    relay.start()
    await wait_until(lambda: relay.pid is not None, "relay process running", timeout=30)
    child = psutil.Process(relay.pid)  # type: ignore[arg-type]
    await relay.stop()
    assert not relay.alive
    assert not child.is_running() or child.status() == psutil.STATUS_ZOMBIE
    assert relay.restarts == 0  # a stop is not a death to recover from
