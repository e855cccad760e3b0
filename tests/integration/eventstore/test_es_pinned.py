"""The store's long-held connection: one backend across uses, replaced after it breaks, and
transactions on it that commit, roll back and hold their advisory lock."""

from __future__ import annotations

import asyncio
import contextlib

import asyncpg
import pytest

from taskloom.eventstore import EventStore, StoreUnavailable
from taskloom.eventstore._pg import raw_transaction
from taskloom.infra import StackInfo

LOCK = 0x7465_7374_6C6F_636B


async def test_one_backend_across_uses_and_a_new_one_after_it_breaks(store: EventStore) -> None:
    async with store.pinned() as conn:
        first = await conn.fetchval("SELECT pg_backend_pid()")
    async with store.pinned() as conn:
        assert await conn.fetchval("SELECT pg_backend_pid()") == first  # no pool round trip
    async with store.driver() as other:
        assert await other.fetchval("SELECT pg_terminate_backend($1)", first)
        for _ in range(100):  # until the backend is gone
            if not await other.fetchval("SELECT count(*) FROM pg_stat_activity WHERE pid = $1", first):
                break
            await asyncio.sleep(0.02)
    # the driver may notice the closed socket before the next use (a silent replacement) or
    # on it: then that one use fails, as the store's own StoreUnavailable, and is not retried
    with contextlib.suppress(StoreUnavailable):
        async with store.pinned_transaction() as conn:
            await conn.fetchval("SELECT 1")
    async with store.pinned() as conn:
        replaced = await conn.fetchval("SELECT pg_backend_pid()")
    assert replaced != first


async def test_a_pinned_transaction_commits_rolls_back_and_holds_its_lock(
    store: EventStore, stack: StackInfo, schema: str
) -> None:
    table = f'"{schema}".t'  # the test's own schema
    insert = f"INSERT INTO {table} VALUES ($1)"  # noqa: S608
    async with store.pinned() as conn:
        await conn.execute(f"CREATE TABLE {table} (n int)")
    watcher = await asyncpg.connect(stack.database_url)
    try:
        async with store.pinned_transaction(advisory_lock=LOCK) as conn:
            await conn.execute(insert, 1)
            assert not await watcher.fetchval("SELECT pg_try_advisory_xact_lock($1)", LOCK)
        with pytest.raises(RuntimeError):
            async with store.pinned_transaction(advisory_lock=LOCK) as conn:
                await conn.execute(insert, 2)
                raise RuntimeError("the caller's own failure")
        assert await watcher.fetchval("SELECT pg_try_advisory_lock($1)", LOCK)  # released
        assert await watcher.fetch(f"SELECT n FROM {table}")  # noqa: S608 == [(1,)]  # 2 rolled back
        async with store.pinned() as conn:
            assert not conn.is_in_transaction()  # the connection is clean for the next user
    finally:
        await watcher.close()


async def test_a_transaction_whose_begin_fails_leaves_the_connection_clean(store: EventStore) -> None:
    async with store.pinned() as conn:
        with pytest.raises(asyncpg.DivisionByZeroError):
            async with raw_transaction(conn, "BEGIN; SELECT 1 / 0"):  # fails after its BEGIN
                raise AssertionError("the block must not run")
        assert not conn.is_in_transaction()
        assert await conn.fetchval("SELECT 2") == 2
