"""Best-effort calls to the context service through ``taskloom.context.ContextClient``: fetch a
task's filtered context before it runs, contribute a summary of its outputs after it completes.
A missing, slow or refusing service never fails a task: the agent then works from its
assignment's own context and ``inputs.dependencies``."""

from __future__ import annotations

from typing import Any

from nats.aio.client import Client as NATS

from taskloom.context import ContextClient, ContextRequestError, ContextUnavailable
from taskloom.contracts import Subjects, TaskAssignment
from taskloom.contracts.context import ContextView, ContributeReply, ContributeRequest
from taskloom.observability import get_logger

__all__ = ["AgentContextService", "contribution"]

log = get_logger(__name__)


def contribution(
    task: TaskAssignment, agent_id: str, outputs: dict[str, Any], metrics: dict[str, Any]
) -> ContributeRequest:
    """What a finished task offers its workflow's shared context."""
    recommendations = outputs.get("recommendations")
    return ContributeRequest(
        agent_id=agent_id,
        workflow_id=task.workflow_id,
        task_id=task.task_id,
        outputs_summary={
            "task_type": task.task_details.task_type,
            "summary": outputs.get("summary"),
            "findings": list(outputs.get("findings", []))[:50],
        },
        recommendations=list(recommendations)[:50] if isinstance(recommendations, list) else [],
        resource_usage=metrics,
    )


class AgentContextService:
    """The context service as the agent runtime uses it: short timeouts, never an exception."""

    def __init__(self, nc: NATS, subjects: Subjects, timeout: float = 0.5) -> None:
        self.client = ContextClient(nc, subjects, timeout=timeout)

    async def fetch(self, task: TaskAssignment, agent_id: str) -> ContextView | None:
        """The context the service lets ``agent_id`` see for ``task``, or ``None``."""
        project = task.context.global_context.get("project_id")
        try:
            return await self.client.get(
                agent_id,
                workflow_id=task.workflow_id,
                task_id=task.task_id,
                requirements=task.required_context,
                project_id=project if isinstance(project, str) else None,
            )
        except ContextUnavailable as exc:
            log.info("context service unavailable; using the assignment's context", error=exc.message)
        except ContextRequestError as exc:
            log.warning(
                "context service refused; using the assignment's context",
                task_id=task.task_id,
                code=exc.code.value,
                error=exc.message,
            )
        except Exception as exc:  # a garbled reply or a broken connection: same fallback
            log.warning("context fetch failed; using the assignment's context", error=repr(exc))
        return None

    async def contribute(self, request: ContributeRequest) -> ContributeReply | None:
        try:
            return await self.client.contribute(request)
        except ContextRequestError as exc:
            log.info("context contribution not stored", task_id=request.task_id, error=str(exc))
        except Exception as exc:
            log.warning("context contribution failed", task_id=request.task_id, error=repr(exc))
        return None
