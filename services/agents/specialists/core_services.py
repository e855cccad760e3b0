"""core-services: dependencies against the installed environment, version resolution,
import-time profiling, implementation plans and performance assessment."""

from __future__ import annotations

import importlib.metadata as md
import sys
from pathlib import Path
from typing import Any, cast

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from pydantic import Field

from taskloom.agents.domain.architecture import impact_analysis
from taskloom.agents.domain.dependencies import (
    DependencyReport,
    ImportTiming,
    ResolutionReport,
    analyze_dependencies,
    declared_dependencies,
    parse_importtime,
    resolve_versions,
)
from taskloom.agents.errors import TaskInputError, TransientTaskError
from taskloom.agents.sdk import AgentContextView, ProgressReporter, run_subprocess
from taskloom.agents.specialists.base import Specialist, SpecialistOutput, handles
from taskloom.contracts import AgentId

__all__ = ["CoreServicesAgent", "installed_environment"]


def installed_environment() -> tuple[dict[str, str], dict[str, list[tuple[str, str]]]]:
    """(name → version, name → [(dependent dist, specifier)]) of the running interpreter."""
    versions: dict[str, str] = {}
    dependents: dict[str, list[tuple[str, str]]] = {}
    for dist in md.distributions():
        name = cast(Any, dist.metadata).get("Name")
        if not name:
            continue
        versions[canonicalize_name(name)] = dist.version
        for raw in dist.requires or []:
            try:
                req = Requirement(raw)
            except InvalidRequirement:
                continue
            if req.marker is not None and not req.marker.evaluate({"extra": ""}):
                continue
            dependents.setdefault(canonicalize_name(req.name), []).append((name, str(req.specifier)))
    return versions, dependents


class DependencyAnalysis(SpecialistOutput):
    report: DependencyReport
    recommendations: list[str]


class VersionResolution(SpecialistOutput):
    resolution: ResolutionReport


class ImportProfile(SpecialistOutput):
    module: str
    total_ms: float
    slowest: list[ImportTiming]


class ImplementationPlan(SpecialistOutput):
    requirement: str
    touched_modules: list[str]
    steps: list[str]
    risks: list[str]


class PerformanceAssessment(SpecialistOutput):
    import_ms: float | None
    slow_tests: list[tuple[str, float]] = Field(default_factory=list)
    slow_imports: list[tuple[str, float]] = Field(default_factory=list)


def _top_package(path: Path) -> str:
    for candidate in sorted(path.iterdir()):
        if (candidate / "__init__.py").is_file() and candidate.name not in {"tests", "test"}:
            return candidate.name
    src = path / "src"
    if src.is_dir():
        for candidate in sorted(src.iterdir()):
            if (candidate / "__init__.py").is_file():
                return candidate.name
    raise TaskInputError(f"no importable package found in {path}")


class CoreServicesAgent(Specialist):
    agent_id = AgentId.CORE_SERVICES.value

    @handles("dependency_analysis")
    async def dependency_analysis(
        self, ctx: AgentContextView, progress: ProgressReporter
    ) -> DependencyAnalysis:
        path = ctx.project_path()
        declared, invalid = declared_dependencies(path)
        await progress.update(40, "inspecting environment", milestone="parsed declarations")
        versions, dependents = installed_environment()
        groups = tuple(ctx.lookup("dependency_groups") or ("main",))
        report = analyze_dependencies(declared, versions, invalid, dependents, groups=groups)
        findings = [f"{f.kind} dependency '{f.name}': {f.detail} ({f.source})" for f in report.findings]
        recs = [
            f"pin '{n}' (e.g. {n}>={versions[n]},<{int(versions[n].split('.')[0]) + 1})"
            for n in report.unpinned
            if n in versions
        ]
        recs += [f"install '{n}' or drop it from the declarations" for n in report.missing]
        recs += [
            f"align '{n}' with the installed version or upgrade the environment" for n in report.violated
        ]
        summary = (
            f"{len(report.declared)} declared dependencies: {len(report.missing)} missing, "
            f"{len(report.unpinned)} unpinned, "
            f"{len(report.violated)} violated, {len(report.conflicting)} conflicting"
        )
        return DependencyAnalysis(summary=summary, findings=findings, report=report, recommendations=recs)

    @handles("version_resolution")
    async def version_resolution(
        self, ctx: AgentContextView, progress: ProgressReporter
    ) -> VersionResolution:
        path = ctx.project_path()
        declared, _ = declared_dependencies(path)
        versions, _ = installed_environment()
        available: dict[str, list[str]] = {n: [v] for n, v in versions.items()}
        for name, extra in (ctx.lookup("available_versions") or {}).items():
            available.setdefault(canonicalize_name(name), []).extend(extra)
        groups = set(ctx.lookup("dependency_groups") or ("main",))
        resolution = resolve_versions([d for d in declared if d.group in groups], available)
        findings = [
            f"cannot resolve '{r.name}': {r.note}" for r in resolution.resolutions if r.resolved is None
        ]
        findings += [
            f"'{r.name}' is unconstrained; pin {r.pin}"
            for r in resolution.resolutions
            if r.resolved and not r.constraints
        ]
        return VersionResolution(
            summary=f"resolved {len(resolution.lock_lines)} of {len(resolution.resolutions)} packages",
            findings=findings,
            resolution=resolution,
        )

    @handles("import_profiling")
    async def import_profiling(self, ctx: AgentContextView, progress: ProgressReporter) -> ImportProfile:
        path = ctx.project_path()
        module = str(ctx.lookup("module") or _top_package(path))
        await progress.update(20, "importing", milestone=f"profiling {module}")
        code, _, err = await run_subprocess(
            [sys.executable, "-X", "importtime", "-c", f"import {module}"],
            cwd=path,
            time_limit=float(ctx.lookup("timeout_seconds") or 60),
            progress=progress,
            env={
                "PYTHONPATH": str(path if not (path / "src").is_dir() else path / "src"),
                "PATH": "/usr/bin:/bin",
                "PYTHONDONTWRITEBYTECODE": "1",
            },
        )
        timings = parse_importtime(err)
        if code != 0:
            raise TaskInputError(
                f"importing {module} failed: {err.strip().splitlines()[-1] if err.strip() else code}"
            )
        if not timings:
            raise TransientTaskError("no -X importtime output")
        own = [t for t in timings if t.module == module]
        total = (own[0].cumulative_us if own else timings[0].cumulative_us) / 1000
        threshold = float(ctx.lookup("slow_import_ms") or 100)
        slow = [t for t in timings if t.self_us / 1000 >= threshold]
        return ImportProfile(
            summary=f"import {module} takes {total:.1f} ms",
            module=module,
            total_ms=round(total, 2),
            slowest=timings[:10],
            findings=[f"slow import '{t.module}': {t.self_us / 1000:.1f} ms self" for t in slow],
        )

    @handles("implementation_plan")
    async def implementation_plan(
        self, ctx: AgentContextView, progress: ProgressReporter
    ) -> ImplementationPlan:
        path = ctx.project_path()
        requirement = str(
            ctx.lookup("requirement")
            or ctx.lookup("description")
            or " ".join(ctx.lookup("functional_requirements") or [])
        )
        if not requirement.strip():
            raise TaskInputError("implementation_plan needs a requirement or description")
        sources = self.sources(path)
        impact = impact_analysis(requirement, sources)
        deps = ctx.upstream_output("report") or {}
        steps = [
            f"Read and extend `{i.module}` ({i.file}): matches {', '.join(i.matched)}" for i in impact[:3]
        ]
        if not impact:
            steps.append("Add a new module for the feature next to the existing package")
        steps += [
            "Write failing tests for each acceptance criterion first",
            "Implement, keeping public functions documented",
            "Run the full test suite and the dependency check before merging",
        ]
        risks: list[str] = []
        if isinstance(deps, dict):
            risks += [
                f"unpinned dependency '{n}' may change under the feature" for n in deps.get("unpinned", [])
            ]
        cycles = ctx.upstream_output("cycles") or []
        touched = {i.module for i in impact[:3]}
        risks += [
            f"{' -> '.join(c)} is an import cycle touching the change" for c in cycles if touched & set(c)
        ]
        text = await self.prose(
            "You write concise implementation plans.",
            f"Requirement: {requirement}\nSteps: {steps}\nRisks: {risks}",
        )
        return ImplementationPlan(
            summary=text or f"{len(steps)} steps touching {', '.join(sorted(touched)) or 'a new module'}",
            findings=risks,
            requirement=requirement,
            touched_modules=[i.module for i in impact],
            steps=steps,
            risks=risks,
        )

    @handles("performance_assessment")
    async def performance_assessment(
        self, ctx: AgentContextView, progress: ProgressReporter
    ) -> PerformanceAssessment:
        profile = await self.import_profiling(ctx, progress)
        durations: dict[str, Any] = ctx.upstream_output("durations") or {}
        slow_test_s = float(ctx.lookup("slow_test_seconds") or 1.0)
        slow_tests = sorted(
            ((k, float(v)) for k, v in durations.items() if float(v) >= slow_test_s), key=lambda x: -x[1]
        )
        budget = float(ctx.lookup("import_budget_ms") or 500)
        findings = list(profile.findings)
        if profile.total_ms > budget:
            findings.append(
                f"importing '{profile.module}' takes {profile.total_ms:.0f} ms, "
                f"over the {budget:.0f} ms budget"
            )
        findings += [f"slow test '{name}': {secs:.2f} s" for name, secs in slow_tests]
        return PerformanceAssessment(
            summary=f"import {profile.total_ms:.1f} ms; {len(slow_tests)} slow tests",
            findings=findings,
            import_ms=profile.total_ms,
            slow_tests=slow_tests,
            slow_imports=[(t.module, t.self_us / 1000) for t in profile.slowest[:5]],
        )
