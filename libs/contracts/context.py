"""Request and reply models of the context service (NATS request/reply on ``ns.context.<op>``).

Ops: ``get`` (ContextGetRequest → ContextView), ``put`` (ContextPutRequest → ContextPutReply),
``contribute`` (ContributeRequest → ContributeReply), ``audit`` (AuditQuery → AuditPage),
``reload`` (ReloadPolicyRequest → ReloadPolicyReply). Any op may instead answer ContextError.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import Field, TypeAdapter

from taskloom.contracts.base import JsonDict, Versioned, WireModel, utcnow

__all__ = [
    "AuditDecision",
    "AuditPage",
    "AuditQuery",
    "AuditRecord",
    "Classification",
    "ContextError",
    "ContextErrorCode",
    "ContextGetRequest",
    "ContextPutReply",
    "ContextPutRequest",
    "ContextReply",
    "ContextScope",
    "ContextView",
    "ContributeReply",
    "ContributeRequest",
    "ReloadPolicyReply",
    "ReloadPolicyRequest",
    "ScopeRef",
    "parse_context_reply",
]


class ContextScope(StrEnum):
    """Context layers, most general first; a more specific layer wins on merge."""

    GLOBAL = "global"
    PROJECT = "project"
    WORKFLOW = "workflow"
    TASK = "task"
    AGENT = "agent"


class Classification(StrEnum):
    """Sensitivity of a context value, lowest first; a policy grants up to a ceiling."""

    PUBLIC = "public"
    INTERNAL = "internal"
    CONFIDENTIAL = "confidential"
    RESTRICTED = "restricted"


class ContextGetRequest(Versioned):
    """Ask for the filtered, merged context of one agent working on one task."""

    op: Literal["get"] = "get"
    agent_id: str = Field(min_length=1)
    workflow_id: str | None = None
    task_id: str | None = None
    project_id: str | None = None
    requirements: list[str] = Field(
        default_factory=list,
        description="The task's required_context: keys, globs or dotted prefixes; empty keeps all",
    )
    use_cache: bool = True
    redact_sensitive: bool = Field(
        default=False,
        description="Leave out the values stored as sensitive and name their keys in `redacted`"
        " (a caller without access_sensitive_data)",
    )


class ScopeRef(WireModel):
    scope: ContextScope
    scope_id: str
    key_count: int = Field(default=0, ge=0, description="Keys of the view that came from this scope")


class ContextView(Versioned):
    """The merged view: only keys the agent may read; denied keys are absent, only counted.
    Always kept whatever the requirements: system_state, user_preferences, project_metadata and
    the upstream tasks' ``outputs.<task_id>``."""

    op: Literal["get"] = "get"
    cached: bool = Field(default=False, description="Served from the view cache")
    agent_id: str
    workflow_id: str | None = None
    task_id: str | None = None
    context: JsonDict = Field(default_factory=dict)
    scopes: list[ScopeRef] = Field(default_factory=list, description="Scopes read, most general first")
    key_sources: dict[str, ContextScope] = Field(default_factory=dict, description="Scope of each key")
    denied_count: int = Field(default=0, ge=0, description="Keys withheld by policy (never named)")
    pruned_count: int = Field(default=0, ge=0, description="Readable keys left out by the requirements")
    redacted: list[str] = Field(
        default_factory=list,
        description="Readable keys whose values are sensitive and were left out (redact_sensitive)",
    )
    size_bytes: int = Field(default=0, ge=0)


class ContextPutRequest(Versioned):
    """Write one key into one scope (a new version of that key)."""

    op: Literal["put"] = "put"
    agent_id: str = Field(min_length=1, description="Writer; checked against the write policy")
    scope: ContextScope
    key: str = Field(min_length=1, max_length=512)
    value: Any = None
    classification: Classification = Classification.INTERNAL
    sensitive: bool = Field(default=False, description="Force encryption at rest")
    workflow_id: str | None = None
    task_id: str | None = None
    project_id: str | None = None
    scope_id: str | None = Field(default=None, description="Explicit scope id; else derived")
    expected_version: int | None = Field(default=None, ge=0, description="Optimistic concurrency on the key")


class ContextPutReply(Versioned):
    op: Literal["put"] = "put"
    scope: ContextScope
    scope_id: str
    key: str
    version: int
    encrypted: bool


class ContributeRequest(Versioned):
    """A finished task's contribution to its workflow's scope (the seed's ``contribute_context``)."""

    op: Literal["contribute"] = "contribute"
    agent_id: str = Field(min_length=1)
    workflow_id: str = Field(min_length=1)
    task_id: str = Field(min_length=1)
    execution_timestamp: datetime = Field(default_factory=utcnow)
    outputs_summary: JsonDict = Field(default_factory=dict)
    learned_patterns: list[Any] = Field(default_factory=list)
    recommendations: list[Any] = Field(default_factory=list)
    resource_usage: JsonDict = Field(default_factory=dict)
    classification: Classification = Classification.INTERNAL


class ContributeReply(Versioned):
    op: Literal["contribute"] = "contribute"
    workflow_id: str
    key: str = Field(description="Workflow-scope key holding the contribution: outputs.<task_id>")
    version: int


class AuditDecision(StrEnum):
    ALLOW = "allow"
    DENY = "deny"


class AuditQuery(Versioned):
    op: Literal["audit"] = "audit"
    workflow_id: str | None = None
    agent_id: str | None = None
    decision: AuditDecision | None = None
    after_id: int = Field(default=0, ge=0, description="Cursor: records with a larger id")
    limit: int = Field(default=100, ge=1, le=1000)


class AuditRecord(WireModel):
    id: int
    agent_id: str
    workflow_id: str | None = None
    task_id: str | None = None
    operation: str = Field(description="create | read | write | contribute | reload")
    scope: ContextScope | None = Field(default=None, description="Scope written (reads span scopes)")
    scope_id: str | None = None
    keys: list[str] = Field(default_factory=list, description="scope:key of each entry touched or denied")
    denied_count: int = 0
    decision: AuditDecision
    reason: str | None = None
    at: datetime


class AuditPage(Versioned):
    op: Literal["audit"] = "audit"
    records: list[AuditRecord] = Field(default_factory=list)
    next_after_id: int | None = None


class ReloadPolicyRequest(Versioned):
    op: Literal["reload"] = "reload"


class ReloadPolicyReply(Versioned):
    op: Literal["reload"] = "reload"
    rules: int
    source: str


class ContextErrorCode(StrEnum):
    MALFORMED = "malformed"
    DENIED = "denied"
    TOO_LARGE = "too_large"
    CONFLICT = "conflict"
    BAD_POLICY = "bad_policy"
    INTERNAL = "internal"


class ContextError(Versioned):
    """Error reply of any op: a code and a message saying what was wrong."""

    op: Literal["error"] = "error"
    code: ContextErrorCode
    message: str
    details: JsonDict = Field(default_factory=dict)


ContextReply = Annotated[
    ContextView | ContextPutReply | ContributeReply | AuditPage | ReloadPolicyReply | ContextError,
    Field(discriminator="op"),
]

_REPLY: TypeAdapter[Any] = TypeAdapter(ContextReply)


def parse_context_reply(data: bytes | str) -> ContextReply:
    """Parse any reply of the context service (an error reply included)."""
    return _REPLY.validate_json(data)  # type: ignore[no-any-return]
