"""Following a workflow over the WebSocket: per-task progress bars and states until it ends."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import websockets
from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, Progress, TaskID, TextColumn
from rich.text import Text

__all__ = ["WatchOutcome", "watch_workflow"]

_STATE_STYLE = {
    "pending": "dim",
    "assigned": "cyan",
    "running": "yellow",
    "completed": "green",
    "failed": "red",
    "skipped": "dim",
    "cancelled": "magenta",
}


@dataclass
class WatchOutcome:
    status: str = "unknown"
    last_position: int = 0
    frames: list[dict[str, Any]] = field(default_factory=list)
    close_code: int | None = None
    close_reason: str = ""


class _View:
    def __init__(self, workflow_id: str) -> None:
        self.workflow_id = workflow_id
        self.status = "pending"
        self.progress = Progress(
            TextColumn("{task.fields[label]:<34}"),
            BarColumn(bar_width=30),
            TextColumn("{task.percentage:>5.1f}%"),
            TextColumn("{task.fields[state]}"),
        )
        self.rows: dict[str, TaskID] = {}
        self.last_line = ""

    def apply(self, frame: dict[str, Any]) -> None:
        data = frame.get("data", {})
        self.status = data.get("current_status", self.status)
        for update in data.get("recent_updates", []):
            for task in update.get("tasks", []):
                self._task(task)
            if "task" in update:
                self._task(update["task"])
            self.last_line = f"#{frame.get('position')} {update.get('type')}"

    def _task(self, task: dict[str, Any]) -> None:
        task_id = task["task_id"]
        label = f"{task.get('task_type') or task_id[:8]} · {task.get('agent') or '?'}"
        state = task.get("state", "pending")
        styled = f"[{_STATE_STYLE.get(state, 'white')}]{state}[/]"
        if task_id not in self.rows:
            self.rows[task_id] = self.progress.add_task("", total=100, label=label[:34], state=styled)
        self.progress.update(
            self.rows[task_id],
            completed=float(task.get("completion_percentage") or 0.0),
            label=label[:34],
            state=styled,
        )

    def render(self) -> Group:
        header = Text.from_markup(
            f"workflow [bold]{self.workflow_id}[/]  status [bold]{self.status}[/]  [dim]{self.last_line}[/]"
        )
        return Group(header, self.progress)


async def watch_workflow(
    ws_url: str, token: str | None, workflow_id: str, console: Console, *, live: bool = True
) -> WatchOutcome:
    """Stream frames until the gateway closes the socket (completion, expiry, error)."""
    outcome = WatchOutcome()
    view = _View(workflow_id)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with websockets.connect(ws_url, additional_headers=headers, open_timeout=10) as socket:
        with Live(
            view.render(), console=console, refresh_per_second=8, transient=False, auto_refresh=live
        ) as screen:
            try:
                async for raw in socket:
                    frame = json.loads(raw)
                    outcome.frames.append(frame)
                    outcome.last_position = int(frame.get("position", outcome.last_position))
                    view.apply(frame)
                    screen.update(view.render())
                    if not live:
                        console.print(f"{frame['event_type']:<20} #{frame.get('position')} {view.status}")
            except websockets.ConnectionClosed:
                pass
            screen.update(view.render())
        if not live:
            console.print()
        outcome.close_code = socket.close_code
        outcome.close_reason = socket.close_reason or ""
    outcome.status = view.status
    return outcome
