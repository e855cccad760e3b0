"""Why a task could not be done: a permanent problem with its input, or a transient one."""

from __future__ import annotations

__all__ = ["AgentError", "TaskCancelled", "TaskInputError", "TransientTaskError"]


class AgentError(Exception):
    """Base of the errors an agent raises on purpose; ``retryable`` says if another attempt may succeed."""

    retryable = True


class TaskInputError(AgentError):
    """The assignment lacks something or names something that does not exist."""

    retryable = False


class TransientTaskError(AgentError):
    """Something outside the agent failed (a timeout, a service that did not answer)."""

    retryable = True


class TaskCancelled(AgentError):
    """The workflow was cancelled while the task ran."""

    retryable = False
