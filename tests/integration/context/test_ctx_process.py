"""The context service as a real process (``python -m taskloom.context``): serves requests,
survives malformed ones, reloads its policy on SIGHUP, keeps the old policy when the new file
is bad, and stops cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from taskloom.context import ContextClient, ContextUnavailable
from taskloom.contracts.base import new_id
from taskloom.contracts.context import ContextError, parse_context_reply
from taskloom.contracts.subjects import Subjects
from taskloom.settings import Settings

pytestmark = pytest.mark.slow

POLICY = """
rules:
  - {{name: read, agents: [{reader}], scopes: [global, workflow], operations: [read]}}
  - {{name: admin, agents: [orchestrator], scopes: [global, workflow], operations: [read, write],
      max_classification: restricted}}
"""


async def wait_ready(client: ContextClient, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(300):
        assert proc.poll() is None, "context service exited during start-up"
        try:
            await client.audit(limit=1)
            return
        except ContextUnavailable:
            await asyncio.sleep(0.05)
    raise AssertionError("context service did not start")


async def eventually(check: Any) -> None:
    for _ in range(200):
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached")


async def test_process_serves_reloads_on_sighup_and_stops_cleanly(
    settings: Settings, nc: Any, subjects: Subjects, tmp_path: Path
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY.format(reader="alpha"))
    env = {
        **os.environ,
        "TASKLOOM_NATS_URL": settings.nats_url or "",
        "TASKLOOM_DATABASE_URL": settings.database_url or "",
        "TASKLOOM_NAMESPACE": settings.namespace,
        "TASKLOOM_HTTP_PORT": "0",
        "TASKLOOM_DATA_DIR": str(tmp_path),
        "TASKLOOM_CONTEXT_POLICY_FILE": str(policy),
        "TASKLOOM_LOG_LEVEL": "WARNING",
    }
    proc = subprocess.Popen([sys.executable, "-m", "taskloom.context"], env=env)  # noqa: S603
    try:
        client = ContextClient(nc, subjects, timeout=5)
        await wait_ready(client, proc)
        wf = new_id()
        await client.put("orchestrator", "workflow", "plan", "p", workflow_id=wf)
        assert (await client.get("alpha", wf)).context == {"plan": "p"}

        garbage = await client.request_raw("get", b"\x00\xff garbage")
        assert isinstance(parse_context_reply(garbage), ContextError)
        assert proc.poll() is None

        policy.write_text(POLICY.format(reader="beta"))
        proc.send_signal(signal.SIGHUP)

        async def beta_reads() -> bool:
            return (await client.get("beta", wf)).context == {"plan": "p"}

        await eventually(beta_reads)
        assert (await client.get("alpha", wf)).context == {}

        policy.write_text("rules: [broken")
        proc.send_signal(signal.SIGHUP)
        await asyncio.sleep(0.3)
        assert proc.poll() is None
        assert (await client.get("beta", wf, use_cache=False)).context == {"plan": "p"}

        proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(proc.wait, 15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


async def test_process_refuses_to_start_with_a_bad_policy(settings: Settings, tmp_path: Path) -> None:
    policy = tmp_path / "bad.yaml"
    policy.write_text("rules:\n  - {name: r, agents: [a], scopes: [universe], operations: [read]}\n")
    env = {
        **os.environ,
        "TASKLOOM_NATS_URL": settings.nats_url or "",
        "TASKLOOM_DATABASE_URL": settings.database_url or "",
        "TASKLOOM_NAMESPACE": settings.namespace,
        "TASKLOOM_HTTP_PORT": "0",
        "TASKLOOM_DATA_DIR": str(tmp_path),
        "TASKLOOM_CONTEXT_POLICY_FILE": str(policy),
    }
    proc = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "taskloom.context"], env=env, capture_output=True, timeout=60, check=False
    )
    output = (proc.stdout + proc.stderr).decode()
    assert proc.returncode == 2
    assert "universe" in output and str(policy) in output
    assert "Traceback" not in output
