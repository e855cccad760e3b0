"""Non-functional requirement phrasings parsed into thresholds (times normalised to ms)."""

from __future__ import annotations

import pytest

from taskloom.constructor.domain.thresholds import parse_threshold

TABLE = [
    ("Response time < 500ms", "response_time", "<", 500.0, "ms"),
    ("95% cache hit rate", "cache_hit_rate", ">=", 95.0, "%"),
    ("coverage ≥ 90%", "coverage", ">=", 90.0, "%"),
    ("coverage >= 90%", "coverage", ">=", 90.0, "%"),
    ("p99 latency under 2 s", "p99_latency", "<", 2000.0, "ms"),
    ("at least 80% docstring coverage", "docstring_coverage", ">=", 80.0, "%"),
    ("99.9% uptime", "uptime", ">=", 99.9, "%"),
    ("Error rate <= 0.1%", "error_rate", "<=", 0.1, "%"),
    ("Startup time must not exceed 3 seconds", "startup_time", "<=", 3000.0, "ms"),
    ("Throughput of at least 1000 requests per second", "throughput", ">=", 1000.0, "req/s"),
    ("Memory usage below 512 MB", "memory_usage", "<", 512.0, "MB"),
    ("test coverage above 85 percent", "test_coverage", ">", 85.0, "%"),
    ("no more than 5 critical bugs", "critical_bugs", "<=", 5.0, None),
    ("Import time of at most 200 ms", "import_time", "<=", 200.0, "ms"),
    ("Response time below 1.5s", "response_time", "<", 1500.0, "ms"),
    ("latency ≤ 250 ms", "latency", "<=", 250.0, "ms"),
    ("Page load within 2 minutes", "page_load", "<=", 120000.0, "ms"),
    ("Build time 90 s", "build_time", "<=", 90000.0, "ms"),
]


@pytest.mark.parametrize(("text", "metric", "op", "value", "unit"), TABLE)
def test_phrasings(text: str, metric: str, op: str, value: float, unit: str | None) -> None:
    t = parse_threshold(text)
    assert t is not None, text
    assert (t.metric, t.op, t.value, t.unit) == (metric, op, value, unit)
    assert t.source == text


@pytest.mark.parametrize(
    "text",
    ["Comprehensive test coverage", "Support 10 languages", "Must be secure", "Keep the API stable"],
)
def test_no_measurable_threshold(text: str) -> None:
    assert parse_threshold(text) is None


def test_parsed_threshold_evaluates_measurements() -> None:
    t = parse_threshold("Response time < 500ms")
    assert t is not None
    assert t.holds(420) and not t.holds(500)
