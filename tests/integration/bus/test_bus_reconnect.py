"""A bus survives its NATS server restarting: the client reconnects (and says so in the logs),
and a running consumer goes on with the messages published after the restart."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from bus_testkit import Ping, eventually, open_bus, ping
from structlog.testing import capture_logs

from taskloom.bus import Delivery, StreamKind
from taskloom.infra import EmbeddedNats
from taskloom.settings import Settings


@pytest.mark.slow
async def test_consumer_keeps_going_across_a_server_restart(settings: Settings, tmp_path: Path) -> None:
    server = await asyncio.to_thread(EmbeddedNats(tmp_path / "nats").start)
    seen: list[int] = []

    async def handler(value: Ping, delivery: Delivery) -> None:
        seen.append(value.n)

    try:
        with capture_logs() as logs:
            bus = await open_bus(settings, url=server.url, reconnect_wait=0.2, name="restart-test")
            try:
                await bus.ensure_streams()
                await bus.ensure_consumer(StreamKind.PROGRESS, "orchestrator", ack_wait=5)
                await bus.consume(StreamKind.PROGRESS, "orchestrator", handler, Ping.model_validate_json)
                await bus.publish(bus.subjects.progress("a", "wf", "1"), ping(1))
                await eventually(lambda: seen == [1])

                await asyncio.to_thread(server.stop)
                await eventually(lambda: any(e["event"] == "nats_disconnected" for e in logs))
                await asyncio.sleep(1.0)  # the consumer loop sees fetch failures meanwhile
                await asyncio.to_thread(server.start)  # same port, same JetStream store
                await eventually(lambda: any(e["event"] == "nats_reconnected" for e in logs), timeout=15)

                await bus.publish(bus.subjects.progress("a", "wf", "2"), ping(2))
                await eventually(lambda: seen == [1, 2], timeout=15)
            finally:
                await bus.close()
        assert any(e["event"] == "nats_closed" for e in logs)
    finally:
        await asyncio.to_thread(server.stop)
