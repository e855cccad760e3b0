"""Fixtures of the context service tests: services on the session's real NATS and PostgreSQL,
each test in its own database schema (so even the global scope is its own)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from taskloom.context import ContextClient
from taskloom.context.service import ContextService
from taskloom.contracts.subjects import Subjects
from taskloom.observability.metrics import TaskGraphMetrics
from taskloom.settings import Settings, asyncpg_dsn

MakeService = Callable[..., Awaitable[ContextService]]


@pytest.fixture
async def make_service(settings: Settings, namespace: str) -> AsyncIterator[MakeService]:
    started: list[ContextService] = []

    async def make(
        keys: list[bytes] | None = None, policy_file: Path | None = None, **kw: Any
    ) -> ContextService:
        s = settings
        if keys is not None:
            s = settings.model_copy(update={"context_encryption_keys": [SecretStr(k.decode()) for k in keys]})
        service = ContextService(
            s,
            schema=namespace,
            policy_file=policy_file,
            metrics=TaskGraphMetrics(registry=CollectorRegistry()),
            **kw,
        )
        await service.start()
        started.append(service)
        return service

    try:
        yield make
    finally:
        for service in started:
            await service.stop()


@pytest.fixture
async def service(make_service: MakeService) -> ContextService:
    return await make_service()


@pytest.fixture
def client(nc: Any, subjects: Subjects) -> ContextClient:
    return ContextClient(nc, subjects, timeout=5)


@pytest.fixture
async def raw_db(settings: Settings, namespace: str) -> AsyncIterator[asyncpg.Connection]:
    """A plain connection looking at the test's schema, for raw SELECTs."""
    conn = await asyncpg.connect(
        asyncpg_dsn(settings.database_url or ""), server_settings={"search_path": namespace}
    )
    try:
        yield conn
    finally:
        await conn.close()
