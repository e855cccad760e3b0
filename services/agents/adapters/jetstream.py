"""The agent runtime's side of the JetStream topology: its own durable work-queue consumer per
agent type, the assignment parser the consume loop uses, and the registry bucket.

Agents never declare or reconfigure streams or the registry bucket: in a deployment their NATS
users may not (``taskloom.natsauth``), and the platform services declare them with
``Bus.ensure_streams``. An agent only declares the consumer it pulls from.
"""

from __future__ import annotations

from nats.js.errors import NotFoundError
from nats.js.kv import KeyValue
from pydantic import ValidationError

from taskloom.bus import Bus, Ensured
from taskloom.contracts import TaskAssignment
from taskloom.observability import get_logger

__all__ = [
    "DEAD_LETTER_SOURCE",
    "DEFAULT_ACK_WAIT",
    "DEFAULT_MAX_DELIVER",
    "declare_agent_consumer",
    "open_registry",
    "parse_assignment",
]

log = get_logger(__name__)

DEAD_LETTER_SOURCE = "agents"
"""Dead letters of the agent runtime go to ``ns.dlq.agents``."""

DEFAULT_ACK_WAIT = 30.0
"""Seconds an assignment stays leased without an in-progress ack. A running task is kept alive
every third of it, so only a process that died or hung loses its lease (and the task is
redelivered to another replica) within this time."""

DEFAULT_MAX_DELIVER = 5
"""Deliveries of one assignment that may run. Tasks that fail report it and are acked, so only a
crash, a hang or a shutdown hand-back costs a delivery; the delivery after the last one is
reported failed (not retryable) and dead-lettered, so a task that kills its agent cannot
circulate forever."""


def parse_assignment(data: bytes) -> TaskAssignment:
    """A ``TaskAssignment`` from a message body; anything else is a ``ValueError`` that the
    consume loop turns into a ``parse_error`` dead letter."""
    try:
        return TaskAssignment.model_validate_json(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '<body>'}: {e['msg']}" for e in exc.errors()[:3]
        )
        raise ValueError(f"not a task_assignment: {problems}") from None


async def declare_agent_consumer(
    bus: Bus,
    agent_id: str,
    *,
    ack_wait: float = DEFAULT_ACK_WAIT,
    max_deliver: int = DEFAULT_MAX_DELIVER,
    max_ack_pending: int = 1000,
) -> Ensured:
    """The durable pull consumer every replica of ``agent_id`` shares (``ns.tasks.<agent_id>``);
    requires the TASKS stream to exist."""
    return await bus.ensure_agent_consumer(
        agent_id,
        ack_wait=ack_wait,
        max_deliver=max_deliver,
        max_ack_pending=max_ack_pending,
        description=f"taskloom agent {agent_id}: work queue shared by its replicas",
    )


async def open_registry(bus: Bus) -> KeyValue | None:
    """The agent registry bucket, or ``None`` (logged) while the platform has not declared it."""
    try:
        return await bus.registry()
    except NotFoundError:
        log.error(
            "agent registry bucket missing; heartbeats resume once the platform declares it",
            bucket=bus.subjects.agents_bucket,
            hint="the platform services run Bus.ensure_streams() at start-up",
        )
        return None
