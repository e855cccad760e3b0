"""Celery on the same machine and the same 8-task shape (A -> B,C,D -> E -> F,G -> H), as the
anchor ``bench/orchestrator.py`` is compared with: tasks that complete at once, Redis as broker
and result backend, a worker of two processes (Celery's default on two cores). Celery acks a task
when it starts and keeps its queue in a Redis that may keep nothing on disk, so this is a
non-durable engine: faster than a durable one has any right to be.

    pip install -e '.[anchors]'   # celery[redis], not otherwise a dependency
    .venv/bin/python bench/celery_anchor.py [--redis redis://127.0.0.1:6379/0] [--runs 3]

Prints one-workflow latency p50/p99 (apply_async -> H's result) and the burst's tasks/s. Without
Celery installed or a Redis to reach it says so and exits 0, so ``make bench`` still runs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

try:
    import redis
    from celery import Celery, chain, group
    from celery.exceptions import TimeoutError as CeleryTimeout
except ImportError:  # pragma: no cover - depends on the optional extra
    Celery = None  # type: ignore[assignment,misc]

HERE = Path(__file__).resolve().parent
BROKER = os.environ.get("ANCHOR_REDIS", "redis://127.0.0.1:6379/0")
QUEUE = os.environ.get("ANCHOR_QUEUE", "anchor")

if Celery is not None:
    app = Celery("celery_anchor", broker=BROKER, backend=BROKER)
    app.conf.update(task_default_queue=QUEUE, result_expires=600, worker_hijack_root_logger=False)

    @app.task(name="anchor.work")  # one name whether imported by the worker or run as __main__
    def work(name: str) -> dict[str, Any]:
        return {"ok": True, "task": name}


def shape() -> Any:
    return chain(
        work.si("A"),
        group(work.si("B"), work.si("C"), work.si("D")),
        work.si("E"),
        group(work.si("F"), work.si("G")),
        work.si("H"),
    )


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(p / 100 * len(values)))]


def once(single: int, burst: int) -> dict[str, float]:
    for _ in range(5):  # warm the worker's pool and the client's connections
        shape().apply_async().get(timeout=30)
    latencies = []
    for _ in range(single):
        t0 = time.perf_counter()
        shape().apply_async().get(timeout=30)
        latencies.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    results = [shape().apply_async() for _ in range(burst)]
    for r in results:
        r.get(timeout=120)
    elapsed = time.perf_counter() - t0
    return {
        "single_p50": pct(latencies, 50) * 1000,
        "single_p99": pct(latencies, 99) * 1000,
        "burst_tasks_s": burst * 8 / elapsed,
    }


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--redis", default=BROKER)
    p.add_argument("--burst", type=int, default=200)
    p.add_argument("--single", type=int, default=30)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--concurrency", type=int, default=os.cpu_count() or 2)
    args = p.parse_args()
    if Celery is None:
        print("celery anchor skipped: Celery is not installed (pip install -e '.[anchors]')")
        return 0
    try:
        redis.Redis.from_url(args.redis).ping()
    except redis.RedisError as exc:
        print(f"celery anchor skipped: no Redis at {args.redis} ({exc})")
        return 0
    env = {**os.environ, "ANCHOR_REDIS": args.redis, "ANCHOR_QUEUE": f"anchor-{uuid.uuid4().hex[:8]}"}
    os.environ.update(env)
    app.conf.update(broker_url=args.redis, result_backend=args.redis, task_default_queue=env["ANCHOR_QUEUE"])
    worker = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "celery", "-A", "celery_anchor", "worker", "-c", str(args.concurrency),
         "-Q", env["ANCHOR_QUEUE"], "-l", "warning", "--without-gossip", "--without-mingle"],
        cwd=HERE, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    runs: list[dict[str, float]] = []
    lost = 0
    try:
        for _ in range(args.runs):
            try:
                runs.append(once(args.single, args.burst))
            except CeleryTimeout:  # a result never arrived: Celery lost it, the run is void
                lost += 1
    finally:
        worker.terminate()
        worker.wait(30)
    if lost:
        print(f"celery anchor: {lost} of {args.runs} runs lost a result (timed out) and are left out")
    if not runs:
        return 1
    m = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    label = f"median of {len(runs)} runs" if len(runs) > 1 else "one run"
    print(f"--- Celery anchor ({label}; Redis broker and backend; {args.concurrency} worker processes) ---")
    print(f"one workflow (8 tasks) end-to-end: p50 {m['single_p50']:.1f} ms, p99 {m['single_p99']:.1f} ms")
    print(f"burst of {args.burst}: {m['burst_tasks_s']:.0f} tasks/s")
    print("  single_p50 per run: " + ", ".join(f"{r['single_p50']:.1f}" for r in runs))
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    # Celery's AsyncResult.__del__ unsubscribes from Redis even during interpreter shutdown,
    # printing a traceback per result; the worker is stopped and nothing else needs cleaning up
    os._exit(code)
