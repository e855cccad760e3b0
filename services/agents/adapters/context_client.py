"""Best-effort calls to the context service: fetch a task's filtered context before it runs,
contribute a summary of its outputs after it completes."""

from __future__ import annotations

import json
from typing import Any

from nats.aio.client import Client as NATS
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout

from taskloom.contracts import Subjects, TaskAssignment
from taskloom.observability import get_logger

__all__ = ["contribute_context", "fetch_context"]

log = get_logger(__name__)


async def fetch_context(
    nc: NATS, subjects: Subjects, task: TaskAssignment, agent_id: str, wait: float = 0.5
) -> dict[str, Any] | None:
    """The context the service lets this agent see for this task, or None when the service is
    absent, slow or refuses (the agent then works from its assignment's own context)."""
    request = {
        "workflow_id": task.workflow_id,
        "task_id": task.task_id,
        "agent_id": agent_id,
        "keys": task.required_context,
    }
    try:
        reply = await nc.request(subjects.context("get"), json.dumps(request).encode(), timeout=wait)
        data = json.loads(reply.data)
    except (NatsTimeout, NoRespondersError, TimeoutError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("error"):
        return None
    for key in ("context", "view", "values"):
        if isinstance(data.get(key), dict):
            return dict(data[key])
    return data


async def contribute_context(
    nc: NATS,
    subjects: Subjects,
    task: TaskAssignment,
    agent_id: str,
    outputs: dict[str, Any],
    metrics: dict[str, Any],
    wait: float = 0.5,
) -> bool:
    """Offer a summary of a finished task to the workflow's shared context."""
    contribution = {
        "workflow_id": task.workflow_id,
        "task_id": task.task_id,
        "agent_id": agent_id,
        "task_type": task.task_details.task_type,
        "values": {
            "summary": outputs.get("summary"),
            "findings": list(outputs.get("findings", []))[:50],
            "resource_usage": metrics,
        },
    }
    try:
        await nc.request(
            subjects.context("contribute"), json.dumps(contribution, default=str).encode(), timeout=wait
        )
    except (NatsTimeout, NoRespondersError, TimeoutError):
        return False
    return True
