"""The agent SDK: the ``Agent`` base class third-party and built-in agents implement, the
context view an agent reads, and the progress reporter it talks back through (progress,
cancellation, collaboration)."""

from __future__ import annotations

import abc
import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, Field

from taskloom.agents.errors import TaskCancelled, TaskInputError
from taskloom.contracts import (
    AgentCollaborationRequest,
    CollaborationType,
    ProgressStatus,
    TaskAssignment,
    TaskResult,
    Urgency,
)
from taskloom.contracts.context import ContextScope, ContextView

__all__ = [
    "Agent",
    "AgentContextView",
    "CollaborationPort",
    "ConsultationReply",
    "ProgressReporter",
    "ProgressSink",
    "run_subprocess",
]


_SCOPE_FIELD = {
    ContextScope.GLOBAL: "global_context",
    ContextScope.PROJECT: "global_context",
    ContextScope.WORKFLOW: "task_context",
    ContextScope.TASK: "task_context",
    ContextScope.AGENT: "agent_context",
}


@dataclass
class AgentContextView:
    """What one task may see: the merged context scopes, its parameters and upstream outputs."""

    workflow_id: str
    task_id: str
    task_type: str
    global_context: dict[str, Any] = field(default_factory=dict)
    task_context: dict[str, Any] = field(default_factory=dict)
    agent_context: dict[str, Any] = field(default_factory=dict)
    parameters: dict[str, Any] = field(default_factory=dict)
    dependencies: list[dict[str, Any]] = field(default_factory=list)
    resources: dict[str, Any] = field(default_factory=dict)
    source: str = "assignment"

    @classmethod
    def from_assignment(
        cls, task: TaskAssignment, fetched: ContextView | Mapping[str, Any] | None = None
    ) -> AgentContextView:
        """The assignment's own context, overlaid by what the context service returned (which is
        filtered by the agent's access policy and therefore wins). A ``ContextView`` is split by
        the scope each key came from: global and project keys into ``global_context``, workflow
        and task keys into ``task_context``, agent keys into ``agent_context``."""
        ctx = task.context
        view = cls(
            workflow_id=task.workflow_id,
            task_id=task.task_id,
            task_type=task.task_details.task_type,
            global_context=dict(ctx.global_context),
            task_context=dict(ctx.task_context),
            agent_context=dict(ctx.agent_context),
            parameters=dict(task.inputs.parameters),
            dependencies=[dict(d) for d in task.inputs.dependencies],
            resources=dict(task.inputs.resources),
        )
        if isinstance(fetched, ContextView):
            view.source = "context-service"
            for key, value in fetched.context.items():
                source = fetched.key_sources.get(key, ContextScope.TASK)
                getattr(view, _SCOPE_FIELD[source])[key] = value
        elif fetched:
            view.source = "context-service"
            for scope in ("global_context", "task_context", "agent_context"):
                extra = fetched.get(scope.removesuffix("_context")) or fetched.get(scope)
                if isinstance(extra, Mapping):
                    getattr(view, scope).update(extra)
            workflow = fetched.get("workflow")
            if isinstance(workflow, Mapping):
                view.task_context.setdefault("workflow", {}).update(workflow)
        return view

    def lookup(self, key: str, default: Any = None) -> Any:
        """A value by key: parameters first, then task, agent and global context."""
        for scope in (self.parameters, self.task_context, self.agent_context, self.global_context):
            if key in scope and scope[key] is not None:
                return scope[key]
        return default

    def project_path(self) -> Path:
        """The project directory the task works on (``inputs.parameters.project_path``)."""
        raw = self.lookup("project_path")
        if not raw:
            raise TaskInputError("inputs.parameters.project_path is required for this task type")
        path = Path(str(raw)).expanduser().resolve()
        if not path.is_dir():
            raise TaskInputError(f"project_path {raw!r} is not a directory")
        return path

    def upstream(self, task_type: str | None = None, agent_id: str | None = None) -> list[dict[str, Any]]:
        """Outputs of finished upstream tasks (``inputs.dependencies``), optionally filtered;
        each as ``{"task_id", "task_type", "agent_id", "outputs"}``."""
        out: list[dict[str, Any]] = []
        for dep in self.dependencies:
            nested = dep.get("outputs")
            outputs: Mapping[str, Any] = nested if isinstance(nested, Mapping) else dep
            item = {
                "task_id": dep.get("task_id", "?"),
                "task_type": dep.get("task_type") or outputs.get("task_type"),
                "agent_id": dep.get("agent_id") or dep.get("assigned_agent") or outputs.get("agent_id"),
                "outputs": dict(outputs),
            }
            if task_type and item["task_type"] != task_type:
                continue
            if agent_id and item["agent_id"] != agent_id:
                continue
            out.append(item)
        return out

    def upstream_output(self, key: str) -> Any:
        """The first upstream output named ``key`` (e.g. ``failed`` of a test run), or None."""
        for dep in self.upstream():
            if key in dep["outputs"]:
                return dep["outputs"][key]
        return None


class ConsultationReply(BaseModel):
    """What a consulted agent answers."""

    agent_id: str
    instance_id: str
    collaboration_id: str
    ok: bool
    answer: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None


class ProgressSink(abc.ABC):
    """Where a reporter's updates go (the runtime publishes them on the bus)."""

    @abc.abstractmethod
    async def emit(self, status: ProgressStatus, fields: dict[str, Any]) -> None: ...


class CollaborationPort(abc.ABC):
    """The runtime's side of collaboration: consultation request/reply and orchestrator requests."""

    @abc.abstractmethod
    async def consult(self, request: AgentCollaborationRequest, timeout: float) -> ConsultationReply: ...  # noqa: ASYNC109

    @abc.abstractmethod
    async def request(self, request: AgentCollaborationRequest) -> None: ...


class ProgressReporter:
    """Handed to ``Agent.execute``: report progress, check for cancellation, collaborate.

    Reports are rate-limited only by the agent; every one also keeps the assignment alive.
    """

    def __init__(
        self,
        task: TaskAssignment,
        agent_id: str,
        sink: ProgressSink,
        collaboration: CollaborationPort | None = None,
    ) -> None:
        self.task = task
        self.agent_id = agent_id
        self._sink = sink
        self._collaboration = collaboration
        self.cancelled = asyncio.Event()
        self.milestones: list[str] = []
        self.percentage = 0.0
        self.phase = ""
        self.collaborations: list[AgentCollaborationRequest] = []

    async def update(
        self,
        percentage: float,
        phase: str,
        milestone: str | None = None,
        next_milestone: str = "",
        intermediate_results: dict[str, Any] | None = None,
    ) -> None:
        """An ``in_progress`` update; ``milestone`` is appended to the completed milestones."""
        self.check_cancelled()
        self.percentage = max(0.0, min(100.0, percentage))
        self.phase = phase
        if milestone:
            self.milestones.append(milestone)
        await self._sink.emit(
            ProgressStatus.IN_PROGRESS,
            {
                "progress": {
                    "completion_percentage": self.percentage,
                    "current_phase": phase,
                    "completed_milestones": list(self.milestones),
                    "next_milestone": next_milestone,
                },
                "intermediate_results": intermediate_results,
            },
        )

    def check_cancelled(self) -> None:
        """Raise ``TaskCancelled`` if the workflow was cancelled (call between steps)."""
        if self.cancelled.is_set():
            raise TaskCancelled(f"task {self.task.task_id} was cancelled")

    def _collab(
        self, kind: CollaborationType, targets: Sequence[str], context: Mapping[str, Any], urgency: Urgency
    ) -> AgentCollaborationRequest:
        return AgentCollaborationRequest(
            requesting_agent=self.agent_id,
            target_agents=list(targets),
            collaboration_type=kind,
            context=dict(context),
            urgency=urgency,
            workflow_id=self.task.workflow_id,
            task_id=self.task.task_id,
        )

    def _port(self) -> CollaborationPort:
        if self._collaboration is None:
            raise RuntimeError("collaboration is not available outside the agent runtime")
        return self._collaboration

    async def consult(
        self,
        target: str,
        question: Mapping[str, Any],
        timeout: float = 10.0,  # noqa: ASYNC109
        urgency: Urgency = Urgency.NORMAL,
    ) -> ConsultationReply:
        """Ask another agent type a question and wait for its answer (request/reply).

        ``question`` with a ``task_type`` (and ``parameters``) the target implements makes it
        run that analysis and answer with its outputs. Raises ``TimeoutError`` when no instance
        of ``target`` answers in time."""
        request = self._collab(CollaborationType.CONSULTATION, [target], question, urgency)
        self.collaborations.append(request)
        return await self._port().consult(request, timeout)

    async def request_review(
        self, reviewers: Sequence[str], context: Mapping[str, Any], urgency: Urgency = Urgency.NORMAL
    ) -> AgentCollaborationRequest:
        """Ask the orchestrator to add a review task for ``reviewers`` after this task."""
        return await self._send(CollaborationType.REVIEW, reviewers, context, urgency)

    async def handoff(
        self, target: str, remaining_work: Mapping[str, Any], urgency: Urgency = Urgency.NORMAL
    ) -> AgentCollaborationRequest:
        """Pass the work this agent cannot finish to ``target`` (the orchestrator adds the task)."""
        return await self._send(CollaborationType.HANDOFF, [target], remaining_work, urgency)

    async def merge(
        self,
        task_ids: Sequence[str],
        context: Mapping[str, Any],
        urgency: Urgency = Urgency.NORMAL,
        targets: Sequence[str] = ("orchestrator",),
    ) -> AgentCollaborationRequest:
        """Hand several tasks' outputs to the orchestrator's conflict resolution."""
        return await self._send(
            CollaborationType.MERGE, targets, {**context, "task_ids": list(task_ids)}, urgency
        )

    async def _send(
        self, kind: CollaborationType, targets: Sequence[str], context: Mapping[str, Any], urgency: Urgency
    ) -> AgentCollaborationRequest:
        request = self._collab(kind, targets, context, urgency)
        self.collaborations.append(request)
        await self._port().request(request)
        return request


class Agent(abc.ABC):
    """Base class of every agent. Subclasses set ``agent_id``, ``capabilities`` and
    ``task_types`` and implement ``execute``; the runtime does the rest."""

    agent_id: ClassVar[str]
    capabilities: ClassVar[tuple[str, ...]] = ()
    task_types: ClassVar[tuple[str, ...]] = ()
    description: ClassVar[str] = ""
    version: ClassVar[str] = "1"
    capacity: int = 1

    def __init__(self, settings: Any = None) -> None:
        self.settings = settings

    @abc.abstractmethod
    async def execute(
        self, task: TaskAssignment, context: AgentContextView, progress: ProgressReporter
    ) -> TaskResult:
        """Do the task. Raise ``TaskInputError`` for bad input, ``TransientTaskError`` for a
        failure another attempt may fix; return a ``TaskResult``."""

    async def consult(self, request: AgentCollaborationRequest) -> dict[str, Any]:
        """Answer another agent's consultation. The default runs the asked-for task type on the
        given parameters (``{"task_type": ..., "parameters": {...}}``) and answers its outputs."""
        task_type = request.context.get("task_type")
        if task_type not in self.task_types:
            return {
                "agent_id": self.agent_id,
                "capabilities": list(self.capabilities),
                "task_types": list(self.task_types),
                "note": f"ask with a task_type among {list(self.task_types)} to get an analysis",
            }
        task = consultation_assignment(request, self.agent_id, str(task_type))
        result = await self.execute(
            task, AgentContextView.from_assignment(task), ProgressReporter(task, self.agent_id, _NullSink())
        )
        if not result.success:
            raise RuntimeError(str((result.error_context or {}).get("error_message", "consultation failed")))
        return result.outputs


def consultation_assignment(
    request: AgentCollaborationRequest, agent_id: str, task_type: str
) -> TaskAssignment:
    """A synthetic assignment for answering a consultation with an agent's own task code."""
    from taskloom.contracts import TaskDetails
    from taskloom.contracts.messages import AssignmentInputs

    return TaskAssignment(
        workflow_id=request.workflow_id or "consultation",
        task_id=f"consult-{request.collaboration_id}",
        assigned_agent=agent_id,
        task_details=TaskDetails(task_type=task_type, priority=5, estimated_duration=1, timeout=60),
        inputs=AssignmentInputs(parameters=dict(request.context.get("parameters", {}))),
    )


class _NullSink(ProgressSink):
    async def emit(self, status: ProgressStatus, fields: dict[str, Any]) -> None:
        return None


async def run_subprocess(
    args: Sequence[str],
    cwd: Path,
    time_limit: float,
    env: Mapping[str, str] | None = None,
    progress: ProgressReporter | None = None,
) -> tuple[int, str, str]:
    """Run a child process; it is killed when the task is cancelled or ``time_limit`` passes."""
    proc = await asyncio.create_subprocess_exec(
        *args,
        cwd=str(cwd),
        env=dict(env) if env is not None else None,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    waiters: list[asyncio.Future[Any]] = [asyncio.ensure_future(proc.communicate())]
    if progress is not None:
        waiters.append(asyncio.ensure_future(progress.cancelled.wait()))
    try:
        done, _ = await asyncio.wait(waiters, timeout=time_limit, return_when=asyncio.FIRST_COMPLETED)
        if waiters[0] not in done:
            raise (
                TimeoutError(f"{args[0]} did not finish in {time_limit:.0f}s")
                if not done
                else TaskCancelled("cancelled")
            )
        out, err = waiters[0].result()
        return proc.returncode or 0, out.decode(errors="replace"), err.decode(errors="replace")
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            with contextlib.suppress(Exception):
                await proc.wait()
        for w in waiters:
            w.cancel()


Handler = Callable[[Any, TaskAssignment, AgentContextView, ProgressReporter], Awaitable[BaseModel]]


def timed() -> Callable[[], float]:
    start = time.perf_counter()
    return lambda: time.perf_counter() - start
