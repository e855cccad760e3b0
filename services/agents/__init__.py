"""Taskloom's agents: the SDK anyone builds an agent on (``taskloom.agents.sdk``), the runtime
that hosts agents on the bus (``taskloom.agents.host``) and the eight built-in specialists."""

from taskloom.agents.errors import AgentError, TaskCancelled, TaskInputError, TransientTaskError
from taskloom.agents.sdk import Agent, AgentContextView, ConsultationReply, ProgressReporter

__all__ = [
    "Agent",
    "AgentContextView",
    "AgentError",
    "ConsultationReply",
    "ProgressReporter",
    "TaskCancelled",
    "TaskInputError",
    "TransientTaskError",
]
