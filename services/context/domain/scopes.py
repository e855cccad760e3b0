"""Context scopes, their merge (most general first, the more specific winning) and the pruning
of a view to what a task asks for (plus the always-included keys of the seed's
``_filter_global_context``)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from fnmatch import translate
from functools import lru_cache
from typing import Any, NamedTuple

from taskloom.contracts.context import Classification, ContextScope

__all__ = [
    "ALWAYS_INCLUDED",
    "ALWAYS_INCLUDED_PREFIXES",
    "GLOBAL_SCOPE_ID",
    "SCOPE_ORDER",
    "Entry",
    "MergedView",
    "ScopeKey",
    "build_view",
    "merge",
    "prune",
    "redact_sensitive",
    "requirement_matcher",
    "scope_chain",
    "task_scope_id",
]

SCOPE_ORDER: tuple[ContextScope, ...] = (
    ContextScope.GLOBAL,
    ContextScope.PROJECT,
    ContextScope.WORKFLOW,
    ContextScope.TASK,
    ContextScope.AGENT,
)
_RANK = {scope: i for i, scope in enumerate(SCOPE_ORDER)}

GLOBAL_SCOPE_ID = "global"
# Kept in every view whatever the task asks for: the seed always includes these three.
ALWAYS_INCLUDED: frozenset[str] = frozenset({"system_state", "user_preferences", "project_metadata"})
# Outputs contributed by upstream tasks (``outputs.<task_id>``) are what downstream tasks are for.
ALWAYS_INCLUDED_PREFIXES: tuple[str, ...] = ("outputs.",)


class ScopeKey(NamedTuple):
    scope: ContextScope
    scope_id: str

    def __str__(self) -> str:
        return f"{self.scope.value}:{self.scope_id}"


class Entry(NamedTuple):
    """The current version of one key in one scope. A tuple: a view is built from a thousand of
    them per uncached read, and tuples are the cheapest immutable records to make."""

    scope: ContextScope
    scope_id: str
    key: str
    value: Any
    classification: Classification = Classification.INTERNAL
    sensitive: bool = False
    version: int = 1
    size_bytes: int = 0

    @property
    def scope_key(self) -> ScopeKey:
        return ScopeKey(self.scope, self.scope_id)


def task_scope_id(workflow_id: str | None, task_id: str) -> str:
    """Task ids are unique within a workflow only, so the task scope id carries both."""
    return f"{workflow_id}/{task_id}" if workflow_id else task_id


def scope_chain(
    agent_id: str,
    workflow_id: str | None = None,
    task_id: str | None = None,
    project_id: str | None = None,
) -> list[ScopeKey]:
    """The scopes an agent working on a task reads, most general first."""
    chain = [ScopeKey(ContextScope.GLOBAL, GLOBAL_SCOPE_ID)]
    if project_id:
        chain.append(ScopeKey(ContextScope.PROJECT, project_id))
    if workflow_id:
        chain.append(ScopeKey(ContextScope.WORKFLOW, workflow_id))
    if task_id:
        chain.append(ScopeKey(ContextScope.TASK, task_scope_id(workflow_id, task_id)))
    chain.append(ScopeKey(ContextScope.AGENT, agent_id))
    return chain


def merge(entries: Iterable[Entry]) -> tuple[dict[str, Any], dict[str, Entry]]:
    """Merge entries scope by scope, most general first; a key of a more specific scope
    replaces the same key of a more general one wholesale (no deep merge: a specific value is
    a deliberate override). Returns the merged dict and the entry each key came from."""
    buckets: list[list[Entry]] = [[] for _ in SCOPE_ORDER]
    for entry in entries:
        buckets[_RANK[entry.scope]].append(entry)
    winners: dict[str, Entry] = {}
    for bucket in buckets:
        for entry in bucket:
            winners[entry.key] = entry
    return {k: e.value for k, e in winners.items()}, winners


@lru_cache(maxsize=512)
def requirement_matcher(requirements: tuple[str, ...]) -> re.Pattern[str] | None:
    """One regex for a task's ``required_context``: each item is a key, a glob, or a dotted
    prefix (``outputs`` keeps ``outputs.t1``). ``None`` when nothing is required (keep all)."""
    if not requirements:
        return None
    parts = []
    for item in requirements:
        parts.append(translate(item).removeprefix("(?s:").removesuffix(")\\Z"))
        parts.append(re.escape(item) + r"\..*")
    return re.compile("(?s:" + "|".join(f"(?:{p})" for p in parts) + r")\Z")


def _always(key: str) -> bool:
    return key in ALWAYS_INCLUDED or key.startswith(ALWAYS_INCLUDED_PREFIXES)


def prune(context: dict[str, Any], requirements: Sequence[str]) -> tuple[dict[str, Any], int]:
    """Keep the keys the task requires plus the always-included ones; return the kept dict and
    how many keys were left out."""
    matcher = requirement_matcher(tuple(requirements))
    if matcher is None:
        return dict(context), 0
    kept = {k: v for k, v in context.items() if _always(k) or matcher.match(k)}
    return kept, len(context) - len(kept)


@dataclass(slots=True)
class MergedView:
    """An agent's view before it goes on the wire."""

    context: dict[str, Any]
    sources: dict[str, Entry]  # the entry each served key came from
    denied: list[Entry] = field(default_factory=list)
    pruned_count: int = 0
    size_bytes: int = 0

    def counts_by_scope(self) -> dict[ScopeKey, int]:
        out: dict[ScopeKey, int] = {}
        for entry in self.sources.values():
            ref = ScopeKey(entry.scope, entry.scope_id)
            out[ref] = out.get(ref, 0) + 1
        return out


def build_view(
    entries: Iterable[Entry],
    readable: Callable[[Entry], bool],
    requirements: Sequence[str] = (),
) -> MergedView:
    """Filter entries through ``readable(entry) -> bool`` (the policy), merge, then prune.

    Filtering comes first: a denied value never takes part in the merge, so a permitted value
    of the same key from a more general scope is what the agent sees, and a denied one is
    simply absent."""
    allowed: list[Entry] = []
    denied: list[Entry] = []
    for entry in entries:
        (allowed if readable(entry) else denied).append(entry)
    merged, winners = merge(allowed)
    kept, pruned = prune(merged, requirements)
    sources = winners if len(kept) == len(winners) else {k: winners[k] for k in kept}
    size = sum(e.size_bytes for e in sources.values())
    return MergedView(kept, sources, denied, pruned, size)


def redact_sensitive(view: MergedView) -> list[str]:
    """Take out of ``view`` every value stored as sensitive, for a caller that may read the key
    by policy but may not see sensitive data; return those keys, sorted.

    The whole key goes: a value of the same key from a more general scope is not shown in its
    place, because it is not what the key holds where the caller looks."""
    keys = sorted(k for k, e in view.sources.items() if e.sensitive)
    for key in keys:
        del view.context[key]
        view.size_bytes -= view.sources.pop(key).size_bytes
    return keys
