"""Real NATS (JetStream) and PostgreSQL on demand: embedded on free loopback ports, existing
servers named by ``TASKLOOM_NATS_URL`` / ``TASKLOOM_DATABASE_URL``, or testcontainers."""

from taskloom.infra.embedded import EmbeddedNats, EmbeddedPostgres, free_port
from taskloom.infra.stack import Stack, StackInfo, create_database, drop_database

__all__ = [
    "EmbeddedNats",
    "EmbeddedPostgres",
    "Stack",
    "StackInfo",
    "create_database",
    "drop_database",
    "free_port",
]
