"""The seed's sample requests, shared by the constructor's tests."""

from __future__ import annotations

import copy
from typing import Any

from taskloom.contracts.requests import ComplexRequest
from taskloom.contracts.samples import SEED_PARALLEL_ANALYSIS_REQUEST, SEED_SAMPLE_REQUEST

SAMPLE_COMPLEX_REQUEST: dict[str, Any] = SEED_SAMPLE_REQUEST
PARALLEL_ANALYSIS_REQUEST: dict[str, Any] = SEED_PARALLEL_ANALYSIS_REQUEST

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
