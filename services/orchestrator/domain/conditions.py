"""Safe evaluation of a task's ``Condition`` over upstream task states (no ``eval``).

A comparison's ``path`` is a dotted path into the referenced task's state, e.g.
``outputs.coverage.percent``; the roots are ``outputs``, ``performance_metrics``, ``state``,
``attempts`` and ``agent``. A missing path is ``None``: ``exists`` is false, ``falsy`` is true
and every ordering comparison is false (never an error).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from taskloom.contracts.graph import Condition
from taskloom.orchestrator.domain.model import TaskRun

__all__ = ["evaluate", "resolve_path"]

_MISSING = object()


def resolve_path(run: TaskRun | None, path: str) -> Any:
    if run is None:
        return None
    roots: dict[str, Any] = {
        "outputs": run.outputs,
        "performance_metrics": run.performance_metrics,
        "state": run.state.value,
        "attempts": run.attempt,
        "agent": run.agent,
    }
    parts = [p for p in path.split(".") if p]
    if not parts:
        return None
    if parts[0] in roots:
        value: Any = roots[parts[0]]
        parts = parts[1:]
    else:
        value = run.outputs  # a bare key means an output
    for part in parts:
        value = _step(value, part)
        if value is _MISSING:
            return None
    return value


def _step(value: Any, part: str) -> Any:
    if isinstance(value, Mapping):
        return value.get(part, _MISSING)
    if isinstance(value, list | tuple) and part.lstrip("-").isdigit():
        index = int(part)
        return value[index] if -len(value) <= index < len(value) else _MISSING
    return _MISSING


def _compare(op: str, left: Any, right: Any) -> bool:
    try:
        match op:
            case "eq":
                return bool(left == right)
            case "ne":
                return bool(left != right)
            case "gt":
                return left is not None and bool(left > right)
            case "ge":
                return left is not None and bool(left >= right)
            case "lt":
                return left is not None and bool(left < right)
            case "le":
                return left is not None and bool(left <= right)
            case "in":
                return isinstance(right, list | tuple | str | dict) and left in right
            case "not_in":
                return not (isinstance(right, list | tuple | str | dict) and left in right)
            case "contains":
                return isinstance(left, list | tuple | str | dict) and right in left
            case "exists":
                return left is not None
            case "truthy":
                return bool(left)
            case "falsy":
                return not left
    except TypeError:
        # comparing unlike types (a string with a number) is simply false
        return False
    return False


def evaluate(condition: Condition, tasks: Mapping[str, TaskRun]) -> bool:
    """The condition's truth over the given task runs."""
    if condition.all_of is not None:
        return all(evaluate(c, tasks) for c in condition.all_of)
    if condition.any_of is not None:
        return any(evaluate(c, tasks) for c in condition.any_of)
    if condition.not_ is not None:
        return not evaluate(condition.not_, tasks)
    assert condition.task is not None and condition.path is not None and condition.op is not None
    left = resolve_path(tasks.get(condition.task), condition.path)
    return _compare(condition.op, left, condition.value)
