"""A test agent run as a real process: pulls ``task_assignment`` messages for one agent id from
the bus and answers as its arguments say. Not a specialist — it exercises the engine.

    python scripted_agent.py --nats URL --namespace NS --agent core-services --mode complete
    modes: complete | fail:N (fail attempts <= N, then complete) | fail-always | silent
           (starts, then never reports) | slow:S (reports every 0.2 s for S seconds, then completes)
    --dup3: send every progress update three times, shuffled
    --instance ID: the instance id it reports (replicas of one agent id share its work queue)
    --log FILE: append one line per event seen: ``assigned|completed|stopped WF TASK ATTEMPT``
           and ``cancel WF TASK`` for every cancel signal of a task it holds

A task's ``input_parameters`` script it further, in every mode that completes:
    sleep: S           work S seconds (progress every 0.2 s) before completing
    emit: {...}        extra outputs of the completion
    emit_by_attempt: [{...}, ...]   extra outputs per attempt (the last one repeats)
A cancel signal (``subjects.cancel_signal(wf, task)``) stops a task that is still working: it
then reports nothing more. ``--ignore-cancel`` logs the signal and works on (an agent that
missed it, e.g. one that was frozen when it was sent).
"""

from __future__ import annotations

import argparse
import asyncio
import random
from pathlib import Path
from typing import Any

from taskloom.bus import Bus, Delivery, StreamKind
from taskloom.contracts.enums import ProgressStatus
from taskloom.contracts.messages import ProgressInfo, ProgressUpdate, TaskAssignment


def extra_outputs(a: TaskAssignment) -> dict[str, Any]:
    params = a.inputs.parameters
    by_attempt = params.get("emit_by_attempt")
    if isinstance(by_attempt, list) and by_attempt:
        chosen = by_attempt[min(a.attempt, len(by_attempt)) - 1]
        return dict(chosen) if isinstance(chosen, dict) else {}
    emit = params.get("emit")
    return dict(emit) if isinstance(emit, dict) else {}


async def main() -> None:  # noqa: C901 - one script, one branch per mode
    p = argparse.ArgumentParser()
    p.add_argument("--nats", required=True)
    p.add_argument("--namespace", required=True)
    p.add_argument("--agent", required=True)
    p.add_argument("--mode", default="complete")
    p.add_argument("--dup3", action="store_true")
    p.add_argument("--instance", default=None)
    p.add_argument("--log", default=None)
    p.add_argument("--ignore-cancel", action="store_true")
    args = p.parse_args()
    bus = await Bus.connect(name=f"test-agent-{args.agent}", url=args.nats, namespace=args.namespace)
    await bus.ensure_streams()
    await bus.ensure_agent_consumer(args.agent, ack_wait=30, max_deliver=None)
    mode, _, arg = args.mode.partition(":")
    log_path = Path(args.log) if args.log else None
    # cancel-signal subject -> the attempts of that task in hand; a signal stops only those
    holding: dict[str, set[tuple[str, str, int]]] = {}
    cancelled: set[tuple[str, str, int]] = set()

    def log(*words: object) -> None:
        if log_path is not None:
            with log_path.open("a") as f:
                f.write(" ".join(str(w) for w in words) + "\n")

    async def on_cancel(msg: Any) -> None:
        held = holding.get(msg.subject, set())
        for wf, task, _ in sorted(held)[:1]:
            log("cancel", wf, task)
        if not args.ignore_cancel:
            cancelled.update(held)

    await bus.nc.subscribe(bus.subjects.cancel_signals_all, cb=on_cancel)

    async def send(a: TaskAssignment, status: ProgressStatus, **kw: object) -> list[ProgressUpdate]:
        return [
            ProgressUpdate(
                workflow_id=a.workflow_id,
                task_id=a.task_id,
                agent_id=args.agent,
                attempt=a.attempt,
                status=status,
                instance_id=args.instance,
                **kw,  # type: ignore[arg-type]
            )
        ]

    async def publish(updates: list[ProgressUpdate]) -> None:
        if args.dup3:
            updates = updates * 3
            random.shuffle(updates)
        for u in updates:
            await bus.publish(bus.subjects.progress(args.agent, u.workflow_id, u.task_id), u)

    async def work(a: TaskAssignment, delivery: Delivery, seconds: float) -> bool:
        """Report progress for ``seconds``; False when a cancel signal stopped the task."""
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        pct = 0.0
        while loop.time() < end:
            await asyncio.sleep(0.2)
            if (a.workflow_id, a.task_id, a.attempt) in cancelled:
                log("stopped", a.workflow_id, a.task_id, a.attempt)
                return False
            pct = min(99.0, pct + 5)
            await publish(
                await send(a, ProgressStatus.IN_PROGRESS, progress=ProgressInfo(completion_percentage=pct))
            )
            await delivery.in_progress()
        return True

    async def handle(a: TaskAssignment, delivery: Delivery) -> None:
        log("assigned", a.workflow_id, a.task_id, a.attempt)
        subject = bus.subjects.cancel_signal(a.workflow_id, a.task_id)
        held = (a.workflow_id, a.task_id, a.attempt)
        holding.setdefault(subject, set()).add(held)
        try:
            await answer(a, delivery)
        finally:
            holding[subject].discard(held)

    async def answer(a: TaskAssignment, delivery: Delivery) -> None:
        started = await send(a, ProgressStatus.STARTED)
        if mode == "silent":
            await publish(started)
            return
        if mode in ("fail", "fail-always") and (mode == "fail-always" or a.attempt <= int(arg)):
            failed = await send(
                a, ProgressStatus.FAILED, error_context={"message": f"scripted failure {a.attempt}"}
            )
            await publish(started + failed)
            return
        seconds = float(arg) if mode == "slow" else 0.0
        seconds += float(a.inputs.parameters.get("sleep", 0) or 0)
        if seconds > 0:
            await publish(started)
            started = []
            if not await work(a, delivery, seconds):
                return
        progress = await send(a, ProgressStatus.IN_PROGRESS, progress=ProgressInfo(completion_percentage=50))
        outputs = {"done": a.task_id, "agent": args.agent, "attempt": a.attempt, **extra_outputs(a)}
        if args.instance:
            outputs["instance"] = args.instance
        done = await send(a, ProgressStatus.COMPLETED, outputs=outputs)
        await publish(started + progress + done)
        log("completed", a.workflow_id, a.task_id, a.attempt)

    parse = TaskAssignment.model_validate_json
    await bus.consume(StreamKind.TASKS, bus.subjects.agent_consumer(args.agent), handle, parse, concurrency=4)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
