"""The context service's operations, independent of the transport: get a filtered view, put a
key, contribute a finished task's outputs, query the audit, swap the policy."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from taskloom.context.adapters.crypto import ValueCipher
from taskloom.context.adapters.store import AuditEntry, ContextStore, NewVersion
from taskloom.context.audit_buffer import AuditBuffer
from taskloom.context.domain import (
    Entry,
    Limits,
    MalformedRequest,
    Operation,
    Policy,
    ScopeKey,
    ViewCache,
    WriteDenied,
    build_view,
    redact_sensitive,
    scope_chain,
    task_scope_id,
)
from taskloom.context.domain.limits import dump_json
from taskloom.context.domain.scopes import GLOBAL_SCOPE_ID
from taskloom.context.encoding import ReplyBody
from taskloom.contracts.base import utcnow
from taskloom.contracts.context import (
    AuditDecision,
    AuditPage,
    AuditQuery,
    Classification,
    ContextGetRequest,
    ContextPutReply,
    ContextPutRequest,
    ContextScope,
    ContextView,
    ContributeReply,
    ContributeRequest,
    ScopeRef,
)
from taskloom.observability.metrics import TaskGraphMetrics

__all__ = ["CachedView", "ContextHandlers", "ResolvedScope", "contribution_key", "resolve_write_scope"]

OnWrite = Callable[[ScopeKey], Awaitable[None]]
_SCOPES = {s.value: s for s in ContextScope}
_quote: Callable[[str], str] = json.encoder.encode_basestring
_CLASSES = {c.value: c for c in Classification}
# ``cached`` is the second field of ContextView, before any caller-controlled text
_CACHED_MARK = b'"op":"get","cached":false'


@dataclass(frozen=True, slots=True)
class CachedView:
    body: ReplyBody
    keys: tuple[str, ...]
    digest: bytes
    denied: tuple[str, ...]
    denied_digest: bytes | None


def contribution_key(task_id: str) -> str:
    return f"outputs.{task_id}"


@dataclass(frozen=True, slots=True)
class ResolvedScope:
    key: ScopeKey
    owned: bool


def resolve_write_scope(req: ContextPutRequest) -> ResolvedScope:
    """The scope id a put targets, and whether it is the writer's own (task / agent scopes)."""
    scope = req.scope
    own: str | None
    if scope is ContextScope.GLOBAL:
        own = GLOBAL_SCOPE_ID
    elif scope is ContextScope.PROJECT:
        own = req.project_id
    elif scope is ContextScope.WORKFLOW:
        own = req.workflow_id
    elif scope is ContextScope.TASK:
        own = task_scope_id(req.workflow_id, req.task_id) if req.task_id else None
    else:
        own = req.agent_id
    target = req.scope_id or own
    if not target:
        needs = {"project": "project_id", "workflow": "workflow_id", "task": "task_id"}[scope.value]
        raise MalformedRequest(f"a put to the {scope.value} scope needs {needs} or scope_id")
    if scope is ContextScope.GLOBAL and target != GLOBAL_SCOPE_ID:
        raise MalformedRequest(f"the global scope has the single id {GLOBAL_SCOPE_ID!r}")
    return ResolvedScope(ScopeKey(scope, target), owned=target == own)


class ContextHandlers:
    def __init__(
        self,
        store: ContextStore,
        cipher: ValueCipher,
        policy: Policy,
        limits: Limits,
        cache: ViewCache[CachedView],
        audit: AuditBuffer,
        metrics: TaskGraphMetrics | None = None,
        on_write: OnWrite | None = None,
    ) -> None:
        self._store = store
        self._cipher = cipher
        self._policy = policy
        self._limits = limits
        self._cache = cache
        self._audit = audit
        self._metrics = metrics
        self._on_write = on_write

    @property
    def policy(self) -> Policy:
        return self._policy

    @property
    def cache(self) -> ViewCache[CachedView]:
        return self._cache

    def set_policy(self, policy: Policy) -> None:
        """Swap the policy; every cached view was filtered by the old one, so drop them all."""
        self._policy = policy
        self._cache.clear()

    def invalidate(self, scope: ScopeKey) -> None:
        self._cache.invalidate(scope)

    # --- get --------------------------------------------------------------------------------
    async def get(self, req: ContextGetRequest) -> bytes:
        """The agent's view as reply bytes (a ``ContextView``)."""
        return (await self.get_reply(req)).data

    async def get_reply(self, req: ContextGetRequest) -> ReplyBody:
        """The agent's view as a reply body; a cached view's body is the cached object itself,
        so its compressed form is made once for all the requests it answers."""
        started = time.perf_counter()
        cache_key = (
            req.agent_id, req.workflow_id, req.task_id, req.project_id, tuple(req.requirements),
            req.redact_sensitive,
        )  # fmt: skip
        hit = self._cache.get(cache_key) if req.use_cache else None
        if hit is not None:
            self._record_read(req, hit.keys, hit.digest, hit.denied, hit.denied_digest, cached=True)
            self._observe(started)
            return hit.body
        chain = scope_chain(req.agent_id, req.workflow_id, req.task_id, req.project_id)
        seen = self._cache.generations(chain)
        rows = await self._store.load(chain)
        if req.project_id is None and req.workflow_id:
            project = _project_of(rows, req.workflow_id)
            if project is not None:
                chain.insert(1, ScopeKey(ContextScope.PROJECT, project))
                seen = seen[:2] + self._cache.generations(chain[1:2])[1:] + seen[2:]
                rows += await self._store.load([chain[1]])
        # values stay JSON text from the row to the reply: a view is never parsed only to be
        # serialised again (decrypted values are JSON text as well)
        entries = rows
        policy, agent = self._policy, req.agent_id
        view = build_view(
            entries,
            lambda e: policy.allows(agent, Operation.READ, e.scope, e.key, e.classification),
            req.requirements,
        )
        redacted = redact_sensitive(view) if req.redact_sensitive else []
        self._limits.check_context(f"the context of {agent}", view.size_bytes)
        for key, value in view.context.items():
            if isinstance(value, bytes):
                view.context[key] = self._cipher.decrypt_raw(value).decode()
        counts = view.counts_by_scope()
        reply = ContextView.model_construct(
            agent_id=agent,
            workflow_id=req.workflow_id,
            task_id=req.task_id,
            context={},
            scopes=[ScopeRef(scope=s.scope, scope_id=s.scope_id, key_count=counts.get(s, 0)) for s in chain],
            key_sources={k: e.scope for k, e in view.sources.items()},
            denied_count=len(view.denied),
            pruned_count=view.pruned_count,
            redacted=redacted,
            size_bytes=view.size_bytes,
        )
        body = _splice_context(reply.model_dump_json().encode(), view.context)
        keys = tuple(view.context)
        digest = _keyset_digest(keys)
        denied = tuple(f"{e.scope.value}:{e.key}" for e in view.denied)
        denied_digest = _keyset_digest(denied) if denied else None
        cached_body = ReplyBody(body.replace(_CACHED_MARK, b'"op":"get","cached":true', 1), reused=True)
        self._cache.put(cache_key, CachedView(cached_body, keys, digest, denied, denied_digest), chain, seen)
        self._record_read(req, keys, digest, denied, denied_digest, cached=False)
        self._observe(started)
        return ReplyBody(body)

    def _record_read(
        self,
        req: ContextGetRequest,
        keys: tuple[str, ...],
        digest: bytes,
        denied: tuple[str, ...],
        denied_digest: bytes | None,
        cached: bool,
    ) -> None:
        """One allow record listing the keys served and, when some were withheld, one deny
        record listing them (the audit may name denied keys; the view never does).

        Both lists are stored once per distinct list and referenced by digest: a repeated read
        writes two short rows, not the same thousand key names again."""
        at = utcnow()
        allowed = AuditEntry(
            agent_id=req.agent_id,
            operation="read",
            decision=AuditDecision.ALLOW,
            workflow_id=req.workflow_id,
            task_id=req.task_id,
            denied_count=len(denied),
            reason="cached view" if cached else None,
            at=at,
            keyset=digest,
        )
        if not denied:
            self._audit.add((allowed, keys))
            return
        withheld = AuditEntry(
            agent_id=req.agent_id,
            operation="read",
            decision=AuditDecision.DENY,
            workflow_id=req.workflow_id,
            task_id=req.task_id,
            denied_count=len(denied),
            reason="denied by policy",
            at=at,
            keyset=denied_digest,
        )
        self._audit.add((allowed, keys), (withheld, denied))

    def _observe(self, started: float) -> None:
        if self._metrics is not None:
            self._metrics.context_loading_time.observe(time.perf_counter() - started)
            self._metrics.context_cache_hit_rate.set(self._cache.stats().hit_rate)

    # --- put / contribute -------------------------------------------------------------------
    async def put(self, req: ContextPutRequest) -> ContextPutReply:
        target = resolve_write_scope(req)
        version, encrypted = await self._write(
            target,
            key=req.key,
            value=req.value,
            classification=req.classification,
            sensitive=req.sensitive,
            agent_id=req.agent_id,
            workflow_id=req.workflow_id,
            task_id=req.task_id,
            expected_version=req.expected_version,
            operation="write",
        )
        return ContextPutReply(
            scope=req.scope, scope_id=target.key.scope_id, key=req.key, version=version, encrypted=encrypted
        )

    async def contribute(self, req: ContributeRequest) -> ContributeReply:
        key = contribution_key(req.task_id)
        value = req.model_dump(
            mode="json",
            include={
                "agent_id",
                "task_id",
                "execution_timestamp",
                "outputs_summary",
                "learned_patterns",
                "recommendations",
                "resource_usage",
            },
        )
        version, _ = await self._write(
            ResolvedScope(ScopeKey(ContextScope.WORKFLOW, req.workflow_id), owned=True),
            key=key,
            value=value,
            classification=req.classification,
            sensitive=False,
            agent_id=req.agent_id,
            workflow_id=req.workflow_id,
            task_id=req.task_id,
            expected_version=None,
            operation="contribute",
        )
        return ContributeReply(workflow_id=req.workflow_id, key=key, version=version)

    async def _write(
        self,
        target: ResolvedScope,
        *,
        key: str,
        value: object,
        classification: Classification,
        sensitive: bool,
        agent_id: str,
        workflow_id: str | None,
        task_id: str | None,
        expected_version: int | None,
        operation: str,
    ) -> tuple[int, bool]:
        scope = target.key
        decision = self._policy.decide(
            agent_id, Operation.WRITE, scope.scope, key, classification, owned=target.owned
        )
        audit = AuditEntry(
            agent_id=agent_id,
            operation=operation,
            decision=AuditDecision.ALLOW if decision.allowed else AuditDecision.DENY,
            workflow_id=workflow_id,
            task_id=task_id,
            scope=scope.scope.value,
            scope_id=scope.scope_id,
            keys=(key,),
            reason=decision.reason,
        )
        # buffered read audits go first, so the audit's id order stays the order of events
        await self._audit.flush()
        if not decision.allowed:
            await self._store.record_audit([audit])
            raise WriteDenied(
                f"{agent_id} may not write {key!r} ({classification.value}) to {scope}: {decision.reason}",
                scope=str(scope),
                key=key,
            )
        raw = dump_json(value)
        self._limits.check_value(key, len(raw))
        encrypt = self._policy.sensitivity.is_sensitive(key, value, classification, sensitive)
        new = NewVersion(
            scope=scope.scope,
            scope_id=scope.scope_id,
            key=key,
            value_json=None if encrypt else raw.decode(),
            ciphertext=self._cipher.encrypt_raw(raw) if encrypt else None,
            classification=classification.value,
            sensitive=encrypt,
            size_bytes=len(raw),
            written_by=agent_id,
            workflow_id=workflow_id,
            task_id=task_id,
            expected_version=expected_version,
        )
        version, _created = await self._store.write(new, audit, self._limits.max_context_bytes)
        self._cache.invalidate(scope)
        if self._on_write is not None:
            await self._on_write(scope)
        return version, encrypt

    # --- audit ------------------------------------------------------------------------------
    async def audit(self, q: AuditQuery) -> AuditPage:
        await self._audit.flush()
        records = await self._store.query_audit(q)
        next_after = records[-1].id if len(records) == q.limit else None
        return AuditPage(records=records, next_after_id=next_after)


def _keyset_digest(keys: tuple[str, ...]) -> bytes:
    return hashlib.blake2b("\x1f".join(keys).encode(), digest_size=16).digest()


def _splice_context(body: bytes, context: dict[str, str]) -> bytes:
    """Put the values (JSON text each) into the rendered reply's empty ``context`` object.

    Only strings precede ``context`` in a ContextView, and a quote inside a string is escaped,
    so the first ``"context":{}`` is the field itself."""
    inner = ",".join(f"{_quote(k)}:{v}" for k, v in context.items())
    return body.replace(b'"context":{}', b'"context":{' + inner.encode() + b"}", 1)


def _project_of(entries: list[Entry], workflow_id: str) -> str | None:
    """The project a workflow belongs to: its workflow-scope ``project_id`` key, if any."""
    for entry in entries:
        if (
            entry.scope is ContextScope.WORKFLOW
            and entry.scope_id == workflow_id
            and entry.key == "project_id"
        ):
            if not isinstance(entry.value, str):
                return None  # encrypted: not a plain project id
            found = json.loads(entry.value)
            return found if isinstance(found, str) and found else None
    return None
