"""JSON Schema export of every public contract, committed under ``libs/contracts/schemas/``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, TypeAdapter

from taskloom.contracts import agents, api, context, events, graph, messages, requests, results, workflow

__all__ = ["SCHEMA_DIR", "all_schemas", "write_schemas"]

SCHEMA_DIR = Path(__file__).parent / "schemas"

_MODELS: dict[str, type[BaseModel]] = {
    "complex_request": requests.ComplexRequest,
    "task_graph": graph.TaskGraph,
    "workflow_state": workflow.WorkflowState,
    "workflow_result": workflow.WorkflowResult,
    "task_assignment": messages.TaskAssignment,
    "progress_update": messages.ProgressUpdate,
    "submit_workflow": messages.SubmitWorkflow,
    "cancel_workflow": messages.CancelWorkflow,
    "pause_workflow": messages.PauseWorkflow,
    "resume_workflow": messages.ResumeWorkflow,
    "graph_constructed": messages.GraphConstructed,
    "graph_rejected": messages.GraphRejected,
    "agent_collaboration_request": messages.AgentCollaborationRequest,
    "workflow_submission_request": api.WorkflowSubmissionRequest,
    "workflow_submission_response": api.WorkflowSubmissionResponse,
    "websocket_status_event": api.StatusEvent,
    "task_result": results.TaskResult,
    "validation_result": results.ValidationResult,
    "agent_registration": agents.AgentRegistration,
    "context_get_request": context.ContextGetRequest,
    "context_view": context.ContextView,
    "context_put_request": context.ContextPutRequest,
    "context_contribute_request": context.ContributeRequest,
    "context_audit_query": context.AuditQuery,
    "context_error": context.ContextError,
}


def all_schemas() -> dict[str, dict[str, Any]]:
    out = {name: model.model_json_schema() for name, model in _MODELS.items()}
    out["message"] = TypeAdapter(messages.Message).json_schema()
    out["workflow_event"] = TypeAdapter(events.WorkflowEvent).json_schema()
    return out


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def write_schemas(target: Path = SCHEMA_DIR) -> list[Path]:
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in all_schemas().items():
        path = target / f"{name}.schema.json"
        path.write_text(render(schema))
        written.append(path)
    return written
