"""The seed's sample requests, shared by the constructor's tests."""

from __future__ import annotations

import copy
from typing import Any

from taskloom.contracts.requests import ComplexRequest

SAMPLE_COMPLEX_REQUEST: dict[str, Any] = {
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

PARALLEL_ANALYSIS_REQUEST: dict[str, Any] = {
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

REQUEST_TYPES = [
    "feature_development",
    "documentation_update",
    "system_analysis",
    "release_management",
    "bug_investigation",
]


def request(base: dict[str, Any], **changes: Any) -> ComplexRequest:
    data = copy.deepcopy(base)
    for key, value in changes.items():
        if key == "preference":
            data.setdefault("preferences", {})["execution_strategy"] = value
        else:
            data[key] = value
    return ComplexRequest.model_validate(data)
