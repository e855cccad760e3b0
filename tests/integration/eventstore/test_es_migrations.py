"""The generic migration runner against a real PostgreSQL: idempotent, concurrent-safe, atomic."""

from __future__ import annotations

# ruff: noqa: S608 - SQL names come from the test's own schema fixture
import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from taskloom.eventstore import EventStore, MigrationError, migrate
from taskloom.infra import StackInfo
from taskloom.settings import sqlalchemy_url


@pytest.fixture
async def engine(stack: StackInfo) -> AsyncIterator[AsyncEngine]:
    e = create_async_engine(sqlalchemy_url(stack.database_url), pool_size=2)
    try:
        yield e
    finally:
        await e.dispose()


@pytest.fixture
async def fresh_schema(engine: AsyncEngine) -> AsyncIterator[str]:
    name = f"mig_{uuid.uuid4().hex[:12]}"
    try:
        yield name
    finally:
        async with engine.begin() as conn:
            await conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


async def _tables(engine: AsyncEngine, schema: str) -> set[str]:
    async with engine.connect() as conn:
        rows = await conn.exec_driver_sql(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = $1", (schema,)
        )
        return {r[0] for r in rows}


async def test_migrating_twice_applies_once(engine: AsyncEngine, fresh_schema: str) -> None:
    store = EventStore.from_engine(engine, schema=fresh_schema)
    assert await store.migrate() == [1]
    assert await store.migrate() == []
    assert {"events", "outbox", "snapshots", "checkpoints", "event_position", "taskloom_migrations"} <= (
        await _tables(engine, fresh_schema)
    )


async def test_concurrent_starters_migrate_safely(stack: StackInfo, fresh_schema: str) -> None:
    stores = [EventStore.connect(stack.database_url, 1, schema=fresh_schema) for _ in range(8)]
    try:
        applied = await asyncio.gather(*(s.migrate() for s in stores))
    finally:
        await asyncio.gather(*(s.close() for s in stores))
    assert sorted(applied) == [[]] * 7 + [[1]]


def _write(folder: Path, name: str, sql: str) -> None:
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(sql)


async def test_a_component_gets_new_migrations_only(
    engine: AsyncEngine, fresh_schema: str, tmp_path: Path
) -> None:
    folder = tmp_path / "migrations"
    _write(folder, "0001_create.sql", "CREATE TABLE things (id int PRIMARY KEY);")
    _write(
        folder,
        "0002_column.sql",
        "ALTER TABLE things ADD COLUMN name text;\nINSERT INTO things VALUES (1, 'a')",
    )
    assert await migrate(engine, "things", folder, schema=fresh_schema) == [1, 2]
    _write(folder, "0003_more.sql", "INSERT INTO things VALUES (2, 'b');")
    assert await migrate(engine, "things", folder, schema=fresh_schema) == [3]
    # another component's history is separate, in the same table
    other = tmp_path / "other"
    _write(other, "0001_other.sql", "CREATE TABLE other_things (id int);")
    assert await migrate(engine, "other", other, schema=fresh_schema) == [1]
    async with engine.connect() as conn:
        rows = await conn.exec_driver_sql(
            f'SELECT component, version FROM "{fresh_schema}".taskloom_migrations ORDER BY 1, 2'
        )
        assert [tuple(r) for r in rows] == [("other", 1), ("things", 1), ("things", 2), ("things", 3)]
        assert (await conn.exec_driver_sql(f'SELECT count(*) FROM "{fresh_schema}".things')).scalar() == 2


async def test_a_failing_migration_leaves_the_schema_untouched(
    engine: AsyncEngine, fresh_schema: str, tmp_path: Path
) -> None:
    folder = tmp_path / "migrations"
    _write(folder, "0001_create.sql", "CREATE TABLE things (id int PRIMARY KEY);")
    _write(folder, "0002_broken.sql", "ALTER TABLE no_such_table ADD COLUMN x int;")
    with pytest.raises(MigrationError, match="no_such_table"):
        await migrate(engine, "things", folder, schema=fresh_schema)
    assert "things" not in await _tables(engine, fresh_schema)
