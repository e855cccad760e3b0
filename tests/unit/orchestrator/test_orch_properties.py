"""Property tests: whatever order agents answer in, a task never starts before its
dependencies, concurrency limits hold, replay equals live state, every workflow ends, and
duplicated, shuffled progress gives the same final state."""

from __future__ import annotations

import random
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from orch_support import WF, Run, essence, graph, task, update

from taskloom.contracts.enums import ExecutionStrategyType, ProgressStatus, TaskStateName
from taskloom.contracts.graph import ExecutionStrategy, RetryPolicy, TaskGraph
from taskloom.orchestrator.domain import Limits, fold
from taskloom.orchestrator.domain.evolve import empty
from taskloom.orchestrator.domain.scheduling import capacity


@st.composite
def dags(draw: st.DrawFn) -> TaskGraph:
    n = draw(st.integers(1, 9))
    tasks = []
    for i in range(n):
        deps = draw(st.sets(st.integers(0, i - 1), max_size=3)) if i else set()
        tasks.append(
            task(
                f"t{i}",
                [f"t{d}" for d in sorted(deps)],
                priority=draw(st.integers(1, 10)),
                parallel_safe=draw(st.booleans()) or i % 4 != 3,
                retry_policy=RetryPolicy(
                    max_attempts=draw(st.integers(1, 3)), backoff_strategy="exponential_jitter"
                ),
                backup_agents=draw(st.sampled_from([[], ["mcp-protocol"]])),
            )
        )
    kind = draw(st.sampled_from(list(ExecutionStrategyType)))
    return graph(*tasks, execution_strategy=ExecutionStrategy(type=kind))


def check_invariants(r: Run) -> None:
    s = r.state
    active = [t for t in s.order if s.tasks[t].active]
    assert len(active) <= capacity(s, r.limits)
    if any(not s.tasks[t].spec.parallel_safe for t in active):
        assert len(active) == 1
    for t in active:
        for dep in s.tasks[t].spec.dependencies:
            assert s.tasks[dep].state == TaskStateName.COMPLETED, f"{t} started before {dep}"


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(g=dags(), seed=st.integers(0, 10**6), limit=st.integers(1, 4))
def test_random_answer_orders_keep_the_invariants_and_terminate(g: TaskGraph, seed: int, limit: int) -> None:
    rng = random.Random(seed)
    r = Run(g, limits=Limits(max_concurrent_tasks_per_workflow=limit))
    check_invariants(r)
    for _ in range(400):
        if r.state.status.terminal:
            break
        pending = r.outstanding()
        if not pending:
            r.advance_to(r.now + timedelta(seconds=120))
            check_invariants(r)
            continue
        a = rng.choice(pending)
        status = rng.choices(
            [
                ProgressStatus.COMPLETED,
                ProgressStatus.FAILED,
                ProgressStatus.STARTED,
                ProgressStatus.IN_PROGRESS,
            ],
            [6, 2, 1, 1],
        )[0]
        r.now += timedelta(milliseconds=rng.randint(1, 50))
        r.apply(update(a, status, outputs={"v": a.task_id}, retryable=rng.random() < 0.8))
        check_invariants(r)
    assert r.state.status.terminal
    assert fold(empty(WF), r.events) == r.state  # replay equals live
    done = [e.task_id for e in r.events if e.type == "TaskCompleted"]
    assert len(done) == len(set(done))  # no task completes twice


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10**6))
def test_progress_delivered_three_times_shuffled_gives_the_same_state(seed: int) -> None:
    rng = random.Random(seed)
    g = graph(task("A"), task("B", ["A"]), task("C", ["A"]), task("D", ["B", "C"]))

    def run(shuffled: bool) -> Run:
        r = Run(g)
        while not r.state.status.terminal:
            a = sorted(r.outstanding(), key=lambda x: x.task_id)[0]
            msgs = [
                update(a, ProgressStatus.STARTED, message_id=f"{a.message_id}/s"),
                update(a, ProgressStatus.IN_PROGRESS, percentage=50, message_id=f"{a.message_id}/p"),
                update(a, ProgressStatus.COMPLETED, outputs={"v": a.task_id}, message_id=f"{a.message_id}/c"),
            ]
            if shuffled:
                msgs = msgs * 3
                rng.shuffle(msgs)
            for m in msgs:
                r.apply(m)
        return r

    plain, noisy = run(False), run(True)
    assert essence(plain.state) == essence(noisy.state)
    assert noisy.types().count("TaskCompleted") == 4
