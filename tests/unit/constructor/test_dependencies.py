"""Dependency analysis on hand-checked graphs: cycles, reduction, critical path, groups."""

from __future__ import annotations

import pytest

from taskloom.constructor.domain.dependencies import analyse
from taskloom.constructor.errors import DependencyCycle
from taskloom.contracts.enums import ExecutionStrategyType as S


def test_diamond_critical_path_follows_the_longer_branch() -> None:
    # a(5) -> b(10) -> d(3); a -> c(20) -> d: the path through c is 5+20+3 = 28
    result = analyse({"a": 5, "b": 10, "c": 20, "d": 3}, {"b": ["a"], "c": ["a"], "d": ["b", "c"]})
    assert result.critical_path == ["a", "c", "d"]
    assert result.critical_minutes == 28
    assert result.estimated_duration == 28
    assert result.groups == [["a"], ["b", "c"], ["d"]]
    assert result.hints["slack_minutes"] == {"b": 10}
    assert result.hints["total_work_minutes"] == 38


def test_transitive_reduction_drops_implied_edges_but_keeps_data_edges() -> None:
    durations = {"a": 1, "b": 1, "c": 1}
    deps = {"b": ["a"], "c": ["a", "b"]}  # a -> c is implied by a -> b -> c
    plain = analyse(durations, deps)
    assert plain.dependencies["c"] == ["b"]
    assert plain.hints["redundant_dependencies_removed"] == 1
    kept = analyse(durations, deps, keep={"c": {"a"}})
    assert sorted(kept.dependencies["c"]) == ["a", "b"]


def test_cycle_is_rejected_naming_the_cycle() -> None:
    with pytest.raises(DependencyCycle) as err:
        analyse({"a": 1, "b": 1, "c": 1, "x": 1}, {"a": ["c"], "b": ["a"], "c": ["b"]})
    assert set(err.value.cycle) == {"a", "b", "c"}
    assert "dependency cycle" in err.value.reason
    for task in ("a", "b", "c"):
        assert task in err.value.reason


def test_strategy_types() -> None:
    chain = analyse({"a": 1, "b": 2, "c": 3}, {"b": ["a"], "c": ["b"]})
    assert chain.strategy == S.SEQUENTIAL
    assert chain.estimated_duration == 6
    fan = analyse({"a": 4, "b": 4, "c": 4, "d": 4, "r": 2}, {"r": ["a", "b", "c", "d"]})
    assert fan.strategy == S.PARALLEL
    assert fan.estimated_duration == 6
    mixed = analyse(
        {"a": 1, "b": 1, "c": 1, "d": 1, "e": 1},
        {"b": ["a"], "c": ["a"], "d": ["b", "c"], "e": ["d"]},
    )
    assert mixed.strategy == S.MIXED


def test_requested_sequential_sums_all_durations_and_parallel_needs_independent_tasks() -> None:
    fan = {"a": 4, "b": 4, "r": 2}
    deps = {"r": ["a", "b"]}
    seq = analyse(fan, deps, requested=S.SEQUENTIAL)
    assert seq.strategy == S.SEQUENTIAL and seq.estimated_duration == 10
    chain = analyse({"a": 1, "b": 1}, {"b": ["a"]}, requested=S.PARALLEL)
    assert chain.strategy == S.SEQUENTIAL
    assert "requested_strategy" in chain.hints


def test_groups_wider_than_the_concurrency_limit_are_flagged() -> None:
    durations = {f"t{i}": 1 for i in range(10)}
    result = analyse(durations, {}, max_concurrent=4)
    assert result.hints["throttled_groups"] == [0]
    assert "3 waves" in result.hints["note_concurrency"]
