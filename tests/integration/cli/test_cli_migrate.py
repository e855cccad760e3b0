"""``taskloom migrate`` prepares a fresh database (and the bus) once, and is safe to repeat."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import nats
import pytest

from taskloom.cli.migrate import run_migrations
from taskloom.contracts.subjects import Subjects
from taskloom.infra import StackInfo, create_database, drop_database
from taskloom.settings import Settings


async def test_migrate_twice_creates_every_table_and_stream(stack: StackInfo, settings: Settings) -> None:
    # a database of its own: other tests of the session migrate the shared one as they start services
    name = f"migrate_{uuid.uuid4().hex[:10]}"
    url = await asyncio.to_thread(create_database, stack.database_url, name)
    settings = settings.model_copy(update={"database_url": url})
    try:
        await _migrate_twice(stack, settings, url)
    finally:
        await asyncio.to_thread(drop_database, stack.database_url, name)


async def _migrate_twice(stack: StackInfo, settings: Settings, url: str) -> None:
    first = await run_migrations(settings, streams=True)
    assert any(line.startswith("eventstore: applied [") for line in first)
    assert f"bus: {Subjects(settings.namespace).stream('tasks')} created" in first
    second = await run_migrations(settings, streams=True)
    assert [line for line in second if not line.startswith("bus:")] == [
        "eventstore: applied nothing",
        "orchestrator: applied nothing",
        "context: applied nothing",
        "gateway: applied nothing",
    ]
    assert all(line.endswith("unchanged") for line in second if line.startswith("bus:"))
    conn = await asyncpg.connect(url)
    try:
        tables = {r["tablename"] for r in await conn.fetch("select tablename from pg_tables")}
    finally:
        await conn.close()
    assert {"events", "outbox", "workflow_read_model", "agent_performance", "audit_log"} <= tables
    nc = await nats.connect(stack.nats_url)
    try:
        info = await nc.jetstream().stream_info(Subjects(settings.namespace).stream("events"))
        assert info.config.subjects == [f"{settings.namespace}.events.>"]
    finally:
        await nc.close()


async def test_migrate_without_a_database_url_says_so() -> None:
    with pytest.raises(ValueError, match="TASKLOOM_DATABASE_URL is not set"):
        await run_migrations(Settings(database_url=None))
