"""REST routes of workflows: submit, list, read (state, graph, events, replay, result) and
control (cancel, pause, resume)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Body, Header, Path, Query, Response
from fastapi.responses import JSONResponse

from taskloom.contracts.api import WorkflowSubmissionRequest, WorkflowSubmissionResponse
from taskloom.contracts.enums import RequestType, WorkflowStateName
from taskloom.contracts.graph import TaskGraph
from taskloom.contracts.workflow import WorkflowResult, WorkflowState
from taskloom.gateway.api.deps import BaseUrl, CurrentCaller, GatewayDep, StateDep
from taskloom.gateway.api.schemas import (
    ERROR_RESPONSES,
    ControlAccepted,
    ControlBody,
    ErrorBody,
    EventPage,
    WorkflowList,
)

router = APIRouter(prefix="/api/v1/workflows", tags=["workflows"], responses=ERROR_RESPONSES)

WorkflowId = Annotated[str, Path(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_\-]+$")]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        description="Retrying with the same key returns the first submission's workflow",
    ),
]


@router.post(
    "",
    status_code=202,
    response_model=WorkflowSubmissionResponse,
    responses={409: {"model": ErrorBody}},
    summary="Submit a complex request",
)
async def submit_workflow(
    body: WorkflowSubmissionRequest,
    caller: CurrentCaller,
    gateway: GatewayDep,
    base: BaseUrl,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    response = await gateway.submit(caller, body, idempotency_key, base)
    # serialised once here: returned as a model, FastAPI would dump, re-validate and dump it again
    return Response(response.model_dump_json(), status_code=202, media_type="application/json")


@router.get("", response_model=WorkflowList, summary="List workflows (your own; admins: anyone's)")
async def list_workflows(
    caller: CurrentCaller,
    gateway: GatewayDep,
    state: StateDep,
    current_state: Annotated[WorkflowStateName | None, Query(alias="state")] = None,
    request_type: Annotated[RequestType | None, Query(alias="type")] = None,
    owner: Annotated[
        str | None, Query(max_length=200, description="Admins only; others see their own")
    ] = None,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> JSONResponse:
    page = await gateway.list_workflows(
        caller,
        state=current_state.value if current_state else None,
        request_type=request_type.value if request_type else None,
        owner=owner,
        cursor=cursor,
        limit=min(limit, state.settings.page_size_max),
    )
    return JSONResponse(page)


@router.get("/{workflow_id}", response_model=WorkflowState, summary="The workflow's state (seed schema)")
async def get_workflow(workflow_id: WorkflowId, caller: CurrentCaller, gateway: GatewayDep) -> Response:
    return Response(await gateway.workflow_json(caller, workflow_id), media_type="application/json")


@router.get("/{workflow_id}/graph", response_model=TaskGraph, summary="The task graph it runs")
async def get_graph(workflow_id: WorkflowId, caller: CurrentCaller, gateway: GatewayDep) -> JSONResponse:
    return JSONResponse(await gateway.graph(caller, workflow_id))


@router.get("/{workflow_id}/events", response_model=EventPage, summary="The workflow's event history, paged")
async def get_events(
    workflow_id: WorkflowId,
    caller: CurrentCaller,
    gateway: GatewayDep,
    after: Annotated[int, Query(ge=0, le=2**31 - 1, description="Events after this position")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> JSONResponse:
    return JSONResponse(await gateway.events(caller, workflow_id, after, limit))


@router.get("/{workflow_id}/state", response_model=WorkflowState, summary="The state replayed at a position")
async def get_state_at(
    workflow_id: WorkflowId,
    caller: CurrentCaller,
    gateway: GatewayDep,
    at: Annotated[int, Query(ge=1, le=2**31 - 1, description="Stream position (event version)")],
) -> JSONResponse:
    return JSONResponse(await gateway.state_at(caller, workflow_id, at))


@router.get(
    "/{workflow_id}/result", response_model=WorkflowResult, summary="What the finished workflow produced"
)
async def get_result(workflow_id: WorkflowId, caller: CurrentCaller, gateway: GatewayDep) -> Response:
    return Response(await gateway.result_json(caller, workflow_id), media_type="application/json")


@router.post(
    "/{workflow_id}/{action}",
    status_code=202,
    response_model=ControlAccepted,
    responses={409: {"model": ErrorBody}},
    summary="Cancel, pause or resume a workflow",
)
async def control_workflow(
    workflow_id: WorkflowId,
    action: Literal["cancel", "pause", "resume"],
    caller: CurrentCaller,
    gateway: GatewayDep,
    body: Annotated[ControlBody | None, Body()] = None,
) -> JSONResponse:
    result = await gateway.control(caller, workflow_id, action, body.reason if body else "")
    return JSONResponse(result, status_code=202)
