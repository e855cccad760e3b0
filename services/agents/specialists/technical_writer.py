"""technical-writer: API reference from code, changelog from git history, README review,
release notes and the synthesis of upstream findings into one report."""

from __future__ import annotations

import shutil
import tomllib
from typing import Any

from taskloom.agents.domain.markdown import ReadmeReview, review_readme
from taskloom.agents.domain.writing import (
    Commit,
    api_reference,
    changelog,
    parse_git_log,
    release_notes,
    synthesize_report,
)
from taskloom.agents.errors import TaskInputError
from taskloom.agents.sdk import AgentContextView, ProgressReporter, run_subprocess
from taskloom.agents.specialists.base import Specialist, SpecialistOutput, handles
from taskloom.contracts import AgentId

__all__ = ["TechnicalWriterAgent"]


class ApiReference(SpecialistOutput):
    markdown: str
    modules: int


class Changelog(SpecialistOutput):
    is_git_repository: bool
    commits: list[Commit]
    markdown: str


class ReadmeReviewOutput(SpecialistOutput):
    review: ReadmeReview


class ReleaseNotes(SpecialistOutput):
    version: str
    markdown: str


class ReportSynthesis(SpecialistOutput):
    markdown: str
    sources: list[str]


class TechnicalWriterAgent(Specialist):
    agent_id = AgentId.TECHNICAL_WRITER.value

    @handles("api_reference")
    async def api_reference(self, ctx: AgentContextView, progress: ProgressReporter) -> ApiReference:
        path = ctx.project_path()
        md = api_reference(self.sources(path, include_tests=False), path.name)
        undocumented = md.count("_Undocumented")
        return ApiReference(
            summary=f"API reference of {md.count('## `')} modules ({undocumented} undocumented entries)",
            findings=[f"{undocumented} API entries have no docstring to document"] if undocumented else [],
            markdown=md,
            modules=sum(ln.startswith("## `") for ln in md.splitlines()),
        )

    async def _commits(self, ctx: AgentContextView, progress: ProgressReporter) -> tuple[bool, list[Commit]]:
        path = ctx.project_path()
        git = shutil.which("git")
        if git is None:
            return False, []
        code, _, _ = await run_subprocess(
            [git, "rev-parse", "--is-inside-work-tree"], cwd=path, time_limit=30, progress=progress
        )
        if code != 0:
            return False, []
        limit = int(ctx.lookup("max_commits") or 200)
        since = ctx.lookup("since")
        args = [git, "log", f"-n{limit}", "--date=short", "--format=%H%x1f%ad%x1f%an%x1f%s"]
        if since:
            args.append(f"{since}..HEAD")
        code, out, err = await run_subprocess([*args, "--", "."], cwd=path, time_limit=60, progress=progress)
        if code != 0:
            raise TaskInputError(f"git log failed: {err.strip()}")
        return True, parse_git_log(out)

    @handles("changelog")
    async def changelog(self, ctx: AgentContextView, progress: ProgressReporter) -> Changelog:
        is_git, commits = await self._commits(ctx, progress)
        if not is_git:
            return Changelog(
                summary="not a git repository: no history to build a changelog from",
                is_git_repository=False,
                commits=[],
                markdown="",
                findings=["project is not under git: changelog cannot be derived"],
            )
        md = changelog(commits, str(ctx.lookup("version") or "Unreleased"))
        return Changelog(
            summary=f"changelog of {len(commits)} commits",
            is_git_repository=True,
            commits=commits,
            markdown=md,
        )

    @handles("readme_review")
    async def readme_review(self, ctx: AgentContextView, progress: ProgressReporter) -> ReadmeReviewOutput:
        path = ctx.project_path()
        readme = next(
            (p for p in (path / "README.md", path / "README.rst", path / "README") if p.is_file()), None
        )
        review = review_readme(
            readme.read_text(encoding="utf-8") if readme else None, readme.name if readme else None
        )
        findings = (
            ["no README"]
            if readme is None
            else [f"README lacks a '{s}' section" for s in review.sections_missing]
        )
        if readme is not None and not review.has_code_example:
            findings.append("README has no code example")
        return ReadmeReviewOutput(
            summary=f"README completeness {review.score}/100", findings=findings, review=review
        )

    @handles("release_notes")
    async def release_notes(self, ctx: AgentContextView, progress: ProgressReporter) -> ReleaseNotes:
        path = ctx.project_path()
        version = ctx.lookup("version")
        if not version and (path / "pyproject.toml").is_file():
            version = tomllib.loads((path / "pyproject.toml").read_text()).get("project", {}).get("version")
        _, commits = await self._commits(ctx, progress)
        known: dict[str, Any] = {}
        for dep in ctx.upstream():
            for f in dep["outputs"].get("findings", [])[:5]:
                known.setdefault(f"{dep['agent_id']}/{dep['task_type']}", []).append(f)
        md = release_notes(str(version or "unreleased"), commits, {k: "; ".join(v) for k, v in known.items()})
        text = await self.prose("You write friendly release notes in Markdown.", md)
        return ReleaseNotes(
            summary=f"release notes for {version or 'unreleased'} from {len(commits)} commits",
            version=str(version or "unreleased"),
            markdown=text or md,
        )

    @handles("report_synthesis")
    async def report_synthesis(self, ctx: AgentContextView, progress: ProgressReporter) -> ReportSynthesis:
        upstream = ctx.upstream()
        if not upstream:
            raise TaskInputError("report_synthesis needs upstream task outputs in inputs.dependencies")
        md, findings = synthesize_report(upstream, str(ctx.lookup("title") or "Analysis report"))
        text = await self.prose("Summarise these findings for an engineering lead in one paragraph.", md)
        if text:
            md = f"{md}\n## Summary\n\n{text}\n"
        return ReportSynthesis(
            summary=f"report from {len(upstream)} upstream tasks with {len(findings)} findings",
            findings=findings,
            markdown=md,
            sources=[str(u["task_id"]) for u in upstream],
        )
