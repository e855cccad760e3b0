"""Written artefacts built from code and history: an API reference in Markdown, a changelog
grouped by conventional-commit type, release notes and a synthesis of upstream findings."""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel

from taskloom.agents.domain.docstrings import public_definitions
from taskloom.agents.domain.pysource import SourceFile

__all__ = ["Commit", "api_reference", "changelog", "parse_git_log", "release_notes", "synthesize_report"]


def _signature(node: ast.FunctionDef | ast.AsyncFunctionDef) -> str:
    args = ast.unparse(node.args)
    ret = f" -> {ast.unparse(node.returns)}" if node.returns else ""
    prefix = "async " if isinstance(node, ast.AsyncFunctionDef) else ""
    return f"{prefix}{node.name}({args}){ret}"


def api_reference(sources: Sequence[SourceFile], title: str) -> str:
    """Markdown: one section per module, its public classes and functions with signatures and
    the first paragraph of each docstring ("undocumented" where there is none)."""
    lines = [f"# {title} API reference", ""]
    for s in sources:
        if s.is_test or s.tree is None or not s.module:
            continue
        defs = public_definitions(s)
        if len(defs) <= 1 and not ast.get_docstring(s.tree):
            continue
        lines += [f"## `{s.module}`", ""]
        mod_doc = ast.get_docstring(s.tree)
        lines += [mod_doc.split("\n\n")[0] if mod_doc else "_Undocumented module._", ""]
        for name, _kind, node in defs[1:]:
            short = name[len(s.module) + 1 :]
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                head = f"### `{short.rpartition('.')[0] + '.' if '.' in short else ''}{_signature(node)}`"
            else:
                head = f"### class `{short}`"
            assert isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
            doc = ast.get_docstring(node)
            lines += [head, "", doc.split("\n\n")[0] if doc else "_Undocumented._", ""]
    return "\n".join(lines).rstrip() + "\n"


class Commit(BaseModel):
    sha: str
    date: str
    author: str
    subject: str
    kind: str
    scope: str | None = None
    breaking: bool = False


_CC = re.compile(
    r"^(?P<kind>feat|fix|docs|perf|refactor|test|tests|build|ci|chore|style|revert)(?:\((?P<scope>[^)]+)\))?(?P<bang>!)?:\s*(?P<msg>.+)$",
    re.IGNORECASE,
)
_KEYWORDS = (
    ("fix", ("fix", "bug", "repair", "correct")),
    ("feat", ("add", "implement", "introduce", "support", "new")),
    ("docs", ("readme", "doc", "documentation")),
    ("test", ("test",)),
    ("refactor", ("refactor", "rename", "move", "clean")),
)


def parse_git_log(text: str) -> list[Commit]:
    """Lines of ``git log --format=%H%x1f%ad%x1f%an%x1f%s --date=short`` → commits with a kind
    (from a conventional-commit prefix, or guessed from the subject's first word)."""
    commits: list[Commit] = []
    for line in text.splitlines():
        parts = line.split("\x1f")
        if len(parts) != 4:
            continue
        sha, date, author, subject = parts
        m = _CC.match(subject)
        if m:
            kind, scope, msg, breaking = (
                m.group("kind").lower(),
                m.group("scope"),
                m.group("msg"),
                bool(m.group("bang")),
            )
            kind = "test" if kind == "tests" else kind
        else:
            first = subject.lower().split()[0] if subject.split() else ""
            kind = next((k for k, words in _KEYWORDS if any(first.startswith(w) for w in words)), "other")
            scope, msg, breaking = None, subject, "breaking" in subject.lower()
        commits.append(
            Commit(
                sha=sha[:10], date=date, author=author, subject=msg, kind=kind, scope=scope, breaking=breaking
            )
        )
    return commits


_HEADINGS = {
    "feat": "Features",
    "fix": "Fixes",
    "perf": "Performance",
    "docs": "Documentation",
    "refactor": "Refactoring",
    "test": "Tests",
    "build": "Build",
    "ci": "CI",
    "chore": "Chores",
    "style": "Style",
    "revert": "Reverts",
    "other": "Other changes",
}


def changelog(commits: Sequence[Commit], title: str = "Unreleased") -> str:
    lines = [f"## {title}", ""]
    breaking = [c for c in commits if c.breaking]
    if breaking:
        lines += ["### Breaking changes", "", *[f"- {c.subject} ({c.sha})" for c in breaking], ""]
    for kind, heading in _HEADINGS.items():
        group = [c for c in commits if c.kind == kind]
        if group:
            lines += [f"### {heading}", ""]
            lines += [f"- {c.scope + ': ' if c.scope else ''}{c.subject} ({c.sha}, {c.date})" for c in group]
            lines.append("")
    if len(lines) == 2:
        lines.append("No changes.")
    return "\n".join(lines).rstrip() + "\n"


def release_notes(version: str, commits: Sequence[Commit], findings: Mapping[str, Any]) -> str:
    """Release notes for users: highlights from features and fixes, then known issues taken from
    upstream findings (failing tests, breaking schema changes, dependency problems)."""
    feats = [c.subject for c in commits if c.kind == "feat"]
    fixes = [c.subject for c in commits if c.kind == "fix"]
    lines = [f"# Release {version}", ""]
    lines += ["## Highlights", "", *([f"- {f}" for f in feats] or ["- Maintenance release"]), ""]
    if fixes:
        lines += ["## Fixes", "", *[f"- {f}" for f in fixes], ""]
    known = [f"- {k}: {v}" for k, v in findings.items() if v]
    if known:
        lines += ["## Known issues", "", *known, ""]
    return "\n".join(lines).rstrip() + "\n"


def _headline(outputs: Mapping[str, Any]) -> list[str]:
    summary = outputs.get("summary")
    if isinstance(summary, str) and summary:
        return [summary]
    if isinstance(summary, Mapping):
        return [f"{k}: {v}" for k, v in summary.items()]
    return [f"{k}: {v if not isinstance(v, list | dict) else len(v)}" for k, v in list(outputs.items())[:5]]


def synthesize_report(upstream: Sequence[Mapping[str, Any]], title: str) -> tuple[str, list[str]]:
    """One Markdown section per upstream task (its agent, type and headline findings) and the
    list of all findings flagged by the upstream agents."""
    lines = [f"# {title}", ""]
    findings: list[str] = []
    for dep in upstream:
        outputs = dep.get("outputs") or {}
        agent, task_type = (
            dep.get("agent_id") or outputs.get("agent_id", "?"),
            dep.get("task_type") or outputs.get("task_type", "?"),
        )
        lines += [f"## {dep.get('task_id', '?')} — {task_type} ({agent})", ""]
        lines += [f"- {h}" for h in _headline(outputs)]
        for f in outputs.get("findings", []) if isinstance(outputs.get("findings"), list) else []:
            findings.append(f"[{agent}] {f}")
        lines.append("")
    if findings:
        lines += ["## All findings", "", *[f"- {f}" for f in findings], ""]
    else:
        lines += ["No findings.", ""]
    return "\n".join(lines).rstrip() + "\n", findings
