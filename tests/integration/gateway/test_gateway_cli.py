"""The ``taskloom`` command against a running gateway, as a user runs it (a subprocess; the
output is captured and checked)."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

import pytest

from taskloom.contracts.events import TaskCompleted, WorkflowCompleted, WorkflowStarted
from taskloom.contracts.graph import TaskGraph, TaskSpec
from taskloom.contracts.workflow import WorkflowResult
from taskloom.eventstore import EventStore, NewEvent
from taskloom.settings import Settings


def taskloom(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "taskloom.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**__import__("os").environ, "COLUMNS": "200", **(env or {})},
    )


@pytest.fixture
def cli_env(gateway_url, token_for, user):
    return {"TASKLOOM_GATEWAY_URL": gateway_url, "TASKLOOM_TOKEN": token_for(user("cli"), "developer")}


def test_submit_status_events_and_watch(cli_env, stack, tmp_path):
    request = tmp_path / "req.yaml"
    request.write_text(
        "request_type: system_analysis\n"
        "requirements:\n  functional: [Analyze code quality, Check test coverage]\n"
        "context:\n  project_path: examples/sample-project\n"
    )
    submitted = taskloom("submit", str(request), "--json", env=cli_env)
    assert submitted.returncode == 0, submitted.stderr
    wf = json.loads(submitted.stdout)["workflow_id"]

    status = taskloom("status", wf, env=cli_env)
    assert status.returncode == 0, status.stderr
    assert wf in status.stdout and "pending" in status.stdout

    # the orchestrator's part, played by appending its events
    async def finish() -> None:
        store = EventStore.from_settings(Settings(database_url=stack.database_url, nats_url=stack.nats_url))
        graph = TaskGraph(
            request_id="r",
            tasks=[TaskSpec(task_id="t1", task_type="code_analysis", assigned_agent="core-services")],
        )
        result = WorkflowResult(
            workflow_id=wf, success=True, completion_percentage=100.0, completed_tasks=["t1"]
        )
        events = [
            WorkflowStarted(workflow_id=wf, graph=graph),
            TaskCompleted(workflow_id=wf, task_id="t1", agent="core-services", attempt=1),
            WorkflowCompleted(workflow_id=wf, result=result),
        ]
        try:
            for version, event in enumerate(events, start=1):
                await store.append(
                    wf, [NewEvent(event.event_id, event.type, event.model_dump(mode="json"))], version
                )
        finally:
            await store.close()

    import asyncio

    asyncio.run(finish())

    events = taskloom("events", wf, env=cli_env)
    assert events.returncode == 0, events.stderr
    for name in ("WorkflowSubmitted", "WorkflowStarted", "TaskCompleted", "WorkflowCompleted"):
        assert name in events.stdout

    watched = taskloom("watch", wf, env=cli_env)
    assert watched.returncode == 0, watched.stderr
    assert "completion" in watched.stdout and "completed after position 4" in watched.stdout

    listed = taskloom("list", "--json", env=cli_env)
    assert wf in [i["workflow_id"] for i in json.loads(listed.stdout)["items"]]


def test_helpful_errors(gateway_url, cli_env):
    down = taskloom("status", "x", env={**cli_env, "TASKLOOM_GATEWAY_URL": "http://127.0.0.1:9"})
    assert down.returncode == 1
    assert "cannot reach the gateway" in down.stderr and "taskloom dev" in down.stderr
    bad = taskloom("status", "x", env={**cli_env, "TASKLOOM_TOKEN": "nonsense"})
    assert bad.returncode == 1
    assert "401" in bad.stderr and "taskloom token" in bad.stderr
    missing = taskloom("status", str(uuid.uuid4()), env=cli_env)
    assert missing.returncode == 1 and "404" in missing.stderr


def test_token_command_mints_a_usable_token(gateway_url):
    minted = taskloom("token", "--user", "tina", "--role", "viewer")
    assert minted.returncode == 0
    listed = taskloom(
        "list", "--json", env={"TASKLOOM_GATEWAY_URL": gateway_url, "TASKLOOM_TOKEN": minted.stdout.strip()}
    )
    assert listed.returncode == 0 and json.loads(listed.stdout)["items"] == []
    refused = taskloom("token", "--user", "tina", "--role", "root")
    assert refused.returncode == 1 and "unknown role" in refused.stderr
