"""Docstring coverage of a project's public modules, classes and functions (via ``ast``)."""

from __future__ import annotations

import ast

from pydantic import BaseModel, Field

from taskloom.agents.domain.pysource import SourceFile, is_public

__all__ = ["DocstringCoverage", "Undocumented", "docstring_coverage", "public_definitions"]


class Undocumented(BaseModel):
    name: str = Field(description="Qualified name, e.g. shopcart.inventory.restock")
    kind: str
    file: str
    line: int


class DocstringCoverage(BaseModel):
    total: int
    documented: int
    coverage_percent: float
    undocumented: list[Undocumented]
    per_file: dict[str, float]


def public_definitions(source: SourceFile) -> list[tuple[str, str, ast.AST]]:
    """(qualified name, kind, node) of the module and its public classes, methods and functions."""
    if source.tree is None:
        return []
    found: list[tuple[str, str, ast.AST]] = [(source.module, "module", source.tree)]
    for node in source.tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and is_public(node.name):
            found.append((f"{source.module}.{node.name}", "function", node))
        elif isinstance(node, ast.ClassDef) and is_public(node.name):
            found.append((f"{source.module}.{node.name}", "class", node))
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef) and is_public(item.name):
                    found.append((f"{source.module}.{node.name}.{item.name}", "method", item))
    return found


def docstring_coverage(sources: list[SourceFile]) -> DocstringCoverage:
    total = documented = 0
    missing: list[Undocumented] = []
    per_file: dict[str, float] = {}
    for source in sources:
        if source.is_test:
            continue
        defs = public_definitions(source)
        file_doc = 0
        for name, kind, node in defs:
            assert isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
            if ast.get_docstring(node):
                file_doc += 1
            else:
                missing.append(
                    Undocumented(name=name, kind=kind, file=source.relpath, line=getattr(node, "lineno", 1))
                )
        total += len(defs)
        documented += file_doc
        if defs:
            per_file[source.relpath] = round(100.0 * file_doc / len(defs), 1)
    percent = round(100.0 * documented / total, 1) if total else 100.0
    return DocstringCoverage(
        total=total, documented=documented, coverage_percent=percent, undocumented=missing, per_file=per_file
    )
