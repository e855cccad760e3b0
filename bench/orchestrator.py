"""Orchestrator benchmark: the seed's 8-task shape (A -> B,C,D -> E -> F,G -> H) run by a real
orchestrator over NATS + PostgreSQL with an in-process agent that completes at once.

    .venv/bin/python bench/orchestrator.py [--burst 200] [--single 30]

Prints one-workflow latency p50/p99 (submit -> terminal state in the read model), burst
throughput, dispatch overhead p50/p99 (dependency completed -> next assignment received by the
agent), CPU ms per task across all processes (this one: orchestrator + agent; nats-server;
PostgreSQL and its backends), the rebuild time of a 10,000-event workflow and memory per
active workflow. ``--runs N`` repeats the measurements and prints the median of each figure.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import tracemalloc
import uuid
from datetime import UTC, datetime
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from taskloom.bus import Bus, Delivery, StreamKind  # noqa: E402
from taskloom.contracts.enums import ProgressStatus  # noqa: E402
from taskloom.contracts.graph import TaskGraph, TaskSpec  # noqa: E402
from taskloom.contracts.messages import GraphConstructed, ProgressInfo, ProgressUpdate, TaskAssignment  # noqa: E402
from taskloom.contracts.requests import ComplexRequest, Requirements  # noqa: E402
from taskloom.infra import Stack, create_database  # noqa: E402
from taskloom.orchestrator import queries  # noqa: E402
from taskloom.orchestrator.adapters.postgres import load_workflow, new_event  # noqa: E402
from taskloom.orchestrator.domain import Limits, StartGraph, decide, empty  # noqa: E402
from taskloom.orchestrator.service import Orchestrator  # noqa: E402
from taskloom.settings import Settings  # noqa: E402

SHAPE = {
    "A": [],
    "B": ["A"],
    "C": ["A"],
    "D": ["A"],
    "E": ["B", "C", "D"],
    "F": ["E"],
    "G": ["E"],
    "H": ["F", "G"],
}


def graph() -> TaskGraph:
    tasks = [
        TaskSpec(task_id=t, task_type="work", assigned_agent="core-services", dependencies=d)
        for t, d in SHAPE.items()
    ]
    return TaskGraph(request_id="bench", tasks=tasks)


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(p / 100 * len(values)))]


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of these processes and all their children (PostgreSQL backends)."""
    total = 0.0
    for pid in pids:
        try:
            root = psutil.Process(pid)
            for p in [root, *root.children(recursive=True)]:
                with_children = p.cpu_times()
                total += with_children.user + with_children.system
        except psutil.Error:
            continue
    return total


async def run(args: argparse.Namespace, nats_url: str, db: str, servers: list[int]) -> dict[str, float]:
    if args:  # one indented block keeps the measurement steps together
        settings = Settings(nats_url=nats_url, database_url=db, namespace=f"b{uuid.uuid4().hex[:8]}")
        limits = Limits(max_concurrent_workflows=100, heartbeat_timeout_seconds=60)
        orch = Orchestrator(settings, limits=limits, relay_events=False, timer_interval=0.5)
        await orch.start()
        bus = await Bus.connect(settings, name="bench-agent")
        await bus.ensure_agent_consumer("core-services", ack_wait=30, max_deliver=None)
        dispatch: list[float] = []
        done_at: dict[str, float] = {}

        async def agent(batch: list[tuple[TaskAssignment, Delivery]]) -> None:
            now = time.perf_counter()
            sends = []
            for a, _ in batch:
                key = f"{a.workflow_id}:{a.task_id}"
                deps = SHAPE[a.task_id]
                if deps:
                    ready = max(done_at.get(f"{a.workflow_id}:{d}", now) for d in deps)
                    dispatch.append(now - ready)
                done_at[key] = time.perf_counter()
                u = ProgressUpdate(
                    workflow_id=a.workflow_id, task_id=a.task_id, agent_id="core-services", attempt=a.attempt,
                    status=ProgressStatus.COMPLETED, outputs={"ok": True}, progress=ProgressInfo(completion_percentage=100),  # noqa: E501
                )  # fmt: skip
                sends.append(bus.publish(bus.subjects.progress("core-services", a.workflow_id, a.task_id), u))
            await asyncio.gather(*sends)

        await bus.consume_batch(
            StreamKind.TASKS, bus.subjects.agent_consumer("core-services"), agent,
            TaskAssignment.model_validate_json, batch=64, fetch_timeout=0.2,
        )  # fmt: skip
        req = ComplexRequest(requirements=Requirements(functional=["bench"]))
        assert orch.store is not None
        store = orch.store

        async def submit(wf: str) -> None:
            msg = GraphConstructed(workflow_id=wf, owner="bench", request=req, graph=graph())
            await bus.publish(bus.subjects.graph_constructed(wf), msg)

        async def finished(wf: str) -> bool:
            s = await queries.get_workflow(store, wf)
            return s is not None and s.current_state.terminal

        latencies = []
        for _ in range(args.single):
            wf = str(uuid.uuid4())
            t0 = time.perf_counter()
            await submit(wf)
            while not await finished(wf):  # noqa: ASYNC110 - polling the read model is what is measured
                await asyncio.sleep(0.001)
            latencies.append(time.perf_counter() - t0)
        single_dispatch = list(dispatch)
        dispatch.clear()
        cpu0 = time.process_time()
        server_cpu0 = cpu_seconds(servers)
        ids = [str(uuid.uuid4()) for _ in range(args.burst)]
        t0 = time.perf_counter()
        await asyncio.gather(*(submit(wf) for wf in ids))
        pending = set(ids)
        while pending:
            async with store.driver() as conn:
                rows = await conn.fetch(
                    "SELECT workflow_id FROM workflow_read_model WHERE workflow_id = ANY($1::text[])"
                    " AND current_state IN ('completed', 'failed', 'cancelled')", list(pending),
                )  # fmt: skip
            pending -= {r[0] for r in rows}
            await asyncio.sleep(0.01)
        burst = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
        server_cpu = cpu_seconds(servers) - server_cpu0
        await orch.stop()
        await bus.drain()

        # rebuild of a 10,000-event workflow (events produced by the decider itself)
        wf = str(uuid.uuid4())
        state = decide(empty(wf), StartGraph(graph(), "bench", None, True, "m"), datetime.now(UTC)).state
        events = decide(empty(wf), StartGraph(graph(), "bench", None, True, "m"), datetime.now(UTC)).events
        from taskloom.contracts.events import TaskProgressed
        from taskloom.eventstore import EventStore

        filler = [
            TaskProgressed(workflow_id=wf, task_id="A", attempt=1, completion_percentage=i % 100)
            for i in range(10_000 - len(events))
        ]
        rebuild_store = EventStore.connect(db, 2)
        await rebuild_store.migrate()
        records = [new_event(e) for e in [*events, *filler]]
        for i in range(0, len(records), 1000):
            await rebuild_store.append(wf, records[i : i + 1000], i)
        t0 = time.perf_counter()
        rebuilt = await load_workflow(rebuild_store, wf)
        rebuild = time.perf_counter() - t0
        assert rebuilt.version == 10_000 and state.version <= rebuilt.version
        await rebuild_store.close()

        tracemalloc.start()
        snap0 = tracemalloc.take_snapshot()
        held = [
            decide(empty(str(i)), StartGraph(graph(), "bench", req, True, "m"), datetime.now(UTC)).state
            for i in range(200)
        ]
        snap1 = tracemalloc.take_snapshot()
        mem = sum(s.size_diff for s in snap1.compare_to(snap0, "filename")) / len(held)
        tracemalloc.stop()

    tasks = args.burst * 8
    d = single_dispatch or dispatch
    return {
        "single_p50": pct(latencies, 50) * 1000,
        "single_p99": pct(latencies, 99) * 1000,
        "burst_wf_s": args.burst / burst,
        "burst_tasks_s": tasks / burst,
        "burst_s": burst,
        "dispatch_p50": pct(d, 50) * 1000,
        "dispatch_p99": pct(d, 99) * 1000,
        "burst_dispatch_p50": pct(dispatch, 50) * 1000,
        "burst_dispatch_p99": pct(dispatch, 99) * 1000,
        "cpu_task_ms": (cpu + server_cpu) / tasks * 1000,
        "cpu_task_this_ms": cpu / tasks * 1000,
        "rebuild_s": rebuild,
        "mem_kib": mem / 1024,
    }


def report(args: argparse.Namespace, runs: list[dict[str, float]]) -> None:
    m = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    label = f"median of {len(runs)} runs" if len(runs) > 1 else "one run"
    print(f"--- orchestrator bench ({label}) ---")
    print(f"one workflow (8 tasks) end-to-end: p50 {m['single_p50']:.1f} ms, p99 {m['single_p99']:.1f} ms")
    print(
        f"burst of {args.burst}: {m['burst_wf_s']:.1f} workflows/s, {m['burst_tasks_s']:.0f} tasks/s"
        f" ({m['burst_s']:.2f} s)"
    )
    print(
        f"dispatch overhead (one at a time): p50 {m['dispatch_p50']:.2f} ms, p99 {m['dispatch_p99']:.2f} ms"
    )
    print(
        f"dispatch overhead (burst): p50 {m['burst_dispatch_p50']:.2f} ms,"
        f" p99 {m['burst_dispatch_p99']:.2f} ms"
    )
    print(
        f"CPU per task in the burst, all processes: {m['cpu_task_ms']:.2f} ms"
        f" (orchestrator + agent process: {m['cpu_task_this_ms']:.2f} ms)"
    )
    print(f"rebuild of a 10,000-event workflow: {m['rebuild_s']:.3f} s")
    print(f"memory per active workflow (decided state): {m['mem_kib']:.1f} KiB")
    if len(runs) > 1:
        for k in ("single_p50", "burst_tasks_s", "dispatch_p50", "dispatch_p99"):
            print(f"  {k} per run: {', '.join(f'{r[k]:.1f}' for r in runs)}")


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--burst", type=int, default=200)
    p.add_argument("--single", type=int, default=30)
    p.add_argument("--runs", type=int, default=1)
    cli = p.parse_args()
    with Stack(Settings(), durable=False) as stack:
        assert stack.info is not None
        servers = [x.proc.pid for x in (stack.nats, stack.postgres) if x is not None and x.proc is not None]
        results = []
        for _ in range(cli.runs):
            database = create_database(stack.info.database_url, f"bench_orch_{uuid.uuid4().hex[:8]}")
            results.append(asyncio.run(run(cli, stack.info.nats_url, database, servers)))
        report(cli, results)
