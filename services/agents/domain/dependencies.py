"""Declared dependencies (pyproject / requirements files) checked against an environment:
missing, unpinned, violated constraints, conflicts, and a resolution of versions to pin."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version
from pydantic import BaseModel, Field

__all__ = [
    "Declared",
    "DependencyFinding",
    "DependencyReport",
    "ResolutionReport",
    "analyze_dependencies",
    "declared_dependencies",
    "ImportTiming",
    "parse_importtime",
    "parse_requirement_lines",
    "resolve_versions",
]


class Declared(BaseModel):
    name: str
    specifier: str
    source: str
    group: str = "main"
    raw: str


class DependencyFinding(BaseModel):
    name: str
    kind: str = Field(description="missing | unpinned | violated | conflicting | invalid")
    detail: str
    source: str


class DependencyReport(BaseModel):
    declared: list[Declared]
    installed: dict[str, str]
    missing: list[str]
    unpinned: list[str]
    violated: list[str]
    conflicting: list[str]
    findings: list[DependencyFinding]
    healthy: bool


def parse_requirement_lines(text: str, source: str, group: str = "main") -> tuple[list[Declared], list[str]]:
    """Requirements-file lines → declared dependencies, and the lines that did not parse."""
    found: list[Declared] = []
    bad: list[str] = []
    for raw in text.splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith(("#", "-", "git+", "http:", "https:")):
            continue
        try:
            req = Requirement(line)
        except InvalidRequirement:
            bad.append(line)
            continue
        found.append(
            Declared(
                name=canonicalize_name(req.name),
                specifier=str(req.specifier),
                source=source,
                group=group,
                raw=line,
            )
        )
    return found, bad


def declared_dependencies(root: Path) -> tuple[list[Declared], list[str]]:
    """Every dependency declared in ``pyproject.toml`` and ``requirements*.txt`` under ``root``."""
    found: list[Declared] = []
    bad: list[str] = []
    pyproject = root / "pyproject.toml"
    if pyproject.is_file():
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        project = data.get("project", {})
        groups: dict[str, list[str]] = {"main": list(project.get("dependencies", []))}
        for name, reqs in project.get("optional-dependencies", {}).items():
            groups[name] = list(reqs)
        for group, reqs in groups.items():
            parsed, invalid = parse_requirement_lines("\n".join(reqs), "pyproject.toml", group)
            found += parsed
            bad += invalid
    for req_file in sorted(root.glob("requirements*.txt")):
        group = "main" if req_file.name == "requirements.txt" else req_file.stem.removeprefix("requirements-")
        parsed, invalid = parse_requirement_lines(req_file.read_text(encoding="utf-8"), req_file.name, group)
        found += parsed
        bad += invalid
    return found, bad


def _satisfies(spec: str, version: str) -> bool:
    try:
        return SpecifierSet(spec).contains(Version(version), prereleases=True)
    except InvalidVersion:
        return False


def analyze_dependencies(
    declared: list[Declared],
    installed: Mapping[str, str],
    invalid_lines: list[str] | None = None,
    dependents: Mapping[str, list[tuple[str, str]]] | None = None,
    groups: tuple[str, ...] = ("main",),
) -> DependencyReport:
    """Check ``declared`` (of the given groups) against ``installed`` (name → version).

    ``dependents`` maps a package to ``(installed dist, specifier)`` pairs: the constraints other
    installed distributions put on it; a declared specifier with no version in common with those
    ranges is reported as conflicting.
    """
    findings: list[DependencyFinding] = []
    relevant = [d for d in declared if d.group in groups]
    for line in invalid_lines or []:
        findings.append(
            DependencyFinding(name=line, kind="invalid", detail="not a valid requirement", source="?")
        )
    by_name: dict[str, list[Declared]] = {}
    for dep in relevant:
        by_name.setdefault(dep.name, []).append(dep)
    for name, decls in sorted(by_name.items()):
        version = installed.get(name)
        for dep in decls:
            if not dep.specifier:
                findings.append(
                    DependencyFinding(
                        name=name, kind="unpinned", detail="no version constraint", source=dep.source
                    )
                )
            if version is None:
                findings.append(
                    DependencyFinding(name=name, kind="missing", detail="not installed", source=dep.source)
                )
            elif dep.specifier and not _satisfies(dep.specifier, version):
                findings.append(
                    DependencyFinding(
                        name=name,
                        kind="violated",
                        detail=f"installed {version} not in {dep.specifier}",
                        source=dep.source,
                    )
                )
        specs = {d.specifier for d in decls if d.specifier}
        if len(specs) > 1 and version is not None and not all(_satisfies(s, version) for s in specs):
            findings.append(
                DependencyFinding(
                    name=name,
                    kind="conflicting",
                    detail="declared differently in "
                    + ", ".join(sorted({d.source for d in decls}))
                    + f": {sorted(specs)}",
                    source=decls[0].source,
                )
            )
        for dist, spec in (dependents or {}).get(name, []):
            if version is not None and spec and not _satisfies(spec, version):
                findings.append(
                    DependencyFinding(
                        name=name,
                        kind="conflicting",
                        detail=f"{dist} requires {name}{spec}, installed {version}",
                        source="environment",
                    )
                )
    kinds: dict[str, list[str]] = {k: [] for k in ("missing", "unpinned", "violated", "conflicting")}
    for f in findings:
        if f.kind in kinds and f.name not in kinds[f.kind]:
            kinds[f.kind].append(f.name)
    return DependencyReport(
        declared=relevant,
        installed={n: installed[n] for n in by_name if n in installed},
        missing=kinds["missing"],
        unpinned=kinds["unpinned"],
        violated=kinds["violated"],
        conflicting=kinds["conflicting"],
        findings=findings,
        healthy=not findings,
    )


class Resolution(BaseModel):
    name: str
    constraints: list[str]
    resolved: str | None
    pin: str | None
    note: str


class ResolutionReport(BaseModel):
    resolutions: list[Resolution]
    unresolved: list[str]
    lock_lines: list[str]


def resolve_versions(declared: list[Declared], available: Mapping[str, list[str]]) -> ResolutionReport:
    """Pick, for each declared package, the newest available version meeting every constraint.

    ``available`` maps a package to the versions known offline (the installed one, plus any
    listed in a lock file or a local wheel folder).
    """
    by_name: dict[str, list[str]] = {}
    for dep in declared:
        by_name.setdefault(dep.name, []).append(dep.specifier)
    out: list[Resolution] = []
    unresolved: list[str] = []
    for name, specs in sorted(by_name.items()):
        combined = SpecifierSet(",".join(s for s in specs if s))
        candidates: list[Version] = []
        for v in available.get(name, []):
            try:
                candidates.append(Version(v))
            except InvalidVersion:
                continue
        ok = sorted((v for v in candidates if combined.contains(v, prereleases=True)), reverse=True)
        if ok:
            best = str(ok[0])
            note = "satisfies every constraint" if str(combined) else "unconstrained: pin the tested version"
            out.append(
                Resolution(
                    name=name,
                    constraints=[s for s in specs if s],
                    resolved=best,
                    pin=f"{name}=={best}",
                    note=note,
                )
            )
        else:
            unresolved.append(name)
            why = "no version known offline" if not candidates else f"no known version in {combined}"
            out.append(
                Resolution(name=name, constraints=[s for s in specs if s], resolved=None, pin=None, note=why)
            )
    return ResolutionReport(resolutions=out, unresolved=unresolved, lock_lines=[r.pin for r in out if r.pin])


_IMPORTTIME = re.compile(r"^import time:\s+(\d+)\s+\|\s+(\d+)\s+\|(\s*)(\S+)")


class ImportTiming(BaseModel):
    module: str
    self_us: int
    cumulative_us: int
    depth: int


def parse_importtime(stderr: str) -> list[ImportTiming]:
    """Lines of ``python -X importtime`` → timings, slowest cumulative first."""
    rows: list[ImportTiming] = []
    for line in stderr.splitlines():
        m = _IMPORTTIME.match(line)
        if m:
            rows.append(
                ImportTiming(
                    module=m.group(4),
                    self_us=int(m.group(1)),
                    cumulative_us=int(m.group(2)),
                    depth=len(m.group(3)) // 2,
                )
            )
    return sorted(rows, key=lambda r: r.cumulative_us, reverse=True)
