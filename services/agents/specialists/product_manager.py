"""product-manager: requirements analysis, user stories with Given/When/Then acceptance
criteria, prioritisation, and acceptance review against test results."""

from __future__ import annotations

from typing import Any

from taskloom.agents.domain.product import (
    CriterionCoverage,
    RequirementAnalysis,
    UserStory,
    acceptance_review,
    analyze_requirements,
    prioritize,
    user_stories,
)
from taskloom.agents.errors import TaskInputError
from taskloom.agents.sdk import AgentContextView, ProgressReporter
from taskloom.agents.specialists.base import Specialist, SpecialistOutput, handles
from taskloom.contracts import AgentId

__all__ = ["ProductManagerAgent"]


class Analysis(SpecialistOutput):
    requirements: list[RequirementAnalysis]


class Stories(SpecialistOutput):
    stories: list[UserStory]
    markdown: str


class Prioritisation(SpecialistOutput):
    ranked: list[UserStory]


class AcceptanceReview(SpecialistOutput):
    criteria: list[CriterionCoverage]


def _requirements(ctx: AgentContextView) -> list[str]:
    raw: Any = ctx.lookup("functional_requirements") or ctx.lookup("requirements")
    if isinstance(raw, dict):
        raw = raw.get("functional_requirements", [])
    reqs = [str(r) for r in raw or [] if str(r).strip()]
    if not reqs and ctx.lookup("description"):
        reqs = [s.strip() for s in str(ctx.lookup("description")).replace("\n", " ").split(". ") if s.strip()]
    if not reqs:
        raise TaskInputError("no functional_requirements or description to work from")
    return reqs


def _story_markdown(stories: list[UserStory]) -> str:
    out: list[str] = []
    for s in stories:
        out += [
            f"### {s.story_id} ({s.priority})",
            "",
            f"As a {s.role}, I want to {s.goal}, so that {s.benefit}.",
            "",
        ]
        out += [f"- {c}" for c in s.acceptance_criteria] + [""]
    return "\n".join(out)


class ProductManagerAgent(Specialist):
    agent_id = AgentId.PRODUCT_MANAGER.value

    @handles("requirements_analysis")
    async def requirements_analysis(self, ctx: AgentContextView, progress: ProgressReporter) -> Analysis:
        analysis = analyze_requirements(_requirements(ctx))
        findings = [
            f"requirement '{a.requirement}' is ambiguous: {'; '.join(a.ambiguities)}"
            for a in analysis
            if a.ambiguities
        ]
        return Analysis(
            summary=f"{len(analysis)} requirements, "
            f"{sum(not a.testable for a in analysis)} not testable as written",
            findings=findings,
            requirements=analysis,
        )

    @handles("user_stories")
    async def user_stories(self, ctx: AgentContextView, progress: ProgressReporter) -> Stories:
        stories = prioritize(user_stories(_requirements(ctx)))
        md = _story_markdown(stories)
        better = await self.prose(
            "You are a product manager. Rewrite these user stories crisply, keeping Given/When/Then.", md
        )
        return Stories(
            summary=f"{len(stories)} user stories, {sum(s.priority == 'must' for s in stories)} must-haves",
            stories=stories,
            markdown=better or md,
        )

    @handles("prioritization")
    async def prioritization(self, ctx: AgentContextView, progress: ProgressReporter) -> Prioritisation:
        upstream = ctx.upstream_output("stories")
        stories = (
            [UserStory.model_validate(s) for s in upstream] if upstream else user_stories(_requirements(ctx))
        )
        ranked = prioritize(stories)
        return Prioritisation(
            summary="order: " + ", ".join(f"{s.story_id}({s.priority})" for s in ranked), ranked=ranked
        )

    @handles("acceptance_review")
    async def acceptance_review(self, ctx: AgentContextView, progress: ProgressReporter) -> AcceptanceReview:
        upstream = ctx.upstream_output("stories")
        stories = (
            [UserStory.model_validate(s) for s in upstream] if upstream else user_stories(_requirements(ctx))
        )
        results = ctx.upstream_output("results") or {}
        passed = list(ctx.upstream_output("passed") or results.get("passed", []))
        failed = list(ctx.upstream_output("failed") or results.get("failed", []))
        review = acceptance_review(stories, passed, failed)
        findings = [
            f"story {c.story_id} rejected by failing tests {c.failing_tests}"
            for c in review
            if c.status == "rejected"
        ]
        findings += [f"story {c.story_id} has no test covering it" for c in review if c.status == "untested"]
        return AcceptanceReview(
            summary=f"{sum(c.status == 'accepted' for c in review)} of {len(review)} stories accepted",
            findings=findings,
            criteria=review,
        )
