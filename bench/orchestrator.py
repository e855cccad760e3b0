"""Orchestrator benchmark: the seed's 8-task shape (A -> B,C,D -> E -> F,G -> H) run by a real
orchestrator over NATS + PostgreSQL, with an agent process that completes every task at once.

    .venv/bin/python bench/orchestrator.py [--burst 200] [--single 30] [--runs 5] [--relay MODE]

Prints one-workflow latency p50/p99 (submit -> terminal state in the read model), burst
throughput, dispatch overhead p50/p99 (dependency completed -> next assignment received by the
agent), CPU ms per task across all processes (this one, which hosts the orchestrator; the agent;
the event relay's process; nats-server; PostgreSQL and its backends), the rebuild time of a
10,000-event workflow and memory per active workflow. ``--runs N`` repeats the measurements and
prints the median of each figure. The orchestrator runs as deployed, its event relay publishing
every event to NATS from a process of its own; ``--relay inline`` runs that relay in the
orchestrator's event loop instead, ``--relay off`` leaves it out to measure the engine alone.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import signal
import statistics
import sys
import tempfile
import time
import tracemalloc
import uuid
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from taskloom.bus import Bus, Delivery, StreamKind  # noqa: E402
from taskloom.contracts.enums import ProgressStatus  # noqa: E402
from taskloom.contracts.graph import TaskGraph, TaskSpec  # noqa: E402
from taskloom.contracts.messages import GraphConstructed, ProgressInfo, ProgressUpdate, TaskAssignment  # noqa: E402
from taskloom.contracts.requests import ComplexRequest, Requirements  # noqa: E402
from taskloom.infra import Stack, create_database  # noqa: E402
from taskloom.orchestrator.adapters.postgres import load_workflow, new_event  # noqa: E402
from taskloom.orchestrator.domain import Limits, StartGraph, decide, empty  # noqa: E402
from taskloom.orchestrator.service import Orchestrator  # noqa: E402
from taskloom.runtime import run_loop  # noqa: E402
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


TERMINAL = {"completed", "failed", "cancelled"}


def _levels(shape: dict[str, list[str]]) -> int:
    depth: dict[str, int] = {}
    for task, deps in shape.items():  # listed after their dependencies
        depth[task] = 1 + max((depth[d] for d in deps), default=0)
    return max(depth.values())


# a workflow's first commit starts it and assigns its first level; each level's completions
# commit at least once more, the last one together with the workflow's completion
MIN_COMMITS = _levels(SHAPE)


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


async def agent_main(settings: Settings, out: Path) -> None:
    """The agent process: completes every assignment at once and records, per assignment, when
    it arrived and how long after its last dependency's completion (the dispatch overhead)."""
    bus = await Bus.connect(settings, name="bench-agent")
    done_at: dict[str, float] = {}
    dispatch: list[tuple[float, float]] = []

    async def handle(batch: list[tuple[TaskAssignment, Delivery]]) -> None:
        now = time.perf_counter()
        sends = []
        for a, _ in batch:
            deps = SHAPE[a.task_id]
            if deps:
                ready = max(done_at.get(f"{a.workflow_id}:{d}", now) for d in deps)
                dispatch.append((now, now - ready))
            done_at[f"{a.workflow_id}:{a.task_id}"] = time.perf_counter()
            u = ProgressUpdate(
                workflow_id=a.workflow_id, task_id=a.task_id, agent_id="core-services", attempt=a.attempt,
                status=ProgressStatus.COMPLETED, outputs={"ok": True}, progress=ProgressInfo(completion_percentage=100),  # noqa: E501
            )  # fmt: skip
            sends.append(bus.publish(bus.subjects.progress("core-services", a.workflow_id, a.task_id), u))
        await asyncio.gather(*sends)

    # two pulls in flight, as an agent host with a capacity of two or more keeps
    await bus.consume_batch(
        StreamKind.TASKS, bus.subjects.agent_consumer("core-services"), handle,
        TaskAssignment.model_validate_json, batch=64, fetch_timeout=0.2, concurrency=2,
    )  # fmt: skip
    gc.freeze()  # as run_service does once a service has started
    print("ready", flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await bus.drain()
    out.write_text(json.dumps(dispatch))  # noqa: ASYNC240 - once, at exit


async def start_agent(settings: Settings) -> asyncio.subprocess.Process:
    out = Path(tempfile.mkdtemp()) / "dispatch.json"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--agent", out.as_posix(),
        env={**os.environ, "TASKLOOM_NATS_URL": settings.nats_url,
             "TASKLOOM_NAMESPACE": settings.namespace},
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    while (line := await proc.stdout.readline()) and line.strip() != b"ready":
        pass
    proc.out = out  # type: ignore[attr-defined]
    return proc


async def stop_agent(proc: asyncio.subprocess.Process) -> list[tuple[float, float]]:
    proc.terminate()
    await proc.wait()
    out: Path = proc.out  # type: ignore[attr-defined]
    return [(a, b) for a, b in json.loads(out.read_text())]  # noqa: ASYNC240 - once, at exit


async def run(args: argparse.Namespace, nats_url: str, db: str, servers: list[int]) -> dict[str, float]:
    if args:  # one indented block keeps the measurement steps together
        settings = Settings(nats_url=nats_url, database_url=db, namespace=f"b{uuid.uuid4().hex[:8]}")
        limits = Limits(max_concurrent_workflows=100, heartbeat_timeout_seconds=60)
        # as deployed: every event is also relayed to NATS (for WebSocket clients and the CLI)
        # by a process of the orchestrator's, unless --relay says otherwise
        orch = Orchestrator(settings, limits=limits, event_relay=args.relay, timer_interval=0.5)
        await orch.start()
        gc.freeze()  # as run_service does once a service has started
        bus = await Bus.connect(settings, name="bench-submitter")
        await bus.ensure_agent_consumer("core-services", ack_wait=30, max_deliver=None)
        agent = await start_agent(settings)
        req = ComplexRequest(requirements=Requirements(functional=["bench"]))
        assert orch.store is not None
        store = orch.store

        async def submit(wf: str) -> None:
            msg = GraphConstructed(workflow_id=wf, owner="bench", request=req, graph=graph())
            await bus.publish(bus.subjects.graph_constructed(wf), msg)

        latencies = []
        # woken by the store's NOTIFY of each commit, then one look at the read model's state
        # column: precise, and it does not load the process being measured as polling would.
        # The workflow cannot finish before its MIN_COMMITS-th commit (one per dependency level
        # at least), so the commits before that are counted rather than looked at
        commits = 0
        committed = asyncio.Event()

        def on_commit(*_: object) -> None:
            nonlocal commits
            commits += 1
            if commits >= MIN_COMMITS:
                committed.set()

        listener = await asyncpg.connect(db)
        await listener.add_listener(store.statements.events_channel, on_commit)

        async def finished(wf: str) -> bool:
            # the read model's state column: what a status query reads, without decoding the
            # document (that is the gateway's work, not the engine's)
            state = await listener.fetchval(
                "SELECT current_state FROM workflow_read_model WHERE workflow_id = $1", wf
            )
            return state in TERMINAL

        single_cpu0 = time.process_time()
        phase_single = time.perf_counter()
        for _ in range(args.single):
            wf = str(uuid.uuid4())
            commits = 0
            committed.clear()
            t0 = time.perf_counter()
            await submit(wf)
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(committed.wait(), 0.05)
                committed.clear()
                if await finished(wf):
                    break
            latencies.append(time.perf_counter() - t0)
        single_cpu = (time.process_time() - single_cpu0) / max(args.single, 1)
        await listener.close()
        phase_burst = time.perf_counter()
        cpu0 = time.process_time()
        relay = orch.events_process
        relay_pids = [relay.pid] if relay is not None and relay.pid is not None else []
        server_cpu0 = cpu_seconds([*servers, agent.pid, *relay_pids])
        relay_cpu0 = cpu_seconds(relay_pids)
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
        server_cpu = cpu_seconds([*servers, agent.pid, *relay_pids]) - server_cpu0
        relay_cpu = cpu_seconds(relay_pids) - relay_cpu0
        await orch.stop()
        await bus.drain()
        dispatch_at = await stop_agent(agent)
        single_dispatch = [d for at, d in dispatch_at if phase_single <= at < phase_burst]
        dispatch = [d for at, d in dispatch_at if at >= phase_burst]

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
        "single_cpu_ms": single_cpu * 1000,
        "burst_wf_s": args.burst / burst,
        "burst_tasks_s": tasks / burst,
        "burst_s": burst,
        "dispatch_p50": pct(d, 50) * 1000,
        "dispatch_p99": pct(d, 99) * 1000,
        "burst_dispatch_p50": pct(dispatch, 50) * 1000,
        "burst_dispatch_p99": pct(dispatch, 99) * 1000,
        "cpu_task_ms": (cpu + server_cpu) / tasks * 1000,
        "cpu_task_this_ms": cpu / tasks * 1000,
        "cpu_task_relay_ms": relay_cpu / tasks * 1000,
        "rebuild_s": rebuild,
        "mem_kib": mem / 1024,
    }


def report(args: argparse.Namespace, runs: list[dict[str, float]]) -> None:
    m = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    label = f"median of {len(runs)} runs" if len(runs) > 1 else "one run"
    fsync = "off (not durable)" if args.no_fsync else "on"
    relay = {"process": "on, own process", "inline": "on, orchestrator's loop", "off": "off"}[args.relay]
    print(
        f"--- orchestrator bench ({label}; PostgreSQL fsync {fsync}; event relay {relay};"
        f" {Settings().event_loop} loop) ---"
    )
    print(
        f"one workflow (8 tasks) end-to-end: p50 {m['single_p50']:.1f} ms, p99 {m['single_p99']:.1f} ms"
        f" (CPU of the orchestrator process: {m['single_cpu_ms']:.1f} ms per workflow)"
    )
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
        f" (orchestrator process: {m['cpu_task_this_ms']:.2f} ms, its event relay's process:"
        f" {m['cpu_task_relay_ms']:.2f} ms)"
    )
    print(f"rebuild of a 10,000-event workflow: {m['rebuild_s']:.3f} s")
    print(f"memory per active workflow (decided state): {m['mem_kib']:.1f} KiB")
    if len(runs) > 1:
        for k in ("single_p50", "burst_tasks_s", "dispatch_p50", "dispatch_p99"):
            print(f"  {k} per run: {', '.join(f'{r[k]:.1f}' for r in runs)}")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--agent":
        run_loop(agent_main(Settings(), Path(sys.argv[2])), Settings().event_loop)
        sys.exit(0)
    p = argparse.ArgumentParser()
    p.add_argument("--burst", type=int, default=200)
    p.add_argument("--single", type=int, default=30)
    p.add_argument("--runs", type=int, default=1)
    p.add_argument("--no-fsync", action="store_true", help="PostgreSQL without fsync (not durable)")
    p.add_argument(
        "--relay", choices=("process", "inline", "off"), default="process",
        help="the event relay to NATS: in its own process (as deployed), in the orchestrator's loop, or off",
    )  # fmt: skip
    cli = p.parse_args()
    loop = Settings().event_loop  # the loop the services run on (TASKLOOM_EVENT_LOOP)
    with Stack(Settings(), durable=not cli.no_fsync) as stack:
        assert stack.info is not None
        servers = [x.proc.pid for x in (stack.nats, stack.postgres) if x is not None and x.proc is not None]
        results = []
        for _ in range(cli.runs):
            database = create_database(stack.info.database_url, f"bench_orch_{uuid.uuid4().hex[:8]}")
            results.append(run_loop(run(cli, stack.info.nats_url, database, servers), loop))
        report(cli, results)
