"""Fixtures of the event store tests: a store in a schema of its own per test (so positions
start at 1 and relays see only this test's rows), JetStream, and a stream reader."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from nats.js import JetStreamContext
from nats.js.api import RawStreamMsg, StreamConfig

from taskloom.contracts.subjects import Subjects
from taskloom.eventstore import EventStore
from taskloom.infra import StackInfo

StreamReader = Callable[[str], Awaitable[list[RawStreamMsg]]]


async def open_store(stack: StackInfo, schema: str, pool_size: int = 25) -> EventStore:
    store = EventStore.connect(stack.database_url, pool_size, schema=schema)
    await store.migrate()
    return store


@pytest.fixture
def schema() -> str:
    return f"es_{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def store(stack: StackInfo, schema: str) -> AsyncIterator[EventStore]:
    s = await open_store(stack, schema)
    try:
        yield s
    finally:
        async with s.engine.begin() as conn:
            await conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await s.close()


@pytest.fixture
def js(nc: Any) -> JetStreamContext:
    return nc.jetstream()  # type: ignore[no-any-return]


@pytest.fixture
async def tasks_stream(js: JetStreamContext, subjects: Subjects) -> AsyncIterator[str]:
    """A JetStream stream of this test's ``<ns>.tasks.>`` subjects (2-minute dedup window)."""
    name = subjects.stream("tasks")
    await js.add_stream(StreamConfig(name=name, subjects=[subjects.tasks_all], duplicate_window=120))
    try:
        yield name
    finally:
        await js.delete_stream(name)


@pytest.fixture
async def events_stream(js: JetStreamContext, subjects: Subjects) -> AsyncIterator[str]:
    name = subjects.stream("events")
    await js.add_stream(StreamConfig(name=name, subjects=[subjects.events_all], duplicate_window=120))
    try:
        yield name
    finally:
        await js.delete_stream(name)


@pytest.fixture
def read_stream_messages(js: JetStreamContext) -> StreamReader:
    """Every message a JetStream stream holds, in sequence order."""

    async def read(name: str) -> list[RawStreamMsg]:
        info = await js.stream_info(name)
        state = info.state
        if state.messages == 0:
            return []
        return [await js.get_msg(name, seq) for seq in range(state.first_seq, state.last_seq + 1)]

    return read
