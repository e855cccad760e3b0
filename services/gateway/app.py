"""The gateway's composition root: ``create_app(settings)`` wires adapters, handlers, routes,
middleware, error handlers, the MCP endpoint and the webhook dispatcher."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from taskloom.bus import Bus
from taskloom.eventstore import EventStore, EventStoreError, migrate
from taskloom.gateway.adapters.audit import AuditTrail
from taskloom.gateway.adapters.history import History
from taskloom.gateway.adapters.nats import GatewayBus
from taskloom.gateway.adapters.planner import Planner
from taskloom.gateway.adapters.postgres import MIGRATIONS_DIR, GatewayDb
from taskloom.gateway.adapters.webhooks import WebhookDispatcher
from taskloom.gateway.api import system, workflows, ws
from taskloom.gateway.api.middleware import BodySizeLimit, RequestMetrics
from taskloom.gateway.api.status import StatusFastPath
from taskloom.gateway.config import GatewaySettings
from taskloom.gateway.domain.ratelimit import RateLimiter
from taskloom.gateway.errors import GatewayError
from taskloom.gateway.feeds import Feeds
from taskloom.gateway.handlers import Gateway
from taskloom.gateway.security import TokenVerifier
from taskloom.gateway.state import GatewayState
from taskloom.observability import get_logger

__all__ = ["create_app"]

_log = get_logger(__name__)

DESCRIPTION = """Taskloom's client API: submit complex requests, follow their task graphs live,
replay any workflow's history. Authenticate with a JWT bearer token
(`taskloom token --user alice --role developer` mints a development token)."""


async def build_state(settings: GatewaySettings, *, webhooks: bool = True) -> GatewayState:
    verifier = TokenVerifier(settings)
    setup = await Bus.connect(settings, name="gateway-setup")
    try:
        await setup.ensure_streams()
        await setup.ensure_registry()
    finally:
        await setup.close()
    if not settings.database_url:
        raise ValueError("TASKLOOM_DATABASE_URL is not set")
    # no overflow connections: past the pool size a caller waits for a connection rather than
    # opening one that is closed again on release (a connect per submission under load)
    store = EventStore.connect(settings.database_url, settings.db_pool_size, max_overflow=0)
    await store.migrate()
    await migrate(store.engine, component="gateway", migrations_dir=MIGRATIONS_DIR)
    db = await GatewayDb.connect(settings)
    bus = await GatewayBus.connect(settings)
    audit = AuditTrail(db)
    audit.start()
    history = History(store, settings.namespace)
    await history.migrate()
    gateway = Gateway(settings, db, history, bus, audit, Planner(settings.plan_on_submit))
    dispatcher = None
    if webhooks:
        dispatcher = WebhookDispatcher(
            db.pool,
            store,
            settings.webhook_secret.get_secret_value().encode(),
            settings.namespace,
            allow_private=settings.webhook_allow_private,
            max_attempts=settings.webhook_max_attempts,
            backoff_base=settings.webhook_backoff_seconds,
            timeout=settings.webhook_timeout_seconds,
        )
        dispatcher.start()
    return GatewayState(
        settings=settings,
        gateway=gateway,
        verifier=verifier,
        limiter=RateLimiter(settings.rate_limit_per_second, settings.rate_limit_burst),
        db=db,
        bus=bus,
        store=store,
        audit=audit,
        webhooks=dispatcher,
        feeds=Feeds(store, bus),
    )


async def close_state(state: GatewayState) -> None:
    state.stopping.set()
    await state.feeds.close()
    if state.webhooks is not None:
        await state.webhooks.stop()
    await state.audit.stop()
    with contextlib.suppress(Exception):
        await state.bus.close()
    await state.db.close()
    await state.store.close()


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    settings = settings or GatewaySettings()
    mcp_app = None
    if settings.mcp_http_enabled:
        from taskloom.gateway.mcp import http_app

        mcp_app = http_app(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.taskloom = await build_state(settings)
        # the start-up heap (FastAPI, pydantic models, the MCP server) lives as long as the
        # process: out of the cyclic collector's generations, full collections stop walking it
        # and no longer stall requests for tens of milliseconds
        gc.freeze()
        _log.info("gateway ready", port=settings.http_port, namespace=settings.namespace)
        try:
            if mcp_app is not None:
                async with mcp_app.router.lifespan_context(mcp_app):
                    yield
            else:
                yield
        finally:
            await close_state(app.state.taskloom)

    app = FastAPI(
        title="Taskloom",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        # Taskloom exports Prometheus metrics; FastAPI's OpenTelemetry hooks would otherwise ask
        # the (unconfigured) OpenTelemetry providers on every request whether they are enabled
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.include_router(workflows.router)
    app.include_router(system.api)
    app.include_router(system.probes)
    app.include_router(ws.router)
    if mcp_app is not None:
        # the MCP app's one route is /mcp; adding it directly avoids a /mcp/mcp mount path
        app.router.routes.extend(mcp_app.routes)
    _error_handlers(app)
    # the last added is the outermost: metrics, then the body limit, then the status fast path
    app.add_middleware(StatusFastPath)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestMetrics)
    return app


def _error_handlers(app: FastAPI) -> None:
    @app.exception_handler(GatewayError)
    async def gateway_error(_: Request, exc: GatewayError) -> JSONResponse:
        return JSONResponse({"detail": exc.message}, status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors: list[dict[str, Any]] = []
        parts: list[str] = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()))
            parts.append(f"{where}: {err.get('msg')}")
            errors.append({"loc": list(err.get("loc", ())), "msg": err.get("msg"), "type": err.get("type")})
        return JSONResponse(
            {"detail": "invalid request: " + "; ".join(parts), "errors": jsonable_encoder(errors)},
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"detail": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(EventStoreError)
    async def store_error(_: Request, exc: EventStoreError) -> JSONResponse:
        return JSONResponse({"detail": f"the event store is unavailable: {exc}"}, status_code=503)

    @app.exception_handler(asyncpg.PostgresError)
    async def database_error(_: Request, exc: asyncpg.PostgresError) -> JSONResponse:
        _log.warning("database error", error=str(exc))
        return JSONResponse({"detail": "the database could not answer; try again"}, status_code=503)

    @app.exception_handler(OSError)
    async def connection_error(_: Request, exc: OSError) -> JSONResponse:
        return JSONResponse({"detail": f"a backing service is unreachable: {exc}"}, status_code=503)
