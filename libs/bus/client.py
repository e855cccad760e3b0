"""``Bus``: one NATS connection per process with JetStream, the namespace's subjects, idempotent
topology, publish/request helpers and managed pull-consumer loops.

    bus = await Bus.connect(settings, name="orchestrator")
    await bus.ensure_streams()
    await bus.ensure_consumer(StreamKind.PROGRESS, "orchestrator", ack_wait=30, max_deliver=5)
    handle = await bus.consume(StreamKind.PROGRESS, "orchestrator", on_progress, adapter.validate_json)
    await bus.publish(bus.subjects.tasks(agent_id), assignment)   # Nats-Msg-Id = message_id
    ...
    await bus.drain()   # stops the consumers gracefully, then drains the connection
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import nats.errors
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import DeliverPolicy, PubAck
from nats.js.errors import APIError, NoStreamResponseError, NotFoundError
from nats.js.kv import KeyValue

from taskloom.bus.admin import (
    MAX_DELIVER_METADATA,
    Ensured,
    consumer_config,
    ensure_consumer,
    ensure_kv,
    ensure_stream,
)
from taskloom.bus.codec import Payload, encode, publish_headers
from taskloom.bus.consumer import Backoff, BatchHandler, ConsumerHandle, Handler, PullLoop
from taskloom.bus.deadletter import describe_error
from taskloom.bus.errors import (
    BusUnavailable,
    ConsumerNotFound,
    NoResponders,
    NoStreamForSubject,
    PublishRejected,
    RequestTimeout,
)
from taskloom.bus.topology import StreamKind, Topology
from taskloom.contracts.subjects import Subjects, inbox_prefix
from taskloom.observability import get_logger
from taskloom.settings import Settings

__all__ = ["DEFAULT_NATS_URL", "Bus"]

T = TypeVar("T")
DEFAULT_NATS_URL = "nats://127.0.0.1:4222"
_log = get_logger(__name__)

# connection failures a caller may retry; anything else from nats-py is a bug or a config error
_UNAVAILABLE = (
    nats.errors.ConnectionClosedError,
    nats.errors.ConnectionDrainingError,
    nats.errors.ConnectionReconnectingError,
    nats.errors.OutboundBufferLimitError,
    nats.errors.StaleConnectionError,
    nats.errors.NoServersError,
)


def _redact(url: str) -> str:
    """``url`` without a password, for logs and error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


class Bus:
    """A connected bus; build it with ``await Bus.connect(...)``."""

    def __init__(
        self, nc: NATS, js: JetStreamContext, subjects: Subjects, topology: Topology, name: str
    ) -> None:
        self.nc = nc
        self.js = js
        self.subjects = subjects
        self.topology = topology
        self.name = name
        self._handles: list[ConsumerHandle] = []
        self._registry: KeyValue | None = None
        # handler attempts of the consumers this process declared, for servers that cannot
        # store them in consumer metadata
        self._declared_attempts: dict[tuple[str, str], int | None] = {}

    # --- connection ------------------------------------------------------------------------
    @classmethod
    async def connect(
        cls,
        settings: Settings | None = None,
        *,
        name: str,
        url: str | None = None,
        namespace: str | None = None,
        user: str | None = None,
        password: str | None = None,
        topology: Topology | None = None,
        connect_timeout: float = 5.0,
        connect_deadline: float | None = 60.0,
        reconnect_wait: float = 2.0,
        request_timeout: float = 5.0,
    ) -> Bus:
        """Connect as ``name`` (shown by the server's monitoring). Explicit arguments override
        ``settings``. Once connected the client reconnects forever, ``reconnect_wait`` seconds
        apart; the *first* connect gives up after ``connect_deadline`` seconds with
        ``BusUnavailable`` so that a misconfigured service fails instead of hanging."""
        if settings is not None:
            url = url or settings.nats_url
            namespace = namespace or settings.namespace
            user = user or settings.nats_user
            if password is None and settings.nats_password is not None:
                password = settings.nats_password.get_secret_value()
        url = url or DEFAULT_NATS_URL
        subjects = Subjects(namespace or "taskloom")
        topology = topology or (Topology.from_settings(settings) if settings is not None else Topology())
        log = _log.bind(connection=name, server=_redact(url))
        nc = NATS()
        last_error: list[BaseException] = []

        async def on_error(exc: Exception) -> None:
            last_error[:] = [exc]
            log.warning("nats_error", error=describe_error(exc))

        async def on_disconnected() -> None:
            log.warning("nats_disconnected")

        async def on_reconnected() -> None:
            log.info("nats_reconnected", url=nc.connected_url.netloc if nc.connected_url else None)

        async def on_closed() -> None:
            log.info("nats_closed")

        try:
            await asyncio.wait_for(
                nc.connect(
                    servers=[url],
                    name=name,
                    user=user,
                    password=password,
                    # replies under this user's own prefix: the only inbox its rights let it read
                    inbox_prefix=inbox_prefix(user, url),
                    allow_reconnect=True,
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=reconnect_wait,  # type: ignore[arg-type]
                    connect_timeout=connect_timeout,  # type: ignore[arg-type]
                    error_cb=on_error,
                    disconnected_cb=on_disconnected,
                    reconnected_cb=on_reconnected,
                    closed_cb=on_closed,
                ),
                connect_deadline,
            )
        except Exception as exc:
            with contextlib.suppress(Exception):
                await nc.close()
            cause = describe_error(last_error[0] if last_error else exc)
            raise BusUnavailable(f"cannot connect to NATS at {_redact(url)}: {cause}") from None
        log.info("nats_connected", namespace=subjects.namespace)
        return cls(nc, nc.jetstream(timeout=request_timeout), subjects, topology, name)

    async def drain(self, timeout: float = 30.0) -> None:  # noqa: ASYNC109 - a grace period
        """Stop every consumer loop gracefully, then drain the connection (flush, unsubscribe)."""
        await self.stop_consumers(timeout)
        if not self.nc.is_closed:
            with contextlib.suppress(Exception):
                await self.nc.drain()

    async def close(self) -> None:
        """Stop the consumer loops (briefly) and close the connection."""
        await self.stop_consumers(5.0)
        if not self.nc.is_closed:
            await self.nc.close()

    async def stop_consumers(self, grace: float = 30.0) -> None:
        """Stop every consume loop this bus started (see ``ConsumerHandle.stop``)."""
        handles, self._handles = self._handles, []
        await asyncio.gather(*(h.stop(grace) for h in handles), return_exceptions=True)

    async def __aenter__(self) -> Bus:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.drain()

    # --- topology --------------------------------------------------------------------------
    def stream_name(self, kind: StreamKind | str) -> str:
        return self.subjects.stream(str(kind))

    async def ensure_streams(self, kinds: Iterable[StreamKind | str] | None = None) -> list[Ensured]:
        """Declare the streams (all six by default) and the agent registry bucket; idempotent."""
        results = [
            await ensure_stream(self.js, self.topology.stream_config(self.subjects, kind))
            for kind in (kinds if kinds is not None else StreamKind)
        ]
        results.append(await self.ensure_registry())
        return results

    async def ensure_registry(self) -> Ensured:
        """Declare the KV bucket ``subjects.agents_bucket`` with the topology's TTL."""
        return await ensure_kv(
            self.js, self.subjects.agents_bucket, self.topology.agent_registry_ttl, self.topology.replicas
        )

    async def registry(self) -> KeyValue:
        """The live agent registry bucket (``ensure_streams``/``ensure_registry`` creates it)."""
        if self._registry is None:
            self._registry = await self.js.key_value(self.subjects.agents_bucket)
        return self._registry

    async def ensure_consumer(
        self,
        stream_kind: StreamKind | str,
        durable: str,
        *,
        filter_subjects: str | Sequence[str] | None = None,
        ack_wait: float = 30.0,
        max_deliver: int | None = 5,
        max_ack_pending: int = 1000,
        deliver_policy: DeliverPolicy = DeliverPolicy.ALL,
        opt_start_seq: int | None = None,
        backoff: Sequence[float] | None = None,
        description: str | None = None,
    ) -> Ensured:
        """Declare the durable pull consumer ``durable`` (a ``Subjects.consumer``/``agent_consumer``
        name) on the stream of ``stream_kind``; created, updated in place, or left alone.

        ``filter_subjects`` defaults to everything the stream captures. ``max_deliver`` is the
        number of handler attempts (``None`` = unlimited); the server allows one delivery more,
        which the consume loop uses to dead-letter a message whose last attempt never finished.
        """
        if filter_subjects is None:
            captured = self.topology.stream_config(self.subjects, stream_kind).subjects or []
            filters: Sequence[str] = list(captured)
        else:
            filters = [filter_subjects] if isinstance(filter_subjects, str) else list(filter_subjects)
        config = consumer_config(
            self.subjects.consumer(durable),
            filter_subjects=filters,
            ack_wait=ack_wait,
            max_deliver=max_deliver,
            max_ack_pending=max_ack_pending,
            deliver_policy=deliver_policy,
            opt_start_seq=opt_start_seq,
            backoff=backoff,
            description=description,
        )
        stream = self.stream_name(stream_kind)
        ensured = await ensure_consumer(self.js, stream, config, with_metadata=self.server_has_metadata)
        self._declared_attempts[(stream, ensured.name)] = max_deliver
        return ensured

    @property
    def server_has_metadata(self) -> bool:
        """Whether the server keeps consumer metadata (nats-server 2.10 and later)."""
        version = self.nc.connected_server_version
        return (version.major, version.minor) >= (2, 10)

    async def ensure_agent_consumer(self, agent_id: str, **options: Any) -> Ensured:
        """The one work-queue consumer every replica of ``agent_id`` shares (``ns.tasks.<agent_id>``)."""
        return await self.ensure_consumer(
            StreamKind.TASKS,
            self.subjects.agent_consumer(agent_id),
            filter_subjects=self.subjects.tasks(agent_id),
            **options,
        )

    # --- publishing ------------------------------------------------------------------------
    async def publish(
        self,
        subject: str,
        payload: Payload,
        *,
        msg_id: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - passed through to nats-py
        expected_stream: str | None = None,
    ) -> PubAck:
        """Publish to JetStream and wait for the stream's ack. ``Nats-Msg-Id`` is ``msg_id``, else
        the model's ``message_id``, so a retried publish is stored once (``PubAck.duplicate``)."""
        try:
            return await self.js.publish(
                subject,
                encode(payload),
                timeout=timeout,
                stream=expected_stream,
                headers=publish_headers(payload, msg_id, headers),
            )
        except NoStreamResponseError:
            raise NoStreamForSubject(subject) from None
        except (nats.errors.TimeoutError, *_UNAVAILABLE) as exc:
            raise BusUnavailable(f"publish to {subject!r} failed: {describe_error(exc)}") from None
        except (APIError, nats.errors.MaxPayloadError) as exc:
            raise PublishRejected(f"publish to {subject!r} rejected: {describe_error(exc)}") from None

    async def publish_core(
        self, subject: str, payload: Payload, *, headers: Mapping[str, str] | None = None, reply: str = ""
    ) -> None:
        """Fire-and-forget core NATS publish (heartbeats, signals, replies): no stream, no ack."""
        try:
            await self.nc.publish(
                subject, encode(payload), reply=reply, headers=dict(headers) if headers else None
            )
        except _UNAVAILABLE as exc:
            raise BusUnavailable(f"publish to {subject!r} failed: {describe_error(exc)}") from None
        except nats.errors.MaxPayloadError as exc:
            raise PublishRejected(f"publish to {subject!r} rejected: {describe_error(exc)}") from None

    async def request(
        self,
        subject: str,
        payload: Payload,
        *,
        timeout: float = 5.0,  # noqa: ASYNC109 - passed through to nats-py
        headers: Mapping[str, str] | None = None,
    ) -> Msg:
        """Core NATS request/reply; returns the reply message (parse ``reply.data`` yourself)."""
        try:
            return await self.nc.request(
                subject, encode(payload), timeout=timeout, headers=dict(headers) if headers else None
            )
        except nats.errors.NoRespondersError:
            raise NoResponders(subject) from None
        except nats.errors.TimeoutError:
            raise RequestTimeout(f"no reply on {subject!r} within {timeout}s") from None
        except _UNAVAILABLE as exc:
            raise BusUnavailable(f"request on {subject!r} failed: {describe_error(exc)}") from None

    # --- consuming -------------------------------------------------------------------------
    async def consume(
        self,
        stream_kind: StreamKind | str,
        durable: str,
        handler: Handler[T],
        parse: Callable[[bytes], T],
        *,
        batch: int = 1,
        concurrency: int = 1,
        fetch_timeout: float = 1.0,
        max_deliver: int | None = None,
        backoff: Backoff | None = None,
        retry_on: Sequence[type[BaseException]] = (),
        dead_letter_source: str | None = None,
        confirm_acks: bool = True,
    ) -> ConsumerHandle:
        """Run ``handler(parse(body), delivery)`` for every message of the durable consumer (see
        ``taskloom.bus.consumer`` for the outcome policy). ``batch`` messages are fetched at a time
        and handled in order; each of the ``concurrency`` workers fetches on its own. Keep
        ``batch`` × handler time under the ack wait, or use ``delivery.keep_alive()``.
        ``max_deliver`` defaults to the consumer's declared attempts; dead letters go to
        ``subjects.dead_letter(dead_letter_source or stream_kind)``. ``fetch_timeout`` is how
        long a standing pull request lives before it is renewed. ``confirm_acks=False`` sends
        acks without waiting for the server's confirmation, for idempotent handlers."""
        return await self._start(
            stream_kind, durable, parse, handler, None, batch, concurrency, fetch_timeout,
            max_deliver, backoff, retry_on, dead_letter_source, confirm_acks,
        )  # fmt: skip

    async def consume_batch(
        self,
        stream_kind: StreamKind | str,
        durable: str,
        handler: BatchHandler[T],
        parse: Callable[[bytes], T],
        *,
        batch: int = 50,
        concurrency: int = 1,
        fetch_timeout: float = 1.0,
        max_deliver: int | None = None,
        backoff: Backoff | None = None,
        retry_on: Sequence[type[BaseException]] = (),
        dead_letter_source: str | None = None,
        confirm_acks: bool = True,
    ) -> ConsumerHandle:
        """Like ``consume``, but ``handler`` gets every parsed message of a fetch (up to ``batch``)
        as ``[(value, delivery), ...]``: returning acks each delivery it did not settle itself; a
        ``RetryableError`` naks them all; any other error retries them one at a time so that only
        the poison message is dead-lettered."""
        return await self._start(
            stream_kind, durable, parse, None, handler, batch, concurrency, fetch_timeout,
            max_deliver, backoff, retry_on, dead_letter_source, confirm_acks,
        )  # fmt: skip

    async def _start(
        self,
        stream_kind: StreamKind | str,
        durable: str,
        parse: Callable[[bytes], T],
        handler: Handler[T] | None,
        batch_handler: BatchHandler[T] | None,
        batch: int,
        concurrency: int,
        fetch_timeout: float,
        max_deliver: int | None,
        backoff: Backoff | None,
        retry_on: Sequence[type[BaseException]],
        dead_letter_source: str | None,
        confirm_acks: bool = True,
    ) -> ConsumerHandle:
        stream = self.stream_name(stream_kind)
        durable = self.subjects.consumer(durable)
        try:
            info = await self.js.consumer_info(stream, durable)
        except NotFoundError:
            raise ConsumerNotFound(stream, durable) from None
        config = info.config
        key = (stream, durable)
        if max_deliver is not None:
            attempts: int | None = max_deliver
        elif MAX_DELIVER_METADATA not in (config.metadata or {}) and key in self._declared_attempts:
            attempts = self._declared_attempts[key]
        else:
            attempts = _declared_attempts(config.metadata, config.max_deliver)
        loop = PullLoop(
            self.js,
            stream=stream,
            durable=durable,
            parse=parse,
            handler=handler,
            batch_handler=batch_handler,
            dead_letter_subject=self.subjects.dead_letter(dead_letter_source or str(stream_kind)),
            max_attempts=attempts,
            ack_wait=config.ack_wait or 30.0,
            batch=batch,
            fetch_timeout=fetch_timeout,
            concurrency=concurrency,
            backoff=backoff,
            retry_on=retry_on,
            confirm_acks=confirm_acks,
        )
        handle = loop.start()
        self._handles.append(handle)
        return handle


def _declared_attempts(metadata: Mapping[str, str] | None, server_max_deliver: int | None) -> int | None:
    """Handler attempts of a consumer: Taskloom's metadata when ``ensure_consumer`` declared it,
    else the server's ``max_deliver`` (``-1``/unset = unlimited)."""
    declared = (metadata or {}).get(MAX_DELIVER_METADATA)
    if declared == "unlimited":
        return None
    if declared and declared.isdigit():
        return int(declared)
    return server_max_deliver if server_max_deliver and server_max_deliver > 0 else None
