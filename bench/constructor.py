"""Task Graph Constructor benchmark: construction time of the seed's sample request and of a
200-requirement request, and the assignment engine's latency per task (pure, no I/O).

Targets: <= 20 ms p99 for the sample, <= 500 ms for 200 requirements, <= 1 ms per assignment.
Run: ``.venv/bin/python bench/constructor.py``.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from taskloom.constructor.domain.assignment import (
    AgentPool,
    PerformanceStats,
    TaskNeeds,
    assign_all,
    pool_from_catalog,
    pool_from_registrations,
)
from taskloom.constructor.domain.construct import construct
from taskloom.contracts.agents import AgentRegistration
from taskloom.contracts.catalog import BUILTIN_CATALOG
from taskloom.contracts.requests import ComplexRequest
from taskloom.contracts.samples import SEED_SAMPLE_REQUEST

SAMPLE = ComplexRequest.model_validate(SEED_SAMPLE_REQUEST)
TOPICS = ["search", "cache", "config", "export", "billing", "auth", "report", "upload", "webhook", "cart"]
LARGE = ComplexRequest.model_validate(
    {
        "request_type": "feature_development",
        "requirements": {
            "functional": [f"Add {TOPICS[i % 10]} capability number {i} to the service" for i in range(200)],
            "non_functional": ["Response time < 500ms", "coverage >= 80%", "at least 70% docstring coverage"],
        },
        "context": {"project_path": "/test/project"},
    }
)


def timed(fn: Callable[[], object], runs: int) -> list[float]:
    fn()  # warm caches (classifier model, templates)
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def report(label: str, samples: list[float], target: float) -> None:
    p99 = pct(samples, 0.99)
    verdict = "ok" if p99 <= target else "OVER TARGET"
    print(
        f"{label:<42} p50 {statistics.median(samples):8.3f} ms  p99 {p99:8.3f} ms  "
        f"max {max(samples):8.3f} ms  (target <= {target:g} ms: {verdict})"
    )


def live_pool_with_history() -> tuple[AgentPool, dict[tuple[str, str], PerformanceStats]]:
    """Every built-in agent live with three instances, plus a second vendor for each type."""
    regs = []
    history = {}
    for i, profile in enumerate(BUILTIN_CATALOG.values()):
        for agent_id in (profile.agent_id, f"{profile.agent_id}-vendor"):
            for n in range(3):
                regs.append(
                    AgentRegistration(
                        agent_id=agent_id,
                        instance_id=f"i{n}",
                        capabilities=list(profile.capabilities),
                        task_types=list(profile.task_types),
                        capacity=4,
                        load=(i + n) % 4,
                    )
                )
            for task_type in profile.task_types:
                history[(agent_id, task_type)] = PerformanceStats(10 + i, i % 3, 600.0 * (i + 1))
    return pool_from_registrations(regs), history


def main() -> None:
    catalog = pool_from_catalog()
    sample_graph = construct(SAMPLE, catalog).graph
    large_graph = construct(LARGE, catalog).graph
    print(
        f"sample request: {len(sample_graph.tasks)} tasks; "
        f"200-requirement request: {len(large_graph.tasks)} tasks"
    )
    report("construct sample (catalogue, no history)", timed(lambda: construct(SAMPLE, catalog), 500), 20)
    live, history = live_pool_with_history()
    report(
        "construct sample (16 live agents, history)",
        timed(lambda: construct(SAMPLE, live, history), 500),
        20,
    )
    report("construct 200 requirements", timed(lambda: construct(LARGE, catalog), 20), 500)
    report(
        "construct 200 requirements (live, history)",
        timed(lambda: construct(LARGE, live, history), 20),
        500,
    )
    needs = [
        TaskNeeds(
            t.task_id,
            t.task_type,
            tuple(t.required_capabilities),
            t.estimated_duration,
            tuple(t.dependencies),
            t.name,
        )
        for t in large_graph.tasks
    ]
    per_task = [ms / len(needs) for ms in timed(lambda: assign_all(needs, live, history), 50)]
    report(f"assignment per task (2 candidates, {len(needs)} tasks)", per_task, 1)


if __name__ == "__main__":
    main()
