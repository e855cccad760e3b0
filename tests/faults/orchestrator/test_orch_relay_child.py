"""The orchestrator's event relay child process goes when its orchestrator is killed by SIGKILL:
it watches its stdin, which closes with the parent, so no relay outlives its orchestrator."""

from __future__ import annotations

import asyncio
import signal

import psutil
import pytest
from orch_fault_support import Processes

from taskloom.settings import Settings


def _relay_children(pid: int) -> list[psutil.Process]:
    return [
        c for c in psutil.Process(pid).children() if "taskloom.orchestrator.relay" in " ".join(c.cmdline())
    ]


@pytest.mark.slow
async def test_the_relay_process_goes_when_the_orchestrator_is_killed(
    settings: Settings, namespace: str
) -> None:
    procs = Processes(settings, schema=namespace)
    try:
        orch = procs.orchestrator()
        for _ in range(600):  # the orchestrator starts it once it is up: a minute at most
            if children := _relay_children(orch.pid):
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the orchestrator started no relay child")
        orch.send_signal(signal.SIGKILL)
        orch.wait(10)
        _, alive = psutil.wait_procs(children, timeout=20)
        assert not [p for p in alive if p.status() != psutil.STATUS_ZOMBIE], "relay outlived its orchestrator"
    finally:
        procs.close()
