"""The gateway's NATS side: durable command publishes, per-workflow event subscriptions, the
live agent registry (KV) and request/reply to the context service."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import nats
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from nats.js.errors import BucketNotFoundError, NoKeysError

from taskloom.contracts.agents import AgentRegistration
from taskloom.contracts.base import WireModel
from taskloom.contracts.subjects import Subjects, inbox_prefix
from taskloom.settings import Settings

__all__ = ["BusUnavailable", "GatewayBus"]


class BusUnavailable(Exception):
    """NATS (or the stream a command needs, or the service to ask) did not answer."""


class GatewayBus:
    def __init__(self, nc: Client, subjects: Subjects) -> None:
        self.nc = nc
        self.js = nc.jetstream()
        self.subjects = subjects

    @classmethod
    async def connect(cls, settings: Settings, name: str = "gateway") -> GatewayBus:
        if not settings.nats_url:
            raise ValueError("TASKLOOM_NATS_URL is not set")
        nc = await nats.connect(
            settings.nats_url,
            name=name,
            user=settings.nats_user,
            password=settings.nats_password.get_secret_value() if settings.nats_password else None,
            inbox_prefix=inbox_prefix(settings.nats_user, settings.nats_url),
            max_reconnect_attempts=-1,
            # the WebSocket fan-out is many subscriptions on one connection: give it room
            pending_size=64 * 1024 * 1024,
        )
        return cls(nc, Subjects(settings.namespace))

    async def close(self) -> None:
        if not self.nc.is_closed:
            await self.nc.drain()

    @property
    def connected(self) -> bool:
        return bool(self.nc.is_connected)

    async def publish_command(self, subject: str, message: WireModel, msg_id: str) -> None:
        """Publish to JetStream and wait for the stream's ack; ``msg_id`` deduplicates retries."""
        try:
            await self.js.publish(
                subject, message.model_dump_json().encode(), timeout=5.0, headers={"Nats-Msg-Id": msg_id}
            )
        except NoRespondersError:
            raise BusUnavailable(f"no stream captures {subject}; is the stack set up?") from None
        except (NatsTimeout, nats.errors.ConnectionClosedError) as exc:
            raise BusUnavailable(f"publishing to {subject} failed: {exc}") from None

    async def subscribe_events(
        self, workflow_id: str, handler: Callable[[Msg], Awaitable[None]]
    ) -> Subscription:
        return await self.nc.subscribe(
            self.subjects.events_of(workflow_id), cb=handler, pending_msgs_limit=10_000
        )

    async def agents(self) -> list[AgentRegistration]:
        """Every live instance in the registry bucket (expired ones are gone by TTL)."""
        try:
            kv = await self.js.key_value(self.subjects.agents_bucket)
            keys = await kv.keys()
        except (BucketNotFoundError, NoKeysError):
            return []
        except NatsTimeout as exc:
            raise BusUnavailable(f"agent registry did not answer: {exc}") from None
        found: list[AgentRegistration] = []
        for key in keys:
            try:
                entry = await kv.get(key)
            except Exception:  # noqa: S112 - a key that expired between keys() and get()
                continue
            if entry.value:
                try:
                    found.append(AgentRegistration.model_validate_json(entry.value))
                except ValueError:
                    continue
        return found

    async def request(self, op: str, payload: WireModel, timeout: float = 5.0) -> Any:  # noqa: ASYNC109
        """Request/reply to the context service; returns the decoded JSON reply."""
        try:
            reply = await self.nc.request(
                self.subjects.context(op), payload.model_dump_json().encode(), timeout=timeout
            )
        except NoRespondersError:
            raise BusUnavailable("the context service is not running") from None
        except NatsTimeout:
            raise BusUnavailable("the context service did not answer in time") from None
        return json.loads(reply.data)
