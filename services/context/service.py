"""The context service process: answers ``ns.context.<op>`` requests over core NATS (one queue
group, so replicas share the load), keeps replicas' caches coherent, reloads its policy."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import nats
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from pydantic import BaseModel, ValidationError

from taskloom.context.adapters.crypto import ValueCipher
from taskloom.context.adapters.policy_file import load_policy_file
from taskloom.context.adapters.store import ContextStore
from taskloom.context.audit_buffer import AuditBuffer
from taskloom.context.domain import ContextServiceError, Limits, Policy, ScopeKey, ViewCache
from taskloom.context.domain.limits import MIB
from taskloom.context.encoding import ACCEPT_ENCODING, CONTENT_ENCODING, IDENTITY, ReplyBody, negotiate
from taskloom.context.handlers import CachedView, ContextHandlers
from taskloom.contracts.context import (
    AuditQuery,
    ContextError,
    ContextErrorCode,
    ContextGetRequest,
    ContextPutRequest,
    ContextScope,
    ContributeRequest,
    ReloadPolicyReply,
    ReloadPolicyRequest,
)
from taskloom.contracts.subjects import Subjects, inbox_prefix
from taskloom.observability import get_logger
from taskloom.observability.metrics import TaskGraphMetrics
from taskloom.settings import Settings

__all__ = ["QUEUE_GROUP", "ContextService", "describe_validation_error"]

QUEUE_GROUP = "context"
INVALIDATE_OP = "invalidate"
_log = get_logger(__name__)

Handler = Callable[[Any], Awaitable[ReplyBody]]


def describe_validation_error(exc: ValidationError) -> str:
    problems = []
    for err in exc.errors()[:10]:
        where = ".".join(str(p) for p in err["loc"]) or "request"
        problems.append(f"{where}: {err['msg']}")
    return "; ".join(problems)


def _error(code: ContextErrorCode, message: str, **details: Any) -> ReplyBody:
    safe = {k: v if isinstance(v, str | int | float | bool | None) else str(v) for k, v in details.items()}
    return ReplyBody(ContextError(code=code, message=message, details=safe).model_dump_json().encode())


class ContextService:
    name = "context"

    def __init__(
        self,
        settings: Settings,
        *,
        schema: str = "public",
        policy_file: Path | None = None,
        metrics: TaskGraphMetrics | None = None,
        max_value_bytes: int = MIB,
        limits: Limits | None = None,
        handle_sighup: bool = False,
    ) -> None:
        self._settings = settings
        self._schema = schema
        self._policy_file = policy_file if policy_file is not None else settings.context_policy_file
        self._metrics = metrics
        self._limits = limits or Limits.from_mb(settings.max_context_memory_mb, max_value_bytes)
        self._handle_sighup = handle_sighup
        self._subjects = Subjects(settings.namespace)
        self._instance = uuid.uuid4().hex
        self._nc: NATS | None = None
        self._store: ContextStore | None = None
        self._audit: AuditBuffer | None = None
        self._handlers: ContextHandlers | None = None
        self._subs: list[Subscription] = []
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def handlers(self) -> ContextHandlers:
        if self._handlers is None:
            raise RuntimeError("context service not started")
        return self._handlers

    @property
    def store(self) -> ContextStore:
        if self._store is None:
            raise RuntimeError("context service not started")
        return self._store

    # --- lifecycle --------------------------------------------------------------------------
    async def start(self) -> None:
        # a bad policy file or key stops start-up here, before anything is served
        policy = load_policy_file(self._policy_file)
        cipher = ValueCipher.from_settings(self._settings)
        if not self._settings.database_url or not self._settings.nats_url:
            raise RuntimeError("the context service needs TASKLOOM_DATABASE_URL and TASKLOOM_NATS_URL")
        self._store = await ContextStore.open(self._settings.database_url, schema=self._schema)
        self._audit = AuditBuffer(self._store)
        self._audit.start()
        cache: ViewCache[CachedView] = ViewCache(
            self._settings.context_cache_size, self._settings.context_ttl
        )
        self._handlers = ContextHandlers(
            self._store,
            cipher,
            policy,
            self._limits,
            cache,
            self._audit,
            self._metrics,
            on_write=self._announce_write,
        )
        pw = self._settings.nats_password
        self._nc = await nats.connect(
            self._settings.nats_url,
            name=f"taskloom-context-{self._instance[:8]}",
            user=self._settings.nats_user,
            password=pw.get_secret_value() if pw else None,
            inbox_prefix=inbox_prefix(self._settings.nats_user, self._settings.nats_url),
        )
        h = self._handlers
        routes: dict[str, tuple[type[BaseModel], Handler]] = {
            "get": (ContextGetRequest, h.get_reply),
            "put": (ContextPutRequest, self._json(h.put)),
            "contribute": (ContributeRequest, self._json(h.contribute)),
            "audit": (AuditQuery, self._json(h.audit)),
            "reload": (ReloadPolicyRequest, self._json(self._reload_op)),
        }
        for op, (model, handler) in routes.items():
            self._subs.append(
                await self._nc.subscribe(
                    self._subjects.context(op), queue=QUEUE_GROUP, cb=self._callback(op, model, handler)
                )
            )
        self._subs.append(
            await self._nc.subscribe(self._subjects.context(INVALIDATE_OP), cb=self._on_invalidate)
        )
        await self._nc.flush()
        if self._handle_sighup:
            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self._reload_in_background)
        _log.info("context service ready", policy=policy.source, rules=len(policy.rules), schema=self._schema)

    async def stop(self) -> None:
        if self._handle_sighup:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
        for sub in self._subs:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        self._subs.clear()
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=5)
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await self._nc.drain()
            self._nc = None
        if self._audit is not None:
            with contextlib.suppress(Exception):
                await self._audit.stop()
        if self._store is not None:
            await self._store.close()
            self._store = None

    async def readiness(self) -> dict[str, bool]:
        db = False
        if self._store is not None:
            with contextlib.suppress(Exception):
                db = await asyncio.wait_for(self._store.ping(), 2)
        return {"nats": self._nc is not None and self._nc.is_connected, "postgres": db}

    # --- policy -----------------------------------------------------------------------------
    async def reload_policy(self) -> Policy:
        """Read the policy file again; a bad file leaves the current policy in force."""
        policy = load_policy_file(self._policy_file)
        self.handlers.set_policy(policy)
        _log.info("context policy reloaded", policy=policy.source, rules=len(policy.rules))
        return policy

    async def _reload_op(self, _req: ReloadPolicyRequest) -> ReloadPolicyReply:
        policy = await self.reload_policy()
        # one replica got the request; the others reload too, or they would filter by the old policy
        await self._broadcast({"reload": True})
        return ReloadPolicyReply(rules=len(policy.rules), source=policy.source)

    def _reload_in_background(self) -> None:
        """Reload in the background (from a signal or a peer's broadcast), logging a refusal."""

        async def reload() -> None:
            try:
                await self.reload_policy()
            except ContextServiceError as exc:
                _log.error("policy reload refused; keeping the current policy", error=exc.message)

        self._spawn(reload())

    # --- requests ---------------------------------------------------------------------------
    @staticmethod
    def _json(handler: Callable[[Any], Awaitable[BaseModel]]) -> Handler:
        async def run(req: Any) -> ReplyBody:
            return ReplyBody((await handler(req)).model_dump_json().encode())

        return run

    def _callback(
        self, op: str, model: type[BaseModel], handler: Handler
    ) -> Callable[[Msg], Awaitable[None]]:
        async def on_message(msg: Msg) -> None:
            # nats-py runs one callback at a time per subscription: hand each request to a task
            self._spawn(self._answer(op, model, handler, msg))

        return on_message

    async def _answer(self, op: str, model: type[BaseModel], handler: Handler, msg: Msg) -> None:
        encoding = IDENTITY
        try:
            encoding = negotiate(msg.headers.get(ACCEPT_ENCODING) if msg.headers else None)
            req = model.model_validate_json(msg.data)
        except ValidationError as exc:
            reply = _error(
                ContextErrorCode.MALFORMED, f"malformed {op} request: {describe_validation_error(exc)}"
            )
        except ContextServiceError as exc:
            reply = _error(exc.code, exc.message, **exc.details)
        else:
            try:
                reply = await handler(req)
            except ContextServiceError as exc:
                reply = _error(exc.code, exc.message, **exc.details)
            except Exception as exc:
                _log.exception("context request failed", op=op)
                reply = _error(ContextErrorCode.INTERNAL, f"{op} failed: {type(exc).__name__}: {exc}")
        if not msg.reply:
            _log.warning("context request without a reply subject dropped", op=op)
            return
        if self._nc is None:
            return
        body, sent_as = reply.encoded(encoding)
        # publish rather than msg.respond(), which would echo the request's headers back
        headers = None if sent_as == IDENTITY else {CONTENT_ENCODING: sent_as}
        with contextlib.suppress(Exception):
            await self._nc.publish(msg.reply, body, headers=headers)

    def _spawn(self, coro: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- cache coherence between replicas ---------------------------------------------------
    async def _announce_write(self, scope: ScopeKey) -> None:
        await self._broadcast({"scope": scope.scope.value, "scope_id": scope.scope_id})

    async def _broadcast(self, payload: dict[str, Any]) -> None:
        if self._nc is None:
            return
        body = json.dumps({**payload, "origin": self._instance}).encode()
        with contextlib.suppress(Exception):
            await self._nc.publish(self._subjects.context(INVALIDATE_OP), body)

    async def _on_invalidate(self, msg: Msg) -> None:
        try:
            data = json.loads(msg.data)
            if data.get("origin") == self._instance:
                return
            if data.get("reload") is True:
                self._reload_in_background()
                return
            self.handlers.invalidate(ScopeKey(ContextScope(data["scope"]), str(data["scope_id"])))
        except (ValueError, KeyError, TypeError, AttributeError):
            _log.warning("malformed cache invalidation ignored", data=msg.data[:200])
