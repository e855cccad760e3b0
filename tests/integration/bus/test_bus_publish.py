"""Publishing: JetStream dedup by message id, core publishes, request/reply, typed errors."""

from __future__ import annotations

import asyncio
import json
import socket

import pytest
from bus_testkit import Ping, open_bus, ping, stream_messages
from nats.aio.msg import Msg

from taskloom.bus import (
    MSG_ID_HEADER,
    Bus,
    BusUnavailable,
    NoResponders,
    NoStreamForSubject,
    RequestTimeout,
    StreamKind,
)
from taskloom.settings import Settings


async def test_same_message_id_twice_is_stored_once(bus: Bus) -> None:
    subject = bus.subjects.tasks("core-services")
    message = ping(1)
    first = await bus.publish(subject, message)
    second = await bus.publish(subject, message)
    assert first.stream == bus.stream_name(StreamKind.TASKS)
    assert not first.duplicate
    assert second.duplicate and second.seq == first.seq
    stored = await stream_messages(bus, StreamKind.TASKS)
    assert len(stored) == 1
    assert stored[0].headers is not None and stored[0].headers[MSG_ID_HEADER] == message.message_id
    assert Ping.model_validate_json(stored[0].data or b"") == message


async def test_explicit_msg_id_wins_and_bytes_without_id_are_not_deduplicated(bus: Bus) -> None:
    subject = bus.subjects.command("submit")
    a = await bus.publish(subject, ping(1, "model-id"), msg_id="explicit")
    b = await bus.publish(subject, ping(2, "model-id"), msg_id="explicit")
    assert b.duplicate and a.seq == b.seq
    await bus.publish(subject, b"raw")
    await bus.publish(subject, b"raw")
    stored = await stream_messages(bus, StreamKind.COMMANDS)
    assert [m.data for m in stored] == [ping(1, "model-id").model_dump_json().encode(), b"raw", b"raw"]
    assert stored[0].headers is not None and stored[0].headers[MSG_ID_HEADER] == "explicit"


async def test_models_are_utf8_json(bus: Bus) -> None:
    subject = bus.subjects.command("submit")
    await bus.publish(subject, ping(7, "ünïcode"))
    [stored] = await stream_messages(bus, StreamKind.COMMANDS)
    assert json.loads((stored.data or b"").decode("utf-8")) == {"message_id": "ünïcode", "n": 7}


async def test_publish_to_a_subject_no_stream_captures(bus: Bus) -> None:
    with pytest.raises(NoStreamForSubject):
        await bus.publish(f"{bus.subjects.namespace}.nowhere", b"x")


async def test_core_publish_and_request_reply(bus: Bus) -> None:
    received: asyncio.Queue[Msg] = asyncio.Queue()

    async def responder(msg: Msg) -> None:
        await msg.respond(
            Ping.model_validate_json(msg.data).model_copy(update={"n": 42}).model_dump_json().encode()
        )

    await bus.nc.subscribe(bus.subjects.context("get"), cb=responder)
    await bus.nc.subscribe(bus.subjects.heartbeats_all, cb=received.put)

    reply = await bus.request(bus.subjects.context("get"), ping(1, "q"), timeout=2)
    assert Ping.model_validate_json(reply.data) == Ping(message_id="q", n=42)

    await bus.publish_core(bus.subjects.heartbeat("core-services", "i1"), ping(3, "hb"), headers={"X-A": "1"})
    msg = await asyncio.wait_for(received.get(), 2)
    assert msg.subject == bus.subjects.heartbeat("core-services", "i1")
    assert msg.headers == {"X-A": "1"}


async def test_request_errors_are_typed(bus: Bus) -> None:
    with pytest.raises(NoResponders):
        await bus.request(bus.subjects.context("nobody"), b"{}", timeout=1)

    async def silent(msg: Msg) -> None:
        return None

    await bus.nc.subscribe(bus.subjects.context("slow"), cb=silent)
    with pytest.raises(RequestTimeout):
        await bus.request(bus.subjects.context("slow"), b"{}", timeout=0.3)


async def test_connect_gives_up_after_its_deadline(settings: Settings) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started = asyncio.get_running_loop().time()
    with pytest.raises(BusUnavailable, match="cannot connect") as caught:
        await open_bus(
            settings, url=f"nats://u:secret@127.0.0.1:{port}", connect_timeout=0.5, connect_deadline=1.5
        )
    assert "secret" not in str(caught.value) and "u:***@" in str(caught.value)
    assert asyncio.get_running_loop().time() - started < 5


async def test_close_and_drain_are_idempotent(settings: Settings) -> None:
    bus = await open_bus(settings)
    await bus.drain()
    await bus.close()
    assert bus.nc.is_closed
    async with await open_bus(settings) as other:
        assert other.nc.is_connected
    assert other.nc.is_closed
