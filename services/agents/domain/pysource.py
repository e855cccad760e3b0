"""Walking a Python project: which files are source, which are tests, and their module names."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

__all__ = ["SourceFile", "is_public", "iter_source", "parse_file"]

_SKIP_DIRS = {".git", ".venv", "venv", "node_modules", "__pycache__", "build", "dist", ".tox", ".mypy_cache"}


@dataclass(frozen=True)
class SourceFile:
    path: Path
    relpath: str
    module: str
    is_test: bool
    tree: ast.Module | None
    text: str


def _module_name(rel: Path) -> str:
    parts = list(rel.with_suffix("").parts)
    if parts and parts[0] == "src":
        parts = parts[1:]
    if parts and parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _is_test(rel: Path) -> bool:
    return any(p in {"tests", "test"} for p in rel.parts[:-1]) or rel.name.startswith("test_")


def parse_file(path: Path) -> ast.Module | None:
    try:
        return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (SyntaxError, UnicodeDecodeError, ValueError):
        return None


def iter_source(root: Path, include_tests: bool = True) -> list[SourceFile]:
    """Every ``.py`` file under ``root`` (skipping virtualenvs and build output), sorted."""
    files: list[SourceFile] = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if any(part in _SKIP_DIRS or part.startswith(".") for part in rel.parts[:-1]):
            continue
        test = _is_test(rel)
        if test and not include_tests:
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        try:
            tree: ast.Module | None = ast.parse(text, filename=str(path))
        except (SyntaxError, ValueError):
            tree = None
        files.append(SourceFile(path, rel.as_posix(), _module_name(rel), test, tree, text))
    return files


def is_public(name: str) -> bool:
    return not name.startswith("_")
