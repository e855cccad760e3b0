"""One validated settings model for every Taskloom process (environment prefix ``TASKLOOM_``).

It carries the seed's ``TaskGraphConfig`` fields with their bounds, plus the infrastructure,
security and agent settings the services share. ``get_settings()`` caches one instance.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "get_settings", "sqlalchemy_url", "asyncpg_dsn"]


class Settings(BaseSettings):
    """Every knob of Taskloom; read from ``TASKLOOM_*`` variables and an optional ``.env``."""

    model_config = SettingsConfigDict(
        env_prefix="TASKLOOM_", env_file=".env", extra="ignore", validate_default=True
    )

    # --- the seed's TaskGraphConfig -------------------------------------------------------
    # Orchestration settings
    max_concurrent_workflows: int = Field(default=10, ge=1, le=100)
    max_concurrent_tasks_per_workflow: int = Field(default=8, ge=1, le=20)
    task_timeout_default: int = Field(default=1800, ge=60, le=7200)
    workflow_timeout_default: int = Field(default=14400, ge=300, le=86400)
    # Agent pool configuration
    agent_pool_size: int = Field(default=16, ge=8, le=50)
    agent_idle_timeout: int = Field(default=300, ge=60, le=3600)
    agent_health_check_interval: int = Field(default=30, ge=10, le=300)
    # Context management
    context_cache_size: int = Field(default=1000, ge=100, le=10000)
    context_ttl: int = Field(default=3600, ge=300, le=86400)
    max_context_memory_mb: int = Field(default=512, ge=64, le=2048)
    # Quality and performance
    quality_gate_timeout: int = Field(default=300, ge=30, le=1800)
    performance_monitoring_enabled: bool = True
    distributed_tracing_enabled: bool = False
    # State persistence (the seed's Redis fields; Taskloom persists state in PostgreSQL, so
    # these are accepted for compatibility and not used)
    redis_url: str | None = None
    state_persistence_enabled: bool = False
    state_backup_interval: int = Field(default=300, ge=60, le=3600)
    # Integration endpoints
    webhook_endpoints: dict[str, str] = Field(default_factory=dict)
    notification_channels: list[str] = Field(default_factory=list)

    # --- infrastructure -------------------------------------------------------------------
    nats_url: str | None = Field(
        default=None, description="Existing NATS server; unset = start an embedded one"
    )
    database_url: str | None = Field(
        default=None, description="Existing PostgreSQL; unset = start an embedded one"
    )
    testcontainers: bool = Field(default=False, description="Use testcontainers when Docker answers")
    namespace: str = Field(
        default="taskloom",
        description="Root of every subject, stream, consumer and bucket name on the bus",
    )
    data_dir: Path = Field(default=Path(".taskloom"), description="Embedded stack's data folder")
    nats_user: str | None = None
    nats_password: SecretStr | None = None
    db_pool_size: int = Field(default=10, ge=1, le=200)
    db_schema: str = Field(
        default="public",
        pattern=r"^[a-z_][a-z0-9_]{0,62}$",
        description="PostgreSQL schema of the orchestrator's event store and tables",
    )
    event_relay: Literal["process", "inline", "off"] = Field(
        default="process",
        description=(
            "Where the orchestrator publishes its stored events to <ns>.events.<wf>.<type>: a child"
            " process of its own (off its event loop, on another core), inside its own event loop,"
            " or not at all (another process relays them)"
        ),
    )
    outbox_retention_seconds: int = Field(default=7 * 24 * 3600, ge=60)
    dedup_window_seconds: int = Field(default=120, ge=1, le=86400)
    heartbeat_timeout_seconds: float = Field(default=30.0, gt=0)
    dead_letter_max_age_seconds: int = Field(default=14 * 24 * 3600, ge=60)

    # --- logging / metrics ----------------------------------------------------------------
    log_level: str = "INFO"
    log_format: Literal["auto", "json", "console"] = "auto"
    event_loop: Literal["uvloop", "asyncio"] = Field(
        default="uvloop",
        description="The services' event loop: uvloop (C, less CPU per message) where it is "
        "installed, else the standard library's asyncio.",
    )
    environment: Literal["development", "staging", "production"] = "development"
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8000, ge=0, le=65535)

    # --- security -------------------------------------------------------------------------
    jwt_algorithm: Literal["HS256", "RS256"] = "HS256"
    jwt_secret: SecretStr = SecretStr("taskloom-dev-secret-change-me-please-32b")
    jwt_public_key_file: Path | None = None
    jwt_private_key_file: Path | None = None
    jwt_jwks_url: str | None = None
    jwt_audience: str = "taskloom"
    jwt_issuer: str = "taskloom-dev"
    jwt_ttl_seconds: int = Field(default=3600, ge=60)
    context_encryption_keys: list[SecretStr] = Field(default_factory=list)
    context_policy_file: Path | None = None

    # --- agents ---------------------------------------------------------------------------
    llm_base_url: str | None = None
    llm_model: str | None = None
    llm_api_key: SecretStr | None = None

    @field_validator("namespace")
    @classmethod
    def _namespace_is_a_token(cls, value: str) -> str:
        if not re.fullmatch(r"[a-z][a-z0-9_]{0,31}", value):
            raise ValueError(
                "namespace must be 1-32 lower-case letters, digits or '_', starting with a letter"
            )
        return value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError(f"unknown log level {value!r}")
        return level


def sqlalchemy_url(url: str) -> str:
    """``postgresql://...`` as the SQLAlchemy asyncpg URL."""
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    raise ValueError(f"not a PostgreSQL URL: {url!r}")


def asyncpg_dsn(url: str) -> str:
    """Any accepted PostgreSQL URL as the plain ``postgresql://`` DSN asyncpg understands."""
    return "postgresql://" + sqlalchemy_url(url)[len("postgresql+asyncpg://") :]


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
