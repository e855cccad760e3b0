"""The bus's typed errors: what its API raises, and what handlers raise to choose an outcome.

Two families, never mixed:

* ``BusError`` and subclasses are raised *by* the bus (connect, publish, request, topology).
  ``BusUnavailable`` is worth retrying; the others are configuration or programming mistakes.
* ``HandlerError`` subclasses are raised *by message handlers* to tell the consumer loop what to
  do with the message: ``RetryableError`` → nak and redeliver later, ``PermanentError`` →
  dead-letter and ack. Any other exception counts as permanent (and is logged with its traceback),
  because a handler that fails the same way on every delivery must not block its consumer.
"""

from __future__ import annotations

__all__ = [
    "BusError",
    "BusUnavailable",
    "ConsumerNotFound",
    "HandlerError",
    "NoResponders",
    "NoStreamForSubject",
    "PermanentError",
    "PublishRejected",
    "RequestTimeout",
    "RetryableError",
    "TopologyConflict",
]


class BusError(Exception):
    """Base of every error the bus itself raises."""


class BusUnavailable(BusError):
    """NATS could not be reached, the connection is closed, or JetStream did not answer in time."""


class RequestTimeout(BusUnavailable):
    """A request got no reply within its timeout."""


class NoResponders(BusError):
    """A request was sent to a subject nobody subscribes to."""

    def __init__(self, subject: str) -> None:
        self.subject = subject
        super().__init__(f"no responders on {subject!r}")


class NoStreamForSubject(BusError):
    """A JetStream publish to a subject no stream captures (``ensure_streams()`` not run?)."""

    def __init__(self, subject: str) -> None:
        self.subject = subject
        super().__init__(f"no JetStream stream captures {subject!r}; run ensure_streams() first")


class PublishRejected(BusError):
    """JetStream refused a message (too large, wrong expected stream, ...)."""


class TopologyConflict(BusError):
    """A stream, consumer or bucket exists with a configuration that cannot be changed in place
    (storage, retention, deliver policy ...) or that the server rejects."""


class ConsumerNotFound(BusError):
    """``consume()`` was pointed at a durable consumer that does not exist."""

    def __init__(self, stream: str, durable: str) -> None:
        self.stream = stream
        self.durable = durable
        super().__init__(f"consumer {durable!r} of stream {stream!r} does not exist; ensure_consumer() first")


class HandlerError(Exception):
    """Base of the exceptions a handler raises on purpose to choose what happens to a message."""


class RetryableError(HandlerError):
    """The message may succeed later: nak it and let JetStream redeliver it after ``delay``
    seconds (``None`` = the consumer's exponential backoff by delivery count)."""

    def __init__(self, message: str = "retryable failure", *, delay: float | None = None) -> None:
        if delay is not None and delay < 0:
            raise ValueError("delay must be >= 0")
        self.delay = delay
        super().__init__(message)


class PermanentError(HandlerError):
    """The message can never succeed: dead-letter it with this error as the reason, then ack."""
