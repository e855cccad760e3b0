"""REST routes beside workflows: collaborations, the agent registry, context, and the probes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from fastapi.responses import JSONResponse, PlainTextResponse

from taskloom.contracts.context import ContextScope
from taskloom.contracts.messages import AgentCollaborationRequest
from taskloom.gateway.api.deps import BaseUrl, CurrentCaller, GatewayDep, StateDep
from taskloom.gateway.api.schemas import ERROR_RESPONSES, AgentsPage, CollaborationAccepted, ContextPutBody
from taskloom.observability import render_metrics

api = APIRouter(prefix="/api/v1", responses=ERROR_RESPONSES)
probes = APIRouter(tags=["probes"])

ScopeId = Annotated[str, Path(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.\-]+$")]
Key = Annotated[str, Path(min_length=1, max_length=512)]


@api.post(
    "/collaborations",
    status_code=202,
    response_model=CollaborationAccepted,
    tags=["collaborations"],
    summary="Ask agents to collaborate (the seed's agent_collaboration_request)",
)
async def request_collaboration(
    body: AgentCollaborationRequest, caller: CurrentCaller, gateway: GatewayDep, base: BaseUrl
) -> JSONResponse:
    return JSONResponse(await gateway.collaborate(caller, body, base), status_code=202)


@api.get("/agents", response_model=AgentsPage, tags=["agents"], summary="Live agents with their load")
async def list_agents(caller: CurrentCaller, gateway: GatewayDep) -> JSONResponse:
    return JSONResponse(await gateway.agents(caller))


@api.get("/context/{scope}/{scope_id}", tags=["context"], summary="Read context you may see")
async def read_context(
    scope: ContextScope,
    scope_id: ScopeId,
    caller: CurrentCaller,
    gateway: GatewayDep,
    keys: Annotated[list[str] | None, Query(max_length=100)] = None,
) -> JSONResponse:
    return JSONResponse(await gateway.context_get(caller, scope, scope_id, keys or []))


@api.put("/context/{scope}/{scope_id}/{key}", tags=["context"], summary="Write one context key")
async def write_context(
    scope: ContextScope,
    scope_id: ScopeId,
    key: Key,
    body: ContextPutBody,
    caller: CurrentCaller,
    gateway: GatewayDep,
) -> JSONResponse:
    return JSONResponse(await gateway.context_put(caller, scope, scope_id, key, body.model_dump()))


@probes.get("/health", summary="Liveness")
async def health(state: StateDep) -> JSONResponse:
    alive = not state.stopping.is_set()
    return JSONResponse(
        {"status": "ok" if alive else "stopping", "service": "gateway"}, 200 if alive else 503
    )


@probes.get("/ready", summary="Readiness: NATS and PostgreSQL reachable")
async def ready(state: StateDep) -> JSONResponse:
    checks = {"nats": state.bus.connected, "postgres": False}
    try:
        checks["postgres"] = await state.db.ping()
    except Exception:  # noqa: S110 - an unreachable database is the answer, not an error
        pass
    ok = all(checks.values()) and not state.stopping.is_set()
    return JSONResponse({"ready": ok, "checks": checks, "service": "gateway"}, 200 if ok else 503)


@probes.get("/metrics", summary="Prometheus metrics", response_class=PlainTextResponse)
async def metrics() -> Response:
    body, content_type = render_metrics()
    return Response(body, media_type=content_type)
