"""JetStream set-up the agent runtime relies on: the streams and the registry bucket it uses
(created when missing, never reconfigured) and the shared work-queue consumer per agent type."""

from __future__ import annotations

import contextlib

from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    KeyValueConfig,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import BucketNotFoundError, NotFoundError
from nats.js.kv import KeyValue

from taskloom.contracts import Subjects

__all__ = ["REGISTRY_TTL_SECONDS", "ensure_agent_consumer", "ensure_registry", "ensure_streams"]

REGISTRY_TTL_SECONDS = 15.0


async def _ensure_stream(js: JetStreamContext, config: StreamConfig) -> None:
    try:
        await js.stream_info(str(config.name))
    except NotFoundError:
        # another process may create it at the same moment: an identical config is accepted
        with contextlib.suppress(Exception):
            await js.add_stream(config)
        await js.stream_info(str(config.name))


async def ensure_streams(js: JetStreamContext, subjects: Subjects, dedup_window: float = 120.0) -> None:
    """The streams an agent publishes to or consumes from, if nobody created them yet."""
    await _ensure_stream(
        js,
        StreamConfig(
            name=subjects.stream("tasks"),
            subjects=[subjects.tasks_all],
            retention=RetentionPolicy.WORK_QUEUE,
            storage=StorageType.FILE,
            duplicate_window=dedup_window,
        ),
    )
    await _ensure_stream(
        js,
        StreamConfig(
            name=subjects.stream("progress"),
            subjects=[subjects.progress_all],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            duplicate_window=dedup_window,
        ),
    )
    await _ensure_stream(
        js,
        StreamConfig(
            name=subjects.stream("commands"),
            subjects=[subjects.commands_all],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            duplicate_window=dedup_window,
        ),
    )
    await _ensure_stream(
        js,
        StreamConfig(
            name=subjects.stream("dlq"),
            subjects=[subjects.dead_letters_all],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
        ),
    )


async def ensure_registry(
    js: JetStreamContext, subjects: Subjects, ttl: float = REGISTRY_TTL_SECONDS
) -> KeyValue:
    try:
        return await js.key_value(subjects.agents_bucket)
    except (BucketNotFoundError, NotFoundError):
        with contextlib.suppress(Exception):
            await js.create_key_value(KeyValueConfig(bucket=subjects.agents_bucket, ttl=ttl, history=1))
        return await js.key_value(subjects.agents_bucket)


async def ensure_agent_consumer(
    js: JetStreamContext, subjects: Subjects, agent_id: str, ack_wait: float, max_ack_pending: int = 1000
) -> str:
    """The one durable pull consumer every replica of ``agent_id`` shares; returns its name."""
    name = subjects.agent_consumer(agent_id)
    stream = subjects.stream("tasks")
    try:
        await js.consumer_info(stream, name)
    except NotFoundError:
        with contextlib.suppress(Exception):
            await js.add_consumer(
                stream,
                ConsumerConfig(
                    durable_name=name,
                    filter_subject=subjects.tasks(agent_id),
                    ack_policy=AckPolicy.EXPLICIT,
                    deliver_policy=DeliverPolicy.ALL,
                    ack_wait=ack_wait,
                    max_ack_pending=max_ack_pending,
                    max_deliver=-1,
                ),
            )
        await js.consumer_info(stream, name)
    return name
