"""Shared request bodies of the gateway integration tests."""

from __future__ import annotations

SAMPLE_BODY = {
    "request": {
        "type": "system_analysis",
        "requirements": {"functional": ["Analyze code quality", "Check test coverage"]},
        "complexity": 4,
        "strategy": "balanced",
    },
    "context": {"project_path": "examples/sample-project"},
    "preferences": {},
}
