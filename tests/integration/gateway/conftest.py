"""A real gateway process (``python -m taskloom.gateway``) against the session's NATS and
PostgreSQL, shared by the gateway integration tests; tests keep apart by user names."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from gateway_helpers import gateway_env

from taskloom.cli.devstack import ServiceProcess, free_port, service_available
from taskloom.gateway.config import GatewaySettings
from taskloom.gateway.security import mint_token
from taskloom.infra import StackInfo


@pytest.fixture(scope="session")
def start_gateway(stack: StackInfo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., str]]:
    """Start a gateway with extra ``TASKLOOM_*`` settings; returns its base URL."""
    started: list[ServiceProcess] = []
    logs = tmp_path_factory.mktemp("gateway-logs")

    def start(namespace: str | None = None, **extra: str) -> str:
        port = free_port()
        env = gateway_env(stack, namespace or f"g{uuid.uuid4().hex[:10]}", port, **extra)
        process = ServiceProcess(
            "gateway", ["-m", "taskloom.gateway"], env, port, Path(logs) / f"gw-{port}.log"
        )
        process.start()
        started.append(process)
        process.wait_ready(timeout=60, path="/ready")
        return f"http://127.0.0.1:{port}"

    try:
        yield start
    finally:
        for process in started:
            process.stop(grace=5)


@pytest.fixture(scope="session")
def gateway_namespace() -> str:
    return f"g{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def gateway_url(start_gateway: Callable[..., str], gateway_namespace: str) -> str:
    """The shared gateway: rate limit out of the way, loopback webhooks allowed off."""
    return start_gateway(
        gateway_namespace,
        TASKLOOM_RATE_LIMIT_PER_SECOND="100000",
        TASKLOOM_RATE_LIMIT_BURST="100000",
        TASKLOOM_PLAN_ON_SUBMIT="false",
    )


@pytest.fixture(scope="session")
def context_service(
    stack: StackInfo, gateway_namespace: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[bool]:
    """The context service on the shared gateway's namespace, when it is installed."""
    if not service_available("context"):
        yield False
        return
    port = free_port()
    env = gateway_env(stack, gateway_namespace, port)
    process = ServiceProcess(
        "context", ["-m", "taskloom.context"], env, port, tmp_path_factory.mktemp("context") / "context.log"
    )
    process.start()
    try:
        process.wait_ready(timeout=60)
        yield True
    finally:
        process.stop(grace=5)


@pytest.fixture(scope="session")
def token_for() -> Callable[..., str]:
    settings = GatewaySettings()

    def mint(user: str, *roles: str, ttl: int | None = None) -> str:
        return mint_token(settings, user, list(roles), ttl)

    return mint


@pytest.fixture
def user() -> Callable[[str], str]:
    """Unique user names per test, so tests never see each other's workflows."""
    suffix = uuid.uuid4().hex[:8]
    return lambda name: f"{name}-{suffix}"
