"""The seed's MCP tools (plus list, events and cancel) for AI IDE clients, built on the official
``mcp`` SDK. Every tool calls the gateway's REST API, so authorization, audit and rate limits
are the API's own: over stdio (``taskloom mcp``) with the token given at start, and over
streamable HTTP (mounted on the gateway at ``/mcp``) with the caller's own bearer token."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette

from taskloom.gateway.client import ApiError, GatewayClient, GatewayUnreachable
from taskloom.gateway.config import GatewaySettings

__all__ = ["build_server", "http_app", "run_stdio"]

ClientFactory = Callable[[Context], GatewayClient]

INSTRUCTIONS = """Taskloom turns a complex software request into a task graph run by specialist
agents. Submit with submit_complex_request, then poll get_workflow_status (or read
get_workflow_events) until current_state is completed, failed or cancelled."""


def build_server(client_for: ClientFactory) -> MCPServer:
    server = MCPServer("taskloom", instructions=INSTRUCTIONS, version="1.0.0")

    async def call(ctx: Context, fn: Callable[[GatewayClient], Awaitable[Any]]) -> dict[str, Any]:
        client = client_for(ctx)
        try:
            result = await fn(client)
        except ApiError as exc:
            hint = f" ({exc.hint})" if exc.hint else ""
            raise ToolError(f"Taskloom refused: HTTP {exc.status}: {exc.detail}{hint}") from None
        except GatewayUnreachable as exc:
            raise ToolError(str(exc)) from None
        finally:
            await client.aclose()
        return result if isinstance(result, dict) else {"result": result}

    @server.tool()
    async def submit_complex_request(
        request_type: str,
        requirements: dict[str, Any],
        ctx: Context,
        complexity_level: int = 5,
        execution_strategy: str = "balanced",
        context: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Submit a complex multi-agent request for task graph processing.

        request_type: feature_development, documentation_update, system_analysis,
        release_management, bug_investigation (or "auto" to classify).
        requirements: {"functional": [...], "non_functional": [...], "constraints": [...]}.
        complexity_level: 1-10. execution_strategy: fast, thorough or balanced.
        context: extra context such as {"project_path": "..."}.
        Returns the workflow id, task count, estimated duration, agents and status URLs."""
        body = {
            "request": {
                "type": request_type,
                "requirements": requirements,
                "complexity": complexity_level,
                "strategy": execution_strategy,
            },
            "context": context or {},
        }
        return await call(ctx, lambda c: c.submit(body))

    @server.tool()
    async def get_workflow_status(workflow_id: str, ctx: Context) -> dict[str, Any]:
        """Current state of a workflow: progress, task states, active agents and metrics."""
        return await call(ctx, lambda c: c.status(workflow_id))

    @server.tool()
    async def agent_collaboration_request(
        requesting_agent: str,
        target_agents: list[str],
        collaboration_type: str,
        context: dict[str, Any],
        ctx: Context,
        urgency: str = "normal",
        workflow_id: str | None = None,
    ) -> dict[str, Any]:
        """Ask agents to collaborate within a workflow: consultation, review, handoff or merge.
        ``workflow_id`` may also be given inside ``context``. Returns the collaboration id and
        the channels where its outcome appears."""
        wf = workflow_id or context.get("workflow_id")
        body = {
            "requesting_agent": requesting_agent,
            "target_agents": target_agents,
            "collaboration_type": collaboration_type,
            "context": context,
            "urgency": urgency,
            "workflow_id": wf,
        }
        return await call(ctx, lambda c: c.collaborate(body))

    @server.tool()
    async def list_workflows(
        ctx: Context,
        state: str | None = None,
        request_type: str | None = None,
        limit: int = 20,
        cursor: str | None = None,
    ) -> dict[str, Any]:
        """Your workflows, newest first; filter by state or request type; page with cursor."""
        filters = {"state": state, "type": request_type, "limit": limit, "cursor": cursor}
        return await call(ctx, lambda c: c.list_workflows(**filters))

    @server.tool()
    async def get_workflow_events(
        workflow_id: str, ctx: Context, after: int = 0, limit: int = 100
    ) -> dict[str, Any]:
        """The workflow's event history after a position (for replaying what happened)."""
        return await call(ctx, lambda c: c.events(workflow_id, after, limit))

    @server.tool()
    async def cancel_workflow(workflow_id: str, ctx: Context, reason: str = "") -> dict[str, Any]:
        """Cancel a running workflow (needs the developer or admin role)."""
        return await call(ctx, lambda c: c.control(workflow_id, "cancel", reason))

    return server


def run_stdio(base_url: str, token: str | None) -> None:
    """Serve the tools over stdio, calling the gateway at ``base_url`` with ``token``."""
    import logging

    import anyio

    # stdout carries the protocol and stderr is the client's log: keep request chatter out
    logging.getLogger("httpx").setLevel(logging.WARNING)
    server = build_server(lambda _ctx: GatewayClient(base_url, token))
    anyio.run(server.run_stdio_async)


def _loopback_url(settings: GatewaySettings) -> str:
    host = settings.http_host if settings.http_host not in ("0.0.0.0", "::", "") else "127.0.0.1"  # noqa: S104
    return os.environ.get("TASKLOOM_MCP_GATEWAY_URL") or f"http://{host}:{settings.http_port}"


def http_app(settings: GatewaySettings) -> Starlette:
    """The streamable HTTP endpoint (``/mcp``): tools call the API with the caller's own token."""

    def client_for(ctx: Context) -> GatewayClient:
        headers = ctx.headers or {}
        auth = headers.get("authorization") or headers.get("Authorization") or ""
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else None
        return GatewayClient(_loopback_url(settings), token)

    hosts = ["127.0.0.1:*", "localhost:*", "[::1]:*"]
    if settings.public_url:
        hosts.append(urlsplit(settings.public_url).netloc)
    security = TransportSecuritySettings(
        enable_dns_rebinding_protection=settings.http_host in ("127.0.0.1", "localhost", "::1"),
        allowed_hosts=hosts,
        allowed_origins=[*settings.allowed_origins, "http://127.0.0.1:*", "http://localhost:*"],
    )
    return build_server(client_for).streamable_http_app(
        streamable_http_path="/mcp", stateless_http=True, json_response=True, transport_security=security
    )
