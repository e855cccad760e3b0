"""Prometheus metrics with the seed's ``TaskGraphMetrics`` names, and a ``/metrics`` helper."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

_LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
    5,
    10,
    30,
    60,
    300,
)


class TaskGraphMetrics:
    """The seed's metric set. Rates are counters (Prometheus derives per-minute rates);
    ratios are pairs of counters or a gauge where the ratio is computed in-process."""

    def __init__(self, registry: CollectorRegistry | None = None, namespace: str = "taskloom") -> None:
        r = registry or REGISTRY
        ns = namespace
        self.registry = r
        # Throughput
        self.workflows_total = Counter(
            "workflows", "Workflows finished, by outcome", ["outcome"], namespace=ns, registry=r
        )
        self.tasks_total = Counter(
            "tasks", "Tasks finished, by outcome", ["outcome", "agent"], namespace=ns, registry=r
        )
        self.successful_completions_total = Counter(
            "successful_completions", "Workflows completed successfully", namespace=ns, registry=r
        )
        # Latency
        self.workflow_completion_time = Histogram(
            "workflow_completion_time_seconds",
            "Submit to terminal state",
            namespace=ns,
            registry=r,
            buckets=_LATENCY_BUCKETS,
        )
        self.task_execution_time = Histogram(
            "task_execution_time_seconds",
            "Task start to finish",
            ["agent"],
            namespace=ns,
            registry=r,
            buckets=_LATENCY_BUCKETS,
        )
        self.agent_assignment_time = Histogram(
            "agent_assignment_time_seconds",
            "Time to score and assign one task",
            namespace=ns,
            registry=r,
            buckets=_LATENCY_BUCKETS,
        )
        self.context_loading_time = Histogram(
            "context_loading_time_seconds",
            "Time to build one agent's context view",
            namespace=ns,
            registry=r,
            buckets=_LATENCY_BUCKETS,
        )
        # Resource utilisation
        self.memory_usage_mb = Gauge(
            "memory_usage_mb", "Resident memory of this process", namespace=ns, registry=r
        )
        self.cpu_utilization_percent = Gauge(
            "cpu_utilization_percent", "CPU use of this process", namespace=ns, registry=r
        )
        self.active_agent_count = Gauge(
            "active_agent_count", "Live agent instances", namespace=ns, registry=r
        )
        self.context_cache_hit_rate = Gauge(
            "context_cache_hit_rate", "Share of context reads served from cache", namespace=ns, registry=r
        )
        # Quality
        self.task_success_rate = Gauge(
            "task_success_rate", "Share of finished tasks that succeeded", namespace=ns, registry=r
        )
        self.quality_gate_pass_rate = Gauge(
            "quality_gate_pass_rate", "Share of quality gates that passed", namespace=ns, registry=r
        )
        self.error_rate_per_agent = Counter(
            "agent_errors", "Task failures by agent", ["agent"], namespace=ns, registry=r
        )
        self.retry_rate = Gauge(
            "retry_rate", "Share of task attempts that were retries", namespace=ns, registry=r
        )


def render_metrics(registry: CollectorRegistry = REGISTRY) -> tuple[bytes, str]:
    """The text exposition of ``registry`` and its content type."""
    return generate_latest(registry), CONTENT_TYPE_LATEST


def metrics_app(registry: CollectorRegistry = REGISTRY) -> Callable[..., Awaitable[None]]:
    """A tiny ASGI app serving ``/metrics`` (for services without FastAPI)."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        body, ctype = render_metrics(registry)
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-type", ctype.encode())]}
        )
        await send({"type": "http.response.body", "body": body})

    return app
