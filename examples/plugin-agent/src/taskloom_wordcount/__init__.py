"""A third-party Taskloom agent: counts lines and words per file type of a project."""

from __future__ import annotations

from collections import Counter

from taskloom.agents import Agent, AgentContextView, ProgressReporter, TaskInputError
from taskloom.contracts import TaskAssignment, TaskResult

__all__ = ["WordCountAgent"]


class WordCountAgent(Agent):
    """Answers ``line_count`` tasks: lines and words per file suffix under ``project_path``."""

    agent_id = "word-counter"
    capabilities = ("text_statistics",)
    task_types = ("line_count",)
    description = "Lines and words per file type"

    async def execute(
        self, task: TaskAssignment, context: AgentContextView, progress: ProgressReporter
    ) -> TaskResult:
        root = context.project_path()
        files = [p for p in sorted(root.rglob("*")) if p.is_file() and ".git" not in p.parts]
        if not files:
            raise TaskInputError(f"{root} has no files")
        lines: Counter[str] = Counter()
        words: Counter[str] = Counter()
        for i, path in enumerate(files, 1):
            progress.check_cancelled()
            try:
                text = path.read_text(encoding="utf-8")
            except (UnicodeDecodeError, OSError):
                continue
            suffix = path.suffix or path.name
            lines[suffix] += text.count("\n")
            words[suffix] += len(text.split())
            if i % 50 == 0:
                await progress.update(100 * i / len(files), "counting", milestone=f"{i} files")
        total = sum(lines.values())
        return TaskResult(
            success=True,
            outputs={
                "summary": f"{total} lines in {len(files)} files",
                "findings": [],
                "lines": dict(lines),
                "words": dict(words),
                "files": len(files),
            },
            performance_metrics={"files": len(files)},
        )
