"""Fixtures for the agent runtime's integration tests: JetStream set up for the test's namespace."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from agents_testkit import ProgressLog

from taskloom.agents.adapters.jetstream import ensure_streams
from taskloom.contracts import Subjects


@pytest.fixture
async def js(nc: Any, subjects: Subjects) -> Any:
    context = nc.jetstream()
    await ensure_streams(context, subjects)
    return context


@pytest.fixture
async def progress_log(js: Any, subjects: Subjects) -> AsyncIterator[ProgressLog]:
    log = await ProgressLog(js, subjects).start()
    try:
        yield log
    finally:
        await log.stop()
