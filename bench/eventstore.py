"""Event store benchmark: append latency, batch throughput and stream-read latency.

Uses ``TASKLOOM_DATABASE_URL`` when set, else starts the embedded stack (durable PostgreSQL,
fsync on). Works in a schema of its own, dropped at the end. Prints the median of several
rounds for each figure, next to its target::

    .venv/bin/python bench/eventstore.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import statistics
import time
import uuid
from collections.abc import Iterator

from taskloom.eventstore import EventStore, NewEvent, OutboxMessage
from taskloom.infra import Stack
from taskloom.settings import Settings

APPENDS_PER_ROUND = 2000
BATCHES_PER_ROUND = 100
BATCH_SIZE = 100
READS_PER_ROUND = 100
STREAM_LENGTH = 1000


def pct(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def payload(i: int) -> dict[str, object]:
    """An event body of a realistic size (a task assignment is a few hundred bytes)."""
    return {
        "task_id": f"task-{i}",
        "agent_id": "core-services",
        "attempt": 1,
        "inputs": {"files": ["src/app.py", "src/db.py"], "priority": "high"},
        "note": "x" * 120,
    }


async def append_latency(store: EventStore) -> tuple[float, float]:
    """p50/p99 ms of one event + one outbox row, own transaction, expected-version checked."""
    stream, samples = f"bench-append-{uuid.uuid4().hex[:8]}", []
    for v in range(APPENDS_PER_ROUND):
        event = NewEvent.create("TaskAssigned", payload(v), {"causation_id": str(uuid.uuid4())})
        message = OutboxMessage(str(uuid.uuid4()), "taskloom.tasks.core-services", b'{"task":"t"}')
        start = time.perf_counter()
        await store.append(stream, [event], v, outbox=[message])
        samples.append((time.perf_counter() - start) * 1000)
    return pct(samples, 50), pct(samples, 99)


async def batch_throughput(store: EventStore) -> float:
    """Events/s appending 100-event batches one after the other."""
    stream = f"bench-batch-{uuid.uuid4().hex[:8]}"
    batches = [
        [NewEvent.create("TaskProgressed", payload(i)) for i in range(BATCH_SIZE)]
        for _ in range(BATCHES_PER_ROUND)
    ]
    start = time.perf_counter()
    for n, batch in enumerate(batches):
        await store.append(stream, batch, n * BATCH_SIZE)
    return BATCH_SIZE * BATCHES_PER_ROUND / (time.perf_counter() - start)


async def read_latency(store: EventStore, stream: str) -> tuple[float, float]:
    """p50/p99 ms of reading a 1,000-event stream into RecordedEvent values."""
    samples = []
    for _ in range(READS_PER_ROUND):
        start = time.perf_counter()
        events = await store.read_stream(stream)
        samples.append((time.perf_counter() - start) * 1000)
        assert len(events) == STREAM_LENGTH
    return pct(samples, 50), pct(samples, 99)


@contextlib.contextmanager
def database() -> Iterator[tuple[str, str]]:
    url = os.environ.get("TASKLOOM_DATABASE_URL")
    if url:
        yield url, f"existing server ({url})"
        return
    settings = Settings(database_url=None)
    with Stack(settings, durable=True) as stack:
        assert stack.info is not None
        yield stack.info.database_url, "embedded PostgreSQL (pgserver, durable: fsync on)"


async def run(url: str, where: str, rounds: int, freeze: bool) -> None:
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    store = EventStore.connect(url, pool_size=4, schema=schema)
    try:
        await store.migrate()
        async with store.driver() as conn:
            server = await conn.fetchval("SELECT current_setting('server_version')")
            fsync = await conn.fetchval("SELECT current_setting('fsync')")
            sync_commit = await conn.fetchval("SELECT current_setting('synchronous_commit')")
        read_stream = f"bench-read-{uuid.uuid4().hex[:8]}"
        for chunk in range(0, STREAM_LENGTH, 100):
            batch = [NewEvent.create("TaskProgressed", payload(chunk + i)) for i in range(100)]
            await store.append(read_stream, batch, chunk)
        await append_latency(store)  # warm-up: pool, prepared statements, caches
        if freeze:
            # what a long-running service should do once started: move the start-up heap out of
            # the cyclic GC's reach, so a full collection does not walk every module object
            # (without it the read p99 is dominated by gen-2 collections, ~40 ms here)
            gc.freeze()

        p50s, p99s, rates, r50s, r99s = [], [], [], [], []
        for r in range(rounds):
            p50, p99 = await append_latency(store)
            rate = await batch_throughput(store)
            r50, r99 = await read_latency(store, read_stream)
            p50s.append(p50)
            p99s.append(p99)
            rates.append(rate)
            r50s.append(r50)
            r99s.append(r99)
            print(
                f"  round {r + 1}: append p50 {p50:.3f} ms p99 {p99:.3f} ms | batches {rate:,.0f} ev/s"
                f" | read 1k p50 {r50:.2f} ms p99 {r99:.2f} ms",
                flush=True,
            )
        med = statistics.median
        print(f"\n{where}: PostgreSQL {server}, fsync={fsync}, synchronous_commit={sync_commit}")
        print(f"gc.freeze() after start-up: {'yes' if freeze else 'no'}")
        print(f"medians of {rounds} rounds                                   target")
        print(f"  append 1 event + 1 outbox row   p50 {med(p50s):7.3f} ms           <= 1.5 ms")
        print(f"                                  p99 {med(p99s):7.3f} ms")
        print(f"  100-event batches              {med(rates):9,.0f} events/s    >= 20,000")
        print(f"  read_stream 1,000 events        p50 {med(r50s):7.2f} ms           <= 15 ms")
        print(f"                                  p99 {med(r99s):7.2f} ms")
    finally:
        async with store.engine.begin() as conn:
            await conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-gc-freeze", action="store_true", help="leave the start-up heap to the GC")
    args = parser.parse_args()
    with database() as (url, where):
        print(f"event store benchmark on {where}", flush=True)
        asyncio.run(run(url, where, args.rounds, not args.no_gc_freeze))


if __name__ == "__main__":
    main()
