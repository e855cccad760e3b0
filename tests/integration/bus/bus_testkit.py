"""Helpers of the bus tests: a tiny wire model, a connected bus, stream readers and waiting."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from nats.js.api import RawStreamMsg
from pydantic import BaseModel, ConfigDict

from taskloom.bus import Bus, StreamKind
from taskloom.settings import Settings


class Ping(BaseModel):
    """A wire model shaped like Taskloom's: frozen, strict, with a ``message_id``."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    message_id: str
    n: int


def ping(n: int, message_id: str | None = None) -> Ping:
    return Ping(message_id=message_id or uuid.uuid4().hex, n=n)


async def open_bus(settings: Settings, name: str = "bus-test", **kwargs: Any) -> Bus:
    return await Bus.connect(settings, name=name, **kwargs)


async def drop_namespace(bus: Bus) -> None:
    """Streams are files on a server other tests share: remove this test's."""
    for kind in StreamKind:
        with contextlib.suppress(Exception):
            await bus.js.delete_stream(bus.stream_name(kind))
    with contextlib.suppress(Exception):
        await bus.js.delete_key_value(bus.subjects.agents_bucket)


async def stream_messages(bus: Bus, kind: StreamKind | str) -> list[RawStreamMsg]:
    """Every message still stored in the stream of ``kind``, in order."""
    name = bus.stream_name(kind)
    state = (await bus.js.stream_info(name)).state
    out = []
    for seq in range(state.first_seq, state.last_seq + 1):
        with contextlib.suppress(Exception):  # deleted (acked on a work queue)
            out.append(await bus.js.get_msg(name, seq))
    return out


async def eventually(check: Callable[[], bool | Awaitable[bool]], timeout: float = 10.0) -> None:
    """Wait until ``check()`` holds; fail with the timeout otherwise."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = check()
        if isinstance(result, Awaitable):
            result = await result
        if result:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(0.05)
