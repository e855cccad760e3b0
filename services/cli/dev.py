"""``taskloom dev``: start the embedded stack, print where it listens, and either wait for
Ctrl-C or (``--demo``) submit a request, follow it live, write its report and exit."""

from __future__ import annotations

import asyncio
import importlib
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from rich.console import Console

from taskloom.cli.devstack import DevStack
from taskloom.cli.requests import RequestFileError, load_body
from taskloom.cli.watch import watch_workflow
from taskloom.gateway.client import GatewayClient
from taskloom.gateway.config import GatewaySettings
from taskloom.gateway.security import mint_token

__all__ = ["run_dev"]


def run_dev(*, port: int, demo: bool, request: Path, reports: Path, console: Console) -> int:
    settings = GatewaySettings()
    body: dict[str, Any] | None = None
    if demo:
        try:
            body = load_body(request)
        except RequestFileError as exc:
            console.print(f"[red]error:[/] {exc}")
            return 1
    console.print("[bold]starting the Taskloom stack[/] (NATS, PostgreSQL, services)…")
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        with DevStack(settings, gateway_port=port, log_dir=settings.data_dir / "logs") as stack:
            if stack.missing:
                console.print(f"[yellow]not installed, not started:[/] {', '.join(stack.missing)}")
            console.print(f"  API        {stack.gateway_url}/api/v1")
            console.print(f"  docs       {stack.gateway_url}/docs")
            console.print(f"  WebSocket  ws://127.0.0.1:{port}/ws/workflows/<workflow_id>")
            console.print(f"  MCP        {stack.gateway_url}/mcp")
            console.print(f"  NATS       {stack.nats_url}")
            console.print(f"  logs       {stack.log_dir}/")
            if body is not None:
                return _demo(stack.gateway_url, settings, body, reports, console)
            console.print("[dim]Ctrl-C stops everything[/]")
            while not stop.wait(1.0):
                dead = stack.dead()
                if dead:
                    for process in dead:
                        console.print(f"[red]{process.name} stopped[/]\n{process.tail()}")
                    return 1
    except KeyboardInterrupt:
        console.print("stopping…")
    except RuntimeError as exc:
        console.print(f"[red]error:[/] {exc}")
        return 1
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0


def _demo(url: str, settings: GatewaySettings, body: dict[str, Any], reports: Path, console: Console) -> int:
    token = mint_token(settings, "demo", ["developer"])
    live = sys.stdout.isatty()

    async def go() -> int:
        async with GatewayClient(url, token) as client:
            submitted = await client.submit(body)
            wf = submitted["workflow_id"]
            console.print(f"submitted workflow [bold]{wf}[/]")
            outcome = await watch_workflow(client.ws_url(wf), token, wf, console, live=live)
            state = await client.status(wf)
            result = None
            try:
                result = await client.result(wf)
            except Exception:  # noqa: S110 - a workflow that failed early has no result
                pass
            events = await client.all_events(wf)
        report = importlib.import_module("taskloom.agents.report")
        from taskloom.contracts.workflow import WorkflowResult, WorkflowState

        text = report.render_report(
            WorkflowState.model_validate(state),
            WorkflowResult.model_validate(result) if result else None,
            events,
        )
        path = await asyncio.to_thread(_write_report, reports, wf, text)
        console.print(f"workflow {outcome.status}; report: [bold]{path}[/]")
        return 0 if state.get("current_state") == "completed" else 2

    return asyncio.run(go())


def _write_report(folder: Path, workflow_id: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{workflow_id}.md"
    path.write_text(text)
    return path
