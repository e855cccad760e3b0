"""PostgreSQL plumbing shared by the store and the relays: borrowing the driver connection from
SQLAlchemy's pool, and translating driver errors into the store's typed errors."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncEngine

from taskloom.eventstore.errors import EventStoreError, RetryableError, StoreUnavailable

__all__ = ["PinnedConnection", "driver_connection", "pg_error", "raw_transaction", "translate_errors"]

# SQLSTATE classes: 08 connection exception, 57P operator intervention (shutdown, crash
# recovery), 53 insufficient resources; 40 is serialization failure / deadlock.
_UNAVAILABLE_PREFIXES = ("08", "57P", "53")
_RETRYABLE_PREFIXES = ("40", "55P03")


def pg_error(exc: BaseException) -> Any | None:
    """The asyncpg error behind ``exc`` (itself, or wrapped by SQLAlchemy), else ``None``."""
    if isinstance(exc, asyncpg.PostgresError):
        return exc
    if isinstance(exc, sa_exc.DBAPIError):
        cause = getattr(exc.orig, "__cause__", None)
        if isinstance(cause, asyncpg.PostgresError):
            return cause
    return None


def _is_connection_failure(exc: BaseException) -> bool:
    # InternalClientError: the driver's protocol is out of step (a backend terminated under it)
    broken = asyncpg.InterfaceError | asyncpg.PostgresConnectionError | asyncpg.InternalClientError
    if isinstance(exc, OSError | TimeoutError | broken):
        return True
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, sa_exc.InterfaceError | sa_exc.OperationalError):
        return True
    pg = pg_error(exc)
    return pg is not None and str(getattr(pg, "sqlstate", "")).startswith(_UNAVAILABLE_PREFIXES)


def _broken(exc: BaseException, driver: Any) -> bool:
    """Whether a connection whose work ended in ``exc`` must not serve anyone again: it failed
    (raw, or already translated to ``StoreUnavailable``), closed, or was cancelled half-way."""
    if isinstance(exc, asyncio.CancelledError | StoreUnavailable):
        return True
    return _is_connection_failure(exc) or bool(driver.is_closed())


@asynccontextmanager
async def translate_errors(action: str) -> AsyncIterator[None]:
    """Let the store's own errors through; turn everything the driver raises into one of them."""
    try:
        yield
    except EventStoreError:
        raise
    except Exception as exc:
        if _is_connection_failure(exc):
            raise StoreUnavailable(f"{action}: {exc}") from exc
        pg = pg_error(exc)
        if pg is not None and str(getattr(pg, "sqlstate", "")).startswith(_RETRYABLE_PREFIXES):
            raise RetryableError(f"{action}: {exc}") from exc
        if pg is not None or isinstance(exc, sa_exc.SQLAlchemyError):
            raise EventStoreError(f"{action}: {exc}") from exc
        raise


@asynccontextmanager
async def driver_connection(engine: AsyncEngine) -> AsyncIterator[Any]:
    """A pooled connection as the bare asyncpg connection, for the hot paths.

    Statements run on it outside any transaction are their own implicit transaction: an append
    is then one round trip instead of BEGIN/statement/COMMIT. A connection that failed, or whose
    work was cancelled half-way, is invalidated rather than handed to the next caller.
    """
    async with engine.connect() as conn:
        driver = (await conn.get_raw_connection()).driver_connection
        assert driver is not None
        try:
            yield driver
        except BaseException as exc:
            if _broken(exc, driver):
                await conn.invalidate()
            raise


class PinnedConnection:
    """One pooled connection held for as long as a serial writer runs (the orchestrator's
    decision loop), so that its statements skip the pool's checkout and return. Users take turns
    (``use()`` holds a lock); a connection that fails, or whose work was cancelled half-way, is
    invalidated and replaced by the next ``use()``."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._conn: Any = None
        self._driver: Any = None
        self._lock = asyncio.Lock()

    @asynccontextmanager
    async def use(self) -> AsyncIterator[Any]:
        async with self._lock:
            if self._driver is None or self._driver.is_closed():
                await self._drop(invalidate=self._conn is not None)
                self._conn = await self._engine.connect()
                self._driver = (await self._conn.get_raw_connection()).driver_connection
            driver = self._driver
            try:
                yield driver
            except BaseException as exc:
                if _broken(exc, driver):
                    await self._drop(invalidate=True)
                raise

    async def close(self) -> None:
        async with self._lock:
            await self._drop(invalidate=False)

    async def _drop(self, *, invalidate: bool) -> None:
        conn, self._conn, self._driver = self._conn, None, None
        if conn is None:
            return
        try:
            if invalidate:
                await conn.invalidate()
            await conn.close()
        except Exception:  # noqa: S110 - a broken connection is being thrown away anyway
            pass


@asynccontextmanager
async def raw_transaction(conn: Any, begin: str = "BEGIN") -> AsyncIterator[Any]:
    """A transaction on a driver connection that opens with ``begin``, sent with the simple
    protocol so that statements after the ``BEGIN`` (a lock, a ``SET LOCAL``) cost no round trip
    of their own; committed when the block ends, rolled back on an error."""
    try:
        await conn.execute(begin)  # a failure after its BEGIN (the lock) is rolled back below
        yield conn
    except BaseException as exc:
        # a cancelled or broken connection is thrown away by its owner instead
        if not isinstance(exc, asyncio.CancelledError) and not conn.is_closed():
            with contextlib.suppress(Exception):
                await conn.execute("ROLLBACK")
        raise
    await conn.execute("COMMIT")
