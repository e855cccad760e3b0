"""``taskloom migrate``: apply every component's database migrations (and, on request,
declare the bus streams) once, before the services start — the deployment's one-shot step."""

from __future__ import annotations

from taskloom.settings import Settings

__all__ = ["run_migrations"]


async def run_migrations(settings: Settings, streams: bool = False) -> list[str]:
    """Apply the event store, orchestrator, context and gateway migrations; return a line per
    component saying what was applied. Every runner is idempotent and takes an advisory lock."""
    from taskloom.context.adapters.store import MIGRATIONS as CONTEXT_MIGRATIONS
    from taskloom.eventstore import EventStore, migrate
    from taskloom.gateway.adapters.postgres import MIGRATIONS_DIR as GATEWAY_MIGRATIONS
    from taskloom.orchestrator.adapters.postgres import Tables

    if not settings.database_url:
        raise ValueError("TASKLOOM_DATABASE_URL is not set: migrate needs the database to migrate")
    lines: list[str] = []
    store = EventStore.connect(settings.database_url, pool_size=2)
    try:
        lines.append(f"eventstore: applied {await store.migrate() or 'nothing'}")
        lines.append(f"orchestrator: applied {await Tables(store).migrate() or 'nothing'}")
        applied = await migrate(store.engine, component="context", migrations_dir=CONTEXT_MIGRATIONS)
        lines.append(f"context: applied {applied or 'nothing'}")
        applied = await migrate(store.engine, component="gateway", migrations_dir=GATEWAY_MIGRATIONS)
        lines.append(f"gateway: applied {applied or 'nothing'}")
    finally:
        await store.close()
    if streams:
        from taskloom.bus import Bus

        bus = await Bus.connect(settings, name="taskloom-migrate")
        try:
            for ensured in await bus.ensure_streams():
                lines.append(f"bus: {ensured.name} {ensured.action}")
        finally:
            await bus.close()
    return lines
