"""The orchestrator's event relay in a child process of its own (``event_relay = "process"``, the
default): every stored event is published to ``<ns>.events.<workflow>.<type>`` by a process that
does nothing else, so the relay's decoding, publishing and checkpointing run on the other core
instead of between the orchestrator's decisions.

``EventRelayProcess`` starts ``python -m taskloom.orchestrator.relay`` and writes it one JSON line
on stdin: the connection settings (secrets included, hence not on the command line), the schema
and the relay's name. The child relays until its stdin closes, which is also what happens when the
orchestrator dies, even by SIGKILL, or until SIGTERM/SIGINT. A child that exits on its own is
started again after ``restart_delay``; it resumes from the relay's checkpoint in PostgreSQL, and
JetStream drops what it publishes twice by the events' ids.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
from typing import Any, Final

from taskloom.observability import configure_logging, get_logger
from taskloom.runtime import run_loop
from taskloom.settings import Settings

__all__ = ["RELAY_OPTIONS", "EventRelayProcess", "launch_spec"]

_log = get_logger(__name__)

RELAY_OPTIONS: Final[dict[str, Any]] = {
    "poll_interval": 0.5,
    # the commits of a few milliseconds share one cycle: watchers see events a few ms later, and
    # a workflow's steps cost one relay cycle each only when they are apart
    "coalesce": 0.005,
}
"""The deployed relay's options, inline or in its own process."""

# what the child needs of the orchestrator's settings; the rest it reads from the environment
_PASSED: Final = (
    "nats_url",
    "nats_user",
    "nats_password",
    "database_url",
    "namespace",
    "log_level",
    "log_format",
    "event_loop",
)


def launch_spec(settings: Settings, *, schema: str, name: str) -> bytes:
    """The JSON line the child reads on stdin."""
    passed: dict[str, Any] = {}
    for field in _PASSED:
        value = getattr(settings, field)
        passed[field] = value.get_secret_value() if hasattr(value, "get_secret_value") else value
    return json.dumps({"settings": passed, "schema": schema, "name": name}).encode() + b"\n"


class EventRelayProcess:
    """Starts the relay's child process and starts it again whenever it exits on its own."""

    def __init__(self, settings: Settings, *, schema: str, name: str, restart_delay: float = 1.0) -> None:
        self.spec = launch_spec(settings, schema=schema, name=name)
        self.name = name
        self.restart_delay = restart_delay
        self.restarts = 0
        """How many times the child was started again after exiting on its own."""
        self._proc: asyncio.subprocess.Process | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self.alive and self._proc is not None else None

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    def start(self) -> None:
        self._stopping = False
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._supervise(), name=f"event-relay-process-{self.name}")

    async def _spawn(self) -> asyncio.subprocess.Process:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "taskloom.orchestrator.relay", stdin=asyncio.subprocess.PIPE
        )
        assert proc.stdin is not None
        proc.stdin.write(self.spec)
        with contextlib.suppress(ConnectionError):  # it died at once: wait() reports it
            await proc.stdin.drain()
        return proc

    async def _supervise(self) -> None:
        while True:
            try:
                self._proc = await self._spawn()
            except OSError as exc:
                _log.warning("event_relay_process_spawn_failed", relay=self.name, error=repr(exc))
            else:
                _log.info("event_relay_process_started", relay=self.name, pid=self._proc.pid)
                code = await self._proc.wait()
                if self._stopping:
                    return
                _log.warning("event_relay_process_exited", relay=self.name, returncode=code)
            self.restarts += 1
            await asyncio.sleep(self.restart_delay)

    async def stop(self, grace: float = 10.0) -> None:
        """Close the child's stdin (it stops and drains), SIGKILL it after ``grace`` seconds."""
        self._stopping = True
        proc = self._proc
        if proc is not None and proc.returncode is None:
            if proc.stdin is not None:
                proc.stdin.close()
            try:
                async with asyncio.timeout(grace):
                    await proc.wait()
            except TimeoutError:
                proc.kill()
                await proc.wait()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def _relay(settings: Settings, spec: dict[str, Any]) -> None:
    from taskloom.bus import Bus  # noqa: PLC0415 - only the child needs them
    from taskloom.eventstore import EventStore  # noqa: PLC0415
    from taskloom.orchestrator.service import event_relay  # noqa: PLC0415

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    class _Parent(asyncio.Protocol):
        def connection_lost(self, exc: Exception | None) -> None:
            stop.set()  # stdin closed: the orchestrator stopped, or died

    await loop.connect_read_pipe(_Parent, sys.stdin)
    # one kept connection and one listening; a small pool covers the rest
    store = EventStore.connect(settings.database_url or "", 2, schema=spec["schema"])
    bus = await Bus.connect(settings, name=f"{spec['name']}-relay")
    relay = event_relay(store, bus.js, bus.subjects, name=spec["name"], **RELAY_OPTIONS)
    relay.start()
    _log.info("event_relay_process_running", relay=spec["name"])
    try:
        await stop.wait()
    finally:
        await relay.stop()
        with contextlib.suppress(Exception):
            await bus.drain(timeout=5)
        await store.close()


def main() -> None:
    line = sys.stdin.buffer.readline()
    if not line.strip():
        sys.exit("taskloom.orchestrator.relay expects its launch spec as one JSON line on stdin")
    spec = json.loads(line)
    settings = Settings(**spec["settings"])
    configure_logging(settings.log_level, settings.log_format, service="orchestrator-relay")
    run_loop(_relay(settings, spec), settings.event_loop)


if __name__ == "__main__":
    main()
