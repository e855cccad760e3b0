"""The constructor process: a durable consumer of submit commands that publishes each
workflow's task graph (or its rejection) for the orchestrator. It keeps no state of its own,
so any number of replicas share the one durable consumer."""

from __future__ import annotations

import asyncio
import contextlib
import time

from taskloom.bus import Bus, BusUnavailable, ConsumerHandle, Delivery, RetryableError, StreamKind
from taskloom.constructor.adapters.history import PerformanceHistory
from taskloom.constructor.adapters.registry import read_registrations
from taskloom.constructor.domain.templates import TemplateRegistry
from taskloom.constructor.handlers import Planner, defaults_from_settings, parse_submit
from taskloom.contracts.agents import AgentRegistration
from taskloom.contracts.messages import GraphConstructed, SubmitWorkflow
from taskloom.observability import get_logger
from taskloom.observability.metrics import TaskGraphMetrics
from taskloom.settings import Settings

__all__ = ["CONSUMER", "ConstructorService"]

CONSUMER = "constructor"
_log = get_logger(__name__)


class ConstructorService:
    name = "constructor"

    def __init__(
        self,
        settings: Settings,
        *,
        templates: TemplateRegistry | None = None,
        metrics: TaskGraphMetrics | None = None,
        concurrency: int = 4,
    ) -> None:
        self.settings = settings
        self.templates = templates or TemplateRegistry()
        self.metrics = metrics
        self.concurrency = concurrency
        self.bus: Bus | None = None
        self.history: PerformanceHistory | None = None
        self._handle: ConsumerHandle | None = None
        self.planner: Planner | None = None

    async def start(self) -> None:
        bus = await Bus.connect(self.settings, name="taskloom-constructor")
        self.bus = bus
        await bus.ensure_streams()
        await bus.ensure_consumer(
            StreamKind.COMMANDS,
            bus.subjects.consumer(CONSUMER),
            filter_subjects=bus.subjects.command("submit"),
            ack_wait=30.0,
            max_deliver=5,
            description="constructor: submit commands → task graphs",
        )
        if self.settings.database_url:
            self.history = PerformanceHistory.from_url(self.settings.database_url)
        self.planner = Planner(
            registry=self._registrations,
            history=self.history.load if self.history else None,
            defaults=defaults_from_settings(self.settings),
            templates=self.templates,
        )
        self._handle = await bus.consume(
            StreamKind.COMMANDS,
            bus.subjects.consumer(CONSUMER),
            self._on_submit,
            parse_submit,
            concurrency=self.concurrency,
            dead_letter_source=CONSUMER,
        )

    async def _registrations(self) -> list[AgentRegistration]:
        assert self.bus is not None
        return await read_registrations(self.bus)

    async def _on_submit(self, cmd: SubmitWorkflow, delivery: Delivery) -> None:
        assert self.bus is not None and self.planner is not None
        subjects = self.bus.subjects
        try:
            started = time.perf_counter()
            outcome = await self.planner.plan(cmd)
            if isinstance(outcome, GraphConstructed):
                subject = subjects.graph_constructed(cmd.workflow_id)
                if self.metrics is not None:
                    # the whole plan's time spread over its tasks: what one assignment costs
                    per_task = (time.perf_counter() - started) / len(outcome.graph.tasks)
                    for _ in outcome.graph.tasks:
                        self.metrics.agent_assignment_time.observe(per_task)
            else:
                subject = subjects.graph_rejected(cmd.workflow_id)
            await self.bus.publish(subject, outcome, msg_id=outcome.message_id)
        except BusUnavailable as exc:
            raise RetryableError(f"bus unavailable while planning: {exc}", delay=2.0) from None

    async def stop(self) -> None:
        if self._handle is not None:
            with contextlib.suppress(Exception):
                await self._handle.stop(timeout=10)
        if self.bus is not None:
            with contextlib.suppress(Exception):
                await self.bus.drain(timeout=5)
        if self.history is not None:
            with contextlib.suppress(Exception):
                await self.history.close()

    async def readiness(self) -> dict[str, bool]:
        nats_ok = self.bus is not None and self.bus.nc.is_connected
        db_ok = True
        if self.history is not None:
            try:
                await asyncio.wait_for(self.history.load(), 2)
            except Exception:
                db_ok = False
        return {"nats": nats_ok, "postgres": db_ok}
