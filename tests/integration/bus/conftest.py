"""Fixtures of the bus tests: a connected ``Bus`` with every stream declared in the test's own
namespace, deleted afterwards so the shared server does not fill up."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from bus_testkit import drop_namespace, open_bus

from taskloom.bus import Bus
from taskloom.settings import Settings


@pytest.fixture
async def bus(settings: Settings) -> AsyncIterator[Bus]:
    b = await open_bus(settings)
    await b.ensure_streams()
    try:
        yield b
    finally:
        await b.stop_consumers(5.0)
        await drop_namespace(b)
        await b.close()
