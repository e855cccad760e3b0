"""What the gateway does for each API call, independent of HTTP: authorize, read the read
models and the event store, record submissions, publish commands, and audit. Routes and the
WebSocket call these; they hold no SQL and no HTTP types."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from taskloom.contracts.api import WorkflowSubmissionRequest, WorkflowSubmissionResponse
from taskloom.contracts.base import new_id
from taskloom.contracts.context import (
    ContextError,
    ContextGetRequest,
    ContextPutRequest,
    ContextScope,
    parse_context_reply,
)
from taskloom.contracts.enums import ExecutionPreference, Priority, WorkflowStateName
from taskloom.contracts.messages import (
    AgentCollaborationRequest,
    CancelWorkflow,
    CollaborationRequested,
    PauseWorkflow,
    ResumeWorkflow,
    SubmitWorkflow,
)
from taskloom.contracts.requests import ComplexRequest, Preferences, RequestContext
from taskloom.contracts.subjects import Command, Subjects
from taskloom.eventstore import EventStoreError
from taskloom.gateway.adapters.audit import AuditTrail
from taskloom.gateway.adapters.history import History
from taskloom.gateway.adapters.nats import BusUnavailable, GatewayBus
from taskloom.gateway.adapters.planner import Planner
from taskloom.gateway.adapters.postgres import AuditRecord, GatewayDb
from taskloom.gateway.adapters.webhooks import check_callback
from taskloom.gateway.config import GatewaySettings
from taskloom.gateway.domain.authz import Operation, Principal, has_operation, visible_owner
from taskloom.gateway.domain.cursor import InvalidCursor, decode_cursor, encode_cursor
from taskloom.gateway.domain.webhooks import CallbackRefused
from taskloom.gateway.errors import Conflict, Forbidden, InvalidInput, NotFound, ServiceUnavailable

__all__ = ["Caller", "Gateway", "CONTROL_ACTIONS"]

CONTROL_ACTIONS = {"cancel": CancelWorkflow, "pause": PauseWorkflow, "resume": ResumeWorkflow}
_FORBIDDEN_CLIENT_KEYS = frozenset({"owner", "role", "roles", "requested_by"})
_CONTEXT_ERRORS = {
    "denied": Forbidden,
    "malformed": InvalidInput,
    "conflict": Conflict,
    "too_large": InvalidInput,
}


@dataclass(frozen=True, slots=True)
class Caller:
    """The authenticated principal plus where the request came from (for the audit trail)."""

    principal: Principal
    ip: str | None = None
    user_agent: str | None = None


class Gateway:
    def __init__(
        self,
        settings: GatewaySettings,
        db: GatewayDb,
        history: History,
        bus: GatewayBus,
        audit: AuditTrail,
        planner: Planner,
    ) -> None:
        self.settings = settings
        self.db = db
        self.history = history
        self.bus = bus
        self.audit = audit
        self.planner = planner
        self.subjects = Subjects(settings.namespace)

    # --- audit and authorization ------------------------------------------------------------
    async def record(
        self,
        caller: Caller,
        action: str,
        resource: str,
        outcome: str,
        reason: str | None = None,
        **details: Any,
    ) -> None:
        await self.audit.record(
            AuditRecord(
                actor=caller.principal.subject,
                roles=caller.principal.role_names,
                action=action,
                resource=resource,
                outcome=outcome,
                reason=reason,
                ip=caller.ip,
                user_agent=caller.user_agent,
                details=details or None,
            )
        )

    async def require(self, caller: Caller, operation: Operation, resource: str) -> None:
        if not has_operation(caller.principal, operation):
            await self.record(caller, operation.value, resource, "denied", "role lacks the operation")
            raise Forbidden(
                f"operation {operation.value!r} needs one of the roles "
                f"{sorted(r.value for r in _roles_for(operation))}; you have {caller.principal.role_names}"
            )

    async def authorize_workflow(self, caller: Caller, operation: Operation, workflow_id: str) -> str:
        """The workflow's owner, once the caller may perform ``operation`` on it."""
        resource = f"workflow:{workflow_id}"
        await self.require(caller, operation, resource)
        owner = await self._owner(workflow_id)
        if owner is None:
            raise NotFound(f"workflow {workflow_id} not found")
        if owner != caller.principal.subject and not caller.principal.is_admin:
            await self.record(caller, operation.value, resource, "denied", "not the owner")
            # answering 404 does not tell other users which workflow ids exist
            raise NotFound(f"workflow {workflow_id} not found")
        return owner

    async def _owner(self, workflow_id: str) -> str | None:
        try:
            return await self.db.workflow_owner(workflow_id) or await self.history.owner(workflow_id)
        except EventStoreError as exc:
            raise ServiceUnavailable(f"the event store is unavailable: {exc}") from None

    # --- submission -------------------------------------------------------------------------
    async def submit(
        self, caller: Caller, body: WorkflowSubmissionRequest, idempotency_key: str | None, base_url: str
    ) -> WorkflowSubmissionResponse:
        await self.require(caller, Operation.SUBMIT_WORKFLOW, "workflows")
        request = self._complex_request(body)
        if body.callback_url:
            try:
                await check_callback(body.callback_url, self.settings.webhook_allow_private)
            except CallbackRefused as exc:
                await self.record(caller, "submit_workflow", "workflows", "denied", str(exc))
                raise InvalidInput(str(exc)) from None
        cmd = SubmitWorkflow(
            workflow_id=new_id(),
            owner=caller.principal.subject,
            request=request,
            callback_url=body.callback_url,
            webhook_events=body.webhook_events,
        )
        if idempotency_key is not None:
            cmd, stored_response = await self._claim(caller, idempotency_key, body, cmd)
            if stored_response is not None:
                return stored_response
        if cmd.callback_url and cmd.webhook_events:
            # before the first event exists, so the dispatcher sees every event of the workflow
            await self.db.subscribe_webhook(
                cmd.workflow_id,
                self.settings.namespace,
                cmd.callback_url,
                [e.value for e in cmd.webhook_events],
            )
        try:
            await self.history.record_submission(cmd)
        except EventStoreError as exc:
            raise ServiceUnavailable(f"the workflow could not be stored: {exc}") from None
        plan = await self.planner.summarize(cmd.request)
        response = WorkflowSubmissionResponse(
            workflow_id=cmd.workflow_id,
            estimated_duration=plan.estimated_duration,
            task_count=plan.task_count,
            assigned_agents=list(plan.assigned_agents),
            status_endpoint=f"{base_url}/api/v1/workflows/{cmd.workflow_id}",
            websocket_endpoint=_ws_url(base_url) + f"/ws/workflows/{cmd.workflow_id}",
        )
        if idempotency_key is not None:
            await self.db.save_idempotent_response(cmd.owner, idempotency_key, response.model_dump_json())
        await self.record(
            caller,
            "submit_workflow",
            f"workflow:{cmd.workflow_id}",
            "allowed",
            idempotency_key=idempotency_key,
        )
        return response

    async def _claim(
        self, caller: Caller, key: str, body: WorkflowSubmissionRequest, cmd: SubmitWorkflow
    ) -> tuple[SubmitWorkflow, WorkflowSubmissionResponse | None]:
        digest = hashlib.sha256(body.model_dump_json().encode()).hexdigest()
        stored = await self.db.claim_idempotency_key(
            cmd.owner, key, digest, cmd.workflow_id, cmd.model_dump_json()
        )
        if stored.request_hash != digest:
            raise Conflict("this Idempotency-Key was already used with a different request body")
        if stored.response is not None:
            return cmd, WorkflowSubmissionResponse.model_validate_json(stored.response)
        # the first attempt may have stopped half-way: repeat it with the very same command
        return SubmitWorkflow.model_validate_json(stored.command), None

    @staticmethod
    def _complex_request(body: WorkflowSubmissionRequest) -> ComplexRequest:
        for name, bag in (("context", body.context), ("preferences", body.preferences)):
            clash = _FORBIDDEN_CLIENT_KEYS & set(bag)
            if clash:
                raise InvalidInput(f"{name} must not set {sorted(clash)}: the owner comes from your token")
        prefs = dict(body.preferences)
        priority = prefs.pop("priority", Priority.MEDIUM)
        strategy = body.request.strategy
        if isinstance(strategy, ExecutionPreference):
            prefs.setdefault("execution_strategy", strategy.value)
        try:
            return ComplexRequest(
                request_type=body.request.type,
                complexity_level=body.request.complexity,
                priority=priority,
                context=RequestContext.model_validate(body.context),
                requirements=body.request.requirements,
                preferences=Preferences.model_validate(prefs),
                execution_strategy=None if isinstance(strategy, ExecutionPreference) else strategy,
            )
        except ValidationError as exc:
            raise InvalidInput(_validation_message(exc)) from None

    # --- reads ------------------------------------------------------------------------------
    async def workflow_json(self, caller: Caller, workflow_id: str) -> str:
        """The seed's Workflow State Schema as stored JSON (no re-encoding on the hot path)."""
        await self.require(caller, Operation.VIEW_WORKFLOW, f"workflow:{workflow_id}")
        found = await self.db.workflow_document(workflow_id)
        if found is None or (found[0] != caller.principal.subject and not caller.principal.is_admin):
            if found is not None:
                await self.record(
                    caller, "view_workflow", f"workflow:{workflow_id}", "denied", "not the owner"
                )
            raise NotFound(f"workflow {workflow_id} not found")
        return found[1]

    async def list_workflows(
        self,
        caller: Caller,
        *,
        state: str | None,
        request_type: str | None,
        owner: str | None,
        cursor: str | None,
        limit: int,
    ) -> dict[str, Any]:
        await self.require(caller, Operation.VIEW_WORKFLOW, "workflows")
        after = None
        if cursor:
            try:
                raw = decode_cursor(cursor)
                after = (datetime.fromisoformat(str(raw["t"])), str(raw["id"]))
            except (InvalidCursor, KeyError, ValueError):
                raise InvalidInput("cursor is not one this server issued") from None
        rows = await self.db.list_workflows(
            owner=visible_owner(caller.principal, owner),
            state=state,
            request_type=request_type,
            after=after,
            limit=limit + 1,
        )
        more = len(rows) > limit
        rows = rows[:limit]
        next_cursor = None
        if more and rows and rows[-1].submitted_at is not None:
            next_cursor = encode_cursor({"t": rows[-1].submitted_at.isoformat(), "id": rows[-1].workflow_id})
        return {
            "items": [
                {
                    "workflow_id": r.workflow_id,
                    "owner": r.owner,
                    "request_type": r.request_type,
                    "current_state": r.current_state,
                    "priority": r.priority,
                    "submitted_at": r.submitted_at.isoformat() if r.submitted_at else None,
                    "updated_at": r.updated_at.isoformat() if r.updated_at else None,
                    "version": r.version,
                    "progress": r.progress,
                }
                for r in rows
            ],
            "next_cursor": next_cursor,
        }

    async def graph(self, caller: Caller, workflow_id: str) -> dict[str, Any]:
        await self.authorize_workflow(caller, Operation.VIEW_WORKFLOW, workflow_id)
        graph = await self.history.graph(workflow_id)
        if graph is None:
            raise NotFound(f"workflow {workflow_id} has no task graph yet (it is still being constructed)")
        return graph

    async def events(self, caller: Caller, workflow_id: str, after: int, limit: int) -> dict[str, Any]:
        await self.authorize_workflow(caller, Operation.VIEW_WORKFLOW, workflow_id)
        events = await self.history.events(workflow_id, after, limit)
        return {
            "workflow_id": workflow_id,
            "events": [
                {
                    "position": e.version,
                    "global_position": e.position,
                    "event_id": e.event_id,
                    "type": e.type,
                    "recorded_at": e.recorded_at.isoformat(),
                    "data": e.data,
                }
                for e in events
            ],
            "next_after": events[-1].version if len(events) == limit else None,
        }

    async def state_at(self, caller: Caller, workflow_id: str, position: int) -> dict[str, Any]:
        await self.authorize_workflow(caller, Operation.VIEW_WORKFLOW, workflow_id)
        head = await self.history.version(workflow_id)
        if position > head:
            raise InvalidInput(f"position {position} is beyond the workflow's last event ({head})")
        state = await self.history.state_at(workflow_id, position)
        if state is None:
            raise NotFound(f"workflow {workflow_id} has no events")
        return state.model_dump(mode="json")

    async def result_json(self, caller: Caller, workflow_id: str) -> str:
        await self.authorize_workflow(caller, Operation.VIEW_WORKFLOW, workflow_id)
        result = await self.db.workflow_result(workflow_id)
        if result is None:
            raise NotFound(f"workflow {workflow_id} has no result yet")
        return result

    # --- commands ---------------------------------------------------------------------------
    async def control(self, caller: Caller, workflow_id: str, action: str, reason: str) -> dict[str, Any]:
        await self.authorize_workflow(caller, Operation.CANCEL_WORKFLOW, workflow_id)
        document = await self.db.workflow_document(workflow_id)
        if document is not None:
            current = json.loads(document[1]).get("current_state")
            if current in {s.value for s in WorkflowStateName if s.terminal}:
                raise Conflict(f"workflow {workflow_id} is already {current}")
        cmd = CONTROL_ACTIONS[action](
            workflow_id=workflow_id, requested_by=caller.principal.subject, reason=reason
        )
        await self._publish(self.subjects.command(Command(action)), cmd, cmd.message_id)
        await self.record(caller, f"{action}_workflow", f"workflow:{workflow_id}", "allowed", reason=reason)
        return {
            "workflow_id": workflow_id,
            "action": action,
            "command_id": cmd.message_id,
            "status": "accepted",
        }

    async def collaborate(
        self, caller: Caller, body: AgentCollaborationRequest, base_url: str
    ) -> dict[str, Any]:
        if not body.workflow_id:
            await self.require(caller, Operation.SUBMIT_WORKFLOW, "collaborations")
            raise InvalidInput("workflow_id is required: a collaboration belongs to a workflow")
        await self.authorize_workflow(caller, Operation.SUBMIT_WORKFLOW, body.workflow_id)
        message = CollaborationRequested(workflow_id=body.workflow_id, request=body)
        await self._publish(self.subjects.command(Command.COLLABORATE), message, body.collaboration_id)
        await self.record(
            caller,
            "agent_collaboration_request",
            f"workflow:{body.workflow_id}",
            "allowed",
            collaboration_id=body.collaboration_id,
        )
        return {
            "collaboration_id": body.collaboration_id,
            "workflow_id": body.workflow_id,
            "status": "requested",
            "requesting_agent": body.requesting_agent,
            "target_agents": body.target_agents,
            "collaboration_type": body.collaboration_type.value,
            "channels": {
                "events": _ws_url(base_url) + f"/ws/workflows/{body.workflow_id}",
                "status": f"{base_url}/api/v1/workflows/{body.workflow_id}",
            },
        }

    async def _publish(self, subject: str, message: Any, msg_id: str) -> None:
        try:
            await self.bus.publish_command(subject, message, msg_id)
        except BusUnavailable as exc:
            raise ServiceUnavailable(str(exc)) from None

    # --- agents and context -----------------------------------------------------------------
    async def agents(self, caller: Caller) -> dict[str, Any]:
        await self.require(caller, Operation.VIEW_WORKFLOW, "agents")
        try:
            instances = await self.bus.agents()
        except BusUnavailable as exc:
            raise ServiceUnavailable(str(exc)) from None
        by_agent: dict[str, dict[str, Any]] = {}
        for inst in sorted(instances, key=lambda i: (i.agent_id, i.instance_id)):
            agent = by_agent.setdefault(
                inst.agent_id,
                {
                    "agent_id": inst.agent_id,
                    "capabilities": inst.capabilities,
                    "task_types": inst.task_types,
                    "capacity": 0,
                    "load": 0,
                    "instances": [],
                },
            )
            agent["capacity"] += inst.capacity
            agent["load"] += inst.load
            agent["instances"].append(
                {
                    "instance_id": inst.instance_id,
                    "host": inst.host,
                    "version": inst.version,
                    "capacity": inst.capacity,
                    "load": inst.load,
                    "heartbeat_at": inst.heartbeat_at.isoformat(),
                }
            )
        return {"agents": list(by_agent.values())}

    async def context_get(self, caller: Caller, scope: ContextScope, scope_id: str, keys: list[str]) -> Any:
        request = ContextGetRequest(
            agent_id=_context_identity(caller),
            workflow_id=scope_id if scope is ContextScope.WORKFLOW else None,
            project_id=scope_id if scope is ContextScope.PROJECT else None,
            requirements=keys,
            # sensitive values only for callers with access_sensitive_data (privileged_user,
            # admin); anyone else sees which keys were withheld, not their values
            redact_sensitive=not has_operation(caller.principal, Operation.ACCESS_SENSITIVE_DATA),
        )
        await self._authorize_context(caller, scope, scope_id, write=False)
        return await self._context_call(caller, "get", request, f"context:{scope.value}:{scope_id}")

    async def context_put(
        self, caller: Caller, scope: ContextScope, scope_id: str, key: str, body: dict[str, Any]
    ) -> Any:
        await self._authorize_context(caller, scope, scope_id, write=True)
        try:
            request = ContextPutRequest(
                agent_id=_context_identity(caller),
                scope=scope,
                key=key,
                workflow_id=scope_id if scope is ContextScope.WORKFLOW else None,
                project_id=scope_id if scope is ContextScope.PROJECT else None,
                scope_id=None if scope is ContextScope.WORKFLOW else scope_id,
                **body,
            )
        except (ValidationError, TypeError) as exc:
            message = _validation_message(exc) if isinstance(exc, ValidationError) else str(exc)
            raise InvalidInput(message) from None
        return await self._context_call(caller, "put", request, f"context:{scope.value}:{scope_id}:{key}")

    async def _authorize_context(
        self, caller: Caller, scope: ContextScope, scope_id: str, write: bool
    ) -> None:
        if scope is ContextScope.WORKFLOW:
            op = Operation.SUBMIT_WORKFLOW if write else Operation.VIEW_WORKFLOW
            await self.authorize_workflow(caller, op, scope_id)
        elif scope in (ContextScope.GLOBAL, ContextScope.PROJECT):
            op = Operation.MODIFY_SYSTEM if write else Operation.VIEW_WORKFLOW
            await self.require(caller, op, f"context:{scope.value}:{scope_id}")
        else:
            raise InvalidInput("only the global, project and workflow scopes are reachable over the API")

    async def _context_call(self, caller: Caller, op: str, request: Any, resource: str) -> Any:
        try:
            raw = await self.bus.request(op, request)
        except BusUnavailable as exc:
            raise ServiceUnavailable(str(exc)) from None
        reply = parse_context_reply(json.dumps(raw))
        if isinstance(reply, ContextError):
            await self.record(caller, f"context_{op}", resource, "denied", reply.message)
            error = _CONTEXT_ERRORS.get(reply.code.value, ServiceUnavailable)
            raise error(f"context service: {reply.message}")
        await self.record(caller, f"context_{op}", resource, "allowed")
        return raw


def _roles_for(operation: Operation) -> frozenset[Any]:
    from taskloom.gateway.domain.authz import OPERATION_ROLES

    return OPERATION_ROLES[operation]


def _context_identity(caller: Caller) -> str:
    return f"user:{caller.principal.subject}"


def _ws_url(base_url: str) -> str:
    if base_url.startswith("https://"):
        return "wss://" + base_url[len("https://") :]
    if base_url.startswith("http://"):
        return "ws://" + base_url[len("http://") :]
    return base_url


def _validation_message(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()))
        parts.append(f"{where}: {err.get('msg')}" if where else str(err.get("msg")))
    return "; ".join(parts)
