"""The decision loop: folds batches of inputs (graphs, commands, progress, timers) into their
workflows and commits each batch in ONE transaction — events appended with the expected
version, task assignments into the outbox, read models and timers of every workflow of the
batch in one statement — then acks. Inputs that arrive while a batch commits form the next
batch, so the cost of a commit is shared by everything that queued meanwhile. Assignments are
published straight after the commit (``DirectRelay``); the relay marks their rows later.

A ``ConcurrencyConflict`` (another replica decided for the same workflow first) drops the
cached state, reloads from the store and decides the whole batch again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Final

from taskloom.contracts.events import WorkflowEvent
from taskloom.contracts.subjects import Subjects
from taskloom.eventstore import ConcurrencyConflict, EventStore, OutboxMessage, OutboxRelay, StreamAppend
from taskloom.observability import get_logger
from taskloom.orchestrator.adapters.outbox import DirectRelay
from taskloom.orchestrator.adapters.postgres import (
    SNAPSHOT_EVERY,
    Tables,
    Write,
    load_workflows,
    new_event,
)
from taskloom.orchestrator.domain import (
    Input,
    Limits,
    StartGraph,
    TimerFired,
    Workflow,
    decide,
    empty,
    timers_for,
)

__all__ = ["Item", "Processor"]

_log = get_logger(__name__)
_ADMISSION_LOCK: Final = 0x6F72_6368_6164_6D74  # "orchadmt": serialises workflow admission
_CONFLICT_RETRIES: Final = 20


@dataclass(frozen=True, slots=True)
class Item:
    workflow_id: str
    command: Input
    fired_due_at: datetime | None = None


@dataclass(slots=True)
class _Plan:
    decided: dict[str, _Decided] = field(default_factory=dict)
    appends: list[StreamAppend] = field(default_factory=list)
    outbox: list[OutboxMessage] = field(default_factory=list)
    writes: list[Write] = field(default_factory=list)
    expected: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Decided:
    start: Workflow
    state: Workflow
    events: list[WorkflowEvent]
    signals: list[tuple[str, int]]
    outbox: list[OutboxMessage]


class Processor:
    """One per orchestrator process; ``submit`` hands it inputs and returns once committed."""

    def __init__(
        self,
        store: EventStore,
        tables: Tables,
        subjects: Subjects,
        limits: Limits,
        *,
        relay: OutboxRelay | None = None,
        signal: Callable[[str, str, int], Awaitable[None]] | None = None,
        on_finished: Callable[[], None] | None = None,
        max_batch: int = 512,
    ) -> None:
        self.store = store
        self.tables = tables
        self.subjects = subjects
        self.limits = limits
        self.relay = relay
        self.signal = signal
        self.on_finished = on_finished
        self.max_batch = max_batch
        self.cache: dict[str, Workflow] = {}
        self._snapshots: dict[str, int] = {}
        self._queue: asyncio.Queue[tuple[list[Item], asyncio.Future[None]]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[object]] = set()
        self.batches = 0
        self.conflicts = 0

    # --- running ----------------------------------------------------------------------------
    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._loop(), name="orchestrator-processor")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for t in list(self._background):
            t.cancel()
        while not self._queue.empty():
            _, fut = self._queue.get_nowait()
            if not fut.done():
                fut.set_exception(RuntimeError("the orchestrator is stopping"))

    async def submit(self, items: Sequence[Item]) -> None:
        """Decide and commit ``items``; returns once they are durable (raises if they are not)."""
        if not items:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        await self._queue.put((list(items), fut))
        await fut

    async def _loop(self) -> None:
        while True:
            first = await self._queue.get()
            work = [first]
            count = len(first[0])
            while count < self.max_batch and not self._queue.empty():
                nxt = self._queue.get_nowait()
                work.append(nxt)
                count += len(nxt[0])
            try:
                await self.process([i for items, _ in work for i in items])
            except Exception as exc:
                for _, fut in work:
                    if not fut.done():
                        fut.set_exception(exc)
            else:
                for _, fut in work:
                    if not fut.done():
                        fut.set_result(None)

    # --- one batch --------------------------------------------------------------------------
    async def process(self, items: Sequence[Item]) -> None:
        groups: dict[str, list[Item]] = {}
        for item in items:
            groups.setdefault(item.workflow_id, []).append(item)
        reload: set[str] = set()
        for attempt in range(_CONFLICT_RETRIES):
            try:
                decided, message_ids = await self._commit(groups, reload)
            except ConcurrencyConflict as conflict:
                self.conflicts += 1
                stale = [conflict.stream_id] if conflict.stream_id in groups else list(groups)
                reload.update(stale)
                for wf in stale:
                    self.cache.pop(wf, None)
                _log.info("orchestrator_conflict_reload", workflow_id=conflict.stream_id, attempt=attempt)
                continue
            self.batches += 1
            self._after_commit(decided, message_ids)
            return
        raise ConcurrencyConflict(next(iter(groups)), None, -1)

    async def _commit(
        self, groups: dict[str, list[Item]], reload: set[str]
    ) -> tuple[dict[str, _Decided], tuple[str, ...]]:
        now = datetime.now(UTC)
        # a timer decision may append nothing and only delete rows: it must not act on a cache
        # another replica has overtaken
        states: dict[str, Workflow] = {}
        missing: list[str] = []
        for wf, its in groups.items():
            cached = self.cache.get(wf)
            if cached is None and wf not in reload and isinstance(its[0].command, StartGraph):
                # a graph for a workflow this process does not hold is almost always new: decide
                # it from the empty state without a read. If its stream exists after all (a
                # redelivery, a finished workflow), the append collides with the stored versions,
                # nothing is kept, and the retry loads it (``reload``)
                states[wf] = empty(wf)
            elif cached is None or wf in reload or any(isinstance(i.command, TimerFired) for i in its):
                missing.append(wf)
            else:
                states[wf] = cached
        if missing:  # new workflows, evicted ones, timers: one load for all of them
            states.update(await load_workflows(self.store, missing))
        direct = self.relay if isinstance(self.relay, DirectRelay) else None
        plan: _Plan | None = None
        try:
            if not any(isinstance(i.command, StartGraph) for its in groups.values() for i in its):
                # the common case (progress, commands, timers): decide from the cached states and
                # commit events, outbox rows and table writes in ONE statement, one round trip
                plan = self._decide_all(groups, states, now, 0)
                async with self.store.pinned() as conn:
                    return plan.decided, await self._write(plan, direct, conn)
            # admission: the running count and the starts it allows are decided under a lock
            async with self.store.pinned_transaction(advisory_lock=_ADMISSION_LOCK) as conn:
                running, queued = await self.tables.running_count(conn)
                # a queue that is not empty is served first, in priority order, by admission
                free = 0 if queued else self.limits.max_concurrent_workflows - running
                plan = self._decide_all(groups, states, now, free)
                return plan.decided, await self._write(plan, direct, conn)
        except BaseException:
            if direct is not None and plan is not None:
                direct.forget(plan.expected)
            raise

    async def _write(self, plan: _Plan, direct: DirectRelay | None, connection: Any) -> tuple[str, ...]:
        """The plan's events, outbox rows and table writes in one statement on ``connection``
        (committing on its own, or with the transaction the connection is in); returns the
        outbox ids stored."""
        fragment = self.tables.fragment(plan.writes)
        if not plan.appends and fragment is None:
            return ()
        marked: list[str] = []
        if direct is not None:
            # announced before COMMIT: a relay cycle that claims these rows waits for the fast
            # path instead of publishing them again
            direct.expect(plan.expected)
            marked = direct.take_published()
        result = await self.store.append_many(
            plan.appends,
            plan.outbox,
            also=fragment,
            mark_published=marked,
            notify_outbox=direct is None,
            connection=connection,
        )
        if direct is not None:
            direct.marked(marked)
        return result.message_ids

    def _decide_all(
        self, groups: dict[str, list[Item]], states: dict[str, Workflow], now: datetime, free: int
    ) -> _Plan:
        """Every workflow's decisions for its items, folded in order (pure but for ``now``)."""
        plan = _Plan()
        for wf, its in groups.items():
            start = state = states[wf]
            events: list[WorkflowEvent] = []
            signals: list[tuple[str, int]] = []
            outbox: list[OutboxMessage] = []
            fired: list[tuple[str, datetime]] = []
            for item in its:
                command = item.command
                if isinstance(command, StartGraph):
                    command = replace(command, admitted=free > 0)
                if isinstance(command, TimerFired) and item.fired_due_at is not None:
                    fired.append((command.timer_id, item.fired_due_at))
                d = decide(state, command, now, self.limits)
                if any(e.type == "WorkflowStarted" for e in d.events):
                    free -= 1
                state = d.state
                events.extend(d.events)
                signals.extend((t, d.cancel_attempts.get(t, 0)) for t in d.cancel_signals)
                outbox.extend(
                    OutboxMessage(
                        a.message_id, self.subjects.tasks(a.assigned_agent), a.model_dump_json().encode()
                    )
                    for a in d.assignments
                )
            wanted = timers_for(state, self.limits, now)
            if events:
                plan.appends.append(StreamAppend(wf, [new_event(e) for e in events], start.version))
                plan.outbox.extend(outbox)
                plan.writes.append(Write(state, events, wanted))
            elif fired:
                plan.writes.append(Write(state, (), wanted, fired, full=False))
            plan.decided[wf] = _Decided(start, state, events, signals, outbox)
            plan.expected.extend(m.message_id for m in outbox)
        return plan

    def _after_commit(self, decided: dict[str, _Decided], message_ids: tuple[str, ...]) -> None:
        finished = False
        for wf, d in decided.items():
            if d.state.terminal:
                self.cache.pop(wf, None)
                finished = finished or bool(d.events)
            else:
                self.cache[wf] = d.state
            if d.state.version - self._snapshots.get(wf, 0) >= SNAPSHOT_EVERY and not d.state.terminal:
                self._snapshots[wf] = d.state.version
                self._spawn(self.store.save_snapshot(wf, d.state.version, d.state.model_dump(mode="json")))
            if self.signal is not None:
                for task_id, attempt in d.signals:
                    self._spawn(self.signal(wf, task_id, attempt))
        if isinstance(self.relay, DirectRelay):
            stored = set(message_ids)
            fresh = [m for d in decided.values() for m in d.outbox if m.message_id in stored]
            self.relay.forget(
                m.message_id for d in decided.values() for m in d.outbox if m.message_id not in stored
            )
            if fresh:
                self._spawn(self.relay.publish_direct(fresh))
        elif message_ids and self.relay is not None:
            self._spawn(self.relay.publish_now(message_ids))
        if finished and self.on_finished is not None:
            self.on_finished()

    def _spawn(self, aw: Awaitable[object]) -> None:
        async def run() -> object:
            try:
                return await aw
            except Exception as exc:  # best effort: the relay loop and timers cover a failure
                _log.warning("orchestrator_background_failed", error=repr(exc))
                return None

        task = asyncio.create_task(run())
        self._background.add(task)
        task.add_done_callback(self._background.discard)
