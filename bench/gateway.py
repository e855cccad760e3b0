"""Gateway benchmark: status reads, WebSocket fan-out latency and submissions.

    .venv/bin/python bench/gateway.py [--seconds 10] [--clients 50] [--rate 1500] [--ws-clients 500]

Starts NATS + PostgreSQL (embedded, or TASKLOOM_NATS_URL / TASKLOOM_DATABASE_URL) and one
gateway (``--workers`` processes), then prints:
  * GET /api/v1/workflows/{id} under N concurrent keep-alive clients, twice:
    - at a fixed offered rate (``--rate`` requests/s spread over the N connections): p50 / p99
      latency, measured from each request's scheduled start, so a stalled server is charged for
      the requests it delayed (no coordinated omission);
    - as fast as the N clients can go (each sends its next request when the last one returns):
      the requests/s the gateway sustains, and the latency that queueing at saturation costs;
  * POST /api/v1/workflows: submissions accepted per second under N concurrent clients;
  * WebSocket commit -> frame: events appended to the store (as the orchestrator does) and
    relayed by an EventRelay; latency from the append's commit to each of M clients' frames.
Each phase also prints the gateway's CPU time per request (or frame), summed over its worker
processes, and the load generator's: on a small shared machine wall-clock figures move with
whatever else runs, CPU per request much less. The load generator is a lean HTTP/1.1 client on
uvloop and its WebSocket clients read only each frame's position, so it does not eat the CPU it
measures.
Targets on the reference machine: status p99 <= 15 ms at >= 1,500 req/s, commit -> frame p99
<= 50 ms, >= 300 submissions/s.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import re
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar, cast

import nats
import psutil

from taskloom.cli.devstack import ServiceProcess, free_port
from taskloom.contracts.events import TaskProgressed
from taskloom.contracts.subjects import Subjects
from taskloom.eventstore import EventStore, NewEvent
from taskloom.gateway.config import GatewaySettings
from taskloom.gateway.security import mint_token
from taskloom.infra import Stack
from taskloom.orchestrator.service import event_relay
from taskloom.settings import Settings

BODY = {
    "request": {
        "type": "system_analysis",
        "requirements": {"functional": ["Analyze code quality", "Check test coverage"]},
    },
    "context": {"project_path": "examples/sample-project"},
}


_POSITION = re.compile(rb'"position":(\d+)')
T = TypeVar("T")


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def cpu_seconds(process: psutil.Process) -> float:
    """User + system CPU of a process and all its children (uvicorn's worker processes)."""
    total = 0.0
    for p in [process, *process.children(recursive=True)]:
        try:
            times = p.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


class CpuMeter:
    """CPU spent by the gateway and by this process (the load generator) during a phase."""

    def __init__(self, gateway: psutil.Process) -> None:
        self.gateway = gateway
        self.me = psutil.Process()

    async def measure(self, work: Callable[[], Awaitable[T]]) -> tuple[T, float, float]:
        g0, m0 = cpu_seconds(self.gateway), time.process_time()
        result = await work()
        return result, cpu_seconds(self.gateway) - g0, time.process_time() - m0


def per(seconds: float, count: int) -> str:
    return f"{seconds / max(count, 1) * 1e6:,.0f} us"


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


async def fixed_rate(
    host: str, port: int, token: str, clients: int, seconds: float, rate: float, path: str
) -> tuple[list[float], dict[int, int], float]:
    """GET ``path`` at ``rate`` requests/s in total over ``clients`` connections; each latency
    runs from the request's scheduled start (a request sent late because the connection was
    still waiting counts its wait)."""
    latencies: list[float] = []
    codes: dict[int, int] = {}
    interval = clients / rate
    began = time.perf_counter() + 0.1
    stop_at = began + seconds

    async def worker(k: int) -> None:
        conn = Conn(host, port, token)
        await conn.open()
        try:
            due = began + k * interval / clients
            while due < stop_at:
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                status, _ = await conn.request("GET", path)
                latencies.append(time.perf_counter() - due)
                codes[status] = codes.get(status, 0) + 1
                due += interval
        finally:
            await conn.close()

    await asyncio.gather(*(worker(k) for k in range(clients)))
    return latencies, codes, time.perf_counter() - began


class StatusSocket(asyncio.Protocol):
    """A minimal WebSocket client for the fan-out phase: the opening handshake, then the
    server's (unmasked) frames parsed by hand, reading only each text frame's position and
    answering pings. The ``websockets`` client decodes, queues and wakes a task per frame; 500
    of those cost the load generator more CPU than the gateway spends sending the frames."""

    def __init__(self, on_frame: Callable[[int, float], None]) -> None:
        self.on_frame = on_frame
        self.buffer = bytearray()
        self.upgraded: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def upgrade(self, path: str, host: str) -> None:
        assert self.transport is not None
        key = base64.b64encode(os.urandom(16)).decode()
        self.transport.write(
            f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
        )

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()  # every frame of this read arrived together
        buf = self.buffer
        buf += data
        if not self.upgraded.done():
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buf[:end])
            del buf[: end + 4]
            if not head.startswith(b"HTTP/1.1 101"):
                self.upgraded.set_exception(RuntimeError(head.decode(errors="replace")))
                return
            self.upgraded.set_result(None)
        while len(buf) >= 2:
            opcode, length, offset = buf[0] & 0x0F, buf[1] & 0x7F, 2
            if length >= 126:
                offset = 4 if length == 126 else 10
                if len(buf) < offset:
                    return
                length = int.from_bytes(buf[2:offset], "big")
            if len(buf) < offset + length:
                return
            payload = bytes(buf[offset : offset + length])
            del buf[: offset + length]
            if opcode == 0x1:
                found = _POSITION.search(payload)
                assert found is not None, payload
                self.on_frame(int(found.group(1)), now)
            elif opcode == 0x9 and self.transport is not None:  # ping: a masked pong (zero mask)
                self.transport.write(bytes([0x8A, 0x80 | len(payload)]) + b"\0\0\0\0" + payload)


async def websocket_fanout(
    base_ws: str, token: str, wf: str, settings: Settings, clients: int, events: int
) -> list[float]:
    store = EventStore.from_settings(settings)
    nc = await nats.connect(settings.nats_url)
    subjects = Subjects(settings.namespace)
    relay = event_relay(store, nc.jetstream(), subjects, name=f"bench-{uuid.uuid4().hex}", poll_interval=0.05)
    await relay.start_at_head()
    relay.start()
    committed: dict[int, float] = {}
    latencies: list[float] = []
    ready = asyncio.Event()
    connected = 0
    host, port = base_ws.removeprefix("ws://").rsplit(":", 1)

    async def client() -> None:
        nonlocal connected
        done = asyncio.get_running_loop().create_future()

        def on_frame(position: int, at: float) -> None:
            nonlocal connected
            if position == 1:  # the replayed WorkflowSubmitted frame
                connected += 1
                if connected == clients:
                    ready.set()
            elif position in committed:
                latencies.append(at - committed[position])
            if position >= events + 1 and not done.done():
                done.set_result(None)

        transport, socket = await asyncio.get_running_loop().create_connection(
            lambda: StatusSocket(on_frame), host, int(port)
        )
        try:
            socket.upgrade(f"/ws/workflows/{wf}?token={token}", f"{host}:{port}")
            await asyncio.wait_for(socket.upgraded, 60)
            await done
        finally:
            transport.close()

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


async def submit_one(port: int, token: str) -> str:
    conn = Conn("127.0.0.1", port, token)
    await conn.open()
    status, payload = await conn.request("POST", "/api/v1/workflows", json.dumps(BODY).encode())
    assert status == 202, payload
    await conn.close()
    return str(json.loads(payload)["workflow_id"])


async def run(args: argparse.Namespace, base: str, port: int, settings: Settings, gateway: Any) -> None:
    token = mint_token(GatewaySettings(), "bench", ["developer"], 7200)
    meter = CpuMeter(gateway)
    wf = await submit_one(port, token)
    status_path = f"/api/v1/workflows/{wf}"
    host = "127.0.0.1"

    await load(host, port, token, args.clients, 2.0, "GET", status_path)  # warm-up
    (lat, codes, took), g, m = await meter.measure(
        lambda: fixed_rate(host, port, token, args.clients, args.seconds, args.rate, status_path)
    )
    print(
        f"GET /api/v1/workflows/{{id}} at {args.rate:,.0f} req/s offered over {args.clients} clients: "
        f"{len(lat) / took:,.0f} req/s, p50 {statistics.median(lat) * 1000:.2f} ms, "
        f"p99 {pct(lat, 99) * 1000:.2f} ms, statuses {codes}; "
        f"CPU per request: gateway {per(g, len(lat))}, load generator {per(m, len(lat))}"
    )
    (lat, codes, took), g, m = await meter.measure(
        lambda: load(host, port, token, args.clients, args.seconds, "GET", status_path)
    )
    print(
        f"GET /api/v1/workflows/{{id}} with {args.clients} clients flat out for {took:.1f} s: "
        f"{len(lat) / took:,.0f} req/s, p50 {statistics.median(lat) * 1000:.2f} ms, "
        f"p99 {pct(lat, 99) * 1000:.2f} ms, statuses {codes}; "
        f"CPU per request: gateway {per(g, len(lat))}, load generator {per(m, len(lat))}"
    )

    body = json.dumps(BODY).encode()
    (lat, codes, took), g, m = await meter.measure(
        lambda: load(host, port, token, args.clients, args.seconds, "POST", "/api/v1/workflows", body)
    )
    print(
        f"POST /api/v1/workflows with {args.clients} clients for {took:.1f} s: "
        f"{codes.get(202, 0) / took:,.0f} submissions/s accepted, "
        f"p50 {statistics.median(lat) * 1000:.1f} ms, p99 {pct(lat, 99) * 1000:.1f} ms, statuses {codes}; "
        f"CPU per submission: gateway {per(g, len(lat))}, load generator {per(m, len(lat))}"
    )

    ws_wf = await submit_one(port, token)
    ws_base = base.replace("http://", "ws://")
    lat, g, m = await meter.measure(
        lambda: websocket_fanout(ws_base, token, ws_wf, settings, args.ws_clients, args.ws_events)
    )
    print(
        f"WebSocket commit -> frame with {args.ws_clients} clients, {args.ws_events} events: "
        f"{len(lat)} frames, p50 {statistics.median(lat) * 1000:.1f} ms, p99 {pct(lat, 99) * 1000:.1f} ms; "
        f"CPU per frame (connections included): gateway {per(g, len(lat))}, load generator {per(m, len(lat))}"
    )


def _event_loop_runner() -> Callable[[Awaitable[None]], None]:
    """uvloop when installed (uvicorn[standard] brings it): a cheaper load generator."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run  # type: ignore[return-value]
    return uvloop.run  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--rate", type=float, default=1500.0, help="offered GET rate of the fixed-rate phase")
    parser.add_argument("--ws-clients", type=int, default=500)
    parser.add_argument("--ws-events", type=int, default=40)
    parser.add_argument("--workers", type=int, default=2, help="gateway worker processes")
    parser.add_argument("--no-fsync", action="store_true", help="PostgreSQL without fsync (not durable)")
    args = parser.parse_args()
    namespace = f"bench{uuid.uuid4().hex[:8]}"
    with Stack(Settings(), durable=not args.no_fsync) as stack:
        assert stack.info is not None
        settings = Settings(
            nats_url=stack.info.nats_url, database_url=stack.info.database_url, namespace=namespace
        )
        port = free_port()
        env = {
            **os.environ,
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
            assert gateway.proc is not None
            process = psutil.Process(gateway.proc.pid)
            _event_loop_runner()(run(args, f"http://127.0.0.1:{port}", port, settings, process))
        finally:
            gateway.stop()
    sys.stdout.flush()


if __name__ == "__main__":
    main()
