"""``python -m taskloom.constructor``: run the Task Graph Constructor service."""

from __future__ import annotations

from taskloom.constructor.service import ConstructorService
from taskloom.observability.metrics import TaskGraphMetrics
from taskloom.runtime import run_service
from taskloom.settings import Settings


def main() -> None:
    settings = Settings()
    run_service(ConstructorService(settings, metrics=TaskGraphMetrics()), settings)


if __name__ == "__main__":
    main()
