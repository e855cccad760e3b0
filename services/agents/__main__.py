"""Run agents: ``python -m taskloom.agents --agents testing-specialist,core-services``.

Every replica of an agent type shares one work-queue consumer, so starting this twice doubles
the capacity of the agents it hosts. ``run_agents`` is the same entry point for the CLI."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from taskloom.agents.adapters.jetstream import DEFAULT_ACK_WAIT, DEFAULT_MAX_DELIVER
from taskloom.agents.host import AgentHost
from taskloom.agents.plugins import UnknownAgent, available_agents, build_agents
from taskloom.observability import configure_logging
from taskloom.runtime import run_service
from taskloom.settings import Settings

__all__ = ["main", "run_agents"]


def run_agents(
    agent_ids: list[str],
    settings: Settings,
    *,
    instance_id: str | None = None,
    ack_wait: float = DEFAULT_ACK_WAIT,
    shutdown_grace: float = 10.0,
    capacity: int | None = None,
    heartbeat_interval: float = 5.0,
    max_deliver: int = DEFAULT_MAX_DELIVER,
    **_: Any,
) -> None:
    """Host ``agent_ids`` in this process until SIGTERM/SIGINT (blocking)."""
    agents = build_agents(agent_ids, settings)
    if capacity:
        for agent in agents:
            agent.capacity = capacity
    host = AgentHost(
        settings,
        agents,
        instance_id=instance_id,
        ack_wait=ack_wait,
        shutdown_grace=shutdown_grace,
        heartbeat_interval=heartbeat_interval,
        max_deliver=max_deliver,
    )
    run_service(host, settings)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m taskloom.agents", description=__doc__)
    parser.add_argument(
        "--agents", default="all", help="comma-separated agent ids, or 'all' (the 8 built-ins)"
    )
    parser.add_argument("--instance-id", default=None)
    parser.add_argument(
        "--ack-wait",
        type=float,
        default=DEFAULT_ACK_WAIT,
        help="seconds without an in-progress ack before a task is redelivered (running tasks renew it)",
    )
    parser.add_argument(
        "--max-deliver",
        type=int,
        default=DEFAULT_MAX_DELIVER,
        help="deliveries of one assignment that may run; the next one is reported failed and dead-lettered",
    )
    parser.add_argument(
        "--shutdown-grace", type=float, default=10.0, help="seconds a running task gets to finish on SIGTERM"
    )
    parser.add_argument(
        "--capacity", type=int, default=None, help="tasks each agent runs at once in this process"
    )
    parser.add_argument(
        "--heartbeat-interval", type=float, default=5.0, help="seconds between registry heartbeats"
    )
    parser.add_argument("--list", action="store_true", help="list the agents this installation can run")
    args = parser.parse_args(argv)
    if args.list:
        for agent_id in sorted(available_agents()):
            print(agent_id)
        return
    settings = Settings()
    try:
        run_agents(
            [a.strip() for a in args.agents.split(",") if a.strip()],
            settings,
            instance_id=args.instance_id,
            ack_wait=args.ack_wait,
            shutdown_grace=args.shutdown_grace,
            capacity=args.capacity,
            heartbeat_interval=args.heartbeat_interval,
            max_deliver=args.max_deliver,
        )
    except UnknownAgent as exc:
        configure_logging(settings.log_level, settings.log_format, service="agents")
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
