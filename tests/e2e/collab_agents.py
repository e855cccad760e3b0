"""Two small agents that exercise agent-to-agent collaboration through the SDK, run by the real
agents host (``python -m taskloom.agents --agents collab_agents:CollabRequester,...``).

``collab-requester`` consults, requests reviews, hands work off and asks for merges;
``collab-helper`` answers reviews, finishes handed-off work and gives opinions to be merged."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import nats

from taskloom.agents import Agent
from taskloom.agents.sdk import AgentContextView, ProgressReporter
from taskloom.contracts import AgentCollaborationRequest, TaskAssignment, TaskResult
from taskloom.contracts.subjects import Subjects

REQUESTER = "collab-requester"
HELPER = "collab-helper"


def _result(outputs: dict[str, Any]) -> TaskResult:
    return TaskResult(success=True, outputs=outputs)


class CollabRequester(Agent):
    agent_id = REQUESTER
    capabilities = ("collaboration",)
    task_types = ("consult_step", "review_step", "handoff_step", "merge_step")

    async def execute(
        self, task: TaskAssignment, context: AgentContextView, progress: ProgressReporter
    ) -> TaskResult:
        params = context.parameters
        match context.task_type:
            case "consult_step":
                reply = await progress.consult(
                    str(params["consult_agent"]),
                    {
                        "task_type": params["consult_task_type"],
                        "parameters": params.get("consult_parameters", {}),
                    },
                    timeout=30,
                )
                return _result(
                    {
                        "consulted": reply.agent_id,
                        "ok": reply.ok,
                        "answer": reply.answer,
                        "error": reply.error,
                    },
                )
            case "review_step":
                await self._recorded(
                    task,
                    progress.request_review([HELPER], {"task_type": "review_answer", "focus": "wording"}),
                )
                return _result({"draft": "first version", "findings": ["draft written"]})
            case "handoff_step":
                remaining = ["write tests", "update docs"]
                await self._recorded(
                    task, progress.handoff(HELPER, {"task_type": "finish_step", "remaining": remaining})
                )
                return _result({"done": ["analysis"], "handed_off": remaining})
            case "merge_step":
                sources = [str(t) for t in params["merge"]]
                await self._recorded(task, progress.merge(sources, {"reason": "the opinions disagree"}))
                return _result({"verdict": "needs-work", "summary": "merge requested"})
        raise ValueError(f"unknown task type {context.task_type}")

    async def _recorded(self, task: TaskAssignment, send: Any) -> AgentCollaborationRequest:
        """Send a collaboration request and wait until the orchestrator has recorded it.

        The request travels on the commands stream and the task's completion on the progress
        stream; the orchestrator consumes them independently, and a completion that overtakes
        the request of a workflow's last task finishes the workflow, which then ignores the
        request. Waiting for the relayed ``CollaborationRequested`` event keeps the test about
        collaboration rather than about that race."""
        subjects = Subjects(self.settings.namespace)
        nc = await nats.connect(self.settings.nats_url)
        try:
            sub = await nc.subscribe(subjects.event(task.workflow_id, "CollaborationRequested"))
            request: AgentCollaborationRequest = await send
            with contextlib.suppress(TimeoutError, nats.errors.TimeoutError):
                async with asyncio.timeout(15):
                    while True:
                        msg = await sub.next_msg(timeout=15)
                        if request.collaboration_id.encode() in msg.data:
                            break
            return request
        finally:
            await nc.close()


class CollabHelper(Agent):
    agent_id = HELPER
    capabilities = ("collaboration",)
    task_types = ("review_answer", "finish_step", "opinion_step")

    async def execute(
        self, task: TaskAssignment, context: AgentContextView, progress: ProgressReporter
    ) -> TaskResult:
        params = context.parameters
        match context.task_type:
            case "review_answer":
                outputs = {
                    "approved": True,
                    "reviewed": params.get("collaboration_of"),
                    "focus": params.get("focus"),
                }
            case "finish_step":
                outputs = {
                    "finished": list(params.get("remaining", [])),
                    "handoff_of": params.get("collaboration_of"),
                }
            case "opinion_step":
                outputs = {"verdict": params["verdict"], "summary": f"opinion {params['verdict']}"}
            case _:
                raise ValueError(f"unknown task type {context.task_type}")
        await progress.update(100, "done")
        return _result(outputs)
