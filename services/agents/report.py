"""The Markdown report of a workflow: its outcome, the task graph, per-task timings and every
agent's findings, built from the workflow state, its result and its event history."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from taskloom.contracts import TaskState, WorkflowResult, WorkflowState

__all__ = ["render_report"]


def _seconds(task: TaskState) -> float | None:
    if task.started_at and task.completed_at:
        return (task.completed_at - task.started_at).total_seconds()
    value = task.performance_metrics.get("execution_time")
    return float(value) if isinstance(value, int | float) else None


def _graph_section(events: Sequence[Mapping[str, Any]]) -> list[str]:
    graph: Mapping[str, Any] | None = None
    for event in events:
        data = event.get("data", event)
        if isinstance(data, Mapping) and isinstance(data.get("graph"), Mapping):
            graph = data["graph"]
            break
    if graph is None:
        return []
    lines = ["## Task graph", "", "```mermaid", "graph TD"]
    for task in graph.get("tasks", []):
        label = f"{task.get('task_type', '?')}<br/>{task.get('assigned_agent', '?')}"
        lines.append(f'    {_node(task["task_id"])}["{label}"]')
        for dep in task.get("dependencies", []):
            lines.append(f"    {_node(dep)} --> {_node(task['task_id'])}")
    lines += ["```", ""]
    return lines


def _node(task_id: str) -> str:
    return "t_" + "".join(c if c.isalnum() else "_" for c in task_id)


def _fmt_time(value: datetime | None) -> str:
    return value.strftime("%H:%M:%S") if value else "—"


def _value_lines(outputs: Mapping[str, Any]) -> list[str]:
    lines: list[str] = []
    findings = outputs.get("findings")
    if isinstance(findings, list) and findings:
        lines += ["**Findings**", "", *[f"- {f}" for f in findings[:40]]]
        if len(findings) > 40:
            lines.append(f"- … and {len(findings) - 40} more")
        lines.append("")
    elif isinstance(findings, list):
        lines += ["No findings.", ""]
    markdown = outputs.get("markdown")
    if isinstance(markdown, str) and markdown.strip():
        lines += ["<details><summary>Document</summary>", "", markdown.strip(), "", "</details>", ""]
    return lines


def render_report(state: WorkflowState, result: WorkflowResult | None, events: list[dict[str, Any]]) -> str:
    """A readable report: outcome, graph, a timing table, then each task's summary and findings."""
    outcome = state.current_state.value
    if result is not None:
        outcome += (
            " (success)"
            if result.success
            else (" (partial success)" if result.partial_success else " (failed)")
        )
    total = (
        (state.completed_at - state.started_at).total_seconds()
        if state.completed_at and state.started_at
        else None
    )
    lines = [f"# Taskloom report — workflow `{state.workflow_id}`", ""]
    lines += [
        f"- **Request type:** {state.request_type.value if state.request_type else '—'}",
        f"- **Outcome:** {outcome}",
        f"- **Progress:** {state.progress.completed_tasks}/{state.progress.total_tasks} tasks "
        f"({state.progress.completion_percentage:.0f}%)",
        f"- **Duration:** {f'{total:.1f} s' if total is not None else '—'}",
        f"- **Events in history:** {len(events)}",
        "",
    ]
    if state.error:
        lines += [f"> **Error:** {state.error}", ""]
    lines += _graph_section(events)
    lines += [
        "## Timings",
        "",
        "| task | type | agent | state | attempts | started | seconds |",
        "|---|---|---|---|---|---|---|",
    ]
    for task in state.task_states:
        secs = _seconds(task)
        lines.append(
            f"| {task.task_id} | {task.task_type or '—'} | {task.assigned_agent or '—'} "
            f"| {task.state.value} | "
            f"{task.attempts} | {_fmt_time(task.started_at)} | {f'{secs:.2f}' if secs is not None else '—'} |"
        )
    lines.append("")
    all_findings: list[str] = []
    lines += ["## Findings by task", ""]
    for task in state.task_states:
        outputs: Mapping[str, Any] = task.outputs or (result.outputs.get(task.task_id, {}) if result else {})
        lines += [f"### {task.task_id} — {task.task_type or '?'} ({task.assigned_agent or '?'})", ""]
        if task.error:
            lines += [
                f"**Failed:** {task.error.get('error_type', '')} "
                f"{task.error.get('error_message', '')}".rstrip(),
                "",
            ]
        summary = outputs.get("summary")
        if summary:
            lines += [f"_{summary}_", ""]
        lines += _value_lines(outputs)
        all_findings += [f"{task.assigned_agent}: {f}" for f in outputs.get("findings", []) or []]
    collaboration = [e for e in events if "Collaboration" in str(e.get("type", ""))]
    if collaboration:
        lines += ["## Collaboration", ""]
        for e in collaboration:
            data = e.get("data", {})
            req = data.get("request", data) if isinstance(data, Mapping) else {}
            lines.append(
                f"- {e.get('type')}: {req.get('collaboration_type', '?')} "
                f"from {req.get('requesting_agent', '?')} "
                f"to {', '.join(req.get('target_agents', []) or [])}"
            )
        lines.append("")
    lines += ["## Summary", "", f"{len(all_findings)} findings from {len(state.task_states)} tasks.", ""]
    return "\n".join(lines).rstrip() + "\n"
