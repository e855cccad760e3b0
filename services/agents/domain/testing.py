"""Test results (JUnit XML), line coverage from traced executed lines, untested public code,
and test plans derived from it."""

from __future__ import annotations

import ast
import xml.etree.ElementTree as ET  # noqa: S405 - parses the junit file pytest just wrote
from collections.abc import Mapping, Sequence

from pydantic import BaseModel

from taskloom.agents.domain.pysource import SourceFile, is_public

__all__ = [
    "CoverageReport",
    "TestCaseResult",
    "TestRunReport",
    "UntestedFunction",
    "coverage_report",
    "executable_lines",
    "parse_junit",
    "statically_untested",
    "test_plan",
]


class TestCaseResult(BaseModel):
    __test__ = False  # not a pytest class

    name: str
    classname: str
    outcome: str
    duration: float
    message: str = ""


class TestRunReport(BaseModel):
    __test__ = False

    total: int
    passed: list[str]
    failed: list[str]
    errors: list[str]
    skipped: list[str]
    durations: dict[str, float]
    failures: dict[str, str]
    slowest: list[tuple[str, float]]
    exit_code: int | None = None


def parse_junit(xml_text: str, exit_code: int | None = None) -> TestRunReport:
    """A pytest ``--junitxml`` file → test names by outcome, durations and failure messages."""
    root = ET.fromstring(xml_text)  # noqa: S314 - our own subprocess wrote it
    cases: list[TestCaseResult] = []
    for case in root.iter("testcase"):
        classname = case.get("classname", "")
        name = case.get("name", "")
        outcome, message = "passed", ""
        for tag in ("failure", "error", "skipped"):
            child = case.find(tag)
            if child is not None:
                outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[tag]
                message = (
                    (child.get("message") or child.text or "").strip().splitlines()[0][:300]
                    if (child.get("message") or child.text)
                    else ""
                )
                break
        cases.append(
            TestCaseResult(
                name=name,
                classname=classname,
                outcome=outcome,
                duration=float(case.get("time", 0) or 0),
                message=message,
            )
        )

    def full(c: TestCaseResult) -> str:
        return f"{c.classname}::{c.name}" if c.classname else c.name

    durations = {full(c): c.duration for c in cases}
    return TestRunReport(
        total=len(cases),
        passed=[full(c) for c in cases if c.outcome == "passed"],
        failed=[full(c) for c in cases if c.outcome == "failed"],
        errors=[full(c) for c in cases if c.outcome == "error"],
        skipped=[full(c) for c in cases if c.outcome == "skipped"],
        durations=durations,
        failures={full(c): c.message for c in cases if c.outcome in {"failed", "error"}},
        slowest=sorted(durations.items(), key=lambda kv: -kv[1])[:5],
        exit_code=exit_code,
    )


def executable_lines(tree: ast.Module) -> set[int]:
    """First lines of every statement except docstrings, imports-only module headers included."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.stmt):
            if (
                isinstance(node, ast.Expr)
                and isinstance(node.value, ast.Constant)
                and isinstance(node.value.value, str)
            ):
                continue
            lines.add(node.lineno)
    return lines


class UntestedFunction(BaseModel):
    name: str
    file: str
    line: int


class CoverageReport(BaseModel):
    method: str
    percent: float
    per_file: dict[str, float]
    missing_lines: dict[str, list[int]]
    untested_functions: list[UntestedFunction]


def _public_functions(source: SourceFile) -> list[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
    assert source.tree is not None
    out: list[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]] = []
    for node in source.tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and is_public(node.name):
            out.append((f"{source.module}.{node.name}", node))
        elif isinstance(node, ast.ClassDef) and is_public(node.name):
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef) and is_public(item.name):
                    out.append((f"{source.module}.{node.name}.{item.name}", item))
    return out


def coverage_report(
    sources: Sequence[SourceFile], executed: Mapping[str, set[int]], method: str
) -> CoverageReport:
    """Line coverage of non-test files from ``executed`` (relative path → executed line numbers);
    a public function none of whose body lines ran is untested."""
    total = hit = 0
    per_file: dict[str, float] = {}
    missing: dict[str, list[int]] = {}
    untested: list[UntestedFunction] = []
    for s in sources:
        if s.is_test or s.tree is None:
            continue
        lines = executable_lines(s.tree)
        ran = executed.get(s.relpath, set()) & lines
        total += len(lines)
        hit += len(ran)
        if lines:
            per_file[s.relpath] = round(100.0 * len(ran) / len(lines), 1)
            if lines - ran:
                missing[s.relpath] = sorted(lines - ran)
        for name, fn in _public_functions(s):
            body = {n.lineno for stmt in fn.body for n in ast.walk(stmt) if isinstance(n, ast.stmt)} & lines
            if body and not body & ran:
                untested.append(UntestedFunction(name=name, file=s.relpath, line=fn.lineno))
    percent = round(100.0 * hit / total, 1) if total else 100.0
    return CoverageReport(
        method=method, percent=percent, per_file=per_file, missing_lines=missing, untested_functions=untested
    )


def statically_untested(sources: Sequence[SourceFile]) -> list[UntestedFunction]:
    """Public functions whose name appears in no test file (when the tests cannot be run)."""
    test_text = "\n".join(s.text for s in sources if s.is_test)
    out: list[UntestedFunction] = []
    for s in sources:
        if s.is_test or s.tree is None:
            continue
        for name, fn in _public_functions(s):
            if fn.name not in test_text:
                out.append(UntestedFunction(name=name, file=s.relpath, line=fn.lineno))
    return out


class PlannedTest(BaseModel):
    target: str
    file: str
    cases: list[str]
    reason: str


def test_plan(
    untested: Sequence[UntestedFunction], failing: Sequence[str], requirements: Sequence[str]
) -> list[PlannedTest]:
    """Test cases to write: fix-first for failing tests, then one happy path and one edge case per
    untested function, then one acceptance test per requirement."""
    plan: list[PlannedTest] = []
    for name in failing:
        plan.append(
            PlannedTest(
                target=name,
                file=name.split("::")[0],
                cases=[f"make {name} pass or fix the code it exposes"],
                reason="failing test",
            )
        )
    for fn in untested:
        short = fn.name.rpartition(".")[2]
        plan.append(
            PlannedTest(
                target=fn.name,
                file=f"tests/test_{fn.file.rpartition('/')[2]}",
                cases=[f"test_{short}_happy_path", f"test_{short}_rejects_invalid_input"],
                reason="never executed by the suite",
            )
        )
    for i, req in enumerate(requirements, 1):
        plan.append(
            PlannedTest(
                target=f"requirement {i}",
                file="tests/test_acceptance.py",
                cases=[f"test_requirement_{i}: {req}"],
                reason="acceptance",
            )
        )
    return plan


test_plan.__test__ = False  # type: ignore[attr-defined]
