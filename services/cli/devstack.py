"""The embedded development stack: NATS and PostgreSQL (``taskloom.infra.Stack``) plus every
Taskloom service as a child process, stopped together."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Self

import httpx

from taskloom.settings import Settings

__all__ = ["SERVICES", "DevStack", "ServiceProcess", "free_port", "service_available"]

SERVICES = ("context", "constructor", "orchestrator", "agents", "gateway")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def service_available(name: str) -> bool:
    try:
        return importlib.util.find_spec(f"taskloom.{name}.__main__") is not None
    except ModuleNotFoundError:
        return False


@dataclass
class ServiceProcess:
    name: str
    args: list[str]
    env: dict[str, str]
    port: int
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = field(default=None, repr=False)

    def start(self) -> None:
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, *self.args],
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            # own process group: Ctrl-C in the terminal reaches the CLI, which stops children in order
            start_new_session=True,
        )

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_ready(self, timeout: float = 60.0, path: str = "/health") -> None:  # noqa: ASYNC109
        deadline = time.monotonic() + timeout
        url = f"http://127.0.0.1:{self.port}{path}"
        while time.monotonic() < deadline:
            if not self.alive:
                raise RuntimeError(f"{self.name} exited early; see {self.log_path}\n{self.tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url, timeout=1.0).status_code == 200:
                    return
            time.sleep(0.2)
        raise RuntimeError(
            f"{self.name} did not become ready on {url} in {timeout:.0f} s; see {self.log_path}"
        )

    def stop(self, grace: float = 10.0) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self._log is not None:
            self._log.close()
            self._log = None

    def tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""


def service_args(name: str, agents: str = "all") -> list[str]:
    if name == "agents":
        return ["-m", "taskloom.agents", "--agents", agents]
    return ["-m", f"taskloom.{name}"]


@dataclass
class DevStack:
    """Infrastructure plus services; a context manager that stops everything on exit."""

    settings: Settings
    gateway_port: int = 8000
    log_dir: Path = Path(".taskloom/logs")
    services: tuple[str, ...] = SERVICES
    agents: str = "all"
    extra_env: dict[str, str] = field(default_factory=dict)
    processes: list[ServiceProcess] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    _stack: object | None = None

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"

    def __enter__(self) -> Self:
        from taskloom.infra import Stack

        stack = Stack(self.settings)
        stack.__enter__()
        self._stack = stack
        try:
            assert stack.info is not None
            self.nats_url, self.database_url = stack.info.nats_url, stack.info.database_url
            self.log_dir.mkdir(parents=True, exist_ok=True)
            for name in self.services:
                if not service_available(name):
                    self.missing.append(name)
                    continue
                port = self.gateway_port if name == "gateway" else free_port()
                env = {
                    **os.environ,
                    "TASKLOOM_NATS_URL": self.nats_url,
                    "TASKLOOM_DATABASE_URL": self.database_url,
                    "TASKLOOM_NAMESPACE": self.settings.namespace,
                    "TASKLOOM_HTTP_PORT": str(port),
                    "TASKLOOM_HTTP_HOST": "127.0.0.1",
                    **self.extra_env,
                }
                process = ServiceProcess(
                    name, service_args(name, self.agents), env, port, self.log_dir / f"{name}.log"
                )
                process.start()
                self.processes.append(process)
                # the gateway migrates and creates streams others rely on: let each come up in turn
                process.wait_ready(path="/ready" if name == "gateway" else "/health")
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        for process in reversed(self.processes):
            process.stop()
        self.processes.clear()
        if self._stack is not None:
            self._stack.__exit__(None, None, None)  # type: ignore[attr-defined]
            self._stack = None

    def dead(self) -> list[ServiceProcess]:
        return [p for p in self.processes if not p.alive]
