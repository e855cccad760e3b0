"""The submit-command handler: a ``SubmitWorkflow`` becomes a ``GraphConstructed`` or, when the
request cannot be planned, a ``GraphRejected`` carrying the reason.

Both outcomes share one message id derived from the workflow id, so a redelivered command
(or a second replica racing the first) is stored once by JetStream's deduplication.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from taskloom.constructor.adapters.history import HistoryUnavailable
from taskloom.constructor.domain.assignment import PerformanceStats, pool_from_registrations
from taskloom.constructor.domain.construct import Defaults, construct, graph_id_for
from taskloom.constructor.domain.templates import TemplateRegistry
from taskloom.constructor.errors import ConstructionError, MissingCapability
from taskloom.contracts.agents import AgentRegistration
from taskloom.contracts.messages import GraphConstructed, GraphRejected, SubmitWorkflow, parse_message
from taskloom.observability import get_logger
from taskloom.settings import Settings

__all__ = ["Planner", "defaults_from_settings", "graph_message_id", "parse_submit"]

_log = get_logger(__name__)

RegistrySource = Callable[[], Awaitable[list[AgentRegistration]]]
HistorySource = Callable[[], Awaitable[tuple[dict[tuple[str, str], PerformanceStats], str]]]


def graph_message_id(workflow_id: str) -> str:
    return f"graph:{workflow_id}"


def parse_submit(data: bytes) -> SubmitWorkflow:
    """A submit command, or ``ValueError``/``ValidationError`` saying why not (→ dead letter)."""
    message = parse_message(data)
    if not isinstance(message, SubmitWorkflow):
        raise ValueError(f"expected a submit_workflow message, got {message.message_type}")
    return message


def defaults_from_settings(settings: Settings) -> Defaults:
    return Defaults(
        task_timeout=settings.task_timeout_default,
        max_concurrent_tasks=settings.max_concurrent_tasks_per_workflow,
    )


@dataclass
class Planner:
    """Plans submitted workflows against the live registry and the recorded history."""

    registry: RegistrySource
    history: HistorySource | None = None
    defaults: Defaults = field(default_factory=Defaults)
    templates: TemplateRegistry = field(default_factory=TemplateRegistry)

    async def _history(self) -> tuple[dict[tuple[str, str], PerformanceStats], str]:
        if self.history is None:
            return {}, "none"
        try:
            return await self.history()
        except HistoryUnavailable as exc:
            # history only refines the scores: plan without it rather than hold the workflow
            _log.warning("performance history unavailable; scoring it neutral", error=str(exc))
            return {}, "unavailable"

    async def plan(self, cmd: SubmitWorkflow) -> GraphConstructed | GraphRejected:
        registrations = await self.registry()
        pool = pool_from_registrations(registrations)
        history, history_source = await self._history()
        started = time.perf_counter()
        try:
            built = construct(
                cmd.request,
                pool,
                history,
                defaults=self.defaults,
                templates=self.templates,
                graph_id=graph_id_for(cmd.workflow_id),
                metadata={
                    "workflow_id": cmd.workflow_id,
                    "history_source": history_source,
                    "live_agent_instances": len(registrations),
                },
            )
        except ConstructionError as exc:
            missing: list[str] = []
            if isinstance(exc, MissingCapability):
                missing = [*exc.capabilities, *(t for t in exc.task_types if t not in exc.capabilities)]
            _log.info("request rejected", workflow_id=cmd.workflow_id, reason=exc.reason)
            return GraphRejected(
                message_id=graph_message_id(cmd.workflow_id),
                workflow_id=cmd.workflow_id,
                owner=cmd.owner,
                reason=exc.reason,
                missing_capabilities=missing,
            )
        _log.info(
            "graph constructed",
            workflow_id=cmd.workflow_id,
            tasks=len(built.graph.tasks),
            agent_source=pool.source,
            ms=round((time.perf_counter() - started) * 1000, 2),
        )
        return GraphConstructed(
            message_id=graph_message_id(cmd.workflow_id),
            workflow_id=cmd.workflow_id,
            owner=cmd.owner,
            request=built.request,
            graph=built.graph,
            assignment_scores=built.assignment_scores,
            callback_url=cmd.callback_url,
            webhook_events=cmd.webhook_events,
        )
