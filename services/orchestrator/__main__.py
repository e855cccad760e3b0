"""``python -m taskloom.orchestrator``: run the orchestrator service. ``TASKLOOM_DB_SCHEMA``
selects the PostgreSQL schema of its event store and tables (default ``public``)."""

from __future__ import annotations

from taskloom.orchestrator.service import Orchestrator
from taskloom.runtime import run_service
from taskloom.settings import Settings


def main() -> None:
    settings = Settings()
    run_service(Orchestrator(settings, schema=settings.db_schema), settings)


if __name__ == "__main__":
    main()
