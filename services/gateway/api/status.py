"""The hot read, ``GET /api/v1/workflows/{id}``, answered without FastAPI's routing and dependency
resolution, which cost more CPU than the query itself.

Only the plain case takes this path: a bearer token that verifies, a role that may view, a
caller within the rate limit. It then calls the same handler as the route and answers with the
stored JSON untouched; errors go through the application's own exception handlers. Anything
else (no or bad token, a missing role, a refused rate limit, another method or path) falls
through to the full application, which refuses it with the usual status and audit record. The
route stays declared on the router for the OpenAPI document and as that fallback.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from taskloom.gateway.domain.authz import Operation, has_operation
from taskloom.gateway.handlers import Caller
from taskloom.gateway.security import AuthError
from taskloom.gateway.state import GatewayState

__all__ = ["STATUS_ROUTE", "StatusFastPath"]

STATUS_ROUTE = "/api/v1/workflows/{workflow_id}"
_STATUS_PATH = re.compile(r"/api/v1/workflows/([A-Za-z0-9_\-]{1,128})")
_JSON = (b"content-type", b"application/json")


@dataclass(frozen=True, slots=True)
class _Route:
    """What the request metrics read of a matched route: its path template."""

    path: str


_MATCHED = _Route(STATUS_ROUTE)


class StatusFastPath:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        match = _STATUS_PATH.fullmatch(scope["path"])
        token = _bearer(scope["headers"]) if match else None
        if match is None or token is None:
            await self.app(scope, receive, send)
            return
        application = scope["app"]
        state: GatewayState = application.state.taskloom
        try:
            principal = await state.verify(token)
        except AuthError:
            await self.app(scope, receive, send)
            return
        if not has_operation(principal, Operation.VIEW_WORKFLOW):
            await self.app(scope, receive, send)
            return
        if state.limiter.acquire(principal.subject, time.monotonic()) > 0:
            # a refused request takes no token, so the full app refuses it the same way
            await self.app(scope, receive, send)
            return
        scope["route"] = _MATCHED
        caller = Caller(principal, scope["client"][0] if scope.get("client") else None, _user_agent(scope))
        try:
            body = (await state.gateway.workflow_json(caller, match.group(1))).encode()
        except Exception as exc:
            await self._error(application, scope, receive, send, exc)
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", str(len(body)).encode()), _JSON],
            }
        )
        await send({"type": "http.response.body", "body": body})

    @staticmethod
    async def _error(
        application: Any, scope: dict[str, Any], receive: Any, send: Any, exc: Exception
    ) -> None:
        """Answer as the application's exception handlers would (they map every error the
        handler raises: gateway errors, store, database and connection failures)."""
        for cls in type(exc).__mro__:
            handler = application.exception_handlers.get(cls)
            if handler is not None:
                response = await handler(Request(scope, receive), exc)
                await response(scope, receive, send)
                return
        raise exc


def _bearer(headers: list[tuple[bytes, bytes]]) -> str | None:
    for name, value in headers:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            token = token.strip()
            return token if token and scheme.lower() == "bearer" else None
    return None


def _user_agent(scope: dict[str, Any]) -> str | None:
    for name, value in scope["headers"]:
        if name == b"user-agent":
            return str(value.decode("latin-1"))
    return None
