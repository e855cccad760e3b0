"""The agent runtime: hosts one or more agents in a process, pulls their assignments from the
shared work-queue consumers, reports progress, keeps assignments alive, honours timeouts,
cancellation and graceful shutdown, heartbeats the registry and serves consultations."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import socket
import time
import traceback
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from nats.aio.msg import Msg
from nats.js.kv import KeyValue
from pydantic import ValidationError

from taskloom.agents.adapters.context_client import AgentContextService, contribution
from taskloom.agents.adapters.jetstream import (
    DEAD_LETTER_SOURCE,
    DEFAULT_ACK_WAIT,
    DEFAULT_MAX_DELIVER,
    declare_agent_consumer,
    open_registry,
    parse_assignment,
)
from taskloom.agents.errors import AgentError, TaskCancelled
from taskloom.agents.sdk import (
    Agent,
    AgentContextView,
    CollaborationPort,
    ConsultationReply,
    ProgressReporter,
    ProgressSink,
)
from taskloom.bus import (
    Bus,
    BusError,
    ConsumerHandle,
    DeadLetterReason,
    Delivery,
    NoResponders,
    RequestTimeout,
    RetryableError,
    StreamKind,
)
from taskloom.contracts import (
    AgentCollaborationRequest,
    AgentRegistration,
    Command,
    ProgressStatus,
    ProgressUpdate,
    Subjects,
    TaskAssignment,
    TaskResult,
    utcnow,
)
from taskloom.contracts.messages import CollaborationRequested
from taskloom.contracts.subjects import registry_key, token
from taskloom.observability import get_logger

__all__ = ["HANDBACK_DELAY", "AgentHost"]

log = get_logger(__name__)

HANDBACK_DELAY = 1.0
"""Seconds a handed-back assignment waits before redelivery: longer than a pending fetch of the
stopping process lasts, so that the stopping process cannot take it again."""

REPORT_RETRY_DELAY = 2.0
"""Seconds before an assignment whose outcome could not be published is redelivered."""

_TERMINAL = (ProgressStatus.COMPLETED, ProgressStatus.FAILED)


class _DeadlineExceeded(Exception):
    """The task ran past ``task_details.timeout`` (as opposed to a timeout inside its work)."""


@dataclass
class _Running:
    agent: Agent
    task: TaskAssignment
    delivery: Delivery
    reporter: ProgressReporter
    handle: asyncio.Task[TaskResult] | None = None
    stop_reason: str | None = None  # "cancelled" | "shutdown"
    received: float = field(default_factory=time.perf_counter)


class _BusSink(ProgressSink):
    """Publishes a task's updates. Only terminal updates must get through (their failure makes
    the assignment be redelivered); a lost intermediate update is logged and the task goes on."""

    def __init__(self, host: AgentHost, task: TaskAssignment, agent_id: str, delivery: Delivery) -> None:
        self.host, self.task, self.agent_id, self.delivery = host, task, agent_id, delivery

    async def emit(self, status: ProgressStatus, fields: dict[str, Any]) -> None:
        if status in _TERMINAL:
            await self.host.publish_progress(self.task, self.agent_id, status, fields)
            return
        try:
            await self.host.publish_progress(self.task, self.agent_id, status, fields)
        except BusError as exc:
            log.warning(
                "progress update lost", task_id=self.task.task_id, status=status.value, error=str(exc)
            )
        # a task that reports is alive: its lease is renewed with every update
        await self.delivery.in_progress()


class AgentHost(CollaborationPort):
    """A service object for ``taskloom.runtime.run_service``: ``start``, ``stop``, ``readiness``."""

    name = "agents"

    def __init__(
        self,
        settings: Any,
        agents: list[Agent],
        instance_id: str | None = None,
        ack_wait: float = DEFAULT_ACK_WAIT,
        shutdown_grace: float = 10.0,
        heartbeat_interval: float = 5.0,
        context_timeout: float = 0.5,
        max_deliver: int = DEFAULT_MAX_DELIVER,
    ) -> None:
        if not agents:
            raise ValueError("an agent host needs at least one agent")
        if max_deliver < 1:
            raise ValueError("max_deliver must be >= 1")
        self.settings = settings
        self.subjects = Subjects(settings.namespace)
        self.agents = {a.agent_id: a for a in agents}
        self.instance_id = instance_id or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.ack_wait = ack_wait
        self.shutdown_grace = shutdown_grace
        self.heartbeat_interval = heartbeat_interval
        self.context_timeout = context_timeout
        self.max_deliver = max_deliver
        self.started_at = utcnow()
        self._bus_: Bus | None = None
        self._context: AgentContextService | None = None
        self._kv: KeyValue | None = None
        self._handles: dict[str, ConsumerHandle] = {}
        self._background: set[asyncio.Task[Any]] = set()
        self._running: dict[tuple[str, str], _Running] = {}
        # (workflow, task, attempt) cancelled before this host picked the assignment up
        self._cancelled: OrderedDict[tuple[str, str, int], None] = OrderedDict()
        self._stopping = asyncio.Event()
        self.completed = 0

    # --- lifecycle ------------------------------------------------------------------------
    async def start(self) -> None:
        bus = await Bus.connect(self.settings, name=f"agents-{self.instance_id}")
        self._bus_ = bus
        self._context = AgentContextService(bus.nc, self.subjects, self.context_timeout)
        await bus.nc.subscribe(self.subjects.cancel_signals_all, cb=self._on_cancel)
        for agent in self.agents.values():
            await bus.nc.subscribe(
                self.subjects.consult(agent.agent_id),
                queue=f"consult_{token(agent.agent_id)}",
                cb=self._consult_handler(agent),
            )
        self._kv = await open_registry(bus)
        started = await asyncio.gather(*(self._start_consuming(a) for a in self.agents.values()))
        for agent, ok in zip(self.agents.values(), started, strict=True):
            if not ok:  # the platform has not declared the streams yet: keep trying
                self._spawn(self._keep_trying(agent))
        with contextlib.suppress(Exception):  # the heartbeat loop retries
            await self._heartbeat_once()
        self._spawn(self._heartbeat_loop())
        log.info(
            "agent host started",
            instance=self.instance_id,
            agents=list(self.agents),
            consuming=list(self._handles),
        )

    async def stop(self) -> None:
        """Stop pulling; let running tasks finish within the grace period, hand the rest back."""
        self._stopping.set()
        for handle in self._handles.values():
            handle.request_stop()
        pending = [r.handle for r in self._running.values() if r.handle is not None]
        if pending:
            _, still = await asyncio.wait(pending, timeout=self.shutdown_grace)
            for r in list(self._running.values()):
                if r.handle in still:
                    r.stop_reason = "shutdown"
                    r.reporter.cancelled.set()
                    r.handle.cancel()
        bus = self._bus_
        if bus is not None:
            # the handlers report or hand back what they ran, then the loops end
            await bus.stop_consumers(self.shutdown_grace + 5.0)
        if self._kv is not None:
            for agent_id in self.agents:
                with contextlib.suppress(Exception):
                    await self._kv.delete(registry_key(agent_id, self.instance_id))
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        if bus is not None:
            await bus.drain(5.0)
        log.info("agent host stopped", instance=self.instance_id)

    async def readiness(self) -> dict[str, bool]:
        """NATS reachable and every hosted agent's work consumer declared and pulled from; the
        agents need no database."""
        bus = self._bus_
        return {
            "nats": bool(bus is not None and bus.nc.is_connected),
            "consuming": len(self._handles) == len(self.agents)
            and all(h.running for h in self._handles.values())
            and not self._stopping.is_set(),
        }

    def _bus(self) -> Bus:
        if self._bus_ is None:
            raise RuntimeError("agent host is not started")
        return self._bus_

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    # --- consumers ------------------------------------------------------------------------
    async def _start_consuming(self, agent: Agent) -> bool:
        """Declare ``agent``'s work consumer and start pulling; False (logged) if not possible yet."""
        bus = self._bus()
        try:
            await declare_agent_consumer(
                bus, agent.agent_id, ack_wait=self.ack_wait, max_deliver=self.max_deliver
            )
            self._handles[agent.agent_id] = await bus.consume(
                StreamKind.TASKS,
                self.subjects.agent_consumer(agent.agent_id),
                functools.partial(self._on_assignment, agent),
                parse_assignment,
                concurrency=max(1, agent.capacity),
                # the server's one extra delivery reaches the handler, which reports the task
                # failed before dead-lettering it (see _give_up)
                max_deliver=self.max_deliver + 1,
                dead_letter_source=DEAD_LETTER_SOURCE,
            )
        except Exception as exc:
            log.warning(
                "cannot consume assignments yet; retrying",
                agent=agent.agent_id,
                stream=self.subjects.stream(StreamKind.TASKS.value),
                error=f"{type(exc).__name__}: {exc}",
                hint="the platform services declare the streams (Bus.ensure_streams) before agents start",
            )
            return False
        return True

    async def _keep_trying(self, agent: Agent) -> None:
        pause = 0.5
        while not self._stopping.is_set():
            await asyncio.sleep(pause)
            if self._stopping.is_set():
                return
            if await self._start_consuming(agent):
                with contextlib.suppress(Exception):
                    await self._heartbeat_once()
                log.info("consuming assignments", agent=agent.agent_id)
                return
            pause = min(pause * 2, 10.0)

    # --- work -----------------------------------------------------------------------------
    async def _on_assignment(self, agent: Agent, task: TaskAssignment, delivery: Delivery) -> None:
        """Handle one delivered assignment. Returning acks it (the outcome was reported);
        ``RetryableError`` has it redelivered."""
        if self._stopping.is_set():
            # fetched while stopping: give it back untouched for another replica
            await delivery.nak(HANDBACK_DELAY)
            return
        try:
            if delivery.num_delivered > self.max_deliver:
                await self._give_up(agent, task, delivery)
                return
            if await self._run(agent, task, delivery):
                self.completed += 1
        except BusError as exc:
            raise RetryableError(f"could not report the outcome: {exc}", delay=REPORT_RETRY_DELAY) from exc

    async def _run(self, agent: Agent, task: TaskAssignment, delivery: Delivery) -> bool:
        """Run the task and report its outcome; False when it was handed back on shutdown."""
        received = time.perf_counter()
        key = (token(task.workflow_id), token(task.task_id))
        if task.task_details.task_type not in agent.task_types or task.assigned_agent != agent.agent_id:
            await self._fail(
                task,
                agent,
                {
                    "error_type": "UnsupportedTask",
                    "error_message": f"{agent.agent_id} does not implement {task.task_details.task_type!r}",
                },
                retryable=False,
            )
            return True
        if (*key, task.attempt) in self._cancelled:
            await self._fail(
                task,
                agent,
                {"error_type": "TaskCancelled", "error_message": "cancelled before it started"},
                retryable=False,
            )
            return True
        sink = _BusSink(self, task, agent.agent_id, delivery)
        reporter = ProgressReporter(task, agent.agent_id, sink, self)
        running = _Running(agent, task, delivery, reporter, received=received)
        self._running[key] = running
        started = time.perf_counter()
        work = asyncio.create_task(self._execute(agent, task, sink, reporter), name=f"task-{task.task_id}")
        running.handle = work
        keepalive = asyncio.create_task(self._keep_alive(delivery, task))
        try:
            return await self._settle(running, work, sink, started)
        finally:
            keepalive.cancel()
            self._running.pop(key, None)

    async def _execute(
        self, agent: Agent, task: TaskAssignment, sink: _BusSink, reporter: ProgressReporter
    ) -> TaskResult:
        await sink.emit(
            ProgressStatus.STARTED, {"progress": {"completion_percentage": 0.0, "current_phase": "started"}}
        )
        fetched = (
            await self._context.fetch(task, agent.agent_id)
            if task.required_context and self._context is not None
            else None
        )
        view = AgentContextView.from_assignment(task, fetched)
        deadline = asyncio.timeout(task.task_details.timeout)
        try:
            async with deadline:
                return await agent.execute(task, view, reporter)
        except TimeoutError as exc:
            if deadline.expired():
                raise _DeadlineExceeded(f"exceeded {task.task_details.timeout}s") from exc
            raise

    async def _settle(
        self, running: _Running, work: asyncio.Task[TaskResult], sink: _BusSink, started: float
    ) -> bool:
        """Await the task and publish its outcome."""
        agent, task, reporter, delivery = running.agent, running.task, running.reporter, running.delivery

        async def fail(error: dict[str, Any], retryable: bool, outputs: dict[str, Any] | None = None) -> None:
            await self._fail(
                task,
                agent,
                error,
                retryable=retryable,
                elapsed=time.perf_counter() - started,
                reporter=reporter,
                outputs=outputs,
            )

        try:
            result = await work
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if running.stop_reason is None or (current is not None and current.cancelling()):
                raise  # the handler itself is being cancelled (forced stop)
            if running.stop_reason == "shutdown":
                # hand the assignment back so that another replica takes it
                await delivery.nak(HANDBACK_DELAY)
                log.info("task handed back on shutdown", task_id=task.task_id)
                return False
            await fail({"error_type": "TaskCancelled", "error_message": "workflow cancelled the task"}, False)
        except _DeadlineExceeded as exc:
            await fail({"error_type": "TaskTimeout", "error_message": str(exc)}, True)
        except TimeoutError as exc:  # a timeout inside the agent's own work
            await fail({"error_type": "TimeoutError", "error_message": str(exc)}, True)
        except TaskCancelled as exc:
            await fail({"error_type": "TaskCancelled", "error_message": str(exc)}, False)
        except AgentError as exc:
            await fail({"error_type": type(exc).__name__, "error_message": str(exc)}, exc.retryable)
        except Exception as exc:
            await fail(
                {
                    "error_type": type(exc).__name__,
                    "error_message": str(exc),
                    "traceback": "".join(traceback.format_exception(exc, limit=8)),
                },
                True,
            )
        else:
            elapsed = time.perf_counter() - started
            if not result.success:
                await fail(result.error_context or {"error_type": "TaskFailed"}, True, result.outputs)
                return True
            metrics = {**result.performance_metrics, "execution_time": round(elapsed, 4)}
            await sink.emit(
                ProgressStatus.COMPLETED,
                {
                    "progress": {
                        "completion_percentage": 100.0,
                        "current_phase": "completed",
                        "completed_milestones": list(reporter.milestones),
                    },
                    "outputs": result.outputs,
                    # the completion carries every collaboration the task made: consultations
                    # (agent to agent) reach the history only this way, and a request sent on
                    # the command stream cannot be overtaken by the completion of the last task;
                    # the orchestrator ignores a collaboration id it has already seen
                    "collaboration_requests": [c.model_dump(mode="json") for c in reporter.collaborations]
                    or None,
                    "performance_metrics": {
                        "execution_time": elapsed,
                        "resource_usage": {"instance": self.instance_id},
                        "quality_indicators": metrics,
                    },
                },
            )
            if self._context is not None:
                self._spawn(
                    self._context.contribute(contribution(task, agent.agent_id, result.outputs, metrics))
                )
        return True

    async def _keep_alive(self, delivery: Delivery, task: TaskAssignment) -> None:
        """In-progress acks while the task runs, but no longer than its own timeout plus one ack
        wait: a task stuck past its deadline (ignoring cancellation) loses its lease and is
        redelivered instead of holding the assignment forever."""
        loop = asyncio.get_running_loop()
        interval = max(0.2, delivery.ack_wait / 3)
        until = loop.time() + task.task_details.timeout + delivery.ack_wait
        while loop.time() < until:
            await asyncio.sleep(interval)
            await delivery.in_progress()
        log.error(
            "task overran its timeout and ignores cancellation; its lease lapses",
            task_id=task.task_id,
            timeout=task.task_details.timeout,
        )

    async def _give_up(self, agent: Agent, task: TaskAssignment, delivery: Delivery) -> None:
        """The delivery after the last allowed one: every earlier one ended in a crash, a hang or
        a hand-back. Report the task failed (not retryable) and dead-letter the assignment."""
        message = (
            f"assignment delivered {delivery.num_delivered} times without an outcome "
            f"(max_deliver {self.max_deliver}): its agent process crashed, hung or stopped each time"
        )
        try:
            await self._fail(
                task,
                agent,
                {"error_type": "DeliveryLimitExceeded", "error_message": message},
                retryable=False,
            )
        except BusError as exc:  # the dead letter still records it
            log.error("could not report an exhausted assignment", task_id=task.task_id, error=str(exc))
        await delivery.dead_letter(DeadLetterReason.MAX_DELIVER_EXCEEDED, message)

    async def _fail(
        self,
        task: TaskAssignment,
        agent: Agent,
        error: dict[str, Any],
        retryable: bool,
        elapsed: float = 0.0,
        reporter: ProgressReporter | None = None,
        outputs: dict[str, Any] | None = None,
    ) -> None:
        log.warning(
            "task failed",
            task_id=task.task_id,
            agent=agent.agent_id,
            **{k: v for k, v in error.items() if k != "traceback"},
        )
        progress = {
            "completion_percentage": reporter.percentage if reporter else 0.0,
            "current_phase": reporter.phase if reporter else "",
            "completed_milestones": list(reporter.milestones) if reporter else [],
        }
        await self.publish_progress(
            task,
            agent.agent_id,
            ProgressStatus.FAILED,
            {
                "progress": progress,
                "error_context": {**error, "task_id": task.task_id, "attempt": task.attempt},
                "retryable": retryable,
                "outputs": outputs or None,
                "performance_metrics": {
                    "execution_time": elapsed,
                    "resource_usage": {"instance": self.instance_id},
                },
                "issues": [
                    {
                        "issue_type": "error",
                        "description": str(error.get("error_message", error.get("error_type", ""))),
                        "escalation_required": not retryable,
                    }
                ],
            },
        )

    async def publish_progress(
        self, task: TaskAssignment, agent_id: str, status: ProgressStatus, fields: dict[str, Any]
    ) -> None:
        update = ProgressUpdate.model_validate(
            {
                "workflow_id": task.workflow_id,
                "task_id": task.task_id,
                "agent_id": agent_id,
                "status": status,
                "attempt": task.attempt,
                "instance_id": self.instance_id,
                **{k: v for k, v in fields.items() if v is not None},
            }
        )
        # terminal updates are deduplicated per attempt: a redelivered assignment that already
        # reported its end cannot report it twice
        msg_id = f"{task.workflow_id}.{task.task_id}.{task.attempt}.end" if status in _TERMINAL else None
        await self._bus().publish(
            self.subjects.progress(agent_id, task.workflow_id, task.task_id),
            update.model_dump_json(exclude_none=True).encode(),
            msg_id=msg_id or update.message_id,
        )

    # --- cancellation ---------------------------------------------------------------------
    async def _on_cancel(self, msg: Msg) -> None:
        """Stop a running task. A signal naming an attempt stops only that attempt and is
        remembered in case its assignment is still queued; one without an attempt stops what
        runs now and is not remembered, so a later re-issue of the task still runs."""
        parts = msg.subject.split(".")
        key = (parts[-2], parts[-1])
        attempt: int | None = None
        with contextlib.suppress(ValueError, TypeError, AttributeError):
            value = json.loads(msg.data or b"{}").get("attempt")
            attempt = int(value) if value is not None else None
        if attempt is not None:
            self._cancelled[(*key, attempt)] = None
            while len(self._cancelled) > 10_000:
                self._cancelled.popitem(last=False)
        running = self._running.get(key)
        if running is None or running.handle is None or running.stop_reason is not None:
            return
        if attempt is not None and running.task.attempt != attempt:
            return
        log.info("cancelling running task", task_id=running.task.task_id, attempt=running.task.attempt)
        running.stop_reason = "cancelled"
        running.reporter.cancelled.set()
        running.handle.cancel()

    # --- registry -------------------------------------------------------------------------
    async def _heartbeat_once(self) -> None:
        bus = self._bus()
        if self._kv is None:
            self._kv = await open_registry(bus)
        for agent_id in list(self._handles):
            agent = self.agents[agent_id]
            load = sum(1 for r in self._running.values() if r.agent is agent)
            reg = AgentRegistration(
                agent_id=agent.agent_id,
                instance_id=self.instance_id,
                capabilities=list(agent.capabilities),
                task_types=list(agent.task_types),
                capacity=max(1, agent.capacity),
                load=load,
                version=str(agent.version),
                host=socket.gethostname(),
                started_at=self.started_at,
            )
            data = reg.model_dump_json().encode()
            if self._kv is not None:
                await self._kv.put(registry_key(agent.agent_id, self.instance_id), data)
            await bus.publish_core(self.subjects.heartbeat(agent.agent_id, self.instance_id), data)

    async def _heartbeat_loop(self) -> None:
        while not self._stopping.is_set():
            await asyncio.sleep(self.heartbeat_interval)
            try:
                await self._heartbeat_once()
            except Exception as exc:  # the next beat retries; a missed one only ages the entry
                log.warning("heartbeat failed", error=str(exc))

    # --- collaboration --------------------------------------------------------------------
    def _consult_handler(self, agent: Agent) -> Any:
        async def answer(msg: Msg) -> None:
            try:
                request = AgentCollaborationRequest.model_validate_json(msg.data)
            except ValidationError as exc:
                await msg.respond(
                    json.dumps(
                        {"ok": False, "error": f"bad consultation request: {exc.errors()[:2]}"}
                    ).encode()
                )
                return
            try:
                answer_ = await agent.consult(request)
                reply = ConsultationReply(
                    agent_id=agent.agent_id,
                    instance_id=self.instance_id,
                    collaboration_id=request.collaboration_id,
                    ok=True,
                    answer=answer_,
                )
            except Exception as exc:  # the asker gets the reason instead of a timeout
                reply = ConsultationReply(
                    agent_id=agent.agent_id,
                    instance_id=self.instance_id,
                    collaboration_id=request.collaboration_id,
                    ok=False,
                    error=f"{type(exc).__name__}: {exc}",
                )
            await msg.respond(reply.model_dump_json().encode())

        async def on_message(msg: Msg) -> None:
            self._spawn(answer(msg))

        return on_message

    async def consult(self, request: AgentCollaborationRequest, timeout: float) -> ConsultationReply:  # noqa: ASYNC109
        target = request.target_agents[0]
        try:
            reply = await self._bus().request(self.subjects.consult(target), request, timeout=timeout)
        except (RequestTimeout, NoResponders) as exc:
            raise TimeoutError(f"no answer from {target} within {timeout}s") from exc
        return ConsultationReply.model_validate_json(reply.data)

    async def request(self, request: AgentCollaborationRequest) -> None:
        command = CollaborationRequested(workflow_id=request.workflow_id or "none", request=request)
        await self._bus().publish(
            self.subjects.command(Command.COLLABORATE), command, msg_id=request.collaboration_id
        )
