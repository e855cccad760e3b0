"""Lifecycle of a service process: start, serve health probes, stop gracefully on a signal."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import signal
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol, TypeVar

import asyncpg
import nats
import uvicorn

from taskloom.observability import configure_logging, get_logger, render_metrics
from taskloom.settings import Settings, asyncpg_dsn

T = TypeVar("T")

__all__ = ["ProbeResult", "Service", "probe_dependencies", "run_service", "serve"]

ProbeResult = dict[str, bool]


class Service(Protocol):
    """What ``run_service`` needs from a service object."""

    name: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def readiness(self) -> ProbeResult: ...


async def probe_dependencies(settings: Settings, timeout: float = 2.0) -> ProbeResult:  # noqa: ASYNC109
    """Whether NATS and PostgreSQL answer right now (for ``/ready``)."""

    async def nats_ok() -> bool:
        nc = await nats.connect(
            settings.nats_url or "",
            connect_timeout=timeout,
            max_reconnect_attempts=0,
            allow_reconnect=False,
            user=settings.nats_user,
            password=settings.nats_password.get_secret_value() if settings.nats_password else None,
        )
        await nc.close()
        return True

    async def postgres_ok() -> bool:
        conn = await asyncpg.connect(asyncpg_dsn(settings.database_url or ""), timeout=timeout)
        try:
            return bool(await conn.fetchval("select 1") == 1)
        finally:
            await conn.close()

    async def check(probe: Callable[[], Awaitable[bool]]) -> bool:
        # nats-py keeps retrying a refused first connect internally: bound every probe
        try:
            return await asyncio.wait_for(probe(), timeout * 2)
        except Exception:
            return False

    return {
        "nats": bool(settings.nats_url) and await check(nats_ok),
        "postgres": bool(settings.database_url) and await check(postgres_ok),
    }


def _probe_app(service: Service, is_running: Callable[[], bool]) -> Callable[..., Awaitable[None]]:
    """A bare ASGI app: no framework needed for three fixed routes."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        path = scope.get("path", "")
        status, ctype, body = 404, "application/json", b'{"detail":"not found"}'
        if path == "/health":
            alive = is_running()
            status = 200 if alive else 503
            body = json.dumps({"status": "ok" if alive else "stopping", "service": service.name}).encode()
        elif path == "/ready":
            try:
                checks = await asyncio.wait_for(service.readiness(), timeout=5)
            except Exception as exc:  # a failing probe must answer, not crash the server
                checks = {"probe": False}
                get_logger(__name__).warning("readiness probe failed", error=str(exc))
            ok = all(checks.values()) and is_running()
            status = 200 if ok else 503
            body = json.dumps({"ready": ok, "checks": checks, "service": service.name}).encode()
        elif path == "/metrics":
            status, (body, ctype) = 200, render_metrics()
        await send(
            {"type": "http.response.start", "status": status, "headers": [(b"content-type", ctype.encode())]}
        )
        await send({"type": "http.response.body", "body": body})

    return app


async def serve(service: Service, settings: Settings, stop_event: asyncio.Event | None = None) -> None:
    """Start ``service``, serve probes on ``settings.http_port`` (0 = no HTTP), run until
    ``stop_event`` is set or SIGTERM/SIGINT arrives, then stop it gracefully."""
    log = get_logger("taskloom.runtime", service=service.name)
    stop = stop_event or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    running = False
    server: uvicorn.Server | None = None
    server_task: asyncio.Task[None] | None = None
    try:
        await service.start()
        # objects built at start-up live for the whole process: keeping them out of the
        # collector's generations removes most full-collection pauses from request latency
        gc.freeze()
        running = True
        log.info("service started", http_port=settings.http_port)
        if settings.http_port:
            config = uvicorn.Config(
                _probe_app(service, lambda: running),
                host=settings.http_host,
                port=settings.http_port,
                log_level="warning",
                access_log=False,
                lifespan="off",
            )
            server = uvicorn.Server(config)
            # the service owns SIGTERM/SIGINT; uvicorn must not take them over
            server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
            server_task = asyncio.create_task(server.serve())
        await stop.wait()
        log.info("stopping service")
    finally:
        running = False
        with contextlib.suppress(Exception):
            await service.stop()
        if server is not None and server_task is not None:
            server.should_exit = True
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server_task, timeout=5)
        log.info("service stopped")


def run_loop(main: Coroutine[Any, Any, T], event_loop: str = "uvloop") -> T:
    """Run ``main`` to completion on the chosen event loop (uvloop when asked for and installed,
    else asyncio's own)."""
    if event_loop == "uvloop":
        try:
            import uvloop  # noqa: PLC0415 - optional: not every platform has it
        except ImportError:
            pass
        else:
            return uvloop.run(main)
    return asyncio.run(main)


def run_service(service: Service, settings: Settings) -> None:
    """Blocking entry point for a service's ``__main__``."""
    configure_logging(settings.log_level, settings.log_format, service=service.name)
    run_loop(serve(service, settings), settings.event_loop)
