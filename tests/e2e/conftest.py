"""The whole Taskloom stack as real processes (context, constructor, orchestrator, the eight
agents, gateway) on the session's NATS and PostgreSQL, in a namespace of its own."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from taskloom.cli.devstack import DevStack, free_port
from taskloom.infra import StackInfo
from taskloom.settings import Settings


@pytest.fixture(scope="session")
def full_stack(stack: StackInfo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevStack]:
    settings = Settings(
        nats_url=stack.nats_url, database_url=stack.database_url, namespace=f"e{uuid.uuid4().hex[:10]}"
    )
    with DevStack(
        settings,
        gateway_port=free_port(),
        log_dir=tmp_path_factory.mktemp("e2e-logs"),
        extra_env={"TASKLOOM_RATE_LIMIT_PER_SECOND": "1000", "TASKLOOM_RATE_LIMIT_BURST": "1000"},
    ) as running:
        yield running
