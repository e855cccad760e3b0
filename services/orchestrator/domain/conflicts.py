"""Conflict detection and resolution between several outputs gathered for one task.

Per top-level key: values that agree (or appear once) merge; two different values are a
*contradiction*, unless the key names a recommendation (*incompatible recommendation*) or a
numeric quality score (*quality disagreement*, when they differ by more than 0.1 of the
scale). Strategy per conflict type: contradictions go to the majority when three or more
sources vote and one value has more than half, else to the most confident source;
incompatible recommendations are priority-weighted (task priority x confidence); quality
disagreements take the most confident source. Lists of recommendations merge as a union.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from taskloom.contracts.enums import ConflictType, ResolutionStrategy
from taskloom.contracts.events import Conflict
from taskloom.orchestrator.domain.model import Candidate

__all__ = ["Resolution", "detect_conflicts", "resolve"]

_QUALITY_NAMES = ("quality", "score", "confidence", "rating")
QUALITY_TOLERANCE = 0.1


@dataclass(frozen=True, slots=True)
class Resolution:
    strategy: ResolutionStrategy
    output: dict[str, Any]
    rationale: str


def _key(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_recommendation(key: str) -> bool:
    return "recommend" in key.lower()


def _is_quality(key: str, values: Sequence[Any]) -> bool:
    lowered = key.lower()
    return all(_is_number(v) for v in values) and any(n in lowered for n in _QUALITY_NAMES)


def _classify(key: str, values: list[Any]) -> ConflictType | None:
    distinct = {_key(v) for v in values}
    if len(distinct) <= 1:
        return None
    if _is_recommendation(key):
        if all(isinstance(v, list) for v in values):
            return None  # recommendation lists add up
        return ConflictType.INCOMPATIBLE_RECOMMENDATION
    if _is_quality(key, values):
        numbers = [float(v) for v in values]
        scale = max(1.0, max(abs(n) for n in numbers))
        if max(numbers) - min(numbers) <= QUALITY_TOLERANCE * scale:
            return None
        return ConflictType.QUALITY_DISAGREEMENT
    return ConflictType.CONTRADICTION


def _keys(candidates: Sequence[Candidate]) -> list[str]:
    seen: list[str] = []
    for c in candidates:
        seen.extend(k for k in c.outputs if k not in seen)
    return seen


def detect_conflicts(candidates: Sequence[Candidate]) -> list[Conflict]:
    """Every key on which the candidates disagree, classified."""
    conflicts: list[Conflict] = []
    for key in _keys(candidates):
        holders = [c for c in candidates if key in c.outputs]
        values = [c.outputs[key] for c in holders]
        kind = _classify(key, values)
        if kind is not None:
            conflicts.append(
                Conflict(
                    conflict_type=kind,
                    key=key,
                    values=values,
                    sources=[c.source for c in holders],
                    description=f"{len({_key(v) for v in values})} different values for {key!r}",
                )
            )
    return conflicts


def _strategy(conflict: Conflict) -> ResolutionStrategy:
    match conflict.conflict_type:
        case ConflictType.CONTRADICTION:
            counts = Counter(_key(v) for v in conflict.values)
            top = counts.most_common(1)[0][1]
            if len(conflict.values) >= 3 and top * 2 > len(conflict.values):
                return ResolutionStrategy.MAJORITY
            return ResolutionStrategy.HIGHEST_CONFIDENCE
        case ConflictType.INCOMPATIBLE_RECOMMENDATION:
            return ResolutionStrategy.PRIORITY_WEIGHTED
        case ConflictType.QUALITY_DISAGREEMENT:
            return ResolutionStrategy.HIGHEST_CONFIDENCE


def _pick(strategy: ResolutionStrategy, holders: list[Candidate], key: str) -> Any:
    if strategy is ResolutionStrategy.MAJORITY:
        counts = Counter(_key(c.outputs[key]) for c in holders)
        winner = counts.most_common(1)[0][0]
        return next(c.outputs[key] for c in holders if _key(c.outputs[key]) == winner)
    if strategy is ResolutionStrategy.PRIORITY_WEIGHTED:
        # later sources win ties: they saw more of the work
        best = max(enumerate(holders), key=lambda ic: (ic[1].priority * ic[1].confidence, ic[0]))[1]
        return best.outputs[key]
    best = max(enumerate(holders), key=lambda ic: (ic[1].confidence, ic[0]))[1]
    return best.outputs[key]


def resolve(candidates: Sequence[Candidate], conflicts: Sequence[Conflict]) -> Resolution:
    """One output from all candidates: compatible keys merged, conflicting keys decided."""
    by_key = {c.key: c for c in conflicts}
    output: dict[str, Any] = {}
    notes: list[str] = []
    used: list[ResolutionStrategy] = []
    for key in _keys(candidates):
        holders = [c for c in candidates if key in c.outputs]
        conflict = by_key.get(key)
        if conflict is None:
            values = [c.outputs[key] for c in holders]
            if _is_recommendation(key) and all(isinstance(v, list) for v in values):
                merged: list[Any] = []
                for v in values:
                    merged.extend(x for x in v if _key(x) not in {_key(m) for m in merged})
                output[key] = merged
            else:
                output[key] = values[-1]
            continue
        strategy = _strategy(conflict)
        used.append(strategy)
        output[key] = _pick(strategy, holders, key)
        notes.append(f"{key}: {conflict.conflict_type.value} -> {strategy.value}")
    primary = used[0] if used else ResolutionStrategy.MERGE_COMPATIBLE
    rationale = "; ".join(notes) if notes else f"{len(candidates)} compatible outputs merged"
    return Resolution(primary, output, rationale)
