"""The ``taskloom`` commands (typer + rich)."""

from __future__ import annotations

import asyncio
import importlib
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from taskloom.cli.config import resolve_token, resolve_url
from taskloom.cli.requests import RequestFileError, body_from_fields, load_body
from taskloom.cli.watch import watch_workflow
from taskloom.gateway.client import ApiError, GatewayClient, GatewayUnreachable

__all__ = ["app"]

T = TypeVar("T")

app = typer.Typer(
    name="taskloom",
    help="Taskloom: durable multi-agent workflows. Submit requests, watch task graphs run, replay history.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
agents_app = typer.Typer(
    help="List live agents, or host agents in this process.", invoke_without_command=True
)
app.add_typer(agents_app, name="agents")
console = Console()
err = Console(stderr=True)

UrlOpt = Annotated[str | None, typer.Option("--url", help="Gateway URL [env TASKLOOM_GATEWAY_URL]")]
TokenOpt = Annotated[str | None, typer.Option("--token", help="Bearer token [env TASKLOOM_TOKEN]")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print raw JSON")]


def _fail(message: str, hint: str = "") -> None:
    err.print(f"[red]error:[/] {message}")
    if hint:
        err.print(f"[dim]hint: {hint}[/]")
    raise typer.Exit(1)


def _run(url: str | None, token: str | None, fn: Callable[[GatewayClient], Awaitable[T]]) -> T:
    async def go() -> T:
        async with GatewayClient(resolve_url(url), resolve_token(token)) as client:
            return await fn(client)

    try:
        return asyncio.run(go())
    except GatewayUnreachable as exc:
        _fail(str(exc))
    except ApiError as exc:
        _fail(f"the gateway answered {exc.status}: {exc.detail}", exc.hint)
    raise AssertionError("unreachable")


def _print_json(value: Any) -> None:
    console.print_json(json.dumps(value, default=str))


# --- workflows -------------------------------------------------------------------------------
@app.command()
def submit(
    file: Annotated[Path | None, typer.Argument(help="Request file (YAML or JSON)")] = None,
    request_type: Annotated[
        str | None, typer.Option("--type", help="e.g. system_analysis (default: classify)")
    ] = None,
    functional: Annotated[
        list[str] | None, typer.Option("--functional", "-f", help="Functional requirement")
    ] = None,
    non_functional: Annotated[list[str] | None, typer.Option("--non-functional", "-n")] = None,
    constraint: Annotated[list[str] | None, typer.Option("--constraint", "-c")] = None,
    complexity: Annotated[int | None, typer.Option(min=1, max=10)] = None,
    strategy: Annotated[str | None, typer.Option(help="fast | balanced | thorough")] = None,
    project: Annotated[str | None, typer.Option("--project", help="Project path for the agents")] = None,
    idempotency_key: Annotated[str | None, typer.Option("--idempotency-key")] = None,
    watch: Annotated[bool, typer.Option("--watch", "-w", help="Follow it until it ends")] = False,
    url: UrlOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Submit a complex request from a file or from flags."""
    try:
        body = (
            load_body(file)
            if file
            else body_from_fields(
                request_type,
                functional or [],
                non_functional or [],
                constraint or [],
                complexity,
                strategy,
                project,
            )
        )
    except RequestFileError as exc:
        _fail(str(exc))
    result = _run(url, token, lambda c: c.submit(body, idempotency_key))
    if as_json:
        _print_json(result)
    else:
        console.print(f"[green]submitted[/] workflow [bold]{result['workflow_id']}[/]")
        if result.get("task_count") is not None:
            console.print(
                f"  {result['task_count']} tasks, ~{result.get('estimated_duration')} min, "
                f"agents: {', '.join(result.get('assigned_agents') or [])}"
            )
        console.print(f"  status:    {result['status_endpoint']}")
        console.print(f"  websocket: {result['websocket_endpoint']}")
    if watch:
        _watch(result["workflow_id"], url, token, 0, live=sys.stdout.isatty())


@app.command()
def status(workflow_id: str, url: UrlOpt = None, token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """Show a workflow's state and its tasks."""
    state = _run(url, token, lambda c: c.status(workflow_id))
    if as_json:
        _print_json(state)
        return
    progress = state.get("progress", {})
    console.print(
        f"workflow [bold]{state['workflow_id']}[/]  [bold]{state['current_state']}[/]  "
        f"{progress.get('completed_tasks', 0)}/{progress.get('total_tasks', 0)} tasks "
        f"({progress.get('completion_percentage', 0):.0f}%)  owner {state.get('owner')}"
    )
    table = Table("task", "type", "agent", "state", "%", "attempts")
    for task in state.get("task_states", []):
        table.add_row(
            task["task_id"][:12],
            task.get("task_type") or "",
            task.get("assigned_agent") or "",
            task["state"],
            f"{task.get('completion_percentage', 0):.0f}",
            str(task.get("attempts", 0)),
        )
    if state.get("task_states"):
        console.print(table)
    if state.get("error"):
        console.print(f"[red]error:[/] {state['error']}")


@app.command("list")
def list_workflows(
    state: Annotated[str | None, typer.Option("--state")] = None,
    request_type: Annotated[str | None, typer.Option("--type")] = None,
    limit: int = 20,
    url: UrlOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List your workflows, newest first."""
    page = _run(url, token, lambda c: c.list_workflows(state=state, type=request_type, limit=limit))
    if as_json:
        _print_json(page)
        return
    table = Table("workflow", "type", "state", "progress", "submitted")
    for item in page["items"]:
        table.add_row(
            item["workflow_id"],
            item.get("request_type") or "",
            item["current_state"],
            f"{item['progress'].get('completion_percentage', 0):.0f}%",
            item.get("submitted_at") or "",
        )
    console.print(table)


def _watch(workflow_id: str, url: str | None, token: str | None, since: int, live: bool) -> str:
    client = GatewayClient(resolve_url(url), resolve_token(token))

    async def go() -> Any:
        try:
            return await watch_workflow(
                client.ws_url(workflow_id, since), client.token, workflow_id, console, live=live
            )
        finally:
            await client.aclose()

    try:
        outcome = asyncio.run(go())
    except OSError as exc:
        _fail(f"cannot reach the gateway at {client.base_url}: {exc}", "start it with `taskloom dev`")
    except Exception as exc:
        status_code = getattr(getattr(exc, "response", None), "status_code", None)
        if status_code in (401, 403):
            _fail(
                f"the gateway refused the stream ({status_code})",
                "check the token and that you own the workflow",
            )
        raise
    colour = {"completed": "green", "failed": "red", "cancelled": "magenta"}.get(outcome.status, "yellow")
    console.print(f"[{colour}]{outcome.status}[/] after position {outcome.last_position}")
    if outcome.close_code not in (1000, None):
        console.print(f"[yellow]stream closed: {outcome.close_code} {outcome.close_reason}[/]")
    return str(outcome.status)


@app.command()
def watch(
    workflow_id: str,
    since: Annotated[int, typer.Option(help="Only frames after this position")] = 0,
    url: UrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """Follow a workflow live (per-task progress) until it completes."""
    final = _watch(workflow_id, url, token, since, live=sys.stdout.isatty())
    if final in ("failed", "cancelled"):
        raise typer.Exit(2)


@app.command()
def events(
    workflow_id: str,
    after: int = 0,
    limit: Annotated[int, typer.Option(max=1000)] = 1000,
    url: UrlOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Print a workflow's event history."""
    page = _run(url, token, lambda c: c.events(workflow_id, after, limit))
    if as_json:
        _print_json(page)
        return
    table = Table("#", "time", "event", "task", "details")
    for e in page["events"]:
        data = e["data"]
        detail = data.get("agent") or data.get("reason") or data.get("current_phase") or ""
        if e["type"] == "TaskProgressed":
            detail = f"{data.get('completion_percentage', 0):.0f}% {data.get('current_phase', '')}"
        table.add_row(
            str(e["position"]),
            e["recorded_at"][11:23],
            e["type"],
            (data.get("task_id") or "")[:12],
            str(detail),
        )
    console.print(table)


@app.command()
def replay(
    workflow_id: str,
    at: Annotated[int, typer.Option("--at", min=1, help="Stream position to rebuild the state at")],
    url: UrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """Rebuild a workflow's state as it was at a position of its history."""
    _print_json(_run(url, token, lambda c: c.state_at(workflow_id, at)))


def _control(action: str) -> Callable[..., None]:
    def command(
        workflow_id: str,
        reason: Annotated[str, typer.Option(help="Why (kept in the audit trail)")] = "",
        url: UrlOpt = None,
        token: TokenOpt = None,
    ) -> None:
        result = _run(url, token, lambda c: c.control(workflow_id, action, reason))
        console.print(f"{action} of {workflow_id} accepted (command {result['command_id']})")

    command.__doc__ = f"{action.capitalize()} a workflow."
    return command


for _action in ("cancel", "pause", "resume"):
    app.command(_action)(_control(_action))


# --- agents ----------------------------------------------------------------------------------
@agents_app.callback()
def agents(ctx: typer.Context, url: UrlOpt = None, token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """List live agents and their load (or `taskloom agents run`)."""
    if ctx.invoked_subcommand is not None:
        return
    page = _run(url, token, lambda c: c.agents())
    if as_json:
        _print_json(page)
        return
    table = Table("agent", "instances", "load", "task types")
    for agent in page["agents"]:
        table.add_row(
            agent["agent_id"],
            str(len(agent["instances"])),
            f"{agent['load']}/{agent['capacity']}",
            ", ".join(agent["task_types"][:4]),
        )
    console.print(table)


@agents_app.command("run")
def agents_run(
    agents_list: Annotated[str, typer.Option("--agents", help="Comma-separated ids, or 'all'")] = "all",
    capacity: Annotated[int | None, typer.Option()] = None,
) -> None:
    """Host agents in this process until Ctrl-C."""
    module = importlib.import_module("taskloom.agents.__main__")
    argv = ["--agents", agents_list] + (["--capacity", str(capacity)] if capacity else [])
    module.main(argv)


# --- planning, tokens, services --------------------------------------------------------------
@app.command()
def plan(file: Annotated[Path, typer.Argument(help="Request file (YAML or JSON)")]) -> None:
    """Show the task graph the constructor would build, without running it."""
    try:
        planner = importlib.import_module("taskloom.constructor.plan")
    except ImportError:
        _fail("the constructor is not installed in this environment")
    try:
        console.print(planner.render_plan(planner.load_request(file)))
    except (OSError, ValueError) as exc:
        _fail(str(exc))


@app.command()
def token(
    user: Annotated[str, typer.Option("--user", help="Subject (owner) of the token")],
    role: Annotated[
        list[str], typer.Option("--role", help="viewer, user, developer, admin, privileged_user")
    ],
    ttl: Annotated[int | None, typer.Option(help="Lifetime in seconds")] = None,
) -> None:
    """Mint a token (HS256 from the dev secret, or RS256 from TASKLOOM_JWT_PRIVATE_KEY_FILE)."""
    from taskloom.gateway.config import GatewaySettings
    from taskloom.gateway.security import mint_token

    try:
        print(mint_token(GatewaySettings(), user, role, ttl))
    except ValueError as exc:
        _fail(str(exc))


@app.command()
def serve(
    service: Annotated[str, typer.Argument(help="gateway, orchestrator, constructor, context or agents")],
) -> None:
    """Run one service in the foreground."""
    from taskloom.cli.devstack import SERVICES

    if service not in SERVICES:
        _fail(f"unknown service {service!r}; choose from {', '.join(SERVICES)}")
    try:
        module = importlib.import_module(f"taskloom.{service}.__main__")
    except ImportError as exc:
        _fail(f"the {service} service is not installed: {exc}")
    sys.argv = [f"taskloom serve {service}"]
    module.main()


@app.command()
def migrate(
    streams: Annotated[
        bool, typer.Option("--streams", help="Also declare the NATS streams and the agent registry bucket")
    ] = False,
) -> None:
    """Apply every database migration (event store, orchestrator, context, gateway); idempotent."""
    from taskloom.cli.migrate import run_migrations
    from taskloom.settings import Settings

    try:
        for line in asyncio.run(run_migrations(Settings(), streams=streams)):
            console.print(line)
    except ValueError as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(f"cannot reach the database or NATS: {exc}", "check TASKLOOM_DATABASE_URL / TASKLOOM_NATS_URL")


@app.command()
def mcp(url: UrlOpt = None, token: TokenOpt = None) -> None:
    """Serve the Taskloom MCP tools over stdio (for AI IDE clients)."""
    from taskloom.gateway.mcp import run_stdio

    run_stdio(resolve_url(url), resolve_token(token))


@app.command()
def dev(
    port: Annotated[int, typer.Option(help="Gateway port")] = 8000,
    demo: Annotated[
        bool, typer.Option("--demo", help="Submit a request, follow it, write a report, exit")
    ] = False,
    request: Annotated[Path, typer.Option(help="Request file for --demo")] = Path(
        "examples/requests/system-analysis.yaml"
    ),
    reports: Annotated[Path, typer.Option(help="Where --demo writes its report")] = Path("reports"),
) -> None:
    """Run the whole stack locally (NATS, PostgreSQL and every service); Ctrl-C stops all."""
    from taskloom.cli.dev import run_dev

    raise typer.Exit(run_dev(port=port, demo=demo, request=request, reports=reports, console=console))
