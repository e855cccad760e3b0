"""The infrastructure fixtures start real servers and stop them without leftovers."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import asyncpg
import nats
import pytest

from taskloom.infra import EmbeddedNats, EmbeddedPostgres, StackInfo


async def test_session_stack_answers(stack: StackInfo) -> None:
    conn = await asyncpg.connect(stack.database_url)
    try:
        assert await conn.fetchval("select 1") == 1
        assert (await conn.fetchval("select current_database()")).startswith("taskloom_test_")
    finally:
        await conn.close()
    client = await nats.connect(stack.nats_url)
    try:
        info = await client.jetstream().account_info()
        assert info.limits is not None
    finally:
        await client.close()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still answers kill(0); it is gone for our purposes
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"


@pytest.mark.skipif(bool(os.environ.get("TASKLOOM_NATS_URL")), reason="embedded servers only")
def test_embedded_servers_stop_without_leftovers(tmp_path: Path) -> None:
    nats_server = EmbeddedNats(tmp_path / "nats").start()
    postgres = EmbeddedPostgres(tmp_path / "pg", durable=False).start()
    pids = [nats_server.proc.pid, postgres.proc.pid]  # type: ignore[union-attr]

    async def probe() -> None:
        client = await nats.connect(nats_server.url)
        await client.close()
        conn = await asyncpg.connect(postgres.url)
        await conn.close()

    asyncio.run(probe())
    nats_server.stop()
    postgres.stop()
    assert not any(_alive(p) for p in pids)
    # children of postgres (checkpointer, walwriter...) are gone too
    leftovers = [
        p
        for p in Path("/proc").iterdir()
        if p.name.isdigit() and str(tmp_path) in (p / "cmdline").read_bytes().decode(errors="ignore")
    ]
    assert leftovers == []
