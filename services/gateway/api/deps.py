"""Annotated dependencies that keep routes short: the gateway, the authenticated caller, the
request's base URL. All of them are ``async def``: FastAPI runs a plain ``def`` dependency in
its thread pool, a thread hand-off per request for what is an attribute read."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import Depends, HTTPException, Request, WebSocket
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from taskloom.gateway.adapters.postgres import AuditRecord
from taskloom.gateway.handlers import Caller, Gateway
from taskloom.gateway.security import AuthError
from taskloom.gateway.state import GatewayState

__all__ = ["BaseUrl", "CurrentCaller", "GatewayDep", "StateDep", "base_url", "client_ip"]

_bearer = HTTPBearer(auto_error=False, description="A Taskloom JWT (`taskloom token --user me --role user`)")


async def get_state(request: Request) -> GatewayState:
    state: GatewayState = request.app.state.taskloom
    return state


StateDep = Annotated[GatewayState, Depends(get_state)]


async def get_gateway(state: StateDep) -> Gateway:
    return state.gateway


GatewayDep = Annotated[Gateway, Depends(get_gateway)]


def client_ip(request: Request | WebSocket) -> str | None:
    return request.client.host if request.client else None


async def audit_auth_failure(state: GatewayState, request: Request | WebSocket, reason: str) -> None:
    await state.audit.record(
        AuditRecord(
            actor="anonymous",
            roles=(),
            action="authenticate",
            resource=request.url.path,
            outcome="denied",
            reason=reason,
            ip=client_ip(request),
            user_agent=request.headers.get("user-agent"),
        )
    )


async def current_caller(
    request: Request,
    state: StateDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    """The verified caller, after the per-user rate limit; 401 or 429 otherwise."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        await audit_auth_failure(state, request, "missing bearer token")
        raise HTTPException(401, "missing bearer token", headers={"WWW-Authenticate": "Bearer"})
    try:
        principal = await state.verify(credentials.credentials)
    except AuthError as exc:
        await audit_auth_failure(state, request, exc.reason)
        raise HTTPException(
            401,
            exc.reason,
            headers={"WWW-Authenticate": f'Bearer error="invalid_token", error_description="{exc.reason}"'},
        ) from None
    caller = Caller(principal, client_ip(request), request.headers.get("user-agent"))
    wait = state.limiter.acquire(principal.subject, time.monotonic())
    if wait > 0:
        await state.gateway.record(caller, "rate_limit", request.url.path, "denied", "rate limit exceeded")
        retry = state.limiter.retry_after_header(wait)
        raise HTTPException(
            429, f"rate limit exceeded; retry after {retry} s", headers={"Retry-After": retry}
        )
    return caller


CurrentCaller = Annotated[Caller, Depends(current_caller)]


async def base_url(request: Request, state: StateDep) -> str:
    if state.settings.public_url:
        return state.settings.public_url.rstrip("/")
    return str(request.base_url).rstrip("/")


BaseUrl = Annotated[str, Depends(base_url)]
