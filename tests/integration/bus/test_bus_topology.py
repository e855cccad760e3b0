"""Streams, consumers and the registry bucket are declared idempotently on a real server."""

from __future__ import annotations

import asyncio

import pytest
from bus_testkit import drop_namespace, open_bus
from nats.js.api import DeliverPolicy, RetentionPolicy, StorageType
from nats.js.errors import NoKeysError
from nats.js.kv import KeyValue

from taskloom.bus import MAX_DELIVER_METADATA, Bus, StreamKind, Topology, TopologyConflict
from taskloom.settings import Settings


async def test_streams_declared_twice_are_created_then_unchanged(settings: Settings) -> None:
    bus = await open_bus(settings)
    try:
        first = await bus.ensure_streams()
        second = await bus.ensure_streams()
        assert {e.action for e in first} == {"created"}
        assert len(first) == len(StreamKind) + 1  # six streams and the registry bucket
        assert {e.action for e in second} == {"unchanged"}
        assert [e.name for e in first] == [e.name for e in second]
    finally:
        await drop_namespace(bus)
        await bus.close()


async def test_stream_configuration(bus: Bus, settings: Settings) -> None:
    tasks = (await bus.js.stream_info(bus.stream_name(StreamKind.TASKS))).config
    assert tasks.retention == RetentionPolicy.WORK_QUEUE
    assert tasks.subjects == [bus.subjects.tasks_all]
    assert not tasks.max_age  # an assignment never expires
    for kind in StreamKind:
        config = (await bus.js.stream_info(bus.stream_name(kind))).config
        assert config.storage == StorageType.FILE
        assert config.duplicate_window == settings.dedup_window_seconds
        if kind is not StreamKind.TASKS:
            assert config.retention == RetentionPolicy.LIMITS
    events = (await bus.js.stream_info(bus.stream_name(StreamKind.EVENTS))).config
    assert events.subjects == [bus.subjects.events_all]
    assert events.max_age == bus.topology.events_max_age
    dlq = (await bus.js.stream_info(bus.stream_name(StreamKind.DLQ))).config
    assert dlq.subjects == [bus.subjects.dead_letters_all]
    assert dlq.max_age == settings.dead_letter_max_age_seconds


async def test_a_changed_stream_config_is_updated_in_place(bus: Bus, settings: Settings) -> None:
    await bus.publish(bus.subjects.event("wf1", "WorkflowStarted"), b"{}", msg_id="e1")
    other = await open_bus(settings, topology=Topology.from_settings(settings, events_max_age=3600.0))
    try:
        results = {e.name: e.action for e in await other.ensure_streams()}
        assert results.pop(bus.stream_name(StreamKind.EVENTS)) == "updated"
        assert set(results.values()) == {"unchanged"}
        info = await bus.js.stream_info(bus.stream_name(StreamKind.EVENTS))
        assert info.config.max_age == 3600.0
        assert info.state.messages == 1  # updating kept the data
    finally:
        await other.close()


async def test_concurrent_declarations_from_several_processes_all_succeed(settings: Settings) -> None:
    buses = [await open_bus(settings, name=f"svc-{i}") for i in range(4)]
    try:
        results = await asyncio.gather(*(b.ensure_streams() for b in buses))
        for ensured in results:
            assert {e.action for e in ensured} <= {"created", "unchanged"}
        consumers = await asyncio.gather(
            *(b.ensure_consumer(StreamKind.PROGRESS, "orchestrator", ack_wait=10) for b in buses)
        )
        assert {c.action for c in consumers} <= {"created", "unchanged"}
    finally:
        await drop_namespace(buses[0])
        for b in buses:
            await b.close()


async def test_consumer_declared_twice_then_changed(bus: Bus) -> None:
    first = await bus.ensure_consumer(StreamKind.PROGRESS, "orchestrator", ack_wait=10, max_deliver=3)
    second = await bus.ensure_consumer(StreamKind.PROGRESS, "orchestrator", ack_wait=10, max_deliver=3)
    assert (first.action, second.action) == ("created", "unchanged")
    config = (await bus.js.consumer_info(bus.stream_name(StreamKind.PROGRESS), "orchestrator")).config
    assert config.durable_name == "orchestrator"
    assert config.ack_wait == 10
    assert config.filter_subject == bus.subjects.progress_all
    # one delivery more than the handler's attempts, for dead-lettering a hung last attempt
    assert config.max_deliver == 4
    if bus.server_has_metadata:
        assert config.metadata is not None and config.metadata[MAX_DELIVER_METADATA] == "3"

    changed = await bus.ensure_consumer(
        StreamKind.PROGRESS, "orchestrator", ack_wait=20, max_deliver=3, max_ack_pending=50
    )
    assert changed.action == "updated"
    config = (await bus.js.consumer_info(bus.stream_name(StreamKind.PROGRESS), "orchestrator")).config
    assert (config.ack_wait, config.max_ack_pending) == (20, 50)


async def test_agent_consumer_filters_its_agent_subject(bus: Bus) -> None:
    ensured = await bus.ensure_agent_consumer("core-services", ack_wait=30)
    assert ensured.name == bus.subjects.agent_consumer("core-services")
    config = (await bus.js.consumer_info(bus.stream_name(StreamKind.TASKS), ensured.name)).config
    assert config.filter_subject == bus.subjects.tasks("core-services")
    again = await bus.ensure_agent_consumer("core-services", ack_wait=30)
    assert again.action == "unchanged"


async def test_an_unchangeable_consumer_field_raises_topology_conflict(bus: Bus) -> None:
    await bus.ensure_consumer(StreamKind.EVENTS, "watcher", deliver_policy=DeliverPolicy.ALL)
    with pytest.raises(TopologyConflict):
        await bus.ensure_consumer(StreamKind.EVENTS, "watcher", deliver_policy=DeliverPolicy.NEW)


async def test_overlapping_work_queue_consumers_are_refused(bus: Bus) -> None:
    await bus.ensure_agent_consumer("core-services")
    with pytest.raises(TopologyConflict):
        # a second consumer over the same work-queue subjects would split its messages
        await bus.ensure_consumer(StreamKind.TASKS, "everything")


async def test_registry_bucket_has_the_ttl_and_entries_expire(settings: Settings) -> None:
    bus = await open_bus(settings, topology=Topology.from_settings(settings, agent_registry_ttl=1.0))
    try:
        await bus.ensure_streams()
        kv = await bus.registry()
        status = await kv.status()
        assert status.ttl == 1.0
        assert status.history == 1
        await kv.put("core-services.i1", b'{"status":"idle"}')
        assert (await kv.get("core-services.i1")).value == b'{"status":"idle"}'
        await asyncio.sleep(1.6)
        assert await _keys(kv) == []

        longer = await open_bus(settings, topology=Topology.from_settings(settings, agent_registry_ttl=45.0))
        try:
            assert (await longer.ensure_registry()).action == "updated"
            assert (await (await longer.registry()).status()).ttl == 45.0
            assert (await longer.ensure_registry()).action == "unchanged"
        finally:
            await longer.close()
    finally:
        await drop_namespace(bus)
        await bus.close()


async def test_registry_ttl_defaults_to_the_heartbeat_timeout(bus: Bus, settings: Settings) -> None:
    status = await (await bus.registry()).status()
    assert status.ttl == settings.heartbeat_timeout_seconds


async def _keys(kv: KeyValue) -> list[str]:
    try:
        return await kv.keys()
    except NoKeysError:  # how nats-py reports an empty bucket
        return []
