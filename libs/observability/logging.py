"""structlog configured once: key-value in a terminal, JSON lines everywhere else."""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

_configured = False


def configure_logging(level: str = "INFO", fmt: str = "auto", service: str | None = None) -> None:
    """Configure structlog and the stdlib root logger. Safe to call more than once."""
    global _configured
    json_output = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    renderer: Any = (
        structlog.processors.JSONRenderer() if json_output else structlog.dev.ConsoleRenderer(colors=False)
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if service:
        shared.insert(0, _ServiceName(service))
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(level=level.upper(), stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    _configured = True


class _ServiceName:
    def __init__(self, service: str) -> None:
        self.service = service

    def __call__(self, _logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
        event_dict.setdefault("service", self.service)
        return event_dict


def get_logger(name: str | None = None, **initial: Any) -> Any:
    """A structlog logger; ``initial`` values are bound to every line it writes."""
    return structlog.get_logger(name).bind(**initial) if initial else structlog.get_logger(name)


def bind_context(**values: Any) -> None:
    """Bind ``workflow_id`` / ``task_id`` (or anything) to every log line of this task."""
    structlog.contextvars.bind_contextvars(**values)
