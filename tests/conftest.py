"""Fixtures shared by the whole suite: one real NATS + PostgreSQL per test session.

Embedded servers start on free loopback ports unless ``TASKLOOM_NATS_URL`` /
``TASKLOOM_DATABASE_URL`` name existing ones. Either way every session gets a database of its
own, and every test gets a bus namespace of its own, so runs never see each other's data.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from taskloom.contracts.subjects import Subjects
from taskloom.infra import Stack, StackInfo, create_database, drop_database
from taskloom.settings import Settings


@pytest.fixture(scope="session")
def stack() -> Iterator[StackInfo]:
    """NATS and a PostgreSQL database that belong to this test session alone."""
    settings = Settings()
    with Stack(settings, durable=False) as running:
        assert running.info is not None
        name = f"taskloom_test_{uuid.uuid4().hex[:12]}"
        db_url = create_database(running.info.database_url, name)
        try:
            yield StackInfo(
                running.info.nats_url, db_url, running.info.nats_monitor_url, running.info.embedded
            )
        finally:
            drop_database(running.info.database_url, name)


@pytest.fixture
def namespace() -> str:
    """A bus namespace unique to one test: its own subjects, streams and buckets."""
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
def subjects(namespace: str) -> Subjects:
    return Subjects(namespace)


@pytest.fixture
def settings(stack: StackInfo, namespace: str, tmp_path: object) -> Settings:
    """Settings pointing at the session's servers and the test's own namespace."""
    return Settings(
        nats_url=stack.nats_url,
        database_url=stack.database_url,
        namespace=namespace,
        data_dir=tmp_path,  # type: ignore[arg-type]
    )


@pytest.fixture
async def nc(stack: StackInfo) -> AsyncIterator[object]:
    """A plain nats-py client connected to the session's server."""
    import nats

    client = await nats.connect(stack.nats_url)
    try:
        yield client
    finally:
        await client.drain()


def pytest_report_header() -> list[str]:
    where = []
    where.append("nats: " + (os.environ.get("TASKLOOM_NATS_URL") or "embedded nats-server"))
    where.append("postgres: " + (os.environ.get("TASKLOOM_DATABASE_URL") or "embedded PostgreSQL"))
    return where
