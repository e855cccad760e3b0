"""The constructor's planner run in-process for the submission answer (task count, duration,
agents). Optional: without the constructor installed, or when planning fails, the answer
leaves those fields empty and the constructor service still builds the real graph."""

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
    def __init__(self, enabled: bool = True, timeout: float = 2.0) -> None:
        self._fn = _find_planner() if enabled else None
        self.timeout = timeout

    @property
    def available(self) -> bool:
        return self._fn is not None

    async def summarize(self, request: ComplexRequest) -> PlanSummary:
        if self._fn is None:
            return PlanSummary()
        try:
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
