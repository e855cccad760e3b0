"""Test agents (sleepy, empty, collaborating) and helpers to run agent hosts as real
processes and drive them over the bus, without an orchestrator."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from nats.js import JetStreamContext
from nats.js.api import DeliverPolicy

from taskloom.agents import Agent, AgentContextView, ProgressReporter
from taskloom.contracts import ProgressUpdate, Subjects, TaskAssignment, TaskDetails, TaskResult
from taskloom.contracts.messages import AssignmentInputs
from taskloom.settings import Settings

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]


class SleepyAgent(Agent):
    """Sleeps ``seconds`` in small steps, reporting progress; honours cancellation."""

    agent_id = "sleeper"
    capabilities = ("waiting",)
    task_types = ("sleep",)

    async def execute(
        self, task: TaskAssignment, context: AgentContextView, progress: ProgressReporter
    ) -> TaskResult:
        seconds = float(context.parameters.get("seconds", 0.5))
        steps = max(1, int(seconds / 0.1))
        for i in range(steps):
            progress.check_cancelled()
            await asyncio.sleep(seconds / steps)
            if i % 5 == 0:
                await progress.update(100 * i / steps, "sleeping", milestone=f"step {i}")
        return TaskResult(
            success=True, outputs={"slept": seconds, "summary": f"slept {seconds}s", "findings": []}
        )


class EmptyAgent(Agent):
    """Does nothing: measures the runtime's own overhead."""

    agent_id = "noop"
    task_types = ("noop",)
    capacity = 1

    async def execute(
        self, task: TaskAssignment, context: AgentContextView, progress: ProgressReporter
    ) -> TaskResult:
        return TaskResult(success=True, outputs={})


class CollaboratingAgent(Agent):
    """Consults another agent type, then asks the orchestrator for review, handoff and merge."""

    agent_id = "collaborator"
    task_types = ("consult", "collaborate")

    async def execute(
        self, task: TaskAssignment, context: AgentContextView, progress: ProgressReporter
    ) -> TaskResult:
        p = context.parameters
        if task.task_details.task_type == "consult":
            reply = await progress.consult(p["target"], p["question"], timeout=float(p.get("timeout", 20)))
            return TaskResult(
                success=reply.ok,
                outputs={"answer": reply.answer, "answered_by": reply.instance_id},
                error_context=None if reply.ok else {"error_message": reply.error},
            )
        review = await progress.request_review(["technical-writer"], {"artifact": "api_reference"})
        handoff = await progress.handoff(
            "testing-specialist", {"task_type": "test_execution", "reason": "needs a test run"}
        )
        merge = await progress.merge(["a", "b"], {"reason": "conflicting recommendations"})
        return TaskResult(
            success=True, outputs={"requests": [r.collaboration_id for r in (review, handoff, merge)]}
        )


class ContextEchoAgent(Agent):
    """Answers with the context it was handed, split by scope, and where it came from."""

    agent_id = "echo"
    task_types = ("echo",)

    async def execute(
        self, task: TaskAssignment, context: AgentContextView, progress: ProgressReporter
    ) -> TaskResult:
        return TaskResult(
            success=True,
            outputs={
                "source": context.source,
                "global": context.global_context,
                "task": context.task_context,
                "agent": context.agent_context,
                "upstream": context.upstream(),
                "summary": "echoed the context",
                "findings": ["one finding"],
            },
        )


def assignment(
    agent_id: str,
    task_type: str,
    params: dict[str, Any],
    workflow_id: str = "wf-1",
    task_id: str = "t-1",
    timeout: int = 120,
    attempt: int = 1,
    **extra: Any,
) -> TaskAssignment:
    return TaskAssignment(
        workflow_id=workflow_id,
        task_id=task_id,
        assigned_agent=agent_id,
        attempt=attempt,
        task_details=TaskDetails(task_type=task_type, priority=5, estimated_duration=1, timeout=timeout),
        inputs=extra.pop("inputs", AssignmentInputs(parameters=params)),
        **extra,
    )


def agent_env(settings: Settings, extra_path: list[Path] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "TASKLOOM_NATS_URL": settings.nats_url or "",
            "TASKLOOM_DATABASE_URL": settings.database_url or "",
            "TASKLOOM_NAMESPACE": settings.namespace,
            "TASKLOOM_HTTP_PORT": "0",
            "TASKLOOM_LOG_LEVEL": "WARNING",
            "TASKLOOM_DATA_DIR": str(settings.data_dir),
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONPATH": os.pathsep.join(str(p) for p in [HERE, *(extra_path or [])]),
        }
    )
    return env


@contextmanager
def agent_processes(
    settings: Settings,
    specs: list[tuple[str, str]],
    ack_wait: float = 2.0,
    shutdown_grace: float = 0.5,
    extra_path: list[Path] | None = None,
    extra_args: tuple[str, ...] = (),
    env_overrides: dict[str, str] | None = None,
) -> Iterator[dict[str, subprocess.Popen[bytes]]]:
    """Start one ``python -m taskloom.agents`` per (instance id, --agents value); kill them all at the end."""
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for instance, agents in specs:
            procs[instance] = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "taskloom.agents",
                    "--agents",
                    agents,
                    "--instance-id",
                    instance,
                    "--ack-wait",
                    str(ack_wait),
                    "--shutdown-grace",
                    str(shutdown_grace),
                    *extra_args,
                ],
                env={**agent_env(settings, extra_path), **(env_overrides or {})},
                cwd=REPO,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
        yield procs
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
            if proc.stderr:
                proc.stderr.close()


async def wait_registered(
    js: JetStreamContext, subjects: Subjects, keys: list[str], timeout: float = 30.0
) -> None:
    async def poll() -> None:
        while True:
            try:
                kv = await js.key_value(subjects.agents_bucket)
                present = set(await kv.keys())
                if set(keys) <= present:
                    return
            except Exception:  # noqa: S110 - the bucket or keys do not exist yet
                pass
            await asyncio.sleep(0.1)

    await asyncio.wait_for(poll(), timeout)


class ProgressLog:
    """Every ProgressUpdate in the PROGRESS stream of a namespace, read as it arrives."""

    def __init__(self, js: JetStreamContext, subjects: Subjects) -> None:
        self.js, self.subjects = js, subjects
        self.updates: list[ProgressUpdate] = []
        self._sub: Any = None

    async def start(self) -> ProgressLog:
        self._sub = await self.js.subscribe(
            self.subjects.progress_all, ordered_consumer=True, deliver_policy=DeliverPolicy.ALL, cb=self._on
        )
        return self

    async def _on(self, msg: Any) -> None:
        self.updates.append(ProgressUpdate.model_validate_json(msg.data))

    async def wait_for(self, predicate: Any, timeout: float = 30.0) -> ProgressUpdate:  # noqa: ASYNC109
        async def poll() -> ProgressUpdate:
            while True:
                for u in self.updates:
                    if predicate(u):
                        return u
                await asyncio.sleep(0.05)

        return await asyncio.wait_for(poll(), timeout)

    def of(self, task_id: str, status: str | None = None) -> list[ProgressUpdate]:
        return [
            u for u in self.updates if u.task_id == task_id and (status is None or u.status.value == status)
        ]

    async def stop(self) -> None:
        if self._sub is not None:
            await self._sub.unsubscribe()
