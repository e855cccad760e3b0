"""A test agent run as a real process: pulls ``task_assignment`` messages for one agent id from
the bus and answers as its arguments say. Not a specialist — it exercises the engine.

    python scripted_agent.py --nats URL --namespace NS --agent core-services --mode complete
    modes: complete | fail:N (fail attempts <= N, then complete) | fail-always | silent
           (starts, then never reports) | slow:S (reports every 0.2 s for S seconds, then completes)
    --dup3: send every progress update three times, shuffled
"""

from __future__ import annotations

import argparse
import asyncio
import random

from taskloom.bus import Bus, Delivery, StreamKind
from taskloom.contracts.enums import ProgressStatus
from taskloom.contracts.messages import ProgressInfo, ProgressUpdate, TaskAssignment


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--nats", required=True)
    p.add_argument("--namespace", required=True)
    p.add_argument("--agent", required=True)
    p.add_argument("--mode", default="complete")
    p.add_argument("--dup3", action="store_true")
    args = p.parse_args()
    bus = await Bus.connect(name=f"test-agent-{args.agent}", url=args.nats, namespace=args.namespace)
    await bus.ensure_streams()
    await bus.ensure_agent_consumer(args.agent, ack_wait=30, max_deliver=None)
    mode, _, arg = args.mode.partition(":")

    async def send(a: TaskAssignment, status: ProgressStatus, **kw: object) -> list[ProgressUpdate]:
        return [
            ProgressUpdate(
                workflow_id=a.workflow_id,
                task_id=a.task_id,
                agent_id=args.agent,
                attempt=a.attempt,
                status=status,
                **kw,  # type: ignore[arg-type]
            )
        ]

    async def publish(updates: list[ProgressUpdate]) -> None:
        if args.dup3:
            updates = updates * 3
            random.shuffle(updates)
        for u in updates:
            await bus.publish(bus.subjects.progress(args.agent, u.workflow_id, u.task_id), u)

    async def handle(a: TaskAssignment, delivery: Delivery) -> None:
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
        if mode == "slow":
            await publish(started)
            loop = asyncio.get_running_loop()
            end = loop.time() + float(arg)
            pct = 0.0
            while loop.time() < end:
                await asyncio.sleep(0.2)
                pct = min(99.0, pct + 5)
                await publish(
                    await send(
                        a, ProgressStatus.IN_PROGRESS, progress=ProgressInfo(completion_percentage=pct)
                    )
                )
                await delivery.in_progress()
            started = []
        progress = await send(a, ProgressStatus.IN_PROGRESS, progress=ProgressInfo(completion_percentage=50))
        done = await send(
            a,
            ProgressStatus.COMPLETED,
            outputs={"done": a.task_id, "agent": args.agent, "attempt": a.attempt},
        )
        await publish(started + progress + done)

    parse = TaskAssignment.model_validate_json
    await bus.consume(StreamKind.TASKS, bus.subjects.agent_consumer(args.agent), handle, parse, concurrency=4)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
