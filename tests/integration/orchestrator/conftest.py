"""Fixtures for the orchestrator against the real NATS + PostgreSQL: an orchestrator in this
process (its own PostgreSQL schema per test), scripted agents as subprocesses, and helpers to
submit graphs and wait for outcomes."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest
from orch_helpers import AGENT

from taskloom.bus import Bus
from taskloom.eventstore import EventStore
from taskloom.orchestrator.domain import Limits
from taskloom.orchestrator.service import Orchestrator
from taskloom.settings import Settings


@pytest.fixture
def schema(namespace: str) -> str:
    return namespace


@pytest.fixture
async def store(settings: Settings, schema: str) -> AsyncIterator[EventStore]:
    s = EventStore.connect(settings.database_url or "", 4, schema=schema)
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture
async def orchestrator_with(
    settings: Settings, schema: str
) -> AsyncIterator[Callable[[Limits], Awaitable[Orchestrator]]]:
    """Starts an orchestrator in this process with the given limits (stopped after the test)."""
    started: list[Orchestrator] = []

    async def start(limits: Limits) -> Orchestrator:
        o = Orchestrator(settings, schema=schema, limits=limits, event_relay="off", timer_interval=0.1)
        await o.start()
        started.append(o)
        return o

    try:
        yield start
    finally:
        for o in started:
            await o.stop()


@pytest.fixture
async def orchestrator(orchestrator_with: Callable[[Limits], Awaitable[Orchestrator]]) -> Orchestrator:
    return await orchestrator_with(Limits(heartbeat_timeout_seconds=30))


@pytest.fixture
async def bus(settings: Settings) -> AsyncIterator[Bus]:
    b = await Bus.connect(settings, name="test")
    await b.ensure_streams()
    try:
        yield b
    finally:
        await b.drain(timeout=5)


@pytest.fixture
def agents(settings: Settings) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []

    def spawn(agent: str, mode: str = "complete", *extra: str) -> subprocess.Popen[bytes]:
        cmd = [
            sys.executable,
            str(AGENT),
            "--nats",
            settings.nats_url or "",
            "--namespace",
            settings.namespace,
        ]
        proc = subprocess.Popen(  # noqa: S603 - our own script
            [*cmd, "--agent", agent, "--mode", mode, *extra],
            env={**os.environ, "TASKLOOM_LOG_LEVEL": "WARNING"},
        )
        started.append(proc)
        return proc

    try:
        yield spawn
    finally:
        for p in started:
            if p.poll() is None:
                p.kill()
            p.wait(timeout=10)
