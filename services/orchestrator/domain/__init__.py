"""The orchestrator's pure core: the workflow aggregate as a decider (``decide``/``evolve``),
scheduling and admission, conditions, retries, quality gates, conflict resolution, result
synthesis and timers. No I/O."""

from taskloom.orchestrator.domain.conditions import evaluate
from taskloom.orchestrator.domain.conflicts import Resolution, detect_conflicts, resolve
from taskloom.orchestrator.domain.decide import assignment_for, assignment_message_id, decide, heartbeat_due
from taskloom.orchestrator.domain.evolve import empty, evolve, fold
from taskloom.orchestrator.domain.gates import evaluate_gate
from taskloom.orchestrator.domain.model import (
    Admit,
    Candidate,
    Collaborate,
    Control,
    Decision,
    Input,
    Limits,
    RejectGraph,
    StartGraph,
    TaskRun,
    Tick,
    Timer,
    TimerFired,
    Workflow,
)
from taskloom.orchestrator.domain.projection import completion_percentage, synthesize_result, to_state
from taskloom.orchestrator.domain.retry import backoff_delay
from taskloom.orchestrator.domain.scheduling import WorkflowSummary, admit, ready_tasks
from taskloom.orchestrator.domain.timers import timers_for

__all__ = [
    "Admit",
    "Candidate",
    "Collaborate",
    "Control",
    "Decision",
    "Input",
    "Limits",
    "RejectGraph",
    "Resolution",
    "StartGraph",
    "TaskRun",
    "Tick",
    "Timer",
    "TimerFired",
    "Workflow",
    "WorkflowSummary",
    "admit",
    "assignment_for",
    "assignment_message_id",
    "backoff_delay",
    "completion_percentage",
    "decide",
    "detect_conflicts",
    "empty",
    "evaluate",
    "evaluate_gate",
    "evolve",
    "fold",
    "heartbeat_due",
    "ready_tasks",
    "resolve",
    "synthesize_result",
    "timers_for",
    "to_state",
]
