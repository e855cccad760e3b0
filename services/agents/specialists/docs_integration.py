"""docs-integration: package documentation from installed distributions (cached per version),
docstring coverage, broken internal links and an overall documentation review."""

from __future__ import annotations

import ast
import importlib.metadata as md
import json
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name
from pydantic import BaseModel

from taskloom.agents.domain.dependencies import declared_dependencies
from taskloom.agents.domain.docstrings import DocstringCoverage, docstring_coverage
from taskloom.agents.domain.markdown import BrokenLink, ReadmeReview, broken_links, review_readme
from taskloom.agents.errors import TaskInputError
from taskloom.agents.sdk import AgentContextView, ProgressReporter
from taskloom.agents.specialists.base import Specialist, SpecialistOutput, handles
from taskloom.contracts import AgentId

__all__ = ["DocsIntegrationAgent", "PackageDoc", "package_doc"]


class PackageDoc(BaseModel):
    name: str
    version: str
    summary: str
    homepage: str | None
    license: str | None
    requires: list[str]
    module_docstring: str | None
    description_excerpt: str
    cached: bool = False


def package_doc(name: str, cache_dir: Path | None) -> PackageDoc | None:
    """Documentation of an installed distribution, read from its metadata and its top-level
    module docstring; cached under ``cache_dir`` as ``<name>-<version>.json`` so a new version
    is fetched afresh."""
    try:
        dist = md.distribution(name)
    except md.PackageNotFoundError:
        return None
    key = f"{canonicalize_name(name)}-{dist.version}.json"
    if cache_dir is not None and (cache_dir / key).is_file():
        return PackageDoc.model_validate({**json.loads((cache_dir / key).read_text()), "cached": True})
    meta: Any = dist.metadata  # an email.message.Message at run time
    urls = meta.get_all("Project-URL") or []
    homepage = meta.get("Home-page") or next((u.split(",", 1)[1].strip() for u in urls if "," in u), None)
    body = meta.get_payload() if hasattr(meta, "get_payload") else ""
    description = str(meta.get("Description") or body or "")
    excerpt = next(
        (
            p.strip()
            for p in description.split("\n\n")
            if p.strip() and not p.lstrip().startswith(("#", "[!", "<", "!["))
        ),
        "",
    )
    module_doc = None
    top = (dist.read_text("top_level.txt") or "").split()
    candidates = top or [canonicalize_name(name).replace("-", "_")]
    for mod in candidates:
        for f in dist.files or []:
            if str(f) in (f"{mod}/__init__.py", f"{mod}.py"):
                try:
                    module_doc = ast.get_docstring(
                        ast.parse(Path(str(f.locate())).read_text(encoding="utf-8"))
                    )
                except (OSError, SyntaxError, UnicodeDecodeError):
                    module_doc = None
                break
        if module_doc:
            break
    doc = PackageDoc(
        name=meta.get("Name") or name,
        version=dist.version,
        summary=meta.get("Summary") or "",
        homepage=homepage,
        license=meta.get("License-Expression") or meta.get("License"),
        requires=list(dist.requires or []),
        module_docstring=module_doc,
        description_excerpt=excerpt[:1200],
    )
    if cache_dir is not None:
        cache_dir.mkdir(parents=True, exist_ok=True)
        (cache_dir / key).write_text(doc.model_dump_json())
    return doc


class PackageDocumentation(SpecialistOutput):
    packages: list[PackageDoc]
    not_installed: list[str]


class CoverageOutput(SpecialistOutput):
    coverage: DocstringCoverage
    undocumented_names: list[str]


class LinkCheck(SpecialistOutput):
    broken: list[BrokenLink]
    files_checked: int


class DocumentationReview(SpecialistOutput):
    docstring_coverage_percent: float
    undocumented_names: list[str]
    broken_links: list[BrokenLink]
    readme: ReadmeReview
    score: float


class DocsIntegrationAgent(Specialist):
    agent_id = AgentId.DOCS_INTEGRATION.value

    def _cache_dir(self, ctx: AgentContextView) -> Path:
        raw = ctx.lookup("cache_dir")
        if raw:
            return Path(str(raw))
        base = Path(getattr(self.settings, "data_dir", None) or ".taskloom")
        return base / "docs-cache"

    @handles("package_documentation")
    async def package_documentation(
        self, ctx: AgentContextView, progress: ProgressReporter
    ) -> PackageDocumentation:
        names: list[str] = list(ctx.lookup("packages") or [])
        if not names:
            declared, _ = declared_dependencies(ctx.project_path())
            names = sorted({d.name for d in declared if d.group == "main"})
        if not names:
            raise TaskInputError("no packages given and none declared by the project")
        docs: list[PackageDoc] = []
        missing: list[str] = []
        for i, name in enumerate(names):
            doc = package_doc(name, self._cache_dir(ctx))
            (docs.append(doc) if doc else missing.append(name))
            await progress.update(10 + 85 * (i + 1) / len(names), "reading metadata", milestone=name)
        findings = [f"package '{n}' is not installed: no documentation available" for n in missing]
        findings += [f"package '{d.name}' {d.version} has no summary" for d in docs if not d.summary]
        return PackageDocumentation(
            summary=f"documentation of {len(docs)} packages ({sum(d.cached for d in docs)} from cache)",
            findings=findings,
            packages=docs,
            not_installed=missing,
        )

    @handles("docstring_coverage")
    async def docstring_coverage(self, ctx: AgentContextView, progress: ProgressReporter) -> CoverageOutput:
        cov = docstring_coverage(self.sources(ctx.project_path(), include_tests=False))
        names = [u.name for u in cov.undocumented]
        return CoverageOutput(
            summary=f"docstring coverage {cov.coverage_percent}% ({cov.documented}/{cov.total})",
            findings=[f"undocumented {u.kind} '{u.name}' ({u.file}:{u.line})" for u in cov.undocumented],
            coverage=cov,
            undocumented_names=names,
        )

    @handles("link_check")
    async def link_check(self, ctx: AgentContextView, progress: ProgressReporter) -> LinkCheck:
        path = ctx.project_path()
        broken = broken_links(path)
        files = sum(1 for _ in path.rglob("*.md"))
        return LinkCheck(
            summary=f"{len(broken)} broken internal links in {files} Markdown files",
            files_checked=files,
            findings=[f"broken link '{b.target}' in {b.file}:{b.line} ({b.reason})" for b in broken],
            broken=broken,
        )

    @handles("documentation_review")
    async def documentation_review(
        self, ctx: AgentContextView, progress: ProgressReporter
    ) -> DocumentationReview:
        path = ctx.project_path()
        cov = await self.docstring_coverage(ctx, progress)
        links = await self.link_check(ctx, progress)
        readme_path = next(
            (p for p in (path / "README.md", path / "README.rst", path / "README") if p.is_file()), None
        )
        readme = review_readme(
            readme_path.read_text(encoding="utf-8") if readme_path else None,
            readme_path.name if readme_path else None,
        )
        findings = cov.findings + links.findings
        findings += [f"README lacks a '{s}' section" for s in readme.sections_missing]
        score = round(
            0.5 * cov.coverage.coverage_percent + 0.3 * readme.score + (20.0 if not links.broken else 0.0), 1
        )
        text = await self.prose(
            "You review project documentation in three sentences.", "\n".join(findings[:40])
        )
        summary = (
            text
            or f"documentation score {score}/100: {cov.summary}, {links.summary}, README {readme.score}/100"
        )
        return DocumentationReview(
            summary=summary,
            findings=findings,
            docstring_coverage_percent=cov.coverage.coverage_percent,
            undocumented_names=cov.undocumented_names,
            broken_links=links.broken,
            readme=readme,
            score=score,
        )
