"""A small, generic schema-migration runner any Taskloom component can use at start-up.

Migrations are ``NNNN_description.sql`` files in one folder per component, applied in version
order and recorded in ``taskloom_migrations(component, version, name, checksum, applied_at)``.
Everything runs in one transaction under a transaction-scoped advisory lock, so concurrent
starters queue behind each other and then find nothing left to do; a failing migration leaves
the schema as it was. Usage::

    await migrate(engine, component="eventstore", migrations_dir=Path(...), schema="public")
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from sqlalchemy.ext.asyncio import AsyncEngine

from taskloom.eventstore.errors import MigrationError
from taskloom.observability import get_logger

__all__ = ["Migration", "load_migrations", "migrate", "quote_ident"]

_log = get_logger(__name__)

# One fixed key for every component: migrations are rare and short, and a single lock also
# serialises the CREATE TABLE/SCHEMA IF NOT EXISTS statements, which can race with each other.
_LOCK_KEY: Final = 0x7461_736B_6C6F_6F6D  # "taskloom"
_FILE_NAME = re.compile(r"(\d{1,9})_([A-Za-z0-9_\-]+)\.sql")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def quote_ident(name: str) -> str:
    """``name`` as a quoted SQL identifier; only plain identifiers are accepted."""
    if not _IDENT.fullmatch(name):
        raise ValueError(f"not a plain SQL identifier: {name!r}")
    return f'"{name}"'


def load_migrations(migrations_dir: Path) -> list[Migration]:
    """The ``NNNN_name.sql`` files of a folder in version order (other files are ignored)."""
    found: dict[int, Migration] = {}
    for path in sorted(Path(migrations_dir).glob("*.sql")):
        match = _FILE_NAME.fullmatch(path.name)
        if match is None:
            raise MigrationError(f"migration file {path.name!r} is not named NNNN_description.sql")
        version = int(match.group(1))
        if version < 1:
            raise MigrationError(f"migration versions start at 1: {path.name!r}")
        if version in found:
            raise MigrationError(f"two migrations with version {version}: {found[version].name}, {path.name}")
        found[version] = Migration(version, path.name, path.read_text(encoding="utf-8"))
    return [found[v] for v in sorted(found)]


async def migrate(
    engine: AsyncEngine, component: str, migrations_dir: Path, schema: str = "public"
) -> list[int]:
    """Apply the component's pending migrations into ``schema``; return the versions applied.

    Safe to call from many processes at once and any number of times.
    """
    migrations = load_migrations(migrations_dir)
    quoted = quote_ident(schema)
    applied_now: list[int] = []
    async with engine.connect() as conn:
        raw = (await conn.get_raw_connection()).driver_connection
        assert raw is not None
        # asyncpg's simple-query protocol is what runs a multi-statement .sql file; SQLAlchemy's
        # prepared statements cannot, so the transaction is driven on the driver connection.
        try:
            async with raw.transaction():
                await raw.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
                await raw.execute(f"CREATE SCHEMA IF NOT EXISTS {quoted}")
                await raw.execute(f"SET LOCAL search_path TO {quoted}")
                await raw.execute(
                    f"""CREATE TABLE IF NOT EXISTS {quoted}.taskloom_migrations (
                        component text NOT NULL,
                        version integer NOT NULL,
                        name text NOT NULL,
                        checksum text NOT NULL,
                        applied_at timestamptz NOT NULL DEFAULT now(),
                        PRIMARY KEY (component, version))"""
                )
                rows = await raw.fetch(
                    f"SELECT version, checksum FROM {quoted}.taskloom_migrations WHERE component = $1",  # noqa: S608
                    component,
                )
                done = {int(r["version"]): str(r["checksum"]) for r in rows}
                for m in migrations:
                    if m.version in done:
                        if done[m.version] != m.checksum:
                            # history is never edited: say so loudly, but a restart must not
                            # be blocked by a whitespace change
                            _log.warning("migration_changed_after_apply", component=component, name=m.name)
                        continue
                    await raw.execute(m.sql)
                    await raw.execute(
                        f"INSERT INTO {quoted}.taskloom_migrations (component, version, name, checksum)"  # noqa: S608
                        " VALUES ($1, $2, $3, $4)",
                        component,
                        m.version,
                        m.name,
                        m.checksum,
                    )
                    applied_now.append(m.version)
        except Exception as exc:
            raise MigrationError(f"migrating {component!r} in schema {schema!r} failed: {exc}") from exc
    if applied_now:
        _log.info("migrations_applied", component=component, schema=schema, versions=applied_now)
    return applied_now
