"""The orchestrator process: consumers for graphs, control commands and progress feeding the
batch processor, the durable-timer loop, admission of queued workflows, recovery on start,
and the outbox and event relays."""

from __future__ import annotations

import asyncio
import contextlib
import json
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import TypeAdapter

from taskloom.bus import Bus, Delivery, RetryableError, StreamKind
from taskloom.contracts.messages import (
    CancelWorkflow,
    CollaborationRequested,
    GraphConstructed,
    GraphRejected,
    Message,
    PauseWorkflow,
    ProgressUpdate,
    ResumeWorkflow,
    parse_message,
)
from taskloom.contracts.subjects import Command, Subjects
from taskloom.eventstore import EventRelay, EventStore, StoreUnavailable
from taskloom.observability import get_logger
from taskloom.orchestrator.adapters.outbox import DirectRelay
from taskloom.orchestrator.adapters.postgres import Tables, Write, load_workflows
from taskloom.orchestrator.domain import (
    Admit,
    Collaborate,
    Control,
    Limits,
    RejectGraph,
    StartGraph,
    TimerFired,
    admit,
    timers_for,
)
from taskloom.orchestrator.processor import Item, Processor
from taskloom.orchestrator.relay import RELAY_OPTIONS, EventRelayProcess
from taskloom.settings import Settings

__all__ = ["CONSUMERS", "Orchestrator", "event_relay"]

_log = get_logger(__name__)
CONSUMERS = {
    "graphs": "orchestrator_graphs",
    "commands": "orchestrator_commands",
    "progress": "orchestrator_progress",
}
_PROGRESS = TypeAdapter(ProgressUpdate)


def event_relay(store: EventStore, js: Any, subjects: Subjects, *, name: str, **options: Any) -> EventRelay:
    """The relay that publishes every stored event to ``<ns>.events.<workflow>.<type>``, for the
    WebSocket stream and the NATS CLI (``options``: ``EventRelay``'s)."""
    return EventRelay(store, js, lambda e: subjects.event(e.stream_id, e.type), name=name, **options)


def to_item(message: Message) -> Item | None:
    """The decider input a bus message stands for (None: not the orchestrator's)."""
    wf = message.workflow_id
    match message:
        case GraphConstructed():
            return Item(
                wf, StartGraph(message.graph, message.owner, message.request, False, message.message_id)
            )
        case GraphRejected():
            return Item(
                wf, RejectGraph(message.reason, tuple(message.missing_capabilities), message.message_id)
            )
        case CancelWorkflow() | PauseWorkflow() | ResumeWorkflow():
            return Item(wf, Control(message))
        case CollaborationRequested():
            return Item(message.request.workflow_id or wf, Collaborate(message.request))
        case ProgressUpdate():
            return Item(wf, message)
    return None


class Orchestrator:
    """The service object ``run_service`` runs."""

    name = "orchestrator"

    def __init__(
        self,
        settings: Settings,
        *,
        schema: str = "public",
        limits: Limits | None = None,
        timer_interval: float = 0.25,
        event_relay: Literal["process", "inline", "off"] | None = None,
        batch: int = 256,
    ) -> None:
        self.settings = settings
        self.schema = schema
        self.limits = limits or Limits.from_settings(settings)
        self.timer_interval = timer_interval
        self.event_relay = event_relay or settings.event_relay
        """Where stored events are published to NATS (``Settings.event_relay``)."""
        self.batch = batch
        self.store: EventStore | None = None
        self.bus: Bus | None = None
        self.processor: Processor | None = None
        self.outbox: DirectRelay | None = None
        self.events: EventRelay | None = None
        self.events_process: EventRelayProcess | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._admission = asyncio.Event()

    # --- lifecycle --------------------------------------------------------------------------
    async def start(self) -> None:
        self.store = EventStore.from_settings(self.settings, schema=self.schema)
        await self.store.migrate()
        tables = Tables(self.store)
        await tables.migrate()
        self.bus = await Bus.connect(self.settings, name="orchestrator")
        await self.bus.ensure_streams()
        subjects = self.bus.subjects
        self.outbox = DirectRelay(self.store, self.bus.js, poll_interval=0.5)
        self.processor = Processor(
            self.store,
            tables,
            subjects,
            self.limits,
            relay=self.outbox,
            signal=self._signal,
            on_finished=self._admission.set,
            max_batch=self.batch * 4,
        )
        self.processor.start()
        await self.recover(tables)
        self.outbox.start()
        relay_name = f"{self.settings.namespace}-{self.schema}-events"
        if self.event_relay == "inline":
            self.events = event_relay(self.store, self.bus.js, subjects, name=relay_name, **RELAY_OPTIONS)
            self.events.start()
        elif self.event_relay == "process":
            self.events_process = EventRelayProcess(self.settings, schema=self.schema, name=relay_name)
            self.events_process.start()
        await self._consume(subjects)
        self._tasks.append(asyncio.create_task(self._timer_loop(tables), name="orchestrator-timers"))
        self._tasks.append(asyncio.create_task(self._admission_loop(tables), name="orchestrator-admission"))
        _log.info("orchestrator_started", schema=self.schema, namespace=self.settings.namespace)

    async def stop(self) -> None:
        if self.bus is not None:
            await self.bus.stop_consumers(grace=5)
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        for relay in (self.outbox, self.events, self.events_process):
            if relay is not None:
                await relay.stop()
        if self.processor is not None:
            await self.processor.stop()
        if self.bus is not None:
            with contextlib.suppress(Exception):
                await self.bus.drain(timeout=5)
        if self.store is not None:
            await self.store.close()

    async def readiness(self) -> dict[str, bool]:
        bus_ok = self.bus is not None and self.bus.nc.is_connected
        db_ok = False
        if self.store is not None:
            with contextlib.suppress(Exception):
                await self.store.head_position()
                db_ok = True
        return {"nats": bus_ok, "postgres": db_ok}

    # --- recovery ---------------------------------------------------------------------------
    async def recover(self, tables: Tables) -> int:
        """Fold every unfinished workflow, re-arm its timers and let the next decision (or a
        timer) resend what was lost. Returns how many workflows were rebuilt."""
        assert self.store is not None and self.processor is not None
        ids = await tables.active_workflow_ids()
        now = datetime.now(UTC)
        for i in range(0, len(ids), 200):
            writes = []
            for wf, state in (await load_workflows(self.store, ids[i : i + 200])).items():
                self.processor.cache[wf] = state
                writes.append(Write(state, (), timers_for(state, self.limits, now)))
            fragment = tables.fragment(writes)
            if fragment is not None:
                await self.store.append_many([], also=fragment)
        self._admission.set()
        _log.info("orchestrator_recovered", workflows=len(ids))
        return len(ids)

    # --- inputs -----------------------------------------------------------------------------
    async def _consume(self, subjects: Any) -> None:
        assert self.bus is not None
        bus = self.bus
        await bus.ensure_consumer(StreamKind.GRAPHS, CONSUMERS["graphs"], ack_wait=30, max_deliver=20)
        commands = [
            subjects.command(c) for c in (Command.CANCEL, Command.PAUSE, Command.RESUME, Command.COLLABORATE)
        ]
        await bus.ensure_consumer(
            StreamKind.COMMANDS, CONSUMERS["commands"], filter_subjects=commands, ack_wait=30, max_deliver=20
        )
        await bus.ensure_consumer(
            StreamKind.PROGRESS, CONSUMERS["progress"], ack_wait=30, max_deliver=20, max_ack_pending=20_000
        )
        # every input is idempotent (deduplicated by message id, or a no-op when repeated), so
        # acks need not wait for the server's confirmation
        for kind in ("graphs", "commands"):
            await bus.consume_batch(
                StreamKind(kind),
                CONSUMERS[kind],
                self._on_messages,
                parse_message,
                batch=self.batch,
                confirm_acks=False,
            )
        await bus.consume_batch(
            StreamKind.PROGRESS,
            CONSUMERS["progress"],
            self._on_messages,
            _PROGRESS.validate_json,
            batch=self.batch,
            concurrency=2,
            fetch_timeout=0.5,
            confirm_acks=False,
        )

    async def _on_messages(self, batch: list[tuple[Any, Delivery]]) -> None:
        assert self.processor is not None
        items = [item for message, _ in batch if (item := to_item(message)) is not None]
        try:
            await self.processor.submit(items)
        except StoreUnavailable as exc:
            raise RetryableError(str(exc), delay=1.0) from exc

    async def _signal(self, workflow_id: str, task_id: str, attempt: int) -> None:
        # the attempt tells the agent which run to stop: a re-issue of the task must survive it
        assert self.bus is not None
        body = json.dumps({"attempt": attempt}).encode()
        await self.bus.publish_core(self.bus.subjects.cancel_signal(workflow_id, task_id), body)

    async def _timer_loop(self, tables: Tables) -> None:
        assert self.processor is not None
        while True:
            try:
                due = await tables.due_timers(datetime.now(UTC))
                if due:
                    await self.processor.submit(
                        [
                            Item(wf, TimerFired(tid, kind, payload), due_at)
                            for wf, tid, due_at, kind, payload in due
                        ]
                    )
                    continue
            except Exception as exc:
                _log.warning("orchestrator_timer_cycle_failed", error=repr(exc))
            await asyncio.sleep(self.timer_interval)

    async def _admission_loop(self, tables: Tables) -> None:
        assert self.processor is not None
        while True:
            # asyncio.timeout: wait_for may swallow the cancellation that stops this loop
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2.0):
                    await self._admission.wait()
            self._admission.clear()
            try:
                chosen = admit(await tables.summaries(), self.limits)
                if chosen:
                    await self.processor.submit([Item(wf, Admit()) for wf in chosen])
            except Exception as exc:
                _log.warning("orchestrator_admission_failed", error=repr(exc))
