"""Agent performance history from the ``agent_performance`` read model (owned and updated by
the orchestrator): per (agent, task type) completed and failed runs and their total seconds.

A database without that table yet (no workflow has finished) means no history: every agent
scores neutral on it. A database that does not answer is reported so the caller can decide.
"""

from __future__ import annotations

import asyncpg
from sqlalchemy import exc as sa_exc
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from taskloom.constructor.domain.assignment import PerformanceStats
from taskloom.settings import sqlalchemy_url

__all__ = ["HistoryUnavailable", "PerformanceHistory"]

_QUERY = text("select agent_id, task_type, completed, failed, total_seconds from agent_performance")


class HistoryUnavailable(Exception):
    """PostgreSQL did not answer the history query."""


class PerformanceHistory:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    @classmethod
    def from_url(cls, database_url: str, pool_size: int = 2) -> PerformanceHistory:
        return cls(create_async_engine(sqlalchemy_url(database_url), pool_size=pool_size, pool_pre_ping=True))

    async def load(self) -> tuple[dict[tuple[str, str], PerformanceStats], str]:
        """(stats per (agent, task type), source): source is ``agent_performance`` or ``absent``."""
        try:
            async with self.engine.connect() as conn:
                rows = (await conn.execute(_QUERY)).all()
        except sa_exc.ProgrammingError as exc:
            if isinstance(getattr(exc.orig, "__cause__", None), asyncpg.UndefinedTableError):
                return {}, "absent"
            raise HistoryUnavailable(str(exc)) from None
        except (sa_exc.OperationalError, sa_exc.InterfaceError, OSError) as exc:
            raise HistoryUnavailable(str(exc)) from None
        stats = {
            (str(r.agent_id), str(r.task_type)): PerformanceStats(
                completed=int(r.completed or 0),
                failed=int(r.failed or 0),
                total_seconds=float(r.total_seconds or 0),
            )
            for r in rows
        }
        return stats, "agent_performance"

    async def close(self) -> None:
        await self.engine.dispose()
