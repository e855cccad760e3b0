"""Pure core of the context service: scopes and merging, access policies, sensitivity, size
limits and the view cache. Nothing here does I/O."""

from taskloom.context.domain.cache import CacheStats, ViewCache
from taskloom.context.domain.errors import (
    ContextServiceError,
    ContextTooLarge,
    MalformedRequest,
    PolicyError,
    VersionConflict,
    WriteDenied,
)
from taskloom.context.domain.limits import Limits, json_size
from taskloom.context.domain.policy import Decision, Operation, Policy, Principal, Rule, SensitivityRules
from taskloom.context.domain.policy_loader import parse_policy
from taskloom.context.domain.scopes import (
    ALWAYS_INCLUDED,
    ALWAYS_INCLUDED_PREFIXES,
    SCOPE_ORDER,
    Entry,
    MergedView,
    ScopeKey,
    build_view,
    merge,
    prune,
    redact_sensitive,
    scope_chain,
    task_scope_id,
)

__all__ = [
    "ALWAYS_INCLUDED",
    "ALWAYS_INCLUDED_PREFIXES",
    "SCOPE_ORDER",
    "CacheStats",
    "ContextServiceError",
    "ContextTooLarge",
    "Decision",
    "Entry",
    "Limits",
    "MalformedRequest",
    "MergedView",
    "Operation",
    "Policy",
    "PolicyError",
    "Principal",
    "Rule",
    "ScopeKey",
    "SensitivityRules",
    "VersionConflict",
    "ViewCache",
    "WriteDenied",
    "build_view",
    "redact_sensitive",
    "json_size",
    "merge",
    "parse_policy",
    "prune",
    "scope_chain",
    "task_scope_id",
]
