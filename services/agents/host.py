"""The agent runtime: hosts one or more agents in a process, pulls their assignments from the
shared work-queue consumers, reports progress, keeps assignments alive, honours timeouts,
cancellation and graceful shutdown, heartbeats the registry and serves consultations."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import time
import traceback
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import nats
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.kv import KeyValue
from pydantic import ValidationError

from taskloom.agents.adapters.context_client import contribute_context, fetch_context
from taskloom.agents.adapters.jetstream import ensure_agent_consumer, ensure_registry, ensure_streams
from taskloom.agents.errors import AgentError, TaskCancelled
from taskloom.agents.sdk import (
    Agent,
    AgentContextView,
    CollaborationPort,
    ConsultationReply,
    ProgressReporter,
    ProgressSink,
)
from taskloom.contracts import (
    AgentCollaborationRequest,
    AgentRegistration,
    Command,
    ProgressStatus,
    ProgressUpdate,
    Subjects,
    TaskAssignment,
    utcnow,
)
from taskloom.contracts.messages import CollaborationRequested
from taskloom.contracts.subjects import registry_key, token
from taskloom.observability import get_logger

__all__ = ["AgentHost"]

log = get_logger(__name__)


@dataclass
class _Running:
    agent: Agent
    task: TaskAssignment
    msg: Msg
    reporter: ProgressReporter
    handle: asyncio.Task[Any] | None = None
    stop_reason: str | None = None  # "cancelled" | "shutdown"
    received: float = field(default_factory=time.perf_counter)


class _BusSink(ProgressSink):
    def __init__(self, host: AgentHost, task: TaskAssignment, agent_id: str) -> None:
        self.host, self.task, self.agent_id = host, task, agent_id

    async def emit(self, status: ProgressStatus, fields: dict[str, Any]) -> None:
        await self.host.publish_progress(self.task, self.agent_id, status, fields)


class AgentHost(CollaborationPort):
    """A service object for ``taskloom.runtime.serve``: ``start``, ``stop``, ``readiness``."""

    name = "agents"

    def __init__(
        self,
        settings: Any,
        agents: list[Agent],
        instance_id: str | None = None,
        ack_wait: float = 30.0,
        shutdown_grace: float = 10.0,
        heartbeat_interval: float = 5.0,
        context_timeout: float = 0.5,
    ) -> None:
        if not agents:
            raise ValueError("an agent host needs at least one agent")
        self.settings = settings
        self.subjects = Subjects(settings.namespace)
        self.agents = {a.agent_id: a for a in agents}
        self.instance_id = instance_id or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.ack_wait = ack_wait
        self.shutdown_grace = shutdown_grace
        self.heartbeat_interval = heartbeat_interval
        self.context_timeout = context_timeout
        self.started_at = utcnow()
        self._nc: NATS | None = None
        self._js: JetStreamContext | None = None
        self._kv: KeyValue | None = None
        self._loops: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Task[Any]] = set()
        self._running: dict[tuple[str, str], _Running] = {}
        self._cancelled: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._stopping = asyncio.Event()
        self.completed = 0

    # --- lifecycle ------------------------------------------------------------------------
    async def start(self) -> None:
        s = self.settings
        self._nc = await nats.connect(
            s.nats_url or "nats://127.0.0.1:4222",
            name=f"agents-{self.instance_id}",
            max_reconnect_attempts=-1,
            user=s.nats_user,
            password=s.nats_password.get_secret_value() if s.nats_password else None,
        )
        self._js = self._nc.jetstream()
        await ensure_streams(self._js, self.subjects, float(getattr(s, "dedup_window_seconds", 120)))
        self._kv = await ensure_registry(self._js, self.subjects)
        await self._nc.subscribe(self.subjects.cancel_signals_all, cb=self._on_cancel)
        for agent in self.agents.values():
            consumer = await ensure_agent_consumer(self._js, self.subjects, agent.agent_id, self.ack_wait)
            sub = await self._js.pull_subscribe_bind(consumer, stream=self.subjects.stream("tasks"))
            self._loops.append(
                asyncio.create_task(self._work_loop(agent, sub), name=f"work-{agent.agent_id}")
            )
            await self._nc.subscribe(
                self.subjects.consult(agent.agent_id),
                queue=f"consult_{token(agent.agent_id)}",
                cb=self._consult_handler(agent),
            )
        await self._heartbeat_once()
        self._spawn(self._heartbeat_loop())
        log.info("agent host started", instance=self.instance_id, agents=list(self.agents))

    async def stop(self) -> None:
        """Stop pulling; let running tasks finish within the grace period, hand the rest back."""
        self._stopping.set()
        for loop in self._loops:
            loop.cancel()
        await asyncio.gather(*self._loops, return_exceptions=True)
        pending = [r.handle for r in self._running.values() if r.handle is not None]
        if pending:
            _, still = await asyncio.wait(pending, timeout=self.shutdown_grace)
            for r in list(self._running.values()):
                if r.handle in still:
                    r.stop_reason = "shutdown"
                    r.reporter.cancelled.set()
                    r.handle.cancel()
            await asyncio.gather(*still, return_exceptions=True)
        if self._kv is not None:
            for agent_id in self.agents:
                with contextlib.suppress(Exception):
                    await self._kv.delete(registry_key(agent_id, self.instance_id))
        for task in list(self._background):
            task.cancel()
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await self._nc.drain()
        log.info("agent host stopped", instance=self.instance_id)

    async def readiness(self) -> dict[str, bool]:
        return {
            "nats": bool(self._nc and self._nc.is_connected),
            "consuming": bool(self._loops) and not self._stopping.is_set(),
        }

    def _connection(self) -> NATS:
        if self._nc is None:
            raise RuntimeError("agent host is not started")
        return self._nc

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    # --- work -----------------------------------------------------------------------------
    async def _work_loop(self, agent: Agent, sub: JetStreamContext.PullSubscription) -> None:
        slots = asyncio.Semaphore(max(1, agent.capacity))
        while not self._stopping.is_set():
            await slots.acquire()
            try:
                msgs = await sub.fetch(1, timeout=1.0)
            except (NatsTimeout, TimeoutError):
                slots.release()
                continue
            except Exception as exc:  # a reconnect or a server hiccup: retry after a pause
                slots.release()
                log.warning("fetch failed", agent=agent.agent_id, error=str(exc))
                await asyncio.sleep(0.5)
                continue
            for msg in msgs:
                running = asyncio.create_task(self._handle(agent, msg))
                running.add_done_callback(lambda _t: slots.release())
            if not msgs:
                slots.release()

    async def _handle(self, agent: Agent, msg: Msg) -> None:
        received = time.perf_counter()
        try:
            task = TaskAssignment.model_validate_json(msg.data)
        except ValidationError as exc:
            await self._dead_letter(msg, f"not a task_assignment: {exc.errors()[:3]}")
            await msg.term()
            return
        key = (token(task.workflow_id), token(task.task_id))
        sink = _BusSink(self, task, agent.agent_id)
        reporter = ProgressReporter(task, agent.agent_id, sink, self)
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
            await msg.ack()
            return
        if key in self._cancelled:
            await self._fail(
                task,
                agent,
                {"error_type": "TaskCancelled", "error_message": "cancelled before it started"},
                retryable=False,
            )
            await msg.ack()
            return
        running = _Running(agent, task, msg, reporter, asyncio.current_task(), received=received)
        self._running[key] = running
        keepalive = asyncio.create_task(self._keepalive(msg))
        started = time.perf_counter()
        deadline = asyncio.timeout(task.task_details.timeout)
        try:
            await sink.emit(
                ProgressStatus.STARTED,
                {"progress": {"completion_percentage": 0.0, "current_phase": "started"}},
            )
            fetched = (
                await fetch_context(
                    self._connection(), self.subjects, task, agent.agent_id, self.context_timeout
                )
                if task.required_context
                else None
            )
            view = AgentContextView.from_assignment(task, fetched)
            async with deadline:
                result = await agent.execute(task, view, reporter)
        except asyncio.CancelledError:
            keepalive.cancel()
            if running.stop_reason == "shutdown":
                # hand the assignment back at once so another replica takes it
                with contextlib.suppress(Exception):
                    await msg.nak()
                log.info("task handed back on shutdown", task_id=task.task_id)
                self._running.pop(key, None)
                return
            if running.stop_reason == "cancelled":
                await self._fail(
                    task,
                    agent,
                    {"error_type": "TaskCancelled", "error_message": "workflow cancelled the task"},
                    retryable=False,
                    elapsed=time.perf_counter() - started,
                    reporter=reporter,
                )
                await msg.ack()
                self._running.pop(key, None)
                return
            raise
        except TimeoutError as exc:
            # the task's own deadline, or a timeout inside the agent's work (both retryable)
            error = (
                {"error_type": "TaskTimeout", "error_message": f"exceeded {task.task_details.timeout}s"}
                if deadline.expired()
                else {"error_type": "TimeoutError", "error_message": str(exc)}
            )
            await self._fail(
                task,
                agent,
                error,
                retryable=True,
                elapsed=time.perf_counter() - started,
                reporter=reporter,
            )
        except TaskCancelled as exc:
            await self._fail(
                task,
                agent,
                {"error_type": "TaskCancelled", "error_message": str(exc)},
                retryable=False,
                elapsed=time.perf_counter() - started,
                reporter=reporter,
            )
        except AgentError as exc:
            await self._fail(
                task,
                agent,
                {"error_type": type(exc).__name__, "error_message": str(exc)},
                retryable=exc.retryable,
                elapsed=time.perf_counter() - started,
                reporter=reporter,
            )
        except Exception as exc:
            await self._fail(
                task,
                agent,
                {
                    "error_type": type(exc).__name__,
                    "error_message": str(exc),
                    "traceback": traceback.format_exc(limit=8),
                },
                retryable=True,
                elapsed=time.perf_counter() - started,
                reporter=reporter,
            )
        else:
            elapsed = time.perf_counter() - started
            if result.success:
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
                        "performance_metrics": {
                            "execution_time": elapsed,
                            "resource_usage": {"instance": self.instance_id},
                            "quality_indicators": metrics,
                        },
                    },
                )
                self._spawn(
                    contribute_context(
                        self._connection(), self.subjects, task, agent.agent_id, result.outputs, metrics
                    )
                )
            else:
                await self._fail(
                    task,
                    agent,
                    result.error_context or {"error_type": "TaskFailed"},
                    retryable=True,
                    elapsed=elapsed,
                    reporter=reporter,
                    outputs=result.outputs,
                )
        finally:
            keepalive.cancel()
        if self._running.pop(key, None) is not None:
            await msg.ack()
            self.completed += 1

    async def _keepalive(self, msg: Msg) -> None:
        interval = max(0.2, self.ack_wait / 3)
        with contextlib.suppress(asyncio.CancelledError):
            while True:
                await asyncio.sleep(interval)
                with contextlib.suppress(Exception):
                    await msg.in_progress()

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
        if status in (ProgressStatus.COMPLETED, ProgressStatus.FAILED):
            msg_id = f"{task.workflow_id}.{task.task_id}.{task.attempt}.end"
        else:
            msg_id = update.message_id
        assert self._js is not None
        await self._js.publish(
            self.subjects.progress(agent_id, task.workflow_id, task.task_id),
            update.model_dump_json(exclude_none=True).encode(),
            headers={"Nats-Msg-Id": msg_id},
        )

    async def _dead_letter(self, msg: Msg, reason: str) -> None:
        log.warning("dead-lettering a message", subject=msg.subject, reason=reason)
        body = {
            "source": "agents",
            "subject": msg.subject,
            "reason": reason,
            "data": msg.data.decode(errors="replace"),
            "instance_id": self.instance_id,
            "timestamp": utcnow().isoformat(),
        }
        assert self._js is not None
        with contextlib.suppress(Exception):
            await self._js.publish(self.subjects.dead_letter("agents"), json.dumps(body).encode())

    # --- cancellation ---------------------------------------------------------------------
    async def _on_cancel(self, msg: Msg) -> None:
        parts = msg.subject.split(".")
        key = (parts[-2], parts[-1])
        self._cancelled[key] = None
        while len(self._cancelled) > 10_000:
            self._cancelled.popitem(last=False)
        running = self._running.get(key)
        if running is not None and running.handle is not None and running.stop_reason is None:
            log.info("cancelling running task", task_id=running.task.task_id)
            running.stop_reason = "cancelled"
            running.reporter.cancelled.set()
            running.handle.cancel()

    # --- registry -------------------------------------------------------------------------
    async def _heartbeat_once(self) -> None:
        assert self._kv is not None and self._nc is not None
        for agent in self.agents.values():
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
            await self._kv.put(registry_key(agent.agent_id, self.instance_id), data)
            await self._nc.publish(self.subjects.heartbeat(agent.agent_id, self.instance_id), data)

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
        assert self._nc is not None
        target = request.target_agents[0]
        try:
            reply = await self._nc.request(
                self.subjects.consult(target), request.model_dump_json().encode(), timeout=timeout
            )
        except (NatsTimeout, NoRespondersError) as exc:
            raise TimeoutError(f"no answer from {target} within {timeout}s") from exc
        return ConsultationReply.model_validate_json(reply.data)

    async def request(self, request: AgentCollaborationRequest) -> None:
        assert self._js is not None
        command = CollaborationRequested(workflow_id=request.workflow_id or "none", request=request)
        await self._js.publish(
            self.subjects.command(Command.COLLABORATE),
            command.model_dump_json().encode(),
            headers={"Nats-Msg-Id": request.collaboration_id},
        )
