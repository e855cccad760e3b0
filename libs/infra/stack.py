"""The infrastructure a Taskloom process needs, resolved once: existing servers when URLs are
configured, testcontainers when asked for and Docker answers, embedded servers otherwise."""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

import asyncpg

from taskloom.infra.embedded import EmbeddedNats, EmbeddedPostgres
from taskloom.settings import Settings, asyncpg_dsn

__all__ = ["Stack", "StackInfo", "create_database", "drop_database"]


@dataclass(frozen=True)
class StackInfo:
    nats_url: str
    database_url: str
    nats_monitor_url: str | None = None
    embedded: tuple[str, ...] = field(default_factory=tuple)


class Stack:
    """Context manager that provides NATS and PostgreSQL for as long as it is open."""

    def __init__(
        self,
        settings: Settings | None = None,
        data_dir: Path | None = None,
        durable: bool = True,
        nats_config: str = "",
    ) -> None:
        self.settings = settings or Settings()
        self._tmp: str | None = None
        self.data_dir = data_dir
        self.durable = durable
        self.nats_config = nats_config
        self.nats: EmbeddedNats | None = None
        self.postgres: EmbeddedPostgres | None = None
        self._containers: list[object] = []
        self.info: StackInfo | None = None

    def start(self) -> StackInfo:
        s = self.settings
        if self.data_dir is None:
            self._tmp = tempfile.mkdtemp(prefix="taskloom-")
            self.data_dir = Path(self._tmp)
        nats_url, db_url, monitor = s.nats_url, s.database_url, None
        embedded: list[str] = []
        if (nats_url is None or db_url is None) and s.testcontainers and _docker_answers():
            nats_url, db_url = self._start_containers(nats_url, db_url)
        if nats_url is None:
            self.nats = EmbeddedNats(self.data_dir / "nats", extra_config=self.nats_config).start()
            nats_url, monitor = self.nats.url, self.nats.monitor_url
            embedded.append("nats")
        if db_url is None:
            self.postgres = EmbeddedPostgres(self.data_dir / "postgres", durable=self.durable).start()
            db_url = self.postgres.url
            embedded.append("postgres")
        self.info = StackInfo(nats_url, db_url, monitor, tuple(embedded))
        return self.info

    def _start_containers(self, nats_url: str | None, db_url: str | None) -> tuple[str | None, str | None]:
        from testcontainers.core.container import DockerContainer
        from testcontainers.postgres import PostgresContainer

        if nats_url is None:
            nats = DockerContainer("nats:2.10-alpine").with_command("-js").with_exposed_ports(4222)
            nats.start()
            self._containers.append(nats)
            nats_url = f"nats://{nats.get_container_host_ip()}:{nats.get_exposed_port(4222)}"
        if db_url is None:
            pg = PostgresContainer("postgres:16-alpine", driver=None)
            pg.start()
            self._containers.append(pg)
            db_url = pg.get_connection_url()
        return nats_url, db_url

    def stop(self) -> None:
        if self.nats:
            self.nats.stop()
        if self.postgres:
            self.postgres.stop()
        for c in self._containers:
            with contextlib.suppress(Exception):
                c.stop()  # type: ignore[attr-defined]
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def _docker_answers() -> bool:
    try:
        import docker

        docker.from_env().ping()
        return True
    except Exception:
        return False


_DB_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def _with_database(url: str, name: str) -> str:
    base, _, _ = url.rpartition("/")
    query = ""
    if "?" in url:
        query = "?" + url.split("?", 1)[1]
    return f"{base}/{name}{query}"


async def _admin(url: str, sql: str) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def create_database(url: str, name: str) -> str:
    """Create database ``name`` on the server of ``url``; return its URL."""
    if not _DB_NAME.fullmatch(name):
        raise ValueError(f"bad database name {name!r}")
    asyncio.run(_admin(url, f'CREATE DATABASE "{name}"'))
    return _with_database(url, name)


def drop_database(url: str, name: str) -> None:
    if not _DB_NAME.fullmatch(name):
        raise ValueError(f"bad database name {name!r}")
    asyncio.run(_admin(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
