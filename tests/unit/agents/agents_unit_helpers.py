"""Run one specialist task in-process, the way the runtime would hand it over."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from taskloom.agents.sdk import Agent, AgentContextView, ProgressReporter, ProgressSink
from taskloom.agents.specialists import BUILTIN_AGENT_CLASSES
from taskloom.contracts import ProgressStatus, TaskAssignment, TaskDetails
from taskloom.contracts.messages import AssignmentInputs


class RecordingSink(ProgressSink):
    def __init__(self) -> None:
        self.updates: list[tuple[ProgressStatus, dict[str, Any]]] = []

    async def emit(self, status: ProgressStatus, fields: dict[str, Any]) -> None:
        self.updates.append((status, fields))


def assignment(
    agent_id: str, task_type: str, params: dict[str, Any], deps: list[dict[str, Any]] | None = None
) -> TaskAssignment:
    return TaskAssignment(
        workflow_id="wf-unit",
        task_id=f"{task_type}-1",
        assigned_agent=agent_id,
        task_details=TaskDetails(task_type=task_type, priority=5, estimated_duration=1, timeout=120),
        inputs=AssignmentInputs(parameters=params, dependencies=deps or []),
    )


async def run_task(
    agent_id: str,
    task_type: str,
    project: Path | None,
    deps: list[dict[str, Any]] | None = None,
    settings: Any = None,
    **params: Any,
) -> dict[str, Any]:
    agent: Agent = BUILTIN_AGENT_CLASSES[agent_id](settings)
    if project is not None:
        params["project_path"] = str(project)
    task = assignment(agent_id, task_type, params, deps)
    result = await agent.execute(
        task, AgentContextView.from_assignment(task), ProgressReporter(task, agent_id, RecordingSink())
    )
    assert result.success
    return result.outputs
