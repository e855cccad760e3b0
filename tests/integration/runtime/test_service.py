"""run_service's probes answer over real HTTP and the service stops gracefully."""

from __future__ import annotations

import asyncio

import httpx

from taskloom.infra import StackInfo, free_port
from taskloom.runtime import ProbeResult, probe_dependencies, serve
from taskloom.settings import Settings


class _Recorder:
    name = "recorder"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.calls: list[str] = []

    async def start(self) -> None:
        self.calls.append("start")

    async def stop(self) -> None:
        self.calls.append("stop")

    async def readiness(self) -> ProbeResult:
        return await probe_dependencies(self.settings)


async def _get(url: str) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        for _ in range(100):
            try:
                return await client.get(url)
            except httpx.ConnectError:
                await asyncio.sleep(0.05)
    raise AssertionError(f"{url} never answered")


async def test_probes_and_graceful_stop(stack: StackInfo) -> None:
    port = free_port()
    settings = Settings(nats_url=stack.nats_url, database_url=stack.database_url, http_port=port)
    service = _Recorder(settings)
    stop = asyncio.Event()
    task = asyncio.create_task(serve(service, settings, stop))
    base = f"http://127.0.0.1:{port}"
    health = await _get(f"{base}/health")
    assert health.status_code == 200 and health.json()["service"] == "recorder"
    ready = await _get(f"{base}/ready")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {"nats": True, "postgres": True}
    metrics = await _get(f"{base}/metrics")
    assert metrics.status_code == 200 and "python_info" in metrics.text
    assert (await _get(f"{base}/nope")).status_code == 404
    stop.set()
    await asyncio.wait_for(task, 10)
    assert service.calls == ["start", "stop"]


async def test_ready_reports_unreachable_dependencies() -> None:
    dead = free_port()
    settings = Settings(
        nats_url=f"nats://127.0.0.1:{dead}", database_url=f"postgresql://postgres@127.0.0.1:{dead}/x"
    )
    assert await probe_dependencies(settings, timeout=0.5) == {"nats": False, "postgres": False}


def test_run_loop_runs_on_the_chosen_event_loop() -> None:
    import uvloop

    from taskloom.runtime import run_loop

    async def loop_type() -> type:
        return type(asyncio.get_running_loop())

    assert issubclass(run_loop(loop_type(), "uvloop"), uvloop.Loop)
    assert not issubclass(run_loop(loop_type(), "asyncio"), uvloop.Loop)
    assert Settings(event_loop="asyncio").event_loop == "asyncio"
