"""Access policies: which agents (by name, glob or role) may read or write which keys of which
scopes, up to which classification. Default deny; an explicit deny rule beats any allow."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from fnmatch import translate
from typing import Any

from taskloom.contracts.context import Classification, ContextScope

__all__ = [
    "CLASSIFICATION_RANK",
    "DEFAULT_SENSITIVE_PATTERNS",
    "Decision",
    "Effect",
    "Operation",
    "Policy",
    "Principal",
    "Rule",
    "SensitivityRules",
    "glob_regex",
]

CLASSIFICATION_RANK: dict[Classification, int] = {c: i for i, c in enumerate(Classification)}
DEFAULT_SENSITIVE_PATTERNS: tuple[str, ...] = (
    "*secret*",
    "*token*",
    "*password*",
    "*passwd*",
    "*api_key*",
    "*apikey*",
    "*credential*",
    "*private_key*",
)
# Task and agent scopes belong to one task / one agent; the shared scopes belong to everyone
# the rule names.
_OWNED_SCOPES = frozenset({ContextScope.TASK, ContextScope.AGENT})


class Operation(StrEnum):
    READ = "read"
    WRITE = "write"


class Effect(StrEnum):
    ALLOW = "allow"
    DENY = "deny"


def glob_regex(patterns: tuple[str, ...]) -> re.Pattern[str]:
    """One compiled, case-sensitive regex matching any of the shell globs."""
    if not patterns:
        return re.compile(r"(?!)")
    return re.compile("|".join(translate(p) for p in patterns))


@dataclass(frozen=True, slots=True)
class Principal:
    agent_id: str
    roles: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    rule: str | None
    reason: str


@dataclass(frozen=True)
class Rule:
    name: str
    operations: frozenset[Operation]
    scopes: frozenset[ContextScope]
    agents: tuple[str, ...] = ()
    roles: frozenset[str] = frozenset()
    keys: tuple[str, ...] = ("*",)
    max_classification: Classification = Classification.INTERNAL
    effect: Effect = Effect.ALLOW
    owned_only: bool = True
    _agents_re: re.Pattern[str] = field(init=False, repr=False, compare=False)
    _keys_re: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_agents_re", glob_regex(self.agents))
        object.__setattr__(self, "_keys_re", glob_regex(self.keys))

    def names(self, principal: Principal) -> bool:
        return bool(self._agents_re.match(principal.agent_id)) or bool(self.roles & principal.roles)

    def covers(self, principal: Principal, op: Operation, scope: ContextScope, key: str, owned: bool) -> bool:
        """Whether the rule speaks about this access (classification aside)."""
        if op not in self.operations or scope not in self.scopes or not self.names(principal):
            return False
        if self.effect is Effect.ALLOW and self.owned_only and scope in _OWNED_SCOPES and not owned:
            return False
        return bool(self._keys_re.match(key))


@dataclass(frozen=True)
class SensitivityRules:
    """Which values are encrypted at rest: by key pattern (also nested keys of a dict value),
    by classification at or above ``encrypt_from``, or by the writer's explicit flag."""

    key_patterns: tuple[str, ...] = DEFAULT_SENSITIVE_PATTERNS
    encrypt_from: Classification = Classification.CONFIDENTIAL
    _re: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        lowered = tuple(p.lower() for p in self.key_patterns)
        object.__setattr__(self, "_re", glob_regex(lowered))

    def key_is_sensitive(self, key: str) -> bool:
        return bool(self._re.match(key.lower()))

    def is_sensitive(self, key: str, value: Any, classification: Classification, flag: bool) -> bool:
        if flag or CLASSIFICATION_RANK[classification] >= CLASSIFICATION_RANK[self.encrypt_from]:
            return True
        return self.key_is_sensitive(key) or self._nested(value, depth=0)

    def _nested(self, value: Any, depth: int) -> bool:
        if depth > 32:
            return False
        if isinstance(value, Mapping):
            return any(
                (isinstance(k, str) and self.key_is_sensitive(k)) or self._nested(v, depth + 1)
                for k, v in value.items()
            )
        if isinstance(value, list):
            return any(self._nested(v, depth + 1) for v in value)
        return False


@dataclass
class Policy:
    """A loaded policy: rules, role membership (role → agent globs) and sensitivity rules."""

    rules: tuple[Rule, ...] = ()
    role_members: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    sensitivity: SensitivityRules = field(default_factory=SensitivityRules)
    source: str = "<empty policy>"
    _members_re: dict[str, re.Pattern[str]] = field(init=False, repr=False)
    _principals: dict[str, Principal] = field(init=False, repr=False)
    _memo: dict[tuple[str, Operation, ContextScope, str, Classification, bool], bool] = field(
        init=False, repr=False
    )

    def __post_init__(self) -> None:
        self._members_re = {role: glob_regex(globs) for role, globs in self.role_members.items()}
        self._principals = {}
        self._memo = {}

    def principal(self, agent_id: str) -> Principal:
        found = self._principals.get(agent_id)
        if found is None:
            roles = frozenset(r for r, rx in self._members_re.items() if rx.match(agent_id))
            found = self._principals[agent_id] = Principal(agent_id, roles)
        return found

    def decide(
        self,
        agent_id: str,
        op: Operation,
        scope: ContextScope,
        key: str,
        classification: Classification,
        owned: bool = True,
    ) -> Decision:
        principal = self.principal(agent_id)
        op, scope, classification = Operation(op), ContextScope(scope), Classification(classification)
        rank = CLASSIFICATION_RANK[classification]
        allowed_by: Rule | None = None
        ceiling_hit: Rule | None = None
        for rule in self.rules:
            if not rule.covers(principal, op, scope, key, owned):
                continue
            if rule.effect is Effect.DENY:
                return Decision(False, rule.name, f"denied by rule {rule.name!r}")
            if rank <= CLASSIFICATION_RANK[rule.max_classification]:
                allowed_by = allowed_by or rule
            else:
                ceiling_hit = ceiling_hit or rule
        if allowed_by is not None:
            return Decision(True, allowed_by.name, f"allowed by rule {allowed_by.name!r}")
        if ceiling_hit is not None:
            return Decision(
                False,
                ceiling_hit.name,
                f"{classification.value} is above the ceiling "
                f"{ceiling_hit.max_classification.value} of rule {ceiling_hit.name!r}",
            )
        return Decision(False, None, "no rule allows it (default deny)")

    def allows(
        self,
        agent_id: str,
        op: Operation,
        scope: ContextScope,
        key: str,
        classification: Classification,
        owned: bool = True,
    ) -> bool:
        """``decide(...).allowed``, memoised: a 1,000-key view asks the same questions often."""
        memo_key = (agent_id, op, scope, key, classification, owned)
        hit = self._memo.get(memo_key)
        if hit is None:
            if len(self._memo) > 200_000:
                self._memo.clear()
            hit = self._memo[memo_key] = self.decide(agent_id, op, scope, key, classification, owned).allowed
        return hit
