"""Reading a request file (YAML or JSON) into the body of ``POST /api/v1/workflows``.

A file may hold the API body itself (with a ``request`` key) or a ``ComplexRequest`` in the
seed's Input Schema (``request_type``, ``requirements``, ...)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

__all__ = ["RequestFileError", "body_from_fields", "load_body"]


class RequestFileError(ValueError):
    pass


def load_body(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise RequestFileError(f"cannot read {path}: {exc.strerror}") from None
    try:
        doc = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise RequestFileError(
            f"{path} is not valid {'JSON' if path.suffix == '.json' else 'YAML'}: {exc}"
        ) from None
    if not isinstance(doc, dict):
        raise RequestFileError(f"{path} must hold a mapping")
    _absolute_project_path(doc)
    if "request" in doc:
        return doc
    if "requirements" not in doc:
        raise RequestFileError(f"{path} has neither 'request' (API body) nor 'requirements' (ComplexRequest)")
    prefs = dict(doc.get("preferences") or {})
    if doc.get("priority"):
        prefs["priority"] = doc["priority"]
    strategy = doc.get("execution_strategy") or prefs.pop("execution_strategy", None)
    body: dict[str, Any] = {
        "request": {
            "type": doc.get("request_type"),
            "requirements": doc["requirements"],
            "complexity": doc.get("complexity_level"),
            "strategy": strategy,
        },
        "context": doc.get("context") or {},
        "preferences": prefs,
    }
    for key in ("callback_url", "webhook_events"):
        if key in doc:
            body[key] = doc[key]
    return body


def body_from_fields(
    request_type: str | None,
    functional: list[str],
    non_functional: list[str],
    constraints: list[str],
    complexity: int | None,
    strategy: str | None,
    project_path: str | None,
) -> dict[str, Any]:
    if not functional:
        raise RequestFileError("give a request file or at least one --functional requirement")
    context = {"project_path": project_path} if project_path else {}
    return {
        "request": {
            "type": request_type,
            "requirements": {
                "functional": functional,
                "non_functional": non_functional,
                "constraints": constraints,
            },
            "complexity": complexity,
            "strategy": strategy,
        },
        "context": context,
    }


def _absolute_project_path(doc: dict[str, Any]) -> None:
    """Agents may run elsewhere than this shell: send the project path resolved here."""
    context = doc.get("context")
    if isinstance(context, dict) and isinstance(context.get("project_path"), str):
        project = Path(context["project_path"]).expanduser()
        if not project.is_absolute():
            context["project_path"] = str(Path.cwd() / project)
