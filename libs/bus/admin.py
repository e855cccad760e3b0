"""Idempotent declaration of streams, durable consumers and the agent registry bucket.

Every service calls these at start-up, all at once and in any order, so each one is safe to run
concurrently and repeatedly: it creates what is missing, updates what drifted from the declared
configuration, and leaves everything else untouched. A change the server cannot apply in place
(storage, retention, deliver policy ...) raises ``TopologyConflict`` instead of being ignored,
because silently running on a stream that differs from the code is worse than not starting.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy, KeyValueConfig, StorageType, StreamConfig
from nats.js.errors import APIError, BadRequestError, NotFoundError

from taskloom.bus.errors import TopologyConflict
from taskloom.observability import get_logger

__all__ = [
    "MAX_DELIVER_METADATA",
    "Ensured",
    "consumer_config",
    "consumer_drift",
    "ensure_consumer",
    "ensure_kv",
    "ensure_stream",
    "stream_drift",
]

_log = get_logger(__name__)

MAX_DELIVER_METADATA: Final = "taskloom.max_deliver"
"""Consumer metadata key holding the number of handler attempts (see ``ensure_consumer``)."""

Action = Literal["created", "updated", "unchanged"]

# the stream fields Taskloom declares; anything else (server defaults, metadata the server adds)
# is left as the server has it
_STREAM_FIELDS: Final = (
    "subjects",
    "retention",
    "storage",
    "discard",
    "max_age",
    "duplicate_window",
    "num_replicas",
    "description",
)
_CONSUMER_FIELDS: Final = (
    "deliver_policy",
    "opt_start_seq",
    "ack_policy",
    "ack_wait",
    "max_deliver",
    "max_ack_pending",
    "filter_subject",
    "filter_subjects",
    "backoff",
    "description",
)


@dataclass(frozen=True)
class Ensured:
    """What an ``ensure_*`` call did to one named object."""

    name: str
    action: Action


def _normalise(values: Mapping[str, Any], keys: Iterable[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in keys:
        value = values.get(key)
        if isinstance(value, list):
            value = sorted(value) if key != "backoff" else list(value)
        if value in (None, [], ""):
            value = None  # unset and empty mean the same to the server
        out[key] = value
    return out


def stream_drift(desired: StreamConfig, current: StreamConfig) -> dict[str, tuple[Any, Any]]:
    """Declared stream fields whose value differs on the server: ``{field: (server, desired)}``."""
    want = _normalise(desired.as_dict(), _STREAM_FIELDS)
    have = _normalise(current.as_dict(), _STREAM_FIELDS)
    return {k: (have[k], want[k]) for k in _STREAM_FIELDS if have[k] != want[k]}


def consumer_drift(
    desired: ConsumerConfig, current: ConsumerConfig, *, with_metadata: bool = True
) -> dict[str, tuple[Any, Any]]:
    """Like ``stream_drift`` for a consumer, plus the metadata keys Taskloom sets (unless the
    server is too old to store metadata: nats-server < 2.10 drops it)."""
    want = _normalise(desired.as_dict(), _CONSUMER_FIELDS)
    have = _normalise(current.as_dict(), _CONSUMER_FIELDS)
    drift = {k: (have[k], want[k]) for k in _CONSUMER_FIELDS if have[k] != want[k]}
    for key, value in (desired.metadata or {}).items() if with_metadata else ():
        if (current.metadata or {}).get(key) != value:
            drift[f"metadata.{key}"] = ((current.metadata or {}).get(key), value)
    return drift


async def ensure_stream(js: JetStreamContext, config: StreamConfig) -> Ensured:
    """Create the stream ``config.name``, or update it to ``config`` if a declared field drifted."""
    name = str(config.name)
    try:
        current = (await js.stream_info(name)).config
    except NotFoundError:
        try:
            await js.add_stream(config)
            _log.info("bus_stream_created", stream=name, subjects=config.subjects)
            return Ensured(name, "created")
        except BadRequestError:
            # another process created it between our look-up and our create: reconcile below
            current = (await js.stream_info(name)).config
    drift = stream_drift(config, current)
    if not drift:
        return Ensured(name, "unchanged")
    try:
        await js.update_stream(config)
    except APIError as exc:
        raise TopologyConflict(f"stream {name!r} cannot be updated ({drift}): {exc.description}") from None
    _log.info("bus_stream_updated", stream=name, changes={k: v[1] for k, v in drift.items()})
    return Ensured(name, "updated")


def consumer_config(
    durable: str,
    *,
    filter_subjects: Sequence[str],
    ack_wait: float,
    max_deliver: int | None,
    max_ack_pending: int,
    deliver_policy: DeliverPolicy,
    opt_start_seq: int | None = None,
    backoff: Sequence[float] | None = None,
    description: str | None = None,
) -> ConsumerConfig:
    """The durable pull consumer ``ensure_consumer`` declares (see there for ``max_deliver``)."""
    if max_deliver is not None and max_deliver < 1:
        raise ValueError("max_deliver must be >= 1 (or None for unlimited)")
    if not filter_subjects:
        raise ValueError("a consumer needs at least one filter subject")
    one = len(filter_subjects) == 1
    return ConsumerConfig(
        name=durable,
        durable_name=durable,
        description=description,
        deliver_policy=deliver_policy,
        opt_start_seq=opt_start_seq,
        ack_wait=ack_wait,
        # one extra server-side delivery beyond the handler's attempts: a message whose last
        # attempt hung or crashed its process is then redelivered once more, and the consumer
        # loop dead-letters it instead of leaving it stuck in the stream forever
        max_deliver=-1 if max_deliver is None else max_deliver + 1,
        max_ack_pending=max_ack_pending,
        filter_subject=filter_subjects[0] if one else None,
        filter_subjects=None if one else list(filter_subjects),
        backoff=list(backoff) if backoff else None,
        metadata={MAX_DELIVER_METADATA: "unlimited" if max_deliver is None else str(max_deliver)},
    )


async def ensure_consumer(
    js: JetStreamContext, stream: str, config: ConsumerConfig, *, with_metadata: bool = True
) -> Ensured:
    """Create the durable consumer ``config.durable_name`` on ``stream`` or update it in place."""
    name = str(config.durable_name)
    try:
        current = (await js.consumer_info(stream, name)).config
    except NotFoundError:
        current = None
    if current is not None:
        drift = consumer_drift(config, current, with_metadata=with_metadata)
        if not drift:
            return Ensured(name, "unchanged")
        # keep metadata the server or an operator added next to ours
        config.metadata = {**(current.metadata or {}), **(config.metadata or {})}
    try:
        # CONSUMER.CREATE without an action creates or updates, so a concurrent creator with
        # the same configuration is not an error
        await js.add_consumer(stream, config)
    except APIError as exc:
        raise TopologyConflict(
            f"consumer {name!r} of stream {stream!r} cannot be declared: {exc.description}"
        ) from None
    action: Action = "created" if current is None else "updated"
    _log.info(f"bus_consumer_{action}", stream=stream, consumer=name)
    return Ensured(name, action)


async def ensure_kv(js: JetStreamContext, bucket: str, ttl: float, replicas: int = 1) -> Ensured:
    """Create the KV bucket (history 1, entries expire ``ttl`` seconds after their last put), or
    update its TTL if it changed."""
    try:
        info = await js.stream_info(f"KV_{bucket}")
    except NotFoundError:
        info = None
    if info is None:
        try:
            await js.create_key_value(
                KeyValueConfig(
                    bucket=bucket,
                    description="taskloom live agent registry",
                    ttl=ttl,
                    history=1,
                    storage=StorageType.FILE,
                    replicas=replicas,
                )
            )
            _log.info("bus_bucket_created", bucket=bucket, ttl=ttl)
            return Ensured(bucket, "created")
        except BadRequestError:
            info = await js.stream_info(f"KV_{bucket}")  # created concurrently
    config = info.config
    if config.max_age is not None and abs(config.max_age - ttl) < 1e-6:
        return Ensured(bucket, "unchanged")
    config.max_age = ttl
    config.duplicate_window = min(120.0, ttl)  # as create_key_value derives it
    try:
        await js.update_stream(config)
    except APIError as exc:
        raise TopologyConflict(f"bucket {bucket!r} cannot be updated: {exc.description}") from None
    _log.info("bus_bucket_updated", bucket=bucket, ttl=ttl)
    return Ensured(bucket, "updated")
