"""API contracts: MCP tool definitions (documented, typed, valid input schemas), JSON Schema
and OpenAPI breaking-change detection between two versions, and OpenAPI document review."""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping, Sequence
from typing import Any

from jsonschema.exceptions import SchemaError
from jsonschema.validators import validator_for
from pydantic import BaseModel

from taskloom.agents.domain.pysource import SourceFile

__all__ = [
    "Change",
    "McpTool",
    "compare_json_schemas",
    "compare_openapi",
    "find_mcp_tools",
    "review_openapi",
    "validate_schema",
]


class McpTool(BaseModel):
    name: str
    qualified_name: str
    file: str
    line: int
    problems: list[str]
    input_schema: dict[str, Any]


def _is_tool_decorator(node: ast.expr) -> bool:
    target = node.func if isinstance(node, ast.Call) else node
    if isinstance(target, ast.Attribute):
        return target.attr == "tool"
    return isinstance(target, ast.Name) and target.id == "tool"


_PY_TO_JSON = {
    "str": "string",
    "int": "integer",
    "float": "number",
    "bool": "boolean",
    "list": "array",
    "dict": "object",
}


def find_mcp_tools(sources: Sequence[SourceFile]) -> list[McpTool]:
    """Functions decorated as MCP tools (``@mcp.tool()``, ``@server.tool``, ``@tool``) with the
    problems a client would hit: no description, untyped parameters, undocumented parameters."""
    tools: list[McpTool] = []
    for s in sources:
        if s.is_test or s.tree is None:
            continue
        for node in ast.walk(s.tree):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) or not any(
                _is_tool_decorator(d) for d in node.decorator_list
            ):
                continue
            doc = ast.get_docstring(node) or ""
            problems: list[str] = []
            if not doc:
                problems.append("no docstring: the tool has no description")
            props: dict[str, Any] = {}
            required: list[str] = []
            args = [
                a
                for a in [*node.args.args, *node.args.kwonlyargs]
                if a.arg not in {"self", "cls", "ctx", "context"}
            ]
            n_defaults = len(node.args.defaults)
            for i, a in enumerate(node.args.args):
                if a in args and i < len(node.args.args) - n_defaults:
                    required.append(a.arg)
            for a in args:
                if a.annotation is None:
                    problems.append(f"parameter '{a.arg}' has no type annotation")
                    props[a.arg] = {}
                else:
                    props[a.arg] = {"type": _PY_TO_JSON.get(ast.unparse(a.annotation), "object")}
                if doc and not re.search(rf"\b{re.escape(a.arg)}\b", doc):
                    problems.append(f"parameter '{a.arg}' is not described in the docstring")
            if node.returns is None:
                problems.append("no return annotation")
            schema = {"type": "object", "properties": props, "required": required}
            tools.append(
                McpTool(
                    name=node.name,
                    qualified_name=f"{s.module}.{node.name}",
                    file=s.relpath,
                    line=node.lineno,
                    problems=problems,
                    input_schema=schema,
                )
            )
    return tools


def validate_schema(schema: Mapping[str, Any]) -> list[str]:
    """Problems with a JSON Schema document itself (empty when valid for its declared draft)."""
    cls = validator_for(schema)
    try:
        cls.check_schema(schema)
    except SchemaError as exc:
        return [f"{'/'.join(str(p) for p in exc.path) or '<root>'}: {exc.message}"]
    return []


class Change(BaseModel):
    location: str
    kind: str
    breaking: bool
    detail: str


def _types(schema: Mapping[str, Any]) -> set[str]:
    t = schema.get("type")
    return set(t) if isinstance(t, list) else ({t} if isinstance(t, str) else set())


def compare_json_schemas(old: Mapping[str, Any], new: Mapping[str, Any], path: str = "$") -> list[Change]:
    """Changes from ``old`` to ``new`` seen by a producer of documents valid under ``old``:
    removed properties, newly required ones, changed types and narrowed enums break it."""
    changes: list[Change] = []
    old_t, new_t = _types(old), _types(new)
    if old_t and new_t and not old_t <= new_t and not (old_t == {"integer"} and "number" in new_t):
        changes.append(
            Change(
                location=path,
                kind="type_changed",
                breaking=True,
                detail=f"{sorted(old_t)} -> {sorted(new_t)}",
            )
        )
    if "enum" in old and "enum" in new:
        removed = [v for v in old["enum"] if v not in new["enum"]]
        if removed:
            changes.append(
                Change(location=path, kind="enum_narrowed", breaking=True, detail=f"removed {removed}")
            )
    old_props: Mapping[str, Any] = old.get("properties", {})
    new_props: Mapping[str, Any] = new.get("properties", {})
    old_req, new_req = set(old.get("required", [])), set(new.get("required", []))
    for name in sorted(old_props.keys() - new_props.keys()):
        # consumers that read the property break whether or not it was required
        changes.append(
            Change(
                location=f"{path}.{name}", kind="property_removed", breaking=True, detail="property removed"
            )
        )
    for name in sorted(new_props.keys() - old_props.keys()):
        changes.append(
            Change(
                location=f"{path}.{name}",
                kind="property_added",
                breaking=name in new_req,
                detail="new required property" if name in new_req else "new optional property",
            )
        )
    for name in sorted((new_req - old_req) & old_props.keys()):
        changes.append(
            Change(
                location=f"{path}.{name}",
                kind="became_required",
                breaking=True,
                detail="optional property is now required",
            )
        )
    for name in sorted(old_props.keys() & new_props.keys()):
        changes += compare_json_schemas(old_props[name], new_props[name], f"{path}.{name}")
    if isinstance(old.get("items"), Mapping) and isinstance(new.get("items"), Mapping):
        changes += compare_json_schemas(old["items"], new["items"], f"{path}[]")
    return changes


_METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}


def compare_openapi(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Change]:
    """Removed paths/operations/responses and parameters that became required break clients."""
    changes: list[Change] = []
    old_paths: Mapping[str, Any] = old.get("paths", {})
    new_paths: Mapping[str, Any] = new.get("paths", {})
    for p in sorted(old_paths.keys() - new_paths.keys()):
        changes.append(Change(location=p, kind="path_removed", breaking=True, detail="path removed"))
    for p in sorted(new_paths.keys() - old_paths.keys()):
        changes.append(Change(location=p, kind="path_added", breaking=False, detail="new path"))
    for p in sorted(old_paths.keys() & new_paths.keys()):
        for m in sorted((old_paths[p].keys() & _METHODS) - new_paths[p].keys()):
            changes.append(
                Change(
                    location=f"{m.upper()} {p}",
                    kind="operation_removed",
                    breaking=True,
                    detail="operation removed",
                )
            )
        for m in sorted(old_paths[p].keys() & new_paths[p].keys() & _METHODS):
            o, n = old_paths[p][m], new_paths[p][m]
            for code in sorted(set(o.get("responses", {})) - set(n.get("responses", {}))):
                changes.append(
                    Change(
                        location=f"{m.upper()} {p} {code}",
                        kind="response_removed",
                        breaking=True,
                        detail="response removed",
                    )
                )
            old_params = {
                (x.get("in"), x.get("name")): x for x in o.get("parameters", []) if isinstance(x, Mapping)
            }
            for x in n.get("parameters", []):
                if not isinstance(x, Mapping):
                    continue
                key = (x.get("in"), x.get("name"))
                if x.get("required") and (key not in old_params or not old_params[key].get("required")):
                    changes.append(
                        Change(
                            location=f"{m.upper()} {p} {key[0]}:{key[1]}",
                            kind="parameter_required",
                            breaking=True,
                            detail="parameter is now required",
                        )
                    )
    for name, schema in sorted(new.get("components", {}).get("schemas", {}).items()):
        before = old.get("components", {}).get("schemas", {}).get(name)
        if isinstance(before, Mapping):
            changes += compare_json_schemas(before, schema, f"#/components/schemas/{name}")
    return changes


def review_openapi(doc: Mapping[str, Any]) -> list[str]:
    """Documentation gaps of an OpenAPI document: operations without summary, operationId or
    a success response."""
    problems: list[str] = []
    if "openapi" not in doc and "swagger" not in doc:
        problems.append("no 'openapi' version field")
    if not doc.get("info", {}).get("title"):
        problems.append("info.title missing")
    for p, item in sorted(doc.get("paths", {}).items()):
        for m, op in sorted(item.items()):
            if m not in _METHODS or not isinstance(op, Mapping):
                continue
            where = f"{m.upper()} {p}"
            if not (op.get("summary") or op.get("description")):
                problems.append(f"{where}: no summary or description")
            if not op.get("operationId"):
                problems.append(f"{where}: no operationId")
            if not any(str(c).startswith("2") for c in op.get("responses", {})):
                problems.append(f"{where}: no 2xx response documented")
    return problems
