"""Where the CLI finds the gateway and which token it presents."""

from __future__ import annotations

import getpass
import os

from taskloom.gateway.config import GatewaySettings
from taskloom.gateway.security import mint_token

__all__ = ["DEFAULT_URL", "resolve_token", "resolve_url"]

DEFAULT_URL = "http://127.0.0.1:8000"


def resolve_url(url: str | None) -> str:
    return (url or os.environ.get("TASKLOOM_GATEWAY_URL") or DEFAULT_URL).rstrip("/")


def resolve_token(token: str | None) -> str | None:
    """An explicit token, ``TASKLOOM_TOKEN``, or (with the HS256 dev secret) a fresh developer
    token for the local user, so that a development stack works without ceremony."""
    token = token or os.environ.get("TASKLOOM_TOKEN")
    if token:
        return token
    settings = GatewaySettings()
    if settings.jwt_algorithm != "HS256":
        return None
    user = os.environ.get("TASKLOOM_USER") or getpass.getuser() or "developer"
    return mint_token(settings, user, ["developer"])
