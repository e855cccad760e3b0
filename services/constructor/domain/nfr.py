"""Non-functional requirements as validation work: which task checks each one, and whether a
built-in agent reports a metric that its threshold can be measured on.

A threshold is *measured* when the validating task's outputs carry the metric (the orchestrator
reads ``coverage.percent`` of a coverage analysis, for example); its gate then enforces it. A
threshold no built-in agent reports ("95% cache hit rate") still gets a gate, an advisory one
that notifies and continues, so the requirement is visible rather than silently dropped.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from taskloom.constructor.domain.thresholds import parse_threshold
from taskloom.contracts.graph import Threshold

__all__ = ["NFR_CATEGORIES", "NfrCategory", "NfrPlan", "plan_nfrs"]


@dataclass(frozen=True)
class NfrCategory:
    name: str
    match: tuple[str, ...]
    task_type: str
    capabilities: tuple[str, ...] = ()
    metric_path: str | None = None
    units: tuple[str | None, ...] = ()
    artifacts: tuple[str, ...] = ("summary",)
    flaky: bool = False
    # Probed at run time only when the request names what to probe (any of these context keys).
    probe_context_keys: tuple[str, ...] = ()
    probe_task_type: str | None = None
    fallback_task_type: str | None = None
    param_for_threshold: str | None = None


NFR_CATEGORIES: tuple[NfrCategory, ...] = (
    NfrCategory("docstring_coverage", ("docstring",), "docstring_coverage", ("docstring_analysis",),
                "coverage.coverage_percent", ("%", None), ("summary", "coverage")),
    NfrCategory("test_coverage", ("coverage", "tested", "unit test", "tests"), "coverage_analysis",
                ("coverage_analysis",), "coverage.percent", ("%", None), ("summary", "coverage"),
                param_for_threshold="coverage_threshold"),
    NfrCategory("import_time", ("import time", "import",), "performance_assessment",
                ("performance_optimization",), "import_ms", ("ms",)),
    NfrCategory("response_time", ("response", "latency", "p99", "p95", "p50"), "performance_validation",
                ("health_monitoring",), "measured.probe_latency_ms", ("ms",), ("summary", "measured"),
                flaky=True, probe_context_keys=("health_urls", "urls"), probe_task_type="health_probe",
                fallback_task_type="performance_assessment"),
    NfrCategory("performance", ("performance", "throughput", "cache", "memory", "cpu", "speed",
                                "fast", "slow", "load", "scal"), "performance_assessment",
                ("performance_optimization",)),
    NfrCategory("security", ("secur", "secret", "credential", "encrypt", "auth", "vulnerab", "password"),
                "secret_scan", ("security",)),
    NfrCategory("compatibility", ("compatib", "breaking", "schema", "contract"), "schema_compatibility",
                ("schema_validation",)),
    NfrCategory("reliability", ("uptime", "availab", "reliab", "deploy", "health", "resilien"),
                "deployment_readiness", ("deployment",), artifacts=("summary", "readiness")),
    NfrCategory("documentation", ("document", "docs", "readme"), "documentation_review",
                ("docstring_analysis",)),
)  # fmt: skip
_DEFAULT = NfrCategory("acceptance", (), "acceptance_review", ("requirements",))


@dataclass
class NfrPlan:
    """The validation work for the non-functional requirements sharing one validating task type."""

    category: NfrCategory
    task_type: str
    texts: list[str] = field(default_factory=list)
    measured: dict[str, Threshold] = field(default_factory=dict)
    advisory: dict[str, Threshold] = field(default_factory=dict)
    probe_params: dict[str, object] = field(default_factory=dict)
    params: dict[str, object] = field(default_factory=dict)


def _category(text: str) -> NfrCategory:
    lowered = text.lower()
    for category in NFR_CATEGORIES:
        # matched at a word start: "import" must not match "important"
        if any(re.search(rf"\b{re.escape(word)}", lowered) for word in category.match):
            return category
    return _DEFAULT


def _by_task_type(task_type: str) -> NfrCategory:
    return next((c for c in NFR_CATEGORIES if c.task_type == task_type and not c.metric_path), _DEFAULT)


def _unique(name: str, taken: Mapping[str, object]) -> str:
    candidate, n = name, 2
    while candidate in taken:
        candidate, n = f"{name}_{n}", n + 1
    return candidate


def plan_nfrs(texts: Sequence[str], request_context: Mapping[str, object]) -> list[NfrPlan]:
    """Group the requirements by validating task type, each threshold measured or advisory."""
    plans: dict[str, NfrPlan] = {}
    for text in texts:
        category = _category(text)
        threshold = parse_threshold(text)
        probe_target = next(
            (request_context[k] for k in category.probe_context_keys if request_context.get(k)), None
        )
        measurable = (
            threshold is not None
            and category.metric_path is not None
            and threshold.unit in category.units
            and (not category.probe_context_keys or probe_target is not None)
        )
        task_type = category.task_type
        validating = category
        if category.probe_context_keys and probe_target is None and category.fallback_task_type:
            task_type = category.fallback_task_type
            validating = _by_task_type(task_type)
        plan = plans.setdefault(task_type, NfrPlan(category=validating, task_type=task_type))
        plan.texts.append(text)
        if threshold is None:
            continue
        if measurable and category.metric_path is not None:
            name = _unique(category.name, plan.measured)
            plan.measured[name] = threshold.model_copy(update={"metric": category.metric_path})
            if category.probe_task_type:
                plan.probe_params["urls"] = probe_target
                plan.params.setdefault("budgets", {})
                budgets = plan.params["budgets"]
                if isinstance(budgets, dict):
                    budgets[category.metric_path.rpartition(".")[2]] = threshold.value
            if category.param_for_threshold:
                plan.params[category.param_for_threshold] = threshold.value
        else:
            plan.advisory[_unique(threshold.metric, plan.advisory)] = threshold
    return list(plans.values())
