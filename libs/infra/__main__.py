"""``python -m taskloom.infra``: start the embedded NATS and PostgreSQL, print their URLs, wait."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

from taskloom.infra.stack import Stack
from taskloom.settings import get_settings


def main() -> None:
    settings = get_settings()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with Stack(settings, data_dir=Path(settings.data_dir)) as stack:
        info = stack.info
        assert info is not None
        print(f"TASKLOOM_NATS_URL={info.nats_url}")
        print(f"TASKLOOM_DATABASE_URL={info.database_url}")
        if info.nats_monitor_url:
            print(f"nats monitoring: {info.nats_monitor_url}")
        print("Ctrl-C stops both servers.", flush=True)
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
