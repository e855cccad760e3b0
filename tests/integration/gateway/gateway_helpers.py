"""Shared request bodies and fixtures' building blocks of the gateway integration tests."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator

import nats

from taskloom.contracts.subjects import Subjects
from taskloom.eventstore import EventRelay, EventStore
from taskloom.infra import StackInfo
from taskloom.settings import Settings

SAMPLE_BODY = {
    "request": {
        "type": "system_analysis",
        "requirements": {"functional": ["Analyze code quality", "Check test coverage"]},
        "complexity": 4,
        "strategy": "balanced",
    },
    "context": {"project_path": "examples/sample-project"},
    "preferences": {},
}


@contextlib.asynccontextmanager
async def relayed_store(stack: StackInfo, namespace: str) -> AsyncIterator[tuple[EventStore, EventRelay]]:
    """The event store plus a real relay that publishes every append to NATS, as in production."""
    settings = Settings(nats_url=stack.nats_url, database_url=stack.database_url, namespace=namespace)
    store = EventStore.from_settings(settings)
    nc = await nats.connect(stack.nats_url)
    subjects = Subjects(namespace)
    relay = EventRelay(
        store,
        nc.jetstream(),
        lambda e: subjects.event(e.stream_id, e.type),
        name=f"test-{uuid.uuid4().hex}",
        poll_interval=0.05,
    )
    # from the head on: a new relay would otherwise first republish every event already stored
    await store.save_checkpoint(relay.name, await store.head_position())
    relay.start()
    try:
        yield store, relay
    finally:
        await relay.stop()
        await nc.drain()
        await store.close()
