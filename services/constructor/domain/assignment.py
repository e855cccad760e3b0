"""The agent assignment engine: the seed's multi-criteria score per (task, agent).

* domain expertise match, 40 % — the agent accepts the task type (required) and has the
  capabilities the task asks for; specialists edge out generalists;
* current workload capacity, 25 % — free slots over capacity of its live instances;
* historical performance, 20 % — success rate and speed on this task type, shrunk towards
  neutral while there are few runs;
* context compatibility, 15 % — it already holds the task's upstream context (it ran the
  dependencies) and its domain words match the task's.

The best candidate is assigned, its score is the ``confidence_score``, the others follow in
order as ``backup_agents``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from taskloom.constructor.errors import MissingCapability
from taskloom.contracts.agents import AgentRegistration
from taskloom.contracts.catalog import BUILTIN_CATALOG, AgentProfile

__all__ = [
    "WEIGHTS",
    "AgentCandidate",
    "AgentPool",
    "Assignment",
    "PerformanceStats",
    "ScoreBreakdown",
    "TaskNeeds",
    "assign",
    "assign_all",
    "pool_from_catalog",
    "pool_from_registrations",
]

WEIGHTS: Mapping[str, float] = {"expertise": 0.40, "workload": 0.25, "history": 0.20, "context": 0.15}
NEUTRAL = 0.5
_WORD = re.compile(r"[a-z]{3,}")


def _words(*texts: str) -> frozenset[str]:
    return frozenset(w for text in texts for w in _WORD.findall(text.lower().replace("_", " ")))


@dataclass(frozen=True)
class AgentCandidate:
    agent_id: str
    capabilities: frozenset[str]
    task_types: frozenset[str]
    capacity: int = 0
    load: int = 0
    live: bool = False
    instances: int = 0
    vocabulary: frozenset[str] = frozenset()

    @property
    def workload_score(self) -> float:
        if not self.live or self.capacity <= 0:
            # no heartbeat to judge by (planning offline): every agent counts as idle
            return 1.0
        return max(self.capacity - self.load, 0) / self.capacity


@dataclass(frozen=True)
class AgentPool:
    candidates: tuple[AgentCandidate, ...]
    source: str  # "registry" (live heartbeats) or "catalog" (static, nothing live)

    def for_task_type(self, task_type: str) -> list[AgentCandidate]:
        return [c for c in self.candidates if task_type in c.task_types]


def _from_profile(profile: AgentProfile) -> AgentCandidate:
    return AgentCandidate(
        agent_id=profile.agent_id,
        capabilities=frozenset(profile.capabilities),
        task_types=frozenset(profile.task_types),
        vocabulary=_words(profile.description, *profile.capabilities, *profile.task_types),
    )


def pool_from_catalog(catalog: Mapping[str, AgentProfile] = BUILTIN_CATALOG) -> AgentPool:
    return AgentPool(tuple(_from_profile(p) for p in catalog.values()), "catalog")


def pool_from_registrations(
    registrations: Iterable[AgentRegistration], catalog: Mapping[str, AgentProfile] = BUILTIN_CATALOG
) -> AgentPool:
    """Live agents grouped by id (instances add up), or the catalogue when none is live."""
    grouped: dict[str, list[AgentRegistration]] = {}
    for reg in registrations:
        grouped.setdefault(reg.agent_id, []).append(reg)
    if not grouped:
        return pool_from_catalog(catalog)
    candidates = []
    for agent_id, regs in sorted(grouped.items()):
        caps = frozenset(c for r in regs for c in r.capabilities)
        types = frozenset(t for r in regs for t in r.task_types)
        profile = catalog.get(agent_id)
        candidates.append(
            AgentCandidate(
                agent_id=agent_id,
                capabilities=caps,
                task_types=types,
                capacity=sum(r.capacity for r in regs),
                load=sum(r.load for r in regs),
                live=True,
                instances=len(regs),
                vocabulary=_words(profile.description if profile else "", *caps, *types),
            )
        )
    return AgentPool(tuple(candidates), "registry")


@dataclass(frozen=True)
class PerformanceStats:
    completed: int = 0
    failed: int = 0
    total_seconds: float = 0.0


@dataclass(frozen=True)
class TaskNeeds:
    """What assignment needs to know about a task."""

    task_id: str
    task_type: str
    capabilities: tuple[str, ...] = ()
    duration_minutes: int = 10
    dependencies: tuple[str, ...] = ()
    text: str = ""


@dataclass(frozen=True)
class ScoreBreakdown:
    agent_id: str
    expertise: float
    workload: float
    history: float
    context: float

    @property
    def total(self) -> float:
        return round(
            WEIGHTS["expertise"] * self.expertise
            + WEIGHTS["workload"] * self.workload
            + WEIGHTS["history"] * self.history
            + WEIGHTS["context"] * self.context,
            4,
        )


@dataclass(frozen=True)
class Assignment:
    task_id: str
    agent_id: str
    confidence_score: float
    backup_agents: list[str]
    scores: list[ScoreBreakdown] = field(default_factory=list)


def _expertise(agent: AgentCandidate, needs: TaskNeeds) -> float:
    wanted = set(needs.capabilities)
    coverage = len(wanted & agent.capabilities) / len(wanted) if wanted else 1.0
    specialisation = min(1.0, 5 / max(len(agent.task_types), 1))
    return 0.8 * coverage + 0.2 * specialisation


def _history(stats: PerformanceStats | None, needs: TaskNeeds) -> float:
    if stats is None:
        return NEUTRAL
    runs = stats.completed + stats.failed
    if runs == 0:
        return NEUTRAL
    success = (stats.completed + 1) / (runs + 2)
    speed = NEUTRAL
    if stats.completed and stats.total_seconds > 0:
        mean = stats.total_seconds / stats.completed
        expected = max(needs.duration_minutes, 1) * 60
        speed = min(1.0, 2 * expected / (expected + mean))
    raw = 0.75 * success + 0.25 * speed
    weight = runs / (runs + 3)
    return weight * raw + (1 - weight) * NEUTRAL


def _context(agent: AgentCandidate, needs: TaskNeeds, assigned: Mapping[str, str]) -> float:
    deps = [assigned[d] for d in needs.dependencies if d in assigned]
    locality = sum(1 for a in deps if a == agent.agent_id) / len(deps) if deps else NEUTRAL
    words = _words(needs.text)
    overlap = len(words & agent.vocabulary) / len(words) if words else 0.0
    return 0.5 * locality + 0.5 * min(1.0, 3 * overlap)


def assign(
    needs: TaskNeeds,
    pool: AgentPool,
    history: Mapping[tuple[str, str], PerformanceStats],
    assigned: Mapping[str, str],
) -> Assignment:
    """The best agent for one task; raises ``MissingCapability`` when no agent accepts it."""
    candidates = pool.for_task_type(needs.task_type)
    if not candidates:
        raise MissingCapability({needs.task_type: list(needs.capabilities)})
    scored = [
        ScoreBreakdown(
            agent_id=c.agent_id,
            expertise=round(_expertise(c, needs), 4),
            workload=round(c.workload_score, 4),
            history=round(_history(history.get((c.agent_id, needs.task_type)), needs), 4),
            context=round(_context(c, needs, assigned), 4),
        )
        for c in candidates
    ]
    scored.sort(key=lambda s: (-s.total, s.agent_id))
    best = scored[0]
    return Assignment(
        task_id=needs.task_id,
        agent_id=best.agent_id,
        confidence_score=min(1.0, max(0.0, best.total)),
        backup_agents=[s.agent_id for s in scored[1:]],
        scores=scored,
    )


def assign_all(
    tasks: Sequence[TaskNeeds],
    pool: AgentPool,
    history: Mapping[tuple[str, str], PerformanceStats],
) -> dict[str, Assignment]:
    """Assign every task (in the given, dependency-respecting order). Every task type nobody
    can do is collected first, so the rejection names all of them at once."""
    missing = {t.task_type: list(t.capabilities) for t in tasks if not pool.for_task_type(t.task_type)}
    if missing:
        raise MissingCapability(missing)
    assigned: dict[str, str] = {}
    out: dict[str, Assignment] = {}
    for needs in tasks:
        result = assign(needs, pool, history, assigned)
        assigned[needs.task_id] = result.agent_id
        out[needs.task_id] = result
    return out
