"""Webhook rules: the signature receivers verify, the retry schedule, and which callback
targets are allowed (http(s) only; private, loopback and link-local addresses refused unless
the operator allows them)."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections.abc import Iterable
from urllib.parse import urlsplit

__all__ = [
    "SIGNATURE_HEADER",
    "CallbackRefused",
    "backoff_seconds",
    "check_callback_url",
    "check_resolved_addresses",
    "sign",
    "verify",
]

SIGNATURE_HEADER = "X-Taskloom-Signature"


class CallbackRefused(ValueError):
    """The callback URL may not be called; the message says why."""


def sign(secret: bytes, body: bytes) -> str:
    """The header value: ``sha256=<hex HMAC-SHA256 of the raw body>``."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def verify(secret: bytes, body: bytes, header: str) -> bool:
    return hmac.compare_digest(sign(secret, body), header)


def backoff_seconds(attempt: int, base: float = 1.0, cap: float = 300.0) -> float:
    """Delay before retry number ``attempt`` (1-based): base, 2·base, 4·base, ... up to ``cap``."""
    return float(min(cap, base * (2 ** max(attempt - 1, 0))))


def check_callback_url(url: str) -> str:
    """The host of an acceptable callback URL; raises ``CallbackRefused`` otherwise."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise CallbackRefused("callback_url must be an http:// or https:// URL")
    if not parts.hostname:
        raise CallbackRefused("callback_url has no host")
    if parts.username or parts.password:
        raise CallbackRefused("callback_url must not carry credentials")
    return parts.hostname


def check_resolved_addresses(host: str, addresses: Iterable[str], allow_private: bool) -> None:
    """Refuse a host that resolves to any non-public address (all of them are checked, since a
    client may connect to any)."""
    found = list(addresses)
    if not found:
        raise CallbackRefused(f"callback host {host!r} does not resolve")
    if allow_private:
        return
    for address in found:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if not ip.is_global or ip.is_multicast:
            raise CallbackRefused(
                f"callback host {host!r} resolves to a private or loopback address ({ip}); "
                "set TASKLOOM_WEBHOOK_ALLOW_PRIVATE=true to allow it"
            )
