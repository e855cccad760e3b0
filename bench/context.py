"""Context service benchmark: ``get_context`` p50/p99 through NATS, cached and uncached, for a
1,000-key context spread over all five scopes with the access policy filtering it.

Runs the service as its own process (``python -m taskloom.context``) against the embedded stack
(or TASKLOOM_NATS_URL / TASKLOOM_DATABASE_URL), in a database of its own dropped at the end::

    .venv/bin/python bench/context.py [--requests 2000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

import nats

from taskloom.context import ContextClient, ContextUnavailable
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
    for scope, count in LAYOUT.items():
        for i in range(count):
            key = f"{scope}_key_{i:04d}"
            classification = "internal"
            if i % 20 == 0:
                classification = "confidential"  # 5%: denied to AGENT
                denied += 1
            elif i % 50 == 1:
                key = f"{scope}_api_token_{i:04d}"  # 2%: encrypted at rest, readable
            value = {"id": i, "note": "x" * 64, "tags": ["a", "b"], "n": i * 1.5}
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


async def measure(
    nc: nats.NATS, subjects: Subjects, req: ContextGetRequest, n: int
) -> tuple[float, float, int]:
    data = req.model_dump_json().encode()
    subject = subjects.context("get")
    samples = []
    size = 0
    for _ in range(n):
        start = time.perf_counter()
        msg = await nc.request(subject, data, timeout=5)
        samples.append((time.perf_counter() - start) * 1000)
        size = len(msg.data)
    return pct(samples, 50), pct(samples, 99), size


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
        uncached_req = cached_req.model_copy(update={"use_cache": False})
        await measure(nc, subjects, cached_req, 200)  # warm-up
        await measure(nc, subjects, uncached_req, 100)
        c50s, c99s, u50s, u99s = [], [], [], []
        reply_size = 0
        for r in range(rounds):
            c50, c99, reply_size = await measure(nc, subjects, cached_req, requests)
            u50, u99, _ = await measure(nc, subjects, uncached_req, requests // 4)
            c50s.append(c50)
            c99s.append(c99)
            u50s.append(u50)
            u99s.append(u99)
            print(
                f"  round {r + 1}: cached p50 {c50:.3f} p99 {c99:.3f} ms"
                f" | uncached p50 {u50:.3f} p99 {u99:.3f} ms"
            )
        med = statistics.median
        print(f"\nget_context through NATS, 1,000-key context, policy filter on, reply {reply_size:,} bytes")
        print(f"medians of {rounds} rounds                 target")
        print(f"  cached    p50 {med(c50s):7.3f} ms")
        print(f"            p99 {med(c99s):7.3f} ms        <= 2 ms")
        print(f"  uncached  p50 {med(u50s):7.3f} ms")
        print(f"            p99 {med(u99s):7.3f} ms        <= 10 ms")
    finally:
        await nc.drain()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    base = Settings()
    with Stack(base, durable=False) as stack, tempfile.TemporaryDirectory() as data_dir:
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
