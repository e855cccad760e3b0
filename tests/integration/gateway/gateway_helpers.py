"""Shared request bodies and fixtures' building blocks of the gateway integration tests."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator

import nats

from taskloom.contracts.subjects import Subjects
from taskloom.eventstore import EventRelay, EventStore
from taskloom.infra import StackInfo
from taskloom.orchestrator.service import event_relay
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
    relay = event_relay(store, nc.jetstream(), subjects, name=f"test-{uuid.uuid4().hex}", poll_interval=0.05)
    await relay.start_at_head()
    relay.start()
    try:
        yield store, relay
    finally:
        await relay.stop()
        await nc.drain()
        await store.close()


def gateway_env(stack: StackInfo, namespace: str, port: int, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "TASKLOOM_NATS_URL": stack.nats_url,
        "TASKLOOM_DATABASE_URL": stack.database_url,
        "TASKLOOM_NAMESPACE": namespace,
        "TASKLOOM_HTTP_PORT": str(port),
        "TASKLOOM_HTTP_HOST": "127.0.0.1",
        "TASKLOOM_ALLOWED_ORIGINS": '["http://good.example"]',
        "TASKLOOM_LOG_FORMAT": "json",
        **extra,
    }
