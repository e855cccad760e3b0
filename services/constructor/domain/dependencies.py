"""Dependency analysis with networkx: cycle detection, transitive reduction, the critical path
weighted by estimated durations, parallel groups and the execution strategy."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from taskloom.constructor.errors import DependencyCycle
from taskloom.contracts.enums import ExecutionStrategyType

__all__ = ["GraphAnalysis", "analyse", "build_graph", "critical_path", "reduce_dependencies"]


def build_graph(durations: Mapping[str, int], dependencies: Mapping[str, Sequence[str]]) -> nx.DiGraph:
    """Edges point from a dependency to the task that waits for it; raises on a cycle."""
    g: nx.DiGraph = nx.DiGraph()
    for task_id, minutes in durations.items():
        g.add_node(task_id, duration=minutes)
    for task_id, deps in dependencies.items():
        for dep in deps:
            g.add_edge(dep, task_id)
    try:
        cycle_edges = nx.find_cycle(g)
    except nx.NetworkXNoCycle:
        return g
    raise DependencyCycle([str(u) for u, _ in cycle_edges])


def reduce_dependencies(
    g: nx.DiGraph, keep: Mapping[str, set[str]] | None = None
) -> tuple[dict[str, list[str]], int]:
    """Each task's dependencies after transitive reduction, keeping the order they were given
    in. ``keep`` names edges that carry data (task → dependencies it reads outputs from): the
    agent only sees its direct dependencies' outputs, so those stay even when implied."""
    reduced = nx.transitive_reduction(g)
    keep = keep or {}
    deps: dict[str, list[str]] = {}
    removed = 0
    for node in g.nodes:
        wanted = [d for d in g.predecessors(node) if reduced.has_edge(d, node) or d in keep.get(node, set())]
        removed += g.in_degree(node) - len(wanted)
        deps[str(node)] = [str(d) for d in wanted]
    return deps, removed


def critical_path(g: nx.DiGraph) -> tuple[list[str], int]:
    """The longest chain by summed task durations, and its length in minutes."""
    best: dict[str, tuple[int, str | None]] = {}
    for node in nx.topological_sort(g):
        own = int(g.nodes[node]["duration"])
        preds = sorted((-best[p][0], str(p)) for p in g.predecessors(node))
        # ties go to the smallest id so the path is the same on every run
        length, via = (-preds[0][0], preds[0][1]) if preds else (0, None)
        best[node] = (length + own, via)
    if not best:
        return [], 0
    end = min(best, key=lambda n: (-best[n][0], n))
    path: list[str] = []
    cursor: str | None = end
    while cursor is not None:
        path.append(cursor)
        cursor = best[cursor][1]
    return path[::-1], best[end][0]


@dataclass(frozen=True)
class GraphAnalysis:
    dependencies: dict[str, list[str]]
    critical_path: list[str]
    critical_minutes: int
    groups: list[list[str]]
    strategy: ExecutionStrategyType
    estimated_duration: int
    hints: dict[str, Any] = field(default_factory=dict)


def _strategy(groups: list[list[str]], total: int) -> ExecutionStrategyType:
    widest = max((len(g) for g in groups), default=0)
    if widest <= 1:
        return ExecutionStrategyType.SEQUENTIAL
    # most of the work can run at once: one wide fan-out with a little set-up or wrap-up
    if widest * 2 >= total:
        return ExecutionStrategyType.PARALLEL
    return ExecutionStrategyType.MIXED


def analyse(
    durations: Mapping[str, int],
    dependencies: Mapping[str, Sequence[str]],
    requested: ExecutionStrategyType | None = None,
    max_concurrent: int = 8,
    keep: Mapping[str, set[str]] | None = None,
) -> GraphAnalysis:
    """Everything the execution strategy says about a set of tasks.

    A requested ``sequential`` strategy runs one task at a time, so the estimate is the sum of
    all durations; a requested ``parallel`` one is honoured when the graph has independent tasks.
    """
    g = build_graph(durations, dependencies)
    deps, removed = reduce_dependencies(g, keep)
    reduced: nx.DiGraph = nx.DiGraph()
    reduced.add_nodes_from(g.nodes(data=True))
    reduced.add_edges_from((d, t) for t, ds in deps.items() for d in ds)
    path, minutes = critical_path(reduced)
    groups = [sorted(str(n) for n in gen) for gen in nx.topological_generations(reduced)]
    total_work = sum(durations.values())
    natural = _strategy(groups, len(durations))
    strategy = natural
    if requested == ExecutionStrategyType.SEQUENTIAL:
        strategy = requested
    elif requested is not None and natural != ExecutionStrategyType.SEQUENTIAL:
        strategy = requested
    estimate = total_work if strategy == ExecutionStrategyType.SEQUENTIAL else minutes
    widest = max((len(gr) for gr in groups), default=0)
    on_path = set(path)
    slack = _slack(reduced, minutes)
    hints: dict[str, Any] = {
        "total_work_minutes": total_work,
        "critical_path_minutes": minutes,
        "max_parallelism": widest,
        "speedup": round(total_work / minutes, 2) if minutes else 1.0,
        "redundant_dependencies_removed": removed,
        "bottlenecks": sorted(
            (n for n in on_path if reduced.out_degree(n) > 1), key=lambda n: (-reduced.out_degree(n), n)
        ),
        "slack_minutes": {n: s for n, s in sorted(slack.items()) if s > 0},
    }
    if requested is not None and strategy != requested:
        hints["requested_strategy"] = f"{requested.value} requested; no two tasks are independent"
    if strategy == ExecutionStrategyType.SEQUENTIAL and natural != ExecutionStrategyType.SEQUENTIAL:
        hints["note"] = "sequential requested: tasks run one at a time in dependency order"
    if widest > max_concurrent:
        hints["throttled_groups"] = [i for i, gr in enumerate(groups) if len(gr) > max_concurrent]
        hints["max_concurrent_tasks"] = max_concurrent
        waves = sum(-(-len(gr) // max_concurrent) for gr in groups)
        hints["note_concurrency"] = (
            f"groups wider than {max_concurrent} tasks run in waves ({waves} waves in all)"
        )
    return GraphAnalysis(deps, path, minutes, groups, strategy, estimate, hints)


def _slack(g: nx.DiGraph, horizon: int) -> dict[str, int]:
    """How many minutes each task can slip without lengthening the critical path."""
    earliest: dict[str, int] = {}
    for node in nx.topological_sort(g):
        earliest[node] = max((earliest[p] + g.nodes[p]["duration"] for p in g.predecessors(node)), default=0)
    latest: dict[str, int] = {}
    for node in reversed(list(nx.topological_sort(g))):
        own = g.nodes[node]["duration"]
        latest[node] = min((latest[s] for s in g.successors(node)), default=horizon) - own
    return {str(n): int(latest[n] - earliest[n]) for n in g.nodes}
