"""Quality gates: the seed's four validation levels as real checks over task specs and results.

* input — every dependency finished successfully and each ``required_context`` key is
  available (an upstream output, a request-context key or an input parameter);
* process — the run finished inside its timeout and the performance thresholds of the task's
  ``validation_criteria`` hold on its measured metrics;
* output — every ``expected_artifacts`` key is present and non-empty in the outputs, and every
  numeric ``quality_metrics`` target is met;
* integration — every downstream task that needs one of this task's artifacts finds it.

Every level also checks the gate's own ``thresholds``. A metric that is missing fails its check.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from taskloom.contracts.enums import TaskStateName, ValidationLevel
from taskloom.contracts.graph import QualityGate, Threshold
from taskloom.contracts.results import ValidationResult
from taskloom.orchestrator.domain.model import TaskRun, Workflow

__all__ = ["evaluate_gate", "gate_tasks", "measure"]


def gate_tasks(state: Workflow, gate: QualityGate) -> list[str]:
    """The tasks a gate judges (all tasks when it names none)."""
    return [t for t in (gate.validation_tasks or list(state.order)) if t in state.tasks]


def measure(run: TaskRun, metric: str) -> float | None:
    """A numeric metric of a run, looked up in its metrics, then quality indicators, then outputs
    (dotted paths allowed)."""
    sources: list[Any] = [
        run.performance_metrics,
        run.performance_metrics.get("quality_indicators") or {},
        run.performance_metrics.get("resource_usage") or {},
        run.outputs,
    ]
    for source in sources:
        value: Any = source
        for part in metric.split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    return None


class _Checks:
    def __init__(self) -> None:
        self.passed = 0
        self.failed = 0
        self.issues: list[dict[str, Any]] = []

    def check(self, ok: bool, task_id: str, check: str, message: str) -> None:
        if ok:
            self.passed += 1
        else:
            self.failed += 1
            self.issues.append({"task_id": task_id, "check": check, "message": message, "severity": "error"})


def _thresholds(checks: _Checks, run: TaskRun, thresholds: Mapping[str, Threshold], check: str) -> None:
    for name, threshold in thresholds.items():
        metric = threshold.metric or name
        value = measure(run, metric)
        ok = value is not None and threshold.holds(value)
        shown = "missing" if value is None else f"{value:g}"
        checks.check(
            ok, run.spec.task_id, check, f"{metric} {threshold.op} {threshold.value:g} (measured {shown})"
        )


def _available_keys(state: Workflow, run: TaskRun) -> set[str]:
    keys: set[str] = set(run.spec.inputs.input_parameters)
    if state.request is not None:
        context = state.request.context.model_dump()
        keys |= {k for k, v in context.items() if v not in (None, {}, [])}
    for dep in run.spec.dependencies:
        keys |= set(state.tasks[dep].outputs) if dep in state.tasks else set()
    return keys


def _input(checks: _Checks, state: Workflow, run: TaskRun) -> None:
    for dep in run.spec.dependencies:
        dep_run = state.tasks.get(dep)
        ok = dep_run is not None and dep_run.state in (TaskStateName.COMPLETED, TaskStateName.SKIPPED)
        checks.check(ok, run.spec.task_id, "dependency_finished", f"dependency {dep} finished")
    available = _available_keys(state, run)
    for key in run.spec.inputs.required_context:
        checks.check(
            key in available, run.spec.task_id, "required_input", f"required input {key!r} available"
        )


def _process(checks: _Checks, run: TaskRun) -> None:
    elapsed = measure(run, "execution_time")
    if elapsed is None and run.started_at and run.completed_at:
        elapsed = (run.completed_at - run.started_at).total_seconds()
    ok = elapsed is not None and elapsed <= run.spec.timeout
    checks.check(ok, run.spec.task_id, "within_timeout", f"ran within its timeout of {run.spec.timeout}s")
    _thresholds(checks, run, run.spec.validation_criteria.performance_thresholds, "performance_threshold")


def _output(checks: _Checks, run: TaskRun) -> None:
    for artifact in run.spec.outputs.expected_artifacts:
        present = run.outputs.get(artifact) not in (None, "", [], {})
        checks.check(present, run.spec.task_id, "expected_artifact", f"artifact {artifact!r} produced")
    for metric, target in run.spec.outputs.quality_metrics.items():
        if isinstance(target, int | float) and not isinstance(target, bool):
            value = measure(run, metric)
            ok = value is not None and value >= target
            checks.check(ok, run.spec.task_id, "quality_metric", f"{metric} >= {target:g}")


def _integration(checks: _Checks, state: Workflow, run: TaskRun) -> None:
    produced = set(run.outputs)
    promised = set(run.spec.outputs.expected_artifacts)
    for other in state.tasks.values():
        if run.spec.task_id not in other.spec.dependencies:
            continue
        for key in other.spec.inputs.required_context:
            if key in promised:
                checks.check(
                    key in produced,
                    run.spec.task_id,
                    "downstream_compatibility",
                    f"{other.spec.task_id} needs {key!r} from {run.spec.task_id}",
                )
    checks.check(
        all(isinstance(k, str) and k for k in produced),
        run.spec.task_id,
        "contributable_outputs",
        "outputs are named values that can join the workflow context",
    )


def evaluate_gate(state: Workflow, gate: QualityGate) -> ValidationResult:
    """Run the gate's level over the completed tasks it judges."""
    checks = _Checks()
    for task_id in gate_tasks(state, gate):
        run = state.tasks[task_id]
        if run.state != TaskStateName.COMPLETED:
            continue
        match gate.level:
            case ValidationLevel.INPUT:
                _input(checks, state, run)
            case ValidationLevel.PROCESS:
                _process(checks, run)
            case ValidationLevel.OUTPUT:
                _output(checks, run)
            case ValidationLevel.INTEGRATION:
                _integration(checks, state, run)
        _thresholds(checks, run, gate.thresholds, "gate_threshold")
    recommendations = sorted({_advice(i["check"]) for i in checks.issues})
    return ValidationResult(
        success=checks.failed == 0,
        level=gate.level,
        validator_id=f"gate:{gate.gate_id}",
        checks_passed=checks.passed,
        checks_failed=checks.failed,
        issues=checks.issues,
        recommendations=recommendations,
    )


def _advice(check: str) -> str:
    return {
        "dependency_finished": "re-run the failed upstream task before this one",
        "required_input": "provide the missing input in the request context or from an upstream task",
        "within_timeout": "raise the task timeout or split the task",
        "performance_threshold": "optimise the task until its measured metrics meet the thresholds",
        "gate_threshold": "optimise the task until its measured metrics meet the gate's thresholds",
        "expected_artifact": "make the agent produce every expected artifact",
        "quality_metric": "improve the output until its quality metrics reach their targets",
        "downstream_compatibility": "produce the artifacts downstream tasks depend on",
        "contributable_outputs": "name every output value",
    }.get(check, "review the task's result")
