"""Context service benchmark: ``get_context`` p50/p99 through NATS, cached and uncached, for a
1,000-key context spread over all five scopes with the access policy filtering it.

A sample is one ``ContextClient`` round trip up to the reply's JSON bytes in the client's hands:
the request, the service's answer, and the inflating of a compressed reply (the client offers
gzip unless told not to). The values carry random hex, so the reply compresses no better than
its JSON structure allows. ``cached, plain`` is the same request from a client that does not
offer compression; ``cached, parsed`` adds the client's parsing into a ``ContextView``.

Runs the service as its own process (``python -m taskloom.context``) against the embedded stack
(or TASKLOOM_NATS_URL / TASKLOOM_DATABASE_URL), in a database of its own dropped at the end::

    .venv/bin/python bench/context.py [--requests 2000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable

import nats

from taskloom.context import ContextClient, ContextUnavailable
from taskloom.context.encoding import ACCEPT_ENCODING, GZIP
from taskloom.contracts.context import ContextGetRequest
from taskloom.contracts.subjects import Subjects
from taskloom.infra import Stack, create_database, drop_database
from taskloom.settings import Settings

AGENT = "testing-specialist"  # ceiling "internal": the confidential keys are filtered out
LAYOUT = {"global": 200, "project": 200, "workflow": 300, "task": 200, "agent": 100}


def pct(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


async def seed(client: ContextClient, wf: str) -> tuple[int, int]:
    written = denied = 0
    rng = random.Random(6)
    for scope, count in LAYOUT.items():
        for i in range(count):
            key = f"{scope}_key_{i:04d}"
            classification = "internal"
            if i % 20 == 0:
                classification = "confidential"  # 5%: denied to AGENT
                denied += 1
            elif i % 50 == 1:
                key = f"{scope}_api_token_{i:04d}"  # 2%: encrypted at rest, readable
            value = {"id": i, "note": rng.randbytes(32).hex(), "tags": ["a", "b"], "n": i * 1.5}
            await client.put(
                "orchestrator",
                scope,
                key,
                value,
                classification=classification,
                workflow_id=wf,
                task_id="t1",
                project_id="proj",
                scope_id=AGENT if scope == "agent" else None,
            )
            written += 1
    return written, denied


async def measure(call: Callable[[], Awaitable[object]], n: int) -> tuple[float, float]:
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - start) * 1000)
    return pct(samples, 50), pct(samples, 99)


async def run(settings: Settings, requests: int, rounds: int) -> None:
    nc = await nats.connect(settings.nats_url or "")
    subjects = Subjects(settings.namespace)
    client = ContextClient(nc, subjects, timeout=10)
    wf = f"wf-{uuid.uuid4().hex[:8]}"
    try:
        for _ in range(200):
            try:
                await client.audit(limit=1)
                break
            except ContextUnavailable:
                await asyncio.sleep(0.1)
        started = time.perf_counter()
        written, denied = await seed(client, wf)
        print(
            f"seeded {written} keys in {time.perf_counter() - started:.1f} s"
            f" ({denied} above the agent's ceiling)"
        )
        view = await client.get(AGENT, wf, "t1", project_id="proj")
        print(
            f"view: {len(view.context)} keys, {view.denied_count} denied, {view.size_bytes:,} bytes of values"
        )
        assert view.denied_count == denied and len(view.context) == written - denied
        cached_req = ContextGetRequest(agent_id=AGENT, workflow_id=wf, task_id="t1", project_id="proj")
        cached = cached_req.model_dump_json().encode()
        uncached = cached_req.model_copy(update={"use_cache": False}).model_dump_json().encode()
        plain_client = ContextClient(nc, subjects, timeout=10, compress=False)
        json_size = len(await client.request_raw("get", cached))
        wire = await nc.request(subjects.context("get"), cached, timeout=5, headers={ACCEPT_ENCODING: GZIP})
        variants: dict[str, tuple[Callable[[], Awaitable[object]], int]] = {
            "cached": (lambda: client.request_raw("get", cached), requests),
            "uncached": (lambda: client.request_raw("get", uncached), requests // 4),
            "cached, plain": (lambda: plain_client.request_raw("get", cached), requests),
            "cached, parsed": (lambda: client.get(AGENT, wf, "t1", project_id="proj"), requests // 2),
        }
        for call, n in variants.values():  # warm-up
            await measure(call, max(n // 10, 50))
        # like every service and agent process (taskloom.runtime), keep the start-up heap out
        # of the collector's full collections, which would otherwise walk it in a request
        gc.freeze()
        pauses: list[float] = []
        gc_started = 0.0

        def on_gc(phase: str, info: dict[str, int]) -> None:
            nonlocal gc_started
            if info["generation"] == 2:
                if phase == "start":
                    gc_started = time.perf_counter()
                else:
                    pauses.append((time.perf_counter() - gc_started) * 1000)

        gc.callbacks.append(on_gc)
        figures: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in variants}
        for r in range(rounds):
            line = []
            for name, (call, n) in variants.items():
                p50, p99 = await measure(call, n)
                figures[name][0].append(p50)
                figures[name][1].append(p99)
                line.append(f"{name} {p50:.3f}/{p99:.3f}")
            print(f"  round {r + 1} (p50/p99 ms): " + " | ".join(line))
        gc.callbacks.remove(on_gc)
        med = statistics.median
        if pauses:
            print(f"full collections in the client: {len(pauses)}, longest {max(pauses):.1f} ms")
        targets = {"cached": "<= 2 ms", "uncached": "<= 10 ms"}
        print(
            f"\nget_context through NATS, 1,000-key context, policy filter on, reply {json_size:,} bytes"
            f" of JSON, {len(wire.data):,} on the wire compressed"
        )
        print(f"medians of {rounds} rounds          p50        p99      target (p99)")
        for name, (p50s, p99s) in figures.items():
            print(f"  {name:<16} {med(p50s):7.3f} ms {med(p99s):7.3f} ms   {targets.get(name, '')}")
    finally:
        await nc.drain()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-fsync", action="store_true", help="PostgreSQL without fsync (not durable)")
    args = parser.parse_args()
    base = Settings()
    with Stack(base, durable=not args.no_fsync) as stack, tempfile.TemporaryDirectory() as data_dir:
        assert stack.info is not None
        name = f"taskloom_bench_ctx_{uuid.uuid4().hex[:8]}"
        db_url = create_database(stack.info.database_url, name)
        namespace = f"bench{uuid.uuid4().hex[:6]}"
        env = {
            **os.environ,
            "TASKLOOM_NATS_URL": stack.info.nats_url,
            "TASKLOOM_DATABASE_URL": db_url,
            "TASKLOOM_NAMESPACE": namespace,
            "TASKLOOM_HTTP_PORT": "0",
            "TASKLOOM_DATA_DIR": data_dir,
            "TASKLOOM_LOG_LEVEL": "WARNING",
        }
        proc = subprocess.Popen([sys.executable, "-m", "taskloom.context"], env=env)  # noqa: S603
        try:
            settings = Settings(nats_url=stack.info.nats_url, database_url=db_url, namespace=namespace)
            asyncio.run(run(settings, args.requests, args.rounds))
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            drop_database(stack.info.database_url, name)


if __name__ == "__main__":
    main()
