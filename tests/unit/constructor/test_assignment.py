"""Assignment scoring: workload, history and capability decide; missing capability rejects."""

from __future__ import annotations

import pytest

from taskloom.constructor.domain.assignment import (
    WEIGHTS,
    PerformanceStats,
    TaskNeeds,
    assign,
    assign_all,
    pool_from_catalog,
    pool_from_registrations,
)
from taskloom.constructor.domain.construct import construct
from taskloom.constructor.errors import MissingCapability
from taskloom.contracts.agents import AgentRegistration
from taskloom.contracts.requests import ComplexRequest

NEEDS = TaskNeeds("t1", "coverage_analysis", ("coverage_analysis",), duration_minutes=10)


def reg(
    agent_id: str, instance: str = "i1", load: int = 0, capacity: int = 4, **kw: object
) -> AgentRegistration:
    data: dict[str, object] = {
        "agent_id": agent_id,
        "instance_id": instance,
        "capabilities": ["coverage_analysis", "test_execution"],
        "task_types": ["coverage_analysis", "test_execution"],
        "capacity": capacity,
        "load": load,
    }
    data.update(kw)
    return AgentRegistration.model_validate(data)


def test_weights_are_the_seeds() -> None:
    assert dict(WEIGHTS) == {"expertise": 0.40, "workload": 0.25, "history": 0.20, "context": 0.15}


def test_busier_agent_loses_to_an_idle_equally_expert_one() -> None:
    pool = pool_from_registrations([reg("tester-a", load=3), reg("tester-b", load=0)])
    result = assign(NEEDS, pool, {}, {})
    assert result.agent_id == "tester-b"
    assert result.backup_agents == ["tester-a"]
    busy, idle = sorted(result.scores, key=lambda s: s.agent_id)
    assert busy.expertise == idle.expertise
    assert idle.total - busy.total == pytest.approx(WEIGHTS["workload"] * 0.75, abs=1e-3)


def test_load_adds_up_over_instances() -> None:
    pool = pool_from_registrations(
        [reg("tester-a", "i1", load=4), reg("tester-a", "i2", load=0), reg("tester-b", load=3)]
    )
    agent_a = next(c for c in pool.candidates if c.agent_id == "tester-a")
    assert (agent_a.capacity, agent_a.load, agent_a.instances) == (8, 4, 2)
    assert assign(NEEDS, pool, {}, {}).agent_id == "tester-a"


def test_agent_with_a_poor_history_loses() -> None:
    pool = pool_from_registrations([reg("tester-a"), reg("tester-b")])
    history = {
        ("tester-a", "coverage_analysis"): PerformanceStats(completed=2, failed=18, total_seconds=4000),
        ("tester-b", "coverage_analysis"): PerformanceStats(completed=19, failed=1, total_seconds=5000),
    }
    result = assign(NEEDS, pool, history, {})
    assert result.agent_id == "tester-b"
    scores = {s.agent_id: s for s in result.scores}
    assert scores["tester-a"].history < 0.5 < scores["tester-b"].history


def test_no_history_is_neutral() -> None:
    result = assign(NEEDS, pool_from_catalog(), {}, {})
    assert result.agent_id == "testing-specialist"
    assert result.scores[0].history == 0.5


def test_missing_capability_names_every_missing_task_type() -> None:
    pool = pool_from_registrations([reg("tester-a")])
    tasks = [NEEDS, TaskNeeds("t2", "release_notes", ("changelog",)), TaskNeeds("t3", "secret_scan")]
    with pytest.raises(MissingCapability) as err:
        assign_all(tasks, pool, {})
    assert err.value.task_types == ["release_notes", "secret_scan"]
    assert "release_notes" in err.value.reason and "changelog" in err.value.reason


def test_request_needing_an_agent_nobody_runs_is_rejected_whole() -> None:
    request = ComplexRequest.model_validate(
        {"request_type": "system_analysis", "requirements": {"functional": ["Check test coverage"]}}
    )
    pool = pool_from_registrations([reg("tester-a")])  # live, but nobody writes reports
    with pytest.raises(MissingCapability) as err:
        construct(request, pool)
    assert err.value.task_types == ["report_synthesis"]
    assert "report_synthesis" in err.value.reason and "reporting" in err.value.reason


def test_catalogue_is_used_only_when_nothing_is_live() -> None:
    assert pool_from_registrations([]).source == "catalog"
    assert pool_from_registrations([reg("tester-a")]).source == "registry"


def test_specialist_beats_a_generalist_and_backups_are_ordered() -> None:
    many = [f"type_{i}" for i in range(30)] + ["coverage_analysis"]
    pool = pool_from_registrations(
        [
            reg("generalist", task_types=many, capabilities=["coverage_analysis"]),
            reg("specialist"),
            reg("lacks-capability", capabilities=["other"]),
        ]
    )
    result = assign(NEEDS, pool, {}, {})
    assert result.agent_id == "specialist"
    assert result.backup_agents == ["generalist", "lacks-capability"]
    totals = [s.total for s in result.scores]
    assert totals == sorted(totals, reverse=True)
    assert result.confidence_score == totals[0]


def test_context_locality_favours_the_agent_that_ran_the_dependencies() -> None:
    pool = pool_from_registrations([reg("tester-a"), reg("tester-b")])
    needs = TaskNeeds("t2", "coverage_analysis", ("coverage_analysis",), dependencies=("t1",))
    assert assign(needs, pool, {}, {"t1": "tester-b"}).agent_id == "tester-b"
    assert assign(needs, pool, {}, {"t1": "tester-a"}).agent_id == "tester-a"
