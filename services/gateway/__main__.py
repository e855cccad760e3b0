"""``python -m taskloom.gateway`` / ``taskloom serve gateway``: the gateway on http_host:http_port."""

from __future__ import annotations

import uvicorn

from taskloom.gateway.config import GatewaySettings
from taskloom.observability import configure_logging


def main() -> None:
    settings = GatewaySettings()
    configure_logging(settings.log_level, settings.log_format, service="gateway")
    from taskloom.gateway.app import create_app

    uvicorn.run(
        # several workers need an import string; each builds its app from the same environment
        "taskloom.gateway.app:create_app" if settings.workers > 1 else create_app(settings),
        factory=settings.workers > 1,
        workers=settings.workers,
        host=settings.http_host,
        port=settings.http_port,
        log_level="warning",
        access_log=False,
        # uvicorn's "auto" is uvloop where installed (and httptools for HTTP), like run_loop
        loop="auto" if settings.event_loop == "uvloop" else "asyncio",
        ws_max_size=1_048_576,
        # per-message deflate compresses every frame once per client: with hundreds of clients on
        # a workflow it costs more CPU than the rest of the fan-out; status frames are small JSON
        ws_per_message_deflate=False,
        timeout_graceful_shutdown=5,
    )


if __name__ == "__main__":
    main()
