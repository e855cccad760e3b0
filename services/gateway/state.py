"""Everything one gateway process holds while it runs, built and torn down by the app's lifespan."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from dataclasses import dataclass, field

from taskloom.eventstore import EventStore
from taskloom.gateway.adapters.audit import AuditTrail
from taskloom.gateway.adapters.nats import GatewayBus
from taskloom.gateway.adapters.postgres import GatewayDb
from taskloom.gateway.adapters.webhooks import WebhookDispatcher
from taskloom.gateway.config import GatewaySettings
from taskloom.gateway.domain.authz import Principal
from taskloom.gateway.domain.ratelimit import RateLimiter
from taskloom.gateway.feeds import Feeds
from taskloom.gateway.handlers import Gateway
from taskloom.gateway.security import TokenVerifier

__all__ = ["GatewayState"]


@dataclass
class GatewayState:
    settings: GatewaySettings
    gateway: Gateway
    verifier: TokenVerifier
    limiter: RateLimiter
    db: GatewayDb
    bus: GatewayBus
    store: EventStore
    audit: AuditTrail
    webhooks: WebhookDispatcher | None
    feeds: Feeds
    _tokens: OrderedDict[str, Principal] = field(default_factory=OrderedDict)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)

    async def verify(self, token: str) -> Principal:
        """Verify a bearer token; a verified token is remembered until it expires."""
        cached = self._tokens.get(token)
        if cached is not None and cached.expires_at > time.time():
            return cached
        if self.verifier.may_block:
            principal = await asyncio.to_thread(self.verifier.verify, token)
        else:
            principal = self.verifier.verify(token)
        self._tokens[token] = principal
        if len(self._tokens) > 10_000:
            self._tokens.popitem(last=False)
        return principal
