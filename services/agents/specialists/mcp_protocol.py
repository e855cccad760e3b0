"""mcp-protocol: MCP tool definitions (description, typed and documented parameters, valid
input schemas), breaking changes between versions of JSON Schemas / OpenAPI documents, and
a review of a project's API contracts."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from taskloom.agents.domain.contracts import (
    Change,
    McpTool,
    compare_json_schemas,
    compare_openapi,
    find_mcp_tools,
    review_openapi,
    validate_schema,
)
from taskloom.agents.errors import TaskInputError
from taskloom.agents.sdk import AgentContextView, ProgressReporter
from taskloom.agents.specialists.base import Specialist, SpecialistOutput, handles
from taskloom.contracts import AgentId

__all__ = ["McpProtocolAgent", "versioned_documents"]

_VERSION_DIR = re.compile(r"^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?$")


def _load(path: Path) -> Any:
    text = path.read_text(encoding="utf-8")
    return json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)


def _version_key(name: str) -> tuple[int, ...]:
    m = _VERSION_DIR.match(name)
    return tuple(int(g or 0) for g in m.groups()) if m else ()


def versioned_documents(root: Path) -> list[tuple[str, Path, Path]]:
    """(document name, older, newer) for every document present in the two newest version
    folders (``v1/``, ``v2/``, ``1.2/`` …) of any directory under ``root``."""
    pairs: list[tuple[str, Path, Path]] = []
    parents = {
        p.parent
        for p in root.rglob("*")
        if p.is_dir() and _VERSION_DIR.match(p.name) and ".venv" not in p.parts
    }
    for parent in sorted(parents):
        versions = sorted(
            (d for d in parent.iterdir() if d.is_dir() and _VERSION_DIR.match(d.name)),
            key=lambda d: _version_key(d.name),
        )
        if len(versions) < 2:
            continue
        old, new = versions[-2], versions[-1]
        for doc in sorted(new.iterdir()):
            if doc.suffix in {".json", ".yaml", ".yml"} and (old / doc.name).is_file():
                pairs.append((f"{parent.relative_to(root).as_posix()}/{doc.name}", old / doc.name, doc))
    return pairs


class ToolValidation(SpecialistOutput):
    tools: list[McpTool]
    schema_files: dict[str, list[str]]


class DocumentChanges(BaseModel):
    document: str
    old: str
    new: str
    kind: str
    changes: list[Change]
    breaking: bool


class SchemaCompatibility(SpecialistOutput):
    documents: list[DocumentChanges]
    breaking_changes: int


class ContractReview(SpecialistOutput):
    openapi_documents: dict[str, list[str]]
    tool_problems: dict[str, list[str]]


def _is_openapi(doc: Any) -> bool:
    return isinstance(doc, dict) and ("openapi" in doc or "swagger" in doc)


class McpProtocolAgent(Specialist):
    agent_id = AgentId.MCP_PROTOCOL.value

    @handles("mcp_tool_validation")
    async def mcp_tool_validation(self, ctx: AgentContextView, progress: ProgressReporter) -> ToolValidation:
        path = ctx.project_path()
        tools = find_mcp_tools(self.sources(path, include_tests=False))
        schema_files: dict[str, list[str]] = {}
        for f in sorted(path.rglob("*.json")):
            if ".venv" in f.parts or "node_modules" in f.parts:
                continue
            try:
                doc = _load(f)
            except (json.JSONDecodeError, UnicodeDecodeError):
                schema_files[f.relative_to(path).as_posix()] = ["not valid JSON"]
                continue
            for tool in doc if isinstance(doc, list) else [doc]:
                if isinstance(tool, dict) and isinstance(tool.get("inputSchema"), dict):
                    problems = validate_schema(tool["inputSchema"])
                    if not tool.get("description"):
                        problems.append("tool has no description")
                    schema_files[f"{f.relative_to(path).as_posix()}#{tool.get('name', '?')}"] = problems
        for t in tools:
            t.problems.extend(validate_schema(t.input_schema))
        findings = [f"MCP tool '{t.name}' ({t.file}:{t.line}): {p}" for t in tools for p in t.problems]
        findings += [f"tool schema {k}: {p}" for k, ps in schema_files.items() for p in ps]
        return ToolValidation(
            summary=f"{len(tools)} MCP tools found, {sum(bool(t.problems) for t in tools)} with problems",
            findings=findings,
            tools=tools,
            schema_files=schema_files,
        )

    @handles("schema_compatibility")
    async def schema_compatibility(
        self, ctx: AgentContextView, progress: ProgressReporter
    ) -> SchemaCompatibility:
        path = ctx.project_path()
        old_p, new_p = ctx.lookup("old_schema"), ctx.lookup("new_schema")
        if old_p and new_p:
            pairs = [(str(new_p), path / str(old_p), path / str(new_p))]
        else:
            pairs = versioned_documents(path)
        docs: list[DocumentChanges] = []
        for name, old, new in pairs:
            try:
                a, b = _load(old), _load(new)
            except (OSError, ValueError, yaml.YAMLError) as exc:
                raise TaskInputError(f"cannot read {name}: {exc}") from None
            kind = "openapi" if _is_openapi(a) and _is_openapi(b) else "json-schema"
            changes = compare_openapi(a, b) if kind == "openapi" else compare_json_schemas(a, b)
            docs.append(
                DocumentChanges(
                    document=name,
                    old=old.parent.name,
                    new=new.parent.name,
                    kind=kind,
                    changes=changes,
                    breaking=any(c.breaking for c in changes),
                )
            )
        breaking = [(d, c) for d in docs for c in d.changes if c.breaking]
        return SchemaCompatibility(
            summary=f"{len(docs)} versioned documents compared, {len(breaking)} breaking changes",
            findings=[
                f"breaking change in {d.document} ({d.old} -> {d.new}) at {c.location}: {c.kind}, {c.detail}"
                for d, c in breaking
            ],
            documents=docs,
            breaking_changes=len(breaking),
        )

    @handles("api_contract_review")
    async def api_contract_review(self, ctx: AgentContextView, progress: ProgressReporter) -> ContractReview:
        path = ctx.project_path()
        openapi: dict[str, list[str]] = {}
        for f in sorted([*path.rglob("*.json"), *path.rglob("*.yaml"), *path.rglob("*.yml")]):
            if ".venv" in f.parts:
                continue
            try:
                doc = _load(f)
            except (ValueError, yaml.YAMLError, UnicodeDecodeError):
                continue
            if _is_openapi(doc):
                openapi[f.relative_to(path).as_posix()] = review_openapi(doc)
        tools = await self.mcp_tool_validation(ctx, progress)
        compat = await self.schema_compatibility(ctx, progress)
        findings = [f"{k}: {p}" for k, ps in openapi.items() for p in ps] + tools.findings + compat.findings
        return ContractReview(
            summary=f"{len(openapi)} OpenAPI documents, {len(tools.tools)} MCP tools, "
            f"{compat.breaking_changes} breaking schema changes",
            findings=findings,
            openapi_documents=openapi,
            tool_problems={t.name: t.problems for t in tools.tools},
        )
