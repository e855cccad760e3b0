"""Agent runtime benchmark: per-task overhead of the runtime (assignment received → started
reported, completed reported → next assignment received) with an agent whose work is empty,
and throughput in tasks/s with one and with two replica processes."""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from taskloom.agents import Agent, AgentContextView, ProgressReporter
from taskloom.agents.host import AgentHost
from taskloom.bus import Bus, Delivery
from taskloom.contracts import ProgressStatus, Subjects, TaskAssignment, TaskDetails, TaskResult
from taskloom.infra import Stack
from taskloom.observability import configure_logging
from taskloom.settings import Settings

N_OVERHEAD = 500
N_THROUGHPUT = 1000
BENCH_DIR = Path(__file__).resolve().parent


class EmptyAgent(Agent):
    agent_id = "bench-noop"
    task_types = ("noop",)

    async def execute(
        self, task: TaskAssignment, context: AgentContextView, progress: ProgressReporter
    ) -> TaskResult:
        return TaskResult(success=True, outputs={})


class TimedHost(AgentHost):
    """Records when each assignment arrives and when its started/completed reports are out."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.received: list[float] = []
        self.to_started: list[float] = []
        self.completed_at: list[float] = []

    async def _on_assignment(self, agent: Agent, task: TaskAssignment, delivery: Delivery) -> None:
        self.received.append(time.perf_counter())
        await super()._on_assignment(agent, task, delivery)

    async def publish_progress(
        self, task: TaskAssignment, agent_id: str, status: ProgressStatus, fields: dict[str, Any]
    ) -> None:
        await super().publish_progress(task, agent_id, status, fields)
        now = time.perf_counter()
        if status is ProgressStatus.STARTED:
            self.to_started.append(now - self.received[-1])
        elif status is ProgressStatus.COMPLETED:
            self.completed_at.append(now)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def publish_tasks(bus: Bus, subjects: Subjects, agent_id: str, n: int) -> None:
    for i in range(n):
        task = TaskAssignment(
            workflow_id="bench",
            task_id=f"t{i}",
            assigned_agent=agent_id,
            task_details=TaskDetails(task_type="noop", priority=5, estimated_duration=0, timeout=60),
        )
        await bus.publish(subjects.tasks(agent_id), task)


async def overhead(settings: Settings) -> None:
    bus = await Bus.connect(settings, name="bench-platform")
    subjects = bus.subjects
    await bus.ensure_streams()  # the platform's step, before agents start
    await publish_tasks(bus, subjects, EmptyAgent.agent_id, N_OVERHEAD)
    host = TimedHost(settings, [EmptyAgent(settings)], instance_id="bench")
    await host.start()
    while host.completed < N_OVERHEAD:  # noqa: ASYNC110 - polling a counter the host bumps
        await asyncio.sleep(0.05)
    await host.stop()
    await bus.drain()
    gaps = [nxt - done for done, nxt in zip(host.completed_at, host.received[1:], strict=False)]
    print(
        f"received -> started reported : p50 {pct(host.to_started, 0.5):.3f} ms  "
        f"p99 {pct(host.to_started, 0.99):.3f} ms"
    )
    print(f"completed -> next assignment : p50 {pct(gaps, 0.5):.3f} ms  p99 {pct(gaps, 0.99):.3f} ms")
    per_task = [b - a for a, b in zip(host.received, host.received[1:], strict=False)]
    print(f"whole task cycle (empty work): p50 {statistics.median(per_task) * 1000:.3f} ms")


async def throughput(settings: Settings, replicas: int) -> float:
    ns = f"b{uuid.uuid4().hex[:8]}"
    subjects = Subjects(ns)
    bus = await Bus.connect(settings, name="bench-platform", namespace=ns)
    await bus.ensure_streams()
    env = {
        **os.environ,
        "TASKLOOM_NATS_URL": settings.nats_url or "",
        "TASKLOOM_NAMESPACE": ns,
        "TASKLOOM_HTTP_PORT": "0",
        "TASKLOOM_LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(BENCH_DIR),
    }
    procs = [
        subprocess.Popen(  # noqa: ASYNC220
            [
                sys.executable,
                "-m",
                "taskloom.agents",
                "--agents",
                "agents:EmptyAgent",
                "--instance-id",
                f"r{i}",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for i in range(replicas)
    ]
    done = 0
    try:
        sub = await bus.js.subscribe(subjects.progress_all, ordered_consumer=True)
        await asyncio.sleep(3.0)  # let the replicas connect and bind the shared consumer
        start = time.perf_counter()
        await publish_tasks(bus, subjects, EmptyAgent.agent_id, N_THROUGHPUT)
        while done < N_THROUGHPUT:
            msg = await sub.next_msg(timeout=30)
            done += b'"completed"' in msg.data
        return N_THROUGHPUT / (time.perf_counter() - start)
    finally:
        for p in procs:
            p.kill()
            p.wait()
        await bus.drain()


def main() -> None:
    configure_logging("WARNING")
    base = Settings()
    with tempfile.TemporaryDirectory() as tmp, Stack(base, data_dir=Path(tmp), durable=False) as stack:
        assert stack.info is not None
        settings = Settings(nats_url=stack.info.nats_url, namespace=f"b{uuid.uuid4().hex[:8]}", http_port=0)
        print(f"agent runtime overhead, {N_OVERHEAD} empty tasks, one in-process host:")
        asyncio.run(overhead(settings))
        for replicas in (1, 2):
            rate = asyncio.run(throughput(settings, replicas))
            print(
                f"throughput with {replicas} replica process(es): {rate:.0f} tasks/s "
                f"({N_THROUGHPUT} empty tasks)"
            )


if __name__ == "__main__":
    main()
