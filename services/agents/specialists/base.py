"""A specialist: an agent whose task types each map to one handler method returning a
structured ``SpecialistOutput`` (a one-line summary plus findings that name what they found)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, Field

from taskloom.agents.domain.pysource import SourceFile, iter_source
from taskloom.agents.errors import TaskInputError
from taskloom.agents.llm import LlmClient
from taskloom.agents.sdk import Agent, AgentContextView, ProgressReporter
from taskloom.contracts import TaskAssignment, TaskResult
from taskloom.contracts.catalog import BUILTIN_CATALOG

__all__ = ["Specialist", "SpecialistOutput", "handles"]


class SpecialistOutput(BaseModel):
    summary: str
    findings: list[str] = Field(default_factory=list)


HandlerFn = Callable[..., Awaitable[SpecialistOutput]]
H = TypeVar("H", bound=HandlerFn)


def handles(task_type: str) -> Callable[[H], H]:
    """Mark a method as the handler of ``task_type``."""

    def mark(fn: H) -> H:
        fn.__taskloom_task_type__ = task_type  # type: ignore[attr-defined]
        return fn

    return mark


class Specialist(Agent):
    """Dispatches by task type; capabilities and task types come from the built-in catalogue."""

    handlers: ClassVar[dict[str, str]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        profile = BUILTIN_CATALOG.get(getattr(cls, "agent_id", ""))
        if profile is not None:
            cls.capabilities = profile.capabilities
            cls.description = profile.description
        cls.handlers = {
            fn.__taskloom_task_type__: name
            for name, fn in vars(cls).items()
            if callable(fn) and hasattr(fn, "__taskloom_task_type__")
        }
        cls.task_types = tuple(cls.handlers)

    def __init__(self, settings: Any = None) -> None:
        super().__init__(settings)
        self.llm = LlmClient.from_settings(settings)

    async def execute(
        self, task: TaskAssignment, context: AgentContextView, progress: ProgressReporter
    ) -> TaskResult:
        task_type = task.task_details.task_type
        method = self.handlers.get(task_type)
        if method is None:
            raise TaskInputError(f"{self.agent_id} does not implement task type {task_type!r}")
        started = time.perf_counter()
        await progress.update(5, "preparing", next_milestone=task_type)
        output: SpecialistOutput = await getattr(self, method)(context, progress)
        elapsed = time.perf_counter() - started
        outputs = {"agent_id": self.agent_id, "task_type": task_type, **output.model_dump(mode="json")}
        return TaskResult(
            success=True,
            outputs=outputs,
            performance_metrics={"execution_time": round(elapsed, 4), "finding_count": len(output.findings)},
        )

    @staticmethod
    def sources(path: Path, include_tests: bool = True) -> list[SourceFile]:
        return iter_source(path, include_tests=include_tests)

    async def prose(self, system: str, prompt: str) -> str | None:
        """LLM-written prose when an endpoint is configured, else None (callers keep their
        deterministic text)."""
        if self.llm is None:
            return None
        return await self.llm.complete(system, prompt)
