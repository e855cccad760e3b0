"""Logging and metrics set up once per process: structlog (JSON off a TTY) and Prometheus."""

from taskloom.observability.logging import bind_context, configure_logging, get_logger
from taskloom.observability.metrics import TaskGraphMetrics, metrics_app, render_metrics

__all__ = [
    "TaskGraphMetrics",
    "bind_context",
    "configure_logging",
    "get_logger",
    "metrics_app",
    "render_metrics",
]
