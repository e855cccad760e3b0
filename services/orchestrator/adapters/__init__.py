"""The orchestrator's I/O: Postgres (event streams, read models, timers) and the bus."""
