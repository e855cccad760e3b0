"""What a dead letter looks like: the original body, unchanged, on ``ns.dlq.<source>``, with
headers that say why it was dead-lettered and where it came from.

Header names (constants below; all values are single-line strings):

* ``Taskloom-Dlq-Reason`` — ``parse_error`` | ``permanent_error`` | ``unexpected_error`` |
  ``max_deliver_exceeded`` | a reason passed to ``Delivery.dead_letter``
* ``Taskloom-Dlq-Error`` — the exception as ``Type: message`` (truncated to 1 KiB)
* ``Taskloom-Dlq-Subject`` — the subject the message was published to
* ``Taskloom-Dlq-Stream`` / ``Taskloom-Dlq-Consumer`` — where it was consumed from
* ``Taskloom-Dlq-Stream-Seq`` — its sequence in that stream
* ``Taskloom-Dlq-Deliveries`` — how many times it had been delivered
* ``Taskloom-Dlq-Timestamp`` — when it was dead-lettered (ISO 8601, UTC)
* ``Taskloom-Dlq-Original-Headers`` — the original headers as a JSON object
* ``Nats-Msg-Id`` — ``dlq.<stream>.<consumer>.<seq>``, so dead-lettering the same delivery
  twice (a crash between the DLQ publish and the ack) stores one dead letter
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Final

from taskloom.bus.codec import MSG_ID_HEADER, header_value

__all__ = [
    "DLQ_CONSUMER",
    "DLQ_DELIVERIES",
    "DLQ_ERROR",
    "DLQ_ORIGINAL_HEADERS",
    "DLQ_REASON",
    "DLQ_STREAM",
    "DLQ_STREAM_SEQ",
    "DLQ_SUBJECT",
    "DLQ_TIMESTAMP",
    "DeadLetterReason",
    "dead_letter_headers",
    "describe_error",
    "original_headers",
]

DLQ_REASON: Final = "Taskloom-Dlq-Reason"
DLQ_ERROR: Final = "Taskloom-Dlq-Error"
DLQ_SUBJECT: Final = "Taskloom-Dlq-Subject"
DLQ_STREAM: Final = "Taskloom-Dlq-Stream"
DLQ_CONSUMER: Final = "Taskloom-Dlq-Consumer"
DLQ_STREAM_SEQ: Final = "Taskloom-Dlq-Stream-Seq"
DLQ_DELIVERIES: Final = "Taskloom-Dlq-Deliveries"
DLQ_TIMESTAMP: Final = "Taskloom-Dlq-Timestamp"
DLQ_ORIGINAL_HEADERS: Final = "Taskloom-Dlq-Original-Headers"


class DeadLetterReason(StrEnum):
    PARSE_ERROR = "parse_error"
    PERMANENT_ERROR = "permanent_error"
    UNEXPECTED_ERROR = "unexpected_error"
    MAX_DELIVER_EXCEEDED = "max_deliver_exceeded"


def describe_error(error: BaseException | None) -> str:
    if error is None:
        return ""
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def dead_letter_headers(
    *,
    reason: str,
    error: BaseException | str | None,
    subject: str,
    stream: str,
    consumer: str,
    stream_seq: int,
    num_delivered: int,
    headers: Mapping[str, str] | None,
    now: datetime | None = None,
) -> dict[str, str]:
    """The headers of the dead letter of one delivery (see the module docstring)."""
    text = error if isinstance(error, str) else describe_error(error)
    return {
        MSG_ID_HEADER: f"dlq.{stream}.{consumer}.{stream_seq}",
        DLQ_REASON: header_value(reason),
        DLQ_ERROR: header_value(text or reason),
        DLQ_SUBJECT: subject,
        DLQ_STREAM: stream,
        DLQ_CONSUMER: consumer,
        DLQ_STREAM_SEQ: str(stream_seq),
        DLQ_DELIVERIES: str(num_delivered),
        DLQ_TIMESTAMP: (now or datetime.now(UTC)).isoformat(),
        # JSON escapes control characters, so any original value survives on one line
        DLQ_ORIGINAL_HEADERS: json.dumps(dict(headers or {}), ensure_ascii=True, sort_keys=True),
    }


def original_headers(dead_letter: Mapping[str, str]) -> dict[str, str]:
    """The original headers recorded in a dead letter's headers."""
    raw = dead_letter.get(DLQ_ORIGINAL_HEADERS)
    return dict(json.loads(raw)) if raw else {}
