"""Fixtures for the agent runtime's integration tests: the platform's JetStream topology for the
test's namespace (declared before any agent starts, as the platform services do in a
deployment) and a reader of every progress update."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from agents_testkit import ProgressLog

from taskloom.bus import Bus, StreamKind
from taskloom.contracts import Subjects
from taskloom.settings import Settings


@pytest.fixture
async def bus(settings: Settings) -> AsyncIterator[Bus]:
    b = await Bus.connect(settings, name="agents-test-platform")
    await b.ensure_streams()
    try:
        yield b
    finally:
        # the streams are files on a server the whole session shares
        for kind in StreamKind:
            with contextlib.suppress(Exception):
                await b.js.delete_stream(b.stream_name(kind))
        with contextlib.suppress(Exception):
            await b.js.delete_key_value(b.subjects.agents_bucket)
        await b.close()


@pytest.fixture
async def js(bus: Bus) -> Any:
    return bus.js


@pytest.fixture
async def progress_log(js: Any, subjects: Subjects) -> AsyncIterator[ProgressLog]:
    log = await ProgressLog(js, subjects).start()
    try:
        yield log
    finally:
        await log.stop()
