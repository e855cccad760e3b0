"""The floor under the orchestrator benchmark: the same 8-task shape (A -> B,C,D -> E -> F,G -> H)
run by a bare pipeline that does only what any durable engine must do per task, on the same
machine and the same embedded NATS + PostgreSQL (fsync on):

- one JetStream message carries the assignment to an agent process, which acks it and answers
  with one JetStream message carrying the completion;
- one committed PostgreSQL insert records the completion, and the dependants that became ready
  are published.

No decider, no event history, no read model, no retries or timers: only the two messages and the
insert. ``bench/orchestrator.py`` measures Taskloom on the same shape; running both in one session
says how much of its time is the engine and how much is the machine.

    .venv/bin/python bench/baseline.py [--burst 200] [--single 30] [--runs 5]

Prints one-workflow latency p50/p99 (submit -> last completion committed) and the burst's
throughput in workflows/s and tasks/s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import sys
import time
import uuid
from pathlib import Path

import asyncpg
import nats
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, StorageType, StreamConfig

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from orchestrator import SHAPE  # noqa: E402 - the same workflow shape as the orchestrator's bench

from taskloom.infra import Stack, create_database  # noqa: E402
from taskloom.runtime import run_loop  # noqa: E402
from taskloom.settings import Settings  # noqa: E402

DEPENDANTS = {t: [d for d, deps in SHAPE.items() if t in deps] for t in SHAPE}


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(p / 100 * len(values)))]


async def agent_main(nats_url: str, prefix: str) -> None:
    """Completes every assignment at once: ack it, publish its completion."""
    nc = await nats.connect(nats_url, name="baseline-agent")
    js = nc.jetstream()

    async def complete(msg: Msg) -> None:
        await js.publish(f"{prefix}.done.{msg.subject.split('.', 2)[2]}", msg.data)
        await msg.ack()

    running: set[asyncio.Task[None]] = set()

    async def on_assignment(msg: Msg) -> None:  # parallel tasks are completed concurrently
        task = asyncio.create_task(complete(msg))
        running.add(task)
        task.add_done_callback(running.discard)

    await js.subscribe(
        f"{prefix}.assign.>", durable="agent", cb=on_assignment, manual_ack=True,
        config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, max_ack_pending=1024),
    )  # fmt: skip
    print("ready", flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await nc.drain()


async def run(args: argparse.Namespace, nats_url: str, db: str) -> dict[str, float]:
    prefix = f"b{uuid.uuid4().hex[:8]}"
    nc = await nats.connect(nats_url, name="baseline-engine")
    js = nc.jetstream()
    await js.add_stream(StreamConfig(name=prefix.upper(), subjects=[f"{prefix}.>"], storage=StorageType.FILE))
    pool = await asyncpg.create_pool(db, min_size=8, max_size=8)
    await pool.execute(
        "CREATE TABLE IF NOT EXISTS baseline_done (workflow_id text, task_id text, result jsonb,"
        " done_at timestamptz DEFAULT now(), PRIMARY KEY (workflow_id, task_id))"
    )
    done: dict[str, set[str]] = {}
    finished: dict[str, asyncio.Future[float]] = {}

    async def assign(wf: str, task: str) -> None:
        body = json.dumps({"workflow_id": wf, "task_id": task}).encode()
        await js.publish(f"{prefix}.assign.{wf}.{task}", body)

    async def on_done(msg: Msg) -> None:
        body = json.loads(msg.data)
        wf, task = body["workflow_id"], body["task_id"]
        await pool.execute(
            "INSERT INTO baseline_done (workflow_id, task_id, result) VALUES ($1, $2, $3)"
            " ON CONFLICT DO NOTHING", wf, task, msg.data.decode(),
        )  # fmt: skip
        have = done.setdefault(wf, set())
        have.add(task)
        ready = [d for d in DEPENDANTS[task] if all(x in have for x in SHAPE[d]) and d not in have]
        await asyncio.gather(*(assign(wf, d) for d in ready))
        await msg.ack()
        if len(have) == len(SHAPE):
            finished[wf].set_result(time.perf_counter())

    async def on_done_concurrently(msg: Msg) -> None:
        # nats-py runs a subscription's callbacks one at a time; the engine handles its
        # completions concurrently, as a pool of connections lets it
        task = asyncio.create_task(on_done(msg))
        pending.add(task)
        task.add_done_callback(pending.discard)

    pending: set[asyncio.Task[None]] = set()
    await js.subscribe(
        f"{prefix}.done.>", durable="engine", cb=on_done_concurrently, manual_ack=True,
        config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, max_ack_pending=4096),
    )  # fmt: skip
    agent = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--agent", nats_url, prefix, stdout=asyncio.subprocess.PIPE
    )
    assert agent.stdout is not None
    while (line := await agent.stdout.readline()) and line.strip() != b"ready":
        pass

    async def workflow() -> float:
        wf = uuid.uuid4().hex
        finished[wf] = asyncio.get_running_loop().create_future()
        t0 = time.perf_counter()
        await assign(wf, "A")
        return await finished[wf] - t0

    latencies = [await workflow() for _ in range(args.single)]
    t0 = time.perf_counter()
    await asyncio.gather(*(workflow() for _ in range(args.burst)))
    burst = time.perf_counter() - t0
    agent.send_signal(signal.SIGTERM)
    await agent.wait()
    await nc.drain()
    await pool.close()
    return {
        "single_p50": pct(latencies, 50) * 1000,
        "single_p99": pct(latencies, 99) * 1000,
        "burst_wf_s": args.burst / burst,
        "burst_tasks_s": args.burst * len(SHAPE) / burst,
    }


def report(args: argparse.Namespace, runs: list[dict[str, float]]) -> None:
    m = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    label = f"median of {len(runs)} runs" if len(runs) > 1 else "one run"
    print(f"--- bare pipeline baseline ({label}; PostgreSQL fsync on; {Settings().event_loop} loop) ---")
    print(f"one workflow (8 tasks) end-to-end: p50 {m['single_p50']:.1f} ms, p99 {m['single_p99']:.1f} ms")
    print(f"burst of {args.burst}: {m['burst_wf_s']:.1f} workflows/s, {m['burst_tasks_s']:.0f} tasks/s")
    if len(runs) > 1:
        for k in ("single_p50", "burst_tasks_s"):
            print(f"  {k} per run: {', '.join(f'{r[k]:.1f}' for r in runs)}")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--agent":
        run_loop(agent_main(sys.argv[2], sys.argv[3]), Settings().event_loop)
        sys.exit(0)
    p = argparse.ArgumentParser()
    p.add_argument("--burst", type=int, default=200)
    p.add_argument("--single", type=int, default=30)
    p.add_argument("--runs", type=int, default=1)
    cli = p.parse_args()
    os.environ.setdefault("TASKLOOM_LOG_LEVEL", "warning")
    with Stack(Settings(), durable=True) as stack:
        assert stack.info is not None
        results = []
        for _ in range(cli.runs):
            database = create_database(stack.info.database_url, f"bench_base_{uuid.uuid4().hex[:8]}")
            results.append(run_loop(run(cli, stack.info.nats_url, database), Settings().event_loop))
        report(cli, results)
