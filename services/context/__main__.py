"""``python -m taskloom.context``: run the context service."""

from __future__ import annotations

import gc
import sys

from taskloom.context.adapters.crypto import CipherError
from taskloom.context.domain import ContextServiceError
from taskloom.context.service import ContextService
from taskloom.observability import get_logger
from taskloom.observability.metrics import TaskGraphMetrics
from taskloom.runtime import run_service
from taskloom.settings import Settings


def main() -> None:
    settings = Settings()
    # the start-up heap (modules, settings) never dies: keep it out of the cyclic GC's full
    # collections, which otherwise walk it all and stall requests for tens of milliseconds
    gc.freeze()
    try:
        run_service(ContextService(settings, metrics=TaskGraphMetrics(), handle_sighup=True), settings)
    except (ContextServiceError, CipherError) as exc:
        # a bad policy file or key: say what is wrong, without a traceback, and fail
        get_logger("taskloom.context").error("context service cannot start", error=str(exc))
        sys.exit(2)


if __name__ == "__main__":
    main()
