"""Parse a YAML policy document into a ``Policy``, rejecting anything unknown with a message
that names the file, the place and the problem.

Format::

    version: 1
    roles:                      # role -> agent ids or globs
      builtin: [core-services, testing-specialist]
    sensitive:                  # optional; encryption at rest
      key_patterns: ["*secret*", "*token*"]
      encrypt_from: confidential
    rules:
      - name: builtin-read
        roles: [builtin]        # and/or agents: [name or glob, ...]
        scopes: [global, project, workflow, task, agent]
        keys: ["*"]             # globs, default "*"
        operations: [read]      # read | write
        max_classification: internal
        owned_only: true        # task/agent scopes only when they are the caller's own
        effect: allow           # or deny (beats any allow; takes no max_classification)
"""

from __future__ import annotations

from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from taskloom.context.domain.errors import PolicyError
from taskloom.context.domain.policy import (
    DEFAULT_SENSITIVE_PATTERNS,
    Effect,
    Operation,
    Policy,
    Rule,
    SensitivityRules,
)
from taskloom.contracts.context import Classification, ContextScope

__all__ = ["parse_policy"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _RuleDoc(_Strict):
    name: str = Field(min_length=1)
    effect: Effect = Effect.ALLOW
    agents: list[str] = Field(default_factory=list)
    roles: list[str] = Field(default_factory=list)
    scopes: list[ContextScope] = Field(min_length=1)
    keys: list[str] = Field(default_factory=lambda: ["*"], min_length=1)
    operations: list[Operation] = Field(min_length=1)
    max_classification: Classification | None = None
    owned_only: bool = True

    @model_validator(mode="after")
    def _consistent(self) -> _RuleDoc:
        if not self.agents and not self.roles:
            raise ValueError("a rule must name agents or roles")
        if self.effect is Effect.DENY and self.max_classification is not None:
            raise ValueError("a deny rule takes no max_classification (it denies every classification)")
        return self


class _SensitiveDoc(_Strict):
    key_patterns: list[str] = Field(default_factory=lambda: list(DEFAULT_SENSITIVE_PATTERNS))
    encrypt_from: Classification = Classification.CONFIDENTIAL


class _PolicyDoc(_Strict):
    version: Literal[1] = 1
    roles: dict[str, list[str]] = Field(default_factory=dict)
    sensitive: _SensitiveDoc = Field(default_factory=_SensitiveDoc)
    rules: list[_RuleDoc] = Field(default_factory=list)

    @model_validator(mode="after")
    def _known_roles(self) -> _PolicyDoc:
        names = [r.name for r in self.rules]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"rule names must be unique, repeated: {', '.join(dupes)}")
        for i, rule in enumerate(self.rules):
            unknown = [r for r in rule.roles if r not in self.roles]
            if unknown:
                raise ValueError(
                    f"rules[{i}] ({rule.name}) names undefined role(s) {', '.join(unknown)}; "
                    f"defined: {', '.join(sorted(self.roles)) or 'none'}"
                )
        return self


def _describe(exc: ValidationError) -> str:
    problems = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "document"
        got = err.get("input")
        shown = "" if isinstance(got, dict | list) or got is None else f" (got {got!r})"
        problems.append(f"{where}: {err['msg']}{shown}")
    return "; ".join(problems)


def parse_policy(text: str, source: str = "<policy>") -> Policy:
    """Build a ``Policy`` from YAML text; raise ``PolicyError`` naming ``source`` and the problem."""
    try:
        raw: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PolicyError(f"policy {source} is not valid YAML: {exc}", source=source) from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise PolicyError(
            f"policy {source} must be a mapping with 'rules', got {type(raw).__name__}", source=source
        )
    try:
        doc = _PolicyDoc.model_validate(raw)
    except ValidationError as exc:
        raise PolicyError(f"policy {source} is invalid: {_describe(exc)}", source=source) from None
    rules = tuple(
        Rule(
            name=r.name,
            effect=r.effect,
            agents=tuple(r.agents),
            roles=frozenset(r.roles),
            scopes=frozenset(r.scopes),
            keys=tuple(r.keys),
            operations=frozenset(r.operations),
            max_classification=r.max_classification or Classification.INTERNAL,
            owned_only=r.owned_only,
        )
        for r in doc.rules
    )
    return Policy(
        rules=rules,
        role_members={role: tuple(globs) for role, globs in doc.roles.items()},
        sensitivity=SensitivityRules(tuple(doc.sensitive.key_patterns), doc.sensitive.encrypt_from),
        source=source,
    )
