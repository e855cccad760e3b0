"""Markdown checks: broken internal links (files and heading anchors) and README completeness."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel

__all__ = ["BrokenLink", "ReadmeReview", "broken_links", "heading_slugs", "review_readme"]

_LINK = re.compile(r"(?<!!)\[([^\]]*)\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$", re.MULTILINE)
_FENCE = re.compile(r"```.*?```", re.DOTALL)


class BrokenLink(BaseModel):
    file: str
    line: int
    target: str
    reason: str


def heading_slugs(text: str) -> set[str]:
    """GitHub-style anchors of every heading in ``text``."""
    slugs: set[str] = set()
    for match in _HEADING.finditer(_FENCE.sub("", text)):
        slug = re.sub(r"[^\w\- ]", "", match.group(2).strip().lower()).replace(" ", "-")
        slugs.add(slug)
    return slugs


def broken_links(root: Path) -> list[BrokenLink]:
    """Relative links in every Markdown file under ``root`` whose file or anchor does not exist."""
    found: list[BrokenLink] = []
    for md in sorted(root.rglob("*.md")):
        rel = md.relative_to(root)
        if any(p.startswith(".") or p in {"node_modules", ".venv"} for p in rel.parts[:-1]):
            continue
        text = md.read_text(encoding="utf-8", errors="replace")
        body = _FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), text)
        for match in _LINK.finditer(body):
            target = match.group(2)
            if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("//"):
                continue  # external: checking it would need the network
            line = body.count("\n", 0, match.start()) + 1
            path_part, _, anchor = target.partition("#")
            dest = (md.parent / path_part).resolve() if path_part else md
            if not dest.exists():
                found.append(
                    BrokenLink(file=rel.as_posix(), line=line, target=target, reason="file not found")
                )
            elif (
                anchor
                and dest.suffix == ".md"
                and anchor not in heading_slugs(dest.read_text("utf-8", "replace"))
            ):
                found.append(
                    BrokenLink(file=rel.as_posix(), line=line, target=target, reason="anchor not found")
                )
    return found


_SECTIONS: dict[str, tuple[str, ...]] = {
    "installation": ("install", "installation", "getting started", "setup", "quick start", "quickstart"),
    "usage": ("usage", "example", "examples", "how to use"),
    "configuration": ("configuration", "config", "settings", "environment"),
    "testing": ("test", "tests", "testing", "development"),
    "license": ("license", "licence"),
    "contributing": ("contributing", "contribute"),
}


class ReadmeReview(BaseModel):
    path: str | None
    has_title: bool
    has_description: bool
    has_code_example: bool
    sections_present: list[str]
    sections_missing: list[str]
    score: float


def review_readme(text: str | None, path: str | None = None) -> ReadmeReview:
    """Which of the sections a user expects a README has, and a 0–100 completeness score."""
    if text is None:
        return ReadmeReview(
            path=None,
            has_title=False,
            has_description=False,
            has_code_example=False,
            sections_present=[],
            sections_missing=sorted(_SECTIONS),
            score=0.0,
        )
    headings = [m.group(2).strip().lower() for m in _HEADING.finditer(_FENCE.sub("", text))]
    present = sorted(
        key for key, words in _SECTIONS.items() if any(any(w in h for w in words) for h in headings)
    )
    missing = sorted(set(_SECTIONS) - set(present))
    has_title = bool(re.match(r"^\s*#\s+\S", text))
    prose = [ln for ln in _FENCE.sub("", text).splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    has_description = bool(prose)
    has_code = "```" in text
    points = 15 * has_title + 15 * has_description + 10 * has_code + 60 * len(present) / len(_SECTIONS)
    return ReadmeReview(
        path=path,
        has_title=has_title,
        has_description=has_description,
        has_code_example=has_code,
        sections_present=present,
        sections_missing=missing,
        score=round(points, 1),
    )
