"""The constructor service on a real NATS JetStream (and PostgreSQL for history): submit
commands become graph messages, bad commands become dead letters with their reason."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from nats.js.errors import NotFoundError
from sqlalchemy import text

from taskloom.bus import DLQ_REASON, Bus, StreamKind
from taskloom.constructor.adapters.history import PerformanceHistory
from taskloom.constructor.domain.assignment import PerformanceStats
from taskloom.constructor.service import ConstructorService
from taskloom.contracts.agents import AgentRegistration
from taskloom.contracts.messages import GraphConstructed, GraphRejected, SubmitWorkflow, parse_message
from taskloom.contracts.requests import ComplexRequest
from taskloom.contracts.subjects import registry_key
from taskloom.infra import StackInfo, create_database, drop_database
from taskloom.settings import Settings

pytestmark = pytest.mark.timeout(60)

ANALYSIS = {
    "request_type": "system_analysis",
    "requirements": {
        "functional": [
            "Analyze code quality",
            "Check test coverage",
            "Review documentation",
            "Assess performance",
        ]
    },
    "execution_strategy": "parallel",
    "context": {"project_path": "/srv/project"},
}


@pytest.fixture
async def service(settings: Settings) -> AsyncIterator[ConstructorService]:
    svc = ConstructorService(settings, concurrency=2)
    await svc.start()
    try:
        yield svc
    finally:
        await svc.stop()


@pytest.fixture
async def bus(settings: Settings) -> AsyncIterator[Bus]:
    b = await Bus.connect(settings, name="constructor-test")
    try:
        yield b
    finally:
        await b.close()


async def eventually(probe: Callable[[], Any], timeout: float = 15.0) -> Any:  # noqa: ASYNC109
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await probe()
        if result is not None:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


async def last_message(bus: Bus, kind: StreamKind, subject: str) -> Any:
    async def probe() -> Any:
        try:
            return await bus.js.get_last_msg(bus.stream_name(kind), subject)
        except NotFoundError:
            return None

    return await eventually(probe)


def submit(
    raw: dict[str, Any], workflow_id: str | None = None, message_id: str | None = None
) -> SubmitWorkflow:
    return SubmitWorkflow(
        workflow_id=workflow_id or str(uuid.uuid4()),
        message_id=message_id or str(uuid.uuid4()),
        owner="alice",
        request=ComplexRequest.model_validate(raw),
    )


async def test_submit_command_yields_the_graph_message(service: ConstructorService, bus: Bus) -> None:
    cmd = submit(ANALYSIS)
    await bus.publish(bus.subjects.command("submit"), cmd)
    raw = await last_message(bus, StreamKind.GRAPHS, bus.subjects.graph_constructed(cmd.workflow_id))
    msg = parse_message(raw.data)
    assert isinstance(msg, GraphConstructed)
    assert raw.headers["Nats-Msg-Id"] == f"graph:{cmd.workflow_id}"
    assert msg.owner == "alice" and msg.workflow_id == cmd.workflow_id
    graph = msg.graph
    assert graph.execution_strategy.type.value == "parallel"
    assert graph.metadata["agent_source"] == "catalog"  # no agent is live in this namespace
    assert graph.metadata["history_source"] in ("absent", "agent_performance")
    analyses = sorted(t.task_id for t in graph.tasks if t.task_id.startswith("analysis-"))
    assert len(analyses) == 4 and analyses in graph.execution_strategy.parallelization_groups
    assert set(msg.assignment_scores) == {t.task_id for t in graph.tasks}


async def test_redelivered_workflow_is_published_once(service: ConstructorService, bus: Bus) -> None:
    workflow_id = str(uuid.uuid4())
    for _ in range(2):  # two distinct commands for one workflow, as after a gateway retry
        await bus.publish(bus.subjects.command("submit"), submit(ANALYSIS, workflow_id))
    await last_message(bus, StreamKind.GRAPHS, bus.subjects.graph_constructed(workflow_id))

    async def drained() -> bool | None:
        info = await bus.js.consumer_info(bus.stream_name(StreamKind.COMMANDS), "constructor")
        return True if info.num_pending == 0 and info.num_ack_pending == 0 else None

    await eventually(drained)
    info = await bus.js.stream_info(
        bus.stream_name(StreamKind.GRAPHS), subjects_filter=bus.subjects.graph_constructed(workflow_id)
    )
    assert info.state.subjects == {bus.subjects.graph_constructed(workflow_id): 1}


async def test_live_registry_without_a_needed_agent_rejects_with_the_reason(
    service: ConstructorService, bus: Bus
) -> None:
    kv = await bus.registry()
    tester = AgentRegistration(
        agent_id="testing-specialist",
        instance_id="i1",
        capabilities=["coverage_analysis"],
        task_types=["coverage_analysis", "test_execution"],
        capacity=2,
    )
    await kv.put(registry_key(tester.agent_id, tester.instance_id), tester.model_dump_json().encode())
    cmd = submit({"request_type": "system_analysis", "requirements": {"functional": ["Check test coverage"]}})
    await bus.publish(bus.subjects.command("submit"), cmd)
    raw = await last_message(bus, StreamKind.GRAPHS, bus.subjects.graph_rejected(cmd.workflow_id))
    msg = parse_message(raw.data)
    assert isinstance(msg, GraphRejected)
    assert "report_synthesis" in msg.reason
    assert "reporting" in msg.missing_capabilities


async def test_malformed_command_goes_to_the_dead_letter_stream_with_its_reason(
    service: ConstructorService, bus: Bus
) -> None:
    subject = bus.subjects.command("submit")
    await bus.js.publish(subject, b'{"message_type": "submit_workflow", "workflow_id": "w1"}')
    dead = await last_message(bus, StreamKind.DLQ, bus.subjects.dead_letter("constructor"))
    assert dead.headers[DLQ_REASON] == "parse_error"
    assert "owner" in dead.headers["Taskloom-Dlq-Error"]
    assert dead.data == b'{"message_type": "submit_workflow", "workflow_id": "w1"}'
    # the consumer carries on with good commands afterwards
    cmd = submit(ANALYSIS)
    await bus.publish(subject, cmd)
    await last_message(bus, StreamKind.GRAPHS, bus.subjects.graph_constructed(cmd.workflow_id))


@pytest.fixture
def fresh_database(stack: StackInfo) -> Iterator[str]:
    name = f"taskloom_constructor_{uuid.uuid4().hex[:10]}"
    url = create_database(stack.database_url, name)
    try:
        yield url
    finally:
        drop_database(stack.database_url, name)


async def test_history_is_absent_until_the_table_exists(fresh_database: str) -> None:
    history = PerformanceHistory.from_url(fresh_database)
    try:
        assert await history.load() == ({}, "absent")
        async with history.engine.begin() as conn:
            await conn.execute(
                text(
                    "create table agent_performance (agent_id text, task_type text, completed int, "
                    "failed int, total_seconds double precision, primary key (agent_id, task_type))"
                )
            )
            await conn.execute(
                text(
                    "insert into agent_performance "
                    "values ('testing-specialist', 'coverage_analysis', 9, 1, 90.5)"
                )
            )
        stats, source = await history.load()
        assert source == "agent_performance"
        assert stats == {("testing-specialist", "coverage_analysis"): PerformanceStats(9, 1, 90.5)}
    finally:
        await history.close()
