"""Gateway benchmark: status reads, WebSocket fan-out latency and submissions.

    .venv/bin/python bench/gateway.py [--seconds 10] [--clients 50] [--ws-clients 500]

Starts NATS + PostgreSQL (embedded, or TASKLOOM_NATS_URL / TASKLOOM_DATABASE_URL) and one
gateway process, then prints:
  * GET /api/v1/workflows/{id}: p50 / p99 latency and requests/s under N concurrent clients
    (a lean keep-alive HTTP/1.1 client, so the load generator does not eat the CPU it measures);
  * WebSocket commit → frame: events appended to the store (as the orchestrator does) and
    relayed by an EventRelay; latency from the append's commit to each of M clients' frames;
  * POST /api/v1/workflows: submissions accepted per second under N concurrent clients.
Targets on the reference machine: status p99 <= 15 ms at >= 1,500 req/s, commit -> frame p99
<= 50 ms, >= 300 submissions/s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
import uuid
from pathlib import Path

import nats
import websockets

from taskloom.cli.devstack import ServiceProcess, free_port
from taskloom.contracts.events import TaskProgressed
from taskloom.contracts.subjects import Subjects
from taskloom.eventstore import EventRelay, EventStore, NewEvent
from taskloom.gateway.config import GatewaySettings
from taskloom.gateway.security import mint_token
from taskloom.infra import Stack
from taskloom.settings import Settings

BODY = {
    "request": {
        "type": "system_analysis",
        "requirements": {"functional": ["Analyze code quality", "Check test coverage"]},
    },
    "context": {"project_path": "examples/sample-project"},
}


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


class Conn:
    """One keep-alive HTTP/1.1 connection, just enough for GET and POST with JSON."""

    def __init__(self, host: str, port: int, token: str) -> None:
        self.host, self.port, self.token = host, port, token

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Authorization: Bearer {self.token}\r\nContent-Length: {len(body)}\r\n"
            + ("Content-Type: application/json\r\n" if body else "")
            + "\r\n"
        )
        self.writer.write(head.encode() + body)
        raw = await self.reader.readuntil(b"\r\n\r\n")
        status = int(raw.split(b" ", 2)[1])
        length = 0
        for line in raw.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        payload = await self.reader.readexactly(length)
        return status, payload

    async def close(self) -> None:
        self.writer.close()


async def load(
    host: str, port: int, token: str, clients: int, seconds: float, method: str, path: str, body: bytes = b""
) -> tuple[list[float], dict[int, int], float]:
    latencies: list[float] = []
    codes: dict[int, int] = {}
    stop_at = time.perf_counter() + seconds

    async def worker() -> None:
        conn = Conn(host, port, token)
        await conn.open()
        try:
            while time.perf_counter() < stop_at:
                start = time.perf_counter()
                status, _ = await conn.request(method, path, body)
                latencies.append(time.perf_counter() - start)
                codes[status] = codes.get(status, 0) + 1
        finally:
            await conn.close()

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    return latencies, codes, time.perf_counter() - began


async def websocket_fanout(
    base_ws: str, token: str, wf: str, settings: Settings, clients: int, events: int
) -> list[float]:
    store = EventStore.from_settings(settings)
    nc = await nats.connect(settings.nats_url)
    subjects = Subjects(settings.namespace)
    relay = EventRelay(
        store,
        nc.jetstream(),
        lambda e: subjects.event(e.stream_id, e.type),
        name=f"bench-{uuid.uuid4().hex}",
        poll_interval=0.05,
    )
    relay.start()
    committed: dict[int, float] = {}
    latencies: list[float] = []
    ready = asyncio.Event()
    connected = 0

    async def client() -> None:
        nonlocal connected
        url = f"{base_ws}/ws/workflows/{wf}?token={token}"
        async with websockets.connect(url, open_timeout=60, max_queue=None) as socket:
            await socket.recv()  # the replayed WorkflowSubmitted frame
            connected += 1
            if connected == clients:
                ready.set()
            async for raw in socket:
                now = time.perf_counter()
                position = json.loads(raw)["position"]
                if position in committed:
                    latencies.append(now - committed[position])
                if position >= events + 1:
                    return

    tasks = [asyncio.create_task(client()) for _ in range(clients)]
    try:
        await asyncio.wait_for(ready.wait(), 120)
        for version in range(1, events + 1):
            event = TaskProgressed(
                workflow_id=wf, task_id="t1", attempt=1, completion_percentage=version % 100
            )
            await store.append(
                wf, [NewEvent(event.event_id, event.type, event.model_dump(mode="json"))], version
            )
            committed[version + 1] = time.perf_counter()
            relay.notify()
            await asyncio.sleep(0.1)
        await asyncio.wait_for(asyncio.gather(*tasks), 60)
    finally:
        for t in tasks:
            t.cancel()
        await relay.stop()
        await nc.drain()
        await store.close()
    return latencies


async def run(args: argparse.Namespace, base: str, port: int, settings: Settings) -> None:
    token = mint_token(GatewaySettings(), "bench", ["developer"], 7200)
    conn = Conn("127.0.0.1", port, token)
    await conn.open()
    status, payload = await conn.request("POST", "/api/v1/workflows", json.dumps(BODY).encode())
    assert status == 202, payload
    wf = json.loads(payload)["workflow_id"]
    await conn.close()

    await load("127.0.0.1", port, token, args.clients, 2.0, "GET", f"/api/v1/workflows/{wf}")  # warm-up
    lat, codes, took = await load(
        "127.0.0.1", port, token, args.clients, args.seconds, "GET", f"/api/v1/workflows/{wf}"
    )
    print(
        f"GET /api/v1/workflows/{{id}} with {args.clients} clients for {took:.1f} s: "
        f"{len(lat) / took:,.0f} req/s, p50 {statistics.median(lat) * 1000:.2f} ms, "
        f"p99 {pct(lat, 99) * 1000:.2f} ms, statuses {codes}"
    )

    lat, codes, took = await load(
        "127.0.0.1",
        port,
        token,
        args.clients,
        args.seconds,
        "POST",
        "/api/v1/workflows",
        json.dumps(BODY).encode(),
    )
    print(
        f"POST /api/v1/workflows with {args.clients} clients for {took:.1f} s: "
        f"{codes.get(202, 0) / took:,.0f} submissions/s accepted, "
        f"p50 {statistics.median(lat) * 1000:.1f} ms, p99 {pct(lat, 99) * 1000:.1f} ms, statuses {codes}"
    )

    conn = Conn("127.0.0.1", port, token)
    await conn.open()
    status, payload = await conn.request("POST", "/api/v1/workflows", json.dumps(BODY).encode())
    ws_wf = json.loads(payload)["workflow_id"]
    await conn.close()
    lat = await websocket_fanout(
        base.replace("http://", "ws://"), token, ws_wf, settings, args.ws_clients, args.ws_events
    )
    print(
        f"WebSocket commit -> frame with {args.ws_clients} clients, {args.ws_events} events: "
        f"{len(lat)} frames, p50 {statistics.median(lat) * 1000:.1f} ms, p99 {pct(lat, 99) * 1000:.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--ws-clients", type=int, default=500)
    parser.add_argument("--ws-events", type=int, default=40)
    parser.add_argument("--workers", type=int, default=2, help="gateway worker processes")
    args = parser.parse_args()
    namespace = f"bench{uuid.uuid4().hex[:8]}"
    with Stack(Settings(), durable=False) as stack:
        assert stack.info is not None
        settings = Settings(
            nats_url=stack.info.nats_url, database_url=stack.info.database_url, namespace=namespace
        )
        port = free_port()
        env = {
            **__import__("os").environ,
            "TASKLOOM_NATS_URL": stack.info.nats_url,
            "TASKLOOM_DATABASE_URL": stack.info.database_url,
            "TASKLOOM_NAMESPACE": namespace,
            "TASKLOOM_HTTP_PORT": str(port),
            "TASKLOOM_RATE_LIMIT_PER_SECOND": "1000000",
            "TASKLOOM_RATE_LIMIT_BURST": "1000000",
            "TASKLOOM_DB_POOL_SIZE": "20",
            "TASKLOOM_LOG_LEVEL": "WARNING",
            "TASKLOOM_WORKERS": str(args.workers),
        }
        gateway = ServiceProcess(
            "gateway", ["-m", "taskloom.gateway"], env, port, Path("/tmp") / f"bench-gw-{port}.log"
        )
        gateway.start()
        try:
            gateway.wait_ready(path="/ready")
            asyncio.run(run(args, f"http://127.0.0.1:{port}", port, settings))
        finally:
            gateway.stop()
    sys.stdout.flush()


if __name__ == "__main__":
    main()
