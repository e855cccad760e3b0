"""Taskloom's NATS JetStream bus: connection, idempotent topology (streams, durable consumers,
the agent registry bucket), publish helpers with JetStream dedup, and pull-consumer loops that
ack, retry or dead-letter each message by the handler's outcome. See ``README.md``."""

from taskloom.bus.admin import MAX_DELIVER_METADATA, Ensured
from taskloom.bus.client import DEFAULT_NATS_URL, Bus
from taskloom.bus.codec import MSG_ID_HEADER, Payload, encode
from taskloom.bus.consumer import Backoff, BatchHandler, ConsumerHandle, ConsumerStats, Handler
from taskloom.bus.deadletter import (
    DLQ_CONSUMER,
    DLQ_DELIVERIES,
    DLQ_ERROR,
    DLQ_ORIGINAL_HEADERS,
    DLQ_REASON,
    DLQ_STREAM,
    DLQ_STREAM_SEQ,
    DLQ_SUBJECT,
    DLQ_TIMESTAMP,
    DeadLetterReason,
    original_headers,
)
from taskloom.bus.delivery import Delivery
from taskloom.bus.errors import (
    BusError,
    BusUnavailable,
    ConsumerNotFound,
    HandlerError,
    NoResponders,
    NoStreamForSubject,
    PermanentError,
    PublishRejected,
    RequestTimeout,
    RetryableError,
    TopologyConflict,
)
from taskloom.bus.topology import StreamKind, Topology

__all__ = [
    "DEFAULT_NATS_URL",
    "DLQ_CONSUMER",
    "DLQ_DELIVERIES",
    "DLQ_ERROR",
    "DLQ_ORIGINAL_HEADERS",
    "DLQ_REASON",
    "DLQ_STREAM",
    "DLQ_STREAM_SEQ",
    "DLQ_SUBJECT",
    "DLQ_TIMESTAMP",
    "MAX_DELIVER_METADATA",
    "MSG_ID_HEADER",
    "Backoff",
    "BatchHandler",
    "Bus",
    "BusError",
    "BusUnavailable",
    "ConsumerHandle",
    "ConsumerNotFound",
    "ConsumerStats",
    "DeadLetterReason",
    "Delivery",
    "Ensured",
    "HandlerError",
    "Handler",
    "NoResponders",
    "NoStreamForSubject",
    "Payload",
    "PermanentError",
    "PublishRejected",
    "RequestTimeout",
    "RetryableError",
    "StreamKind",
    "Topology",
    "TopologyConflict",
    "encode",
    "original_headers",
]
