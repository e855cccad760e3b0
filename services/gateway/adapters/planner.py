"""The constructor's planner run in-process for the submission answer (task count, duration,
agents). Optional: without the constructor installed, or when planning fails, the answer
leaves those fields empty and the constructor service still builds the real graph.

A usual request (a few dozen requirement texts) plans in about a millisecond and is planned
on the event loop: in a worker thread the same pure-Python work would still hold the GIL, and
every time the loop released it (a socket call, ``os.urandom``) the loop would wait up to the
interpreter's 5 ms switch interval to get it back. Larger requests, whose plan grows with the
number of requirements, run in a thread under the timeout, so they never stall the loop."""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from taskloom.contracts.requests import ComplexRequest
from taskloom.observability import get_logger

__all__ = ["PlanSummary", "Planner"]

_log = get_logger(__name__)
_CANDIDATES = ("plan_graph", "build_graph", "plan")


@dataclass(frozen=True, slots=True)
class PlanSummary:
    task_count: int | None = None
    estimated_duration: int | None = None
    assigned_agents: tuple[str, ...] = ()


def _find_planner() -> Callable[[ComplexRequest], Any] | None:
    try:
        module = importlib.import_module("taskloom.constructor.plan")
    except ImportError:
        return None
    for name in _CANDIDATES:
        fn = getattr(module, name, None)
        if callable(fn):
            return fn  # type: ignore[no-any-return]
    return None


class Planner:
    def __init__(self, enabled: bool = True, timeout: float = 2.0, inline_requirements: int = 32) -> None:
        self._fn = _find_planner() if enabled else None
        self.timeout = timeout
        self.inline_requirements = inline_requirements

    @property
    def available(self) -> bool:
        return self._fn is not None

    async def summarize(self, request: ComplexRequest) -> PlanSummary:
        if self._fn is None:
            return PlanSummary()
        size = sum(map(len, (request.requirements.functional, request.requirements.non_functional)))
        size += len(request.requirements.constraints)
        try:
            if size <= self.inline_requirements:
                result = self._fn(request)
            else:
                result = await asyncio.wait_for(asyncio.to_thread(self._fn, request), self.timeout)
        except Exception as exc:  # the plan is a courtesy preview; never fail a submission on it
            _log.info("plan preview unavailable", error=str(exc))
            return PlanSummary()
        graph = getattr(result, "graph", result)
        tasks = list(getattr(graph, "tasks", []) or [])
        if not tasks:
            return PlanSummary()
        agents: list[str] = []
        for task in tasks:
            agent = getattr(task, "assigned_agent", None)
            if agent and agent not in agents:
                agents.append(agent)
        duration = getattr(graph, "estimated_duration", None)
        return PlanSummary(len(tasks), int(duration) if duration is not None else None, tuple(agents))
