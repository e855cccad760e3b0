"""testing-specialist: runs a project's tests in a child process (pytest, JUnit XML, traced
line coverage), finds untested public functions, plans tests and reproduces bugs."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

from taskloom.agents.domain.architecture import tokens
from taskloom.agents.domain.testing import (
    CoverageReport,
    PlannedTest,
    TestRunReport,
    UntestedFunction,
    coverage_report,
    parse_junit,
    statically_untested,
    test_plan,
)
from taskloom.agents.errors import TaskInputError
from taskloom.agents.sdk import AgentContextView, ProgressReporter, run_subprocess
from taskloom.agents.specialists.base import Specialist, SpecialistOutput, handles
from taskloom.contracts import AgentId

__all__ = ["TestingSpecialistAgent", "run_tests"]


async def run_tests(
    project: Path,
    progress: ProgressReporter | None,
    time_limit: float,
    trace: bool,
    selection: list[str] | None = None,
) -> tuple[TestRunReport, dict[str, set[int]] | None]:
    """Run pytest on ``project`` in a child interpreter; return its report and, with ``trace``,
    the executed lines of the project's non-test files."""
    with tempfile.TemporaryDirectory(prefix="taskloom-tests-") as tmp:
        junit = Path(tmp) / "junit.xml"
        trace_out = Path(tmp) / "trace.json"
        roots = [str(project / "src")] if (project / "src").is_dir() else []
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(project), *roots]),
            "PYTHONDONTWRITEBYTECODE": "1",
            "TASKLOOM_TRACE_ROOT": str(project),
        }
        args = [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(project),
            f"--junitxml={junit}",
            "-o",
            "addopts=",
            "-o",
            "junit_family=xunit2",
        ]
        if trace:
            env["TASKLOOM_TRACE_OUT"] = str(trace_out)
            args += ["-p", "taskloom.agents.adapters.pytest_trace"]
        args += selection or []
        code, out, err = await run_subprocess(
            args, cwd=project, time_limit=time_limit, env=env, progress=progress
        )
        if not junit.is_file():
            raise TaskInputError(f"pytest produced no results (exit {code}): {(err or out).strip()[-500:]}")
        report = parse_junit(junit.read_text(encoding="utf-8"), code)
        executed = None
        if trace and trace_out.is_file():
            executed = {k: set(v) for k, v in json.loads(trace_out.read_text()).items()}
        return report, executed


class TestExecution(SpecialistOutput):
    __test__ = False
    results: TestRunReport


class CoverageAnalysis(SpecialistOutput):
    coverage: CoverageReport
    tests: TestRunReport


class UntestedCode(SpecialistOutput):
    method: str
    untested: list[UntestedFunction]


class TestPlan(SpecialistOutput):
    __test__ = False
    planned: list[PlannedTest]


class BugReproduction(SpecialistOutput):
    bug: str
    reproduced: bool
    related_tests: list[str]
    failing_related: list[str]
    failure_messages: dict[str, str]


class TestingSpecialistAgent(Specialist):
    __test__ = False
    agent_id = AgentId.TESTING_SPECIALIST.value

    def _timeout(self, ctx: AgentContextView) -> float:
        return float(ctx.lookup("test_timeout_seconds") or 600)

    @handles("test_execution")
    async def test_execution(self, ctx: AgentContextView, progress: ProgressReporter) -> TestExecution:
        await progress.update(10, "running tests")
        report, _ = await run_tests(ctx.project_path(), progress, self._timeout(ctx), trace=False)
        return TestExecution(
            summary=f"{len(report.passed)} passed, {len(report.failed)} failed, "
            f"{len(report.errors)} errors of {report.total}",
            findings=[
                f"failing test '{n}': {report.failures.get(n, '')}" for n in report.failed + report.errors
            ],
            results=report,
        )

    @handles("coverage_analysis")
    async def coverage_analysis(self, ctx: AgentContextView, progress: ProgressReporter) -> CoverageAnalysis:
        path = ctx.project_path()
        await progress.update(10, "running tests with line tracing")
        report, executed = await run_tests(path, progress, self._timeout(ctx), trace=True)
        cov = coverage_report(self.sources(path), executed or {}, method="sys.settrace")
        threshold = float(ctx.lookup("coverage_threshold") or 80)
        findings = [f"coverage {cov.percent}% is below {threshold:.0f}%"] if cov.percent < threshold else []
        findings += [
            f"untested public function '{u.name}' ({u.file}:{u.line})" for u in cov.untested_functions
        ]
        # coverage measured over a failing suite overstates what is verified: say which tests failed
        findings += [
            f"failing test '{n}': {report.failures.get(n, '')}" for n in report.failed + report.errors
        ]
        return CoverageAnalysis(
            summary=f"line coverage {cov.percent}% ({report.total} tests)",
            findings=findings,
            coverage=cov,
            tests=report,
        )

    @handles("untested_code_analysis")
    async def untested_code_analysis(self, ctx: AgentContextView, progress: ProgressReporter) -> UntestedCode:
        path = ctx.project_path()
        try:
            _, executed = await run_tests(path, progress, self._timeout(ctx), trace=True)
            untested, method = (
                coverage_report(self.sources(path), executed or {}, "sys.settrace").untested_functions,
                "executed lines",
            )
        except TaskInputError:
            untested, method = statically_untested(self.sources(path)), "name never referenced by a test"
        return UntestedCode(
            summary=f"{len(untested)} public functions never exercised by the tests",
            method=method,
            untested=untested,
            findings=[f"untested public function '{u.name}' ({u.file}:{u.line})" for u in untested],
        )

    @handles("test_plan")
    async def test_plan(self, ctx: AgentContextView, progress: ProgressReporter) -> TestPlan:
        path = ctx.project_path()
        untested_up = ctx.upstream_output("untested") or ctx.upstream_output("untested_functions")
        failing = ctx.upstream_output("failed")
        if untested_up is None or failing is None:
            analysis = await self.coverage_analysis(ctx, progress)
            untested = analysis.coverage.untested_functions
            failing = analysis.tests.failed
        else:
            untested = [UntestedFunction.model_validate(u) for u in untested_up]
        reqs = [str(r) for r in (ctx.lookup("functional_requirements") or ctx.lookup("requirements") or [])]
        plan = test_plan(untested, list(failing), reqs)
        del path
        return TestPlan(
            summary=f"{sum(len(p.cases) for p in plan)} test cases planned for {len(plan)} targets",
            findings=[f"write tests for '{p.target}' ({p.reason})" for p in plan],
            planned=plan,
        )

    @handles("bug_reproduction")
    async def bug_reproduction(self, ctx: AgentContextView, progress: ProgressReporter) -> BugReproduction:
        path = ctx.project_path()
        bug = str(ctx.lookup("bug") or ctx.lookup("description") or ctx.lookup("requirement") or "")
        if not bug.strip():
            raise TaskInputError("bug_reproduction needs a bug description")
        report, _ = await run_tests(path, progress, self._timeout(ctx), trace=False)
        words = tokens(bug)
        related = [t for t in report.durations if tokens(t.rpartition("::")[2]) & words]
        failing = [t for t in related if t in report.failed or t in report.errors]
        reproduced = bool(failing)
        findings = [f"bug reproduced by failing test '{t}': {report.failures.get(t, '')}" for t in failing]
        if not reproduced:
            findings.append("no existing test reproduces the bug: write one from its description")
        return BugReproduction(
            summary=("reproduced by " + ", ".join(failing))
            if reproduced
            else "not reproduced by the existing tests",
            findings=findings,
            bug=bug,
            reproduced=reproduced,
            related_tests=related,
            failing_related=failing,
            failure_messages={t: report.failures.get(t, "") for t in failing},
        )
