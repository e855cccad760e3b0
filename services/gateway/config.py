"""The gateway's settings: the shared ``Settings`` plus HTTP-edge knobs (same ``TASKLOOM_`` prefix)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr

from taskloom.settings import Settings

__all__ = ["GatewaySettings"]


class GatewaySettings(Settings):
    public_url: str | None = Field(
        default=None, description="Base URL clients reach the gateway at; else derived from the request"
    )
    allowed_origins: list[str] = Field(
        default_factory=lambda: ["http://localhost:8000", "http://127.0.0.1:8000"],
        description="Browser origins allowed to open WebSockets and call the API ('*' = any)",
    )
    rate_limit_per_second: float = Field(default=20.0, gt=0)
    rate_limit_burst: int = Field(default=60, ge=1)
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    page_size_max: int = Field(default=100, ge=1, le=1000)
    jwt_jwks_file: Path | None = None
    jwt_leeway_seconds: int = Field(default=0, ge=0, le=300)
    webhook_secret: SecretStr = SecretStr("taskloom-dev-webhook-secret-change-me")
    webhook_allow_private: bool = False
    webhook_max_attempts: int = Field(default=6, ge=1, le=20)
    webhook_backoff_seconds: float = Field(default=1.0, gt=0)
    webhook_timeout_seconds: float = Field(default=10.0, gt=0)
    ws_buffer_frames: int = Field(
        default=256, ge=8, description="Frames queued per client before it is dropped"
    )
    plan_on_submit: bool = Field(
        default=True, description="Run the constructor's planner for the 202 summary"
    )
    mcp_http_enabled: bool = True
    workers: int = Field(
        default=1, ge=1, le=64, description="Gateway worker processes (rate limits are per worker)"
    )
