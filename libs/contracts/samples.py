"""The seed specification's own example requests (its ``sample_complex_request`` and the
parallel system-analysis request of its integration tests), kept once as the reference inputs
of tests, benchmarks and documentation."""

from __future__ import annotations

import copy
from typing import Any

__all__ = ["SEED_PARALLEL_ANALYSIS_REQUEST", "SEED_SAMPLE_REQUEST", "seed_request"]

SEED_SAMPLE_REQUEST: dict[str, Any] = {
    "request_id": "test-request-123",
    "request_type": "feature_development",
    "complexity_level": 7,
    "requirements": {
        "functional": [
            "Add new MCP tool for semantic search",
            "Implement caching for search results",
            "Add configuration options",
        ],
        "non_functional": ["Response time < 500ms", "95% cache hit rate", "Comprehensive test coverage"],
    },
    "context": {"project_path": "/test/project", "user_preferences": {"quality": "high"}},
}

SEED_PARALLEL_ANALYSIS_REQUEST: dict[str, Any] = {
    "request_type": "system_analysis",
    "requirements": {
        "functional": [
            "Analyze code quality",
            "Check test coverage",
            "Review documentation",
            "Assess performance",
        ]
    },
    "execution_strategy": "parallel",
}


def seed_request(sample: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of one of the samples, safe to change."""
    return copy.deepcopy(sample)
