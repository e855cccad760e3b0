"""agent-design-architect: the project's import graph (cycles, layering violations), an
architecture proposal, review of the task graph itself, change impact and code review."""

from __future__ import annotations

from typing import Any

from taskloom.agents.domain.architecture import (
    CodeReviewFinding,
    ImpactRanking,
    ImportGraphReport,
    TaskGraphReview,
    code_review,
    impact_analysis,
    import_graph_report,
    review_task_graph,
)
from taskloom.agents.errors import TaskInputError
from taskloom.agents.sdk import AgentContextView, ProgressReporter
from taskloom.agents.specialists.base import Specialist, SpecialistOutput, handles
from taskloom.contracts import AgentId

__all__ = ["AgentDesignArchitect"]


class ImportGraphOutput(SpecialistOutput):
    graph: ImportGraphReport
    cycles: list[list[str]]


class ArchitectureDesign(SpecialistOutput):
    components: dict[str, list[str]]
    recommendations: list[str]
    impact: list[ImpactRanking]


class TaskGraphReviewOutput(SpecialistOutput):
    review: TaskGraphReview


class ImpactOutput(SpecialistOutput):
    requirement: str
    modules: list[ImpactRanking]


class CodeReviewOutput(SpecialistOutput):
    issues: list[CodeReviewFinding]


def _requirement(ctx: AgentContextView) -> str:
    reqs = ctx.lookup("functional_requirements") or []
    return str(ctx.lookup("requirement") or ctx.lookup("description") or " ".join(str(r) for r in reqs))


class AgentDesignArchitect(Specialist):
    agent_id = AgentId.AGENT_DESIGN_ARCHITECT.value

    @handles("import_graph_analysis")
    async def import_graph_analysis(
        self, ctx: AgentContextView, progress: ProgressReporter
    ) -> ImportGraphOutput:
        layers = ctx.lookup("layers")
        report = import_graph_report(self.sources(ctx.project_path()), *([layers] if layers else []))
        findings = [f"import cycle: {' -> '.join([*c, c[0]])}" for c in report.cycles]
        findings += [
            f"layering violation: {v.importer} imports {v.imported} ({v.reason})"
            for v in report.layer_violations
        ]
        return ImportGraphOutput(
            summary=f"{len(report.modules)} modules, {len(report.edges)} imports, "
            f"{len(report.cycles)} cycles, "
            f"{len(report.layer_violations)} layering violations",
            findings=findings,
            graph=report,
            cycles=report.cycles,
        )

    @handles("architecture_design")
    async def architecture_design(
        self, ctx: AgentContextView, progress: ProgressReporter
    ) -> ArchitectureDesign:
        graph = await self.import_graph_analysis(ctx, progress)
        components: dict[str, list[str]] = {}
        for m in graph.graph.modules:
            components.setdefault(m.rpartition(".")[0] or m, []).append(m)
        recs = [
            f"break the cycle {' -> '.join(c)}: move the shared names into a module both import, "
            "or invert one import"
            for c in graph.cycles
        ]
        recs += [
            f"make {v.imported} not depend on {v.importer} (depend on an interface instead)"
            for v in graph.graph.layer_violations
        ]
        requirement = _requirement(ctx)
        impact = impact_analysis(requirement, self.sources(ctx.project_path())) if requirement.strip() else []
        if impact:
            recs.append(
                f"implement the requirement around {impact[0].module}; keep new I/O in its own adapter module"
            )
        text = await self.prose(
            "You are a software architect. Give a short architecture proposal.", "\n".join(recs)
        )
        return ArchitectureDesign(
            summary=text or f"{len(components)} components; {len(recs)} recommendations",
            findings=graph.findings,
            components=components,
            recommendations=recs,
            impact=impact,
        )

    @handles("task_graph_review")
    async def task_graph_review(
        self, ctx: AgentContextView, progress: ProgressReporter
    ) -> TaskGraphReviewOutput:
        graph: Any = ctx.lookup("task_graph") or ctx.task_context.get("workflow", {}).get("task_graph")
        if not isinstance(graph, dict) or not graph.get("tasks"):
            raise TaskInputError(
                "task_graph_review needs the task graph (inputs.parameters.task_graph or workflow context)"
            )
        review = review_task_graph(graph)
        findings = [
            *review.issues,
            *(f"bottleneck '{b['task_id']}' blocks {b['blocks']} tasks" for b in review.bottlenecks),
        ]
        return TaskGraphReviewOutput(
            summary=f"critical path {' -> '.join(review.critical_path)} "
            f"({review.critical_path_minutes:.0f} min), "
            f"max parallelism {review.max_parallelism}",
            findings=findings,
            review=review,
        )

    @handles("impact_analysis")
    async def impact_analysis(self, ctx: AgentContextView, progress: ProgressReporter) -> ImpactOutput:
        requirement = _requirement(ctx)
        if not requirement.strip():
            raise TaskInputError("impact_analysis needs a requirement or description")
        ranked = impact_analysis(
            requirement, self.sources(ctx.project_path()), limit=int(ctx.lookup("limit") or 5)
        )
        return ImpactOutput(
            summary="most likely touched: " + (", ".join(r.module for r in ranked) or "no existing module"),
            requirement=requirement,
            modules=ranked,
        )

    @handles("code_review")
    async def code_review(self, ctx: AgentContextView, progress: ProgressReporter) -> CodeReviewOutput:
        issues = code_review(self.sources(ctx.project_path()))
        serious = [i for i in issues if i.severity != "info"]
        return CodeReviewOutput(
            summary=f"{len(issues)} review comments, {len(serious)} warnings or errors",
            issues=issues,
            findings=[f"{i.rule} in {i.file}:{i.line}: {i.message}" for i in issues],
        )
