"""Property: any requirement list gives an acyclic, fully assigned graph whose critical path
lies between the longest single task and the sum of all durations."""

from __future__ import annotations

import networkx as nx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from taskloom.constructor.domain.assignment import pool_from_catalog
from taskloom.constructor.domain.construct import construct
from taskloom.contracts.catalog import BUILTIN_CATALOG
from taskloom.contracts.requests import ComplexRequest

WORDS = [
    "add", "implement", "fix", "crash", "analyze", "coverage", "test", "docs", "readme", "release",
    "changelog", "performance", "latency", "cache", "search", "schema", "secret", "deploy", "mcp",
    "tool", "api", "dependency", "version", "bug", "review", "quality", "import", "cycle", "link",
]  # fmt: skip
requirement = st.lists(st.sampled_from(WORDS), min_size=1, max_size=6).map(" ".join)
nfr = st.one_of(
    requirement,
    st.builds(
        lambda m, v: f"{m} < {v}ms", st.sampled_from(["response time", "latency"]), st.integers(1, 5000)
    ),
    st.builds(lambda v: f"coverage >= {v}%", st.integers(0, 100)),
    st.builds(lambda v: f"{v}% cache hit rate", st.integers(0, 100)),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    functional=st.lists(requirement, min_size=1, max_size=12),
    non_functional=st.lists(nfr, max_size=4),
    request_type=st.sampled_from(
        [
            None,
            "feature_development",
            "documentation_update",
            "system_analysis",
            "release_management",
            "bug_investigation",
        ]
    ),  # fmt: skip
    preference=st.sampled_from(["fast", "balanced", "thorough"]),
    complexity=st.one_of(st.none(), st.integers(1, 10)),
)
def test_random_requirements_give_sound_graphs(
    functional: list[str],
    non_functional: list[str],
    request_type: str | None,
    preference: str,
    complexity: int | None,
) -> None:
    req = ComplexRequest.model_validate(
        {
            "request_type": request_type,
            "complexity_level": complexity,
            "requirements": {"functional": functional, "non_functional": non_functional},
            "preferences": {"execution_strategy": preference},
            "context": {"project_path": "/p"},
        }
    )
    graph = construct(req, pool_from_catalog()).graph
    g = nx.DiGraph()
    g.add_nodes_from(t.task_id for t in graph.tasks)
    g.add_edges_from((d, t.task_id) for t in graph.tasks for d in t.dependencies)
    assert nx.is_directed_acyclic_graph(g)
    for t in graph.tasks:
        assert t.assigned_agent in BUILTIN_CATALOG
        assert t.task_type in BUILTIN_CATALOG[t.assigned_agent].task_types
    durations = {t.task_id: t.estimated_duration for t in graph.tasks}
    path = graph.execution_strategy.critical_path
    length = sum(durations[t] for t in path)
    assert max(durations.values()) <= length <= sum(durations.values())
    if graph.execution_strategy.type.value == "sequential":
        assert graph.estimated_duration == sum(durations.values())
    else:
        assert graph.estimated_duration == length
    # the path is a real chain of dependencies
    for before, after in zip(path, path[1:], strict=False):
        assert before in graph.task(after).dependencies
