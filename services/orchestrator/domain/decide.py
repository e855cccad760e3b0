"""``decide``: given a workflow's state and one input, the events that follow (plus the task
assignments to send and the running tasks to stop). Pure: time comes in as ``now``.

Every decision ends with ``advance``: skip tasks that can no longer run, run quality gates
that are due, close collaborations whose work is done, dispatch ready tasks, and finish the
workflow once nothing is left. Events are folded as they are emitted, so each step sees the
effect of the previous ones.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from taskloom.contracts.catalog import BUILTIN_CATALOG
from taskloom.contracts.enums import CollaborationType, ProgressStatus, TaskStateName, WorkflowStateName
from taskloom.contracts.events import (
    CollaborationCompleted,
    CollaborationRequested,
    ConflictDetected,
    ConflictResolved,
    QualityGateFailed,
    QualityGatePassed,
    StaleUpdateRecorded,
    TaskAdded,
    TaskAssigned,
    TaskCancelled,
    TaskCompleted,
    TaskFailed,
    TaskProgressed,
    TaskReassigned,
    TaskRetryScheduled,
    TaskSkipped,
    TaskStarted,
    TaskTimedOut,
    WorkflowCancelled,
    WorkflowCompleted,
    WorkflowEvent,
    WorkflowFailed,
    WorkflowPaused,
    WorkflowQueued,
    WorkflowRejected,
    WorkflowResumed,
    WorkflowStarted,
)
from taskloom.contracts.graph import QualityGate, RetryPolicy, TaskInputs, TaskSpec
from taskloom.contracts.messages import (
    AgentCollaborationRequest,
    AssignmentContext,
    AssignmentInputs,
    AssignmentSuccessCriteria,
    CancelWorkflow,
    PauseWorkflow,
    ProgressUpdate,
    ResumeWorkflow,
    TaskAssignment,
    TaskDetails,
)
from taskloom.orchestrator.domain.conditions import evaluate
from taskloom.orchestrator.domain.conflicts import detect_conflicts, resolve
from taskloom.orchestrator.domain.evolve import COLLABORATION_REASON, candidate_confidence, evolve
from taskloom.orchestrator.domain.gates import evaluate_gate, gate_tasks
from taskloom.orchestrator.domain.model import (
    Admit,
    Candidate,
    Collaborate,
    CollaborationRecord,
    Control,
    Decision,
    Input,
    Limits,
    RejectGraph,
    StartGraph,
    TaskRun,
    Tick,
    TimerFired,
    Workflow,
)
from taskloom.orchestrator.domain.projection import synthesize_result
from taskloom.orchestrator.domain.retry import backoff_delay
from taskloom.orchestrator.domain.scheduling import blocked_reason, capacity, dispatch_order, ready_tasks

__all__ = ["assignment_for", "assignment_message_id", "decide"]


def assignment_message_id(workflow_id: str, task_id: str, attempt: int) -> str:
    """The id of one numbered dispatch: the outbox row, ``Nats-Msg-Id`` and the message id."""
    return f"{workflow_id}:{task_id}:{attempt}"


def assignment_for(state: Workflow, task_id: str) -> TaskAssignment:
    """The ``task_assignment`` message of the task's current attempt."""
    run = state.tasks[task_id]
    spec = run.spec
    upstream = [
        {
            "task_id": dep,
            "task_type": state.tasks[dep].spec.task_type,
            "agent": state.tasks[dep].agent,
            "state": state.tasks[dep].state.value,
            "outputs": state.tasks[dep].outputs,
        }
        for dep in spec.dependencies
        if dep in state.tasks
    ]
    request = state.request
    return TaskAssignment(
        message_id=assignment_message_id(state.workflow_id, task_id, run.attempt),
        timestamp=run.assigned_at or datetime.min,
        workflow_id=state.workflow_id,
        task_id=task_id,
        assigned_agent=run.agent,
        task_details=TaskDetails(
            task_type=spec.task_type,
            priority=spec.priority,
            estimated_duration=spec.estimated_duration,
            timeout=spec.timeout,
            retry_policy=spec.retry_policy,
        ),
        context=AssignmentContext(
            global_context=request.context.model_dump(mode="json") if request else {},
            task_context={
                "name": spec.name,
                "description": spec.description,
                "requirements": request.requirements.model_dump(mode="json") if request else {},
                "graph_id": state.graph.graph_id if state.graph else None,
            },
            agent_context={"attempt": run.attempt, "capabilities": spec.required_capabilities},
        ),
        inputs=AssignmentInputs(
            parameters=spec.inputs.input_parameters,
            dependencies=upstream,
            resources=spec.inputs.resource_requirements,
        ),
        success_criteria=AssignmentSuccessCriteria(
            acceptance_tests=spec.validation_criteria.acceptance_tests,
            quality_metrics=spec.outputs.quality_metrics,
            output_requirements={
                "expected_artifacts": spec.outputs.expected_artifacts,
                "success_criteria": spec.outputs.success_criteria,
            },
        ),
        attempt=run.attempt,
        required_context=spec.inputs.required_context,
        deadline=run.deadline,
    )


class _Builder:
    def __init__(self, state: Workflow, now: datetime, limits: Limits) -> None:
        self.state = state
        self.now = now
        self.limits = limits
        self.events: list[WorkflowEvent] = []
        self.assigned: list[str] = []
        self.signals: list[str] = []
        self.signal_attempts: dict[str, int] = {}

    # --- emitting -------------------------------------------------------------------------
    def emit(self, event: WorkflowEvent) -> None:
        self.state = evolve(self.state, event)
        self.events.append(event)

    def base(self) -> dict[str, Any]:
        return {"workflow_id": self.state.workflow_id, "occurred_at": self.now}

    def decision(self) -> Decision:
        assignments = [assignment_for(self.state, t) for t in self.assigned if self._still_assigned(t)]
        return Decision(
            self.state,
            self.events,
            assignments,
            list(dict.fromkeys(self.signals)),
            dict(self.signal_attempts),
        )

    def _still_assigned(self, task_id: str) -> bool:
        return self.state.tasks[task_id].active

    # --- inputs ---------------------------------------------------------------------------
    def start_graph(self, cmd: StartGraph) -> None:
        if self.state.graph is not None or self.state.terminal:
            return
        owner = cmd.owner or self.state.owner
        if cmd.admitted:
            self.emit(WorkflowStarted(**self.base(), graph=cmd.graph, owner=owner))
        else:
            self.emit(WorkflowQueued(**self.base(), graph=cmd.graph, owner=owner))

    def reject(self, cmd: RejectGraph) -> None:
        if self.state.graph is not None or self.state.terminal:
            return
        self.emit(
            WorkflowRejected(
                **self.base(), reason=cmd.reason, missing_capabilities=list(cmd.missing_capabilities)
            )
        )

    def admit(self) -> None:
        s = self.state
        if s.queued and s.graph is not None and s.status == WorkflowStateName.PENDING:
            self.emit(WorkflowStarted(**self.base(), graph=s.graph, owner=s.owner))

    def control(self, command: CancelWorkflow | PauseWorkflow | ResumeWorkflow) -> None:
        status = self.state.status
        match command:
            case CancelWorkflow():
                if not status.terminal:
                    self.stop_tasks()
                    self.emit(
                        WorkflowCancelled(
                            **self.base(), requested_by=command.requested_by, reason=command.reason
                        )
                    )
            case PauseWorkflow():
                if status == WorkflowStateName.RUNNING:
                    self.emit(
                        WorkflowPaused(
                            **self.base(), requested_by=command.requested_by, reason=command.reason
                        )
                    )
            case ResumeWorkflow():
                if status == WorkflowStateName.PAUSED:
                    self.emit(WorkflowResumed(**self.base(), requested_by=command.requested_by))

    def stop_tasks(self) -> None:
        for task_id in self.state.order:
            run = self.state.tasks[task_id]
            if run.terminal:
                continue
            if run.active:
                self.signals.append(task_id)
                self.signal_attempts[task_id] = run.attempt
            self.emit(TaskCancelled(**self.base(), task_id=task_id, attempt=run.attempt))

    def progress(self, u: ProgressUpdate) -> None:
        run = self.state.tasks.get(u.task_id)
        if run is None or u.message_id in run.recent_messages or self.state.terminal:
            return
        if u.attempt != run.attempt or not run.active:
            self.emit(
                StaleUpdateRecorded(
                    **self.base(),
                    task_id=u.task_id,
                    attempt=u.attempt,
                    current_attempt=run.attempt,
                    status=u.status.value,
                    agent=u.agent_id,
                    message_id=u.message_id,
                )
            )
            return
        common: dict[str, Any] = {"task_id": u.task_id, "attempt": u.attempt, "message_id": u.message_id}
        match u.status:
            case ProgressStatus.STARTED:
                self.emit(TaskStarted(**self.base(), **common, agent=u.agent_id, instance_id=u.instance_id))
            case ProgressStatus.IN_PROGRESS | ProgressStatus.BLOCKED:
                phase = u.progress.current_phase or ("blocked" if u.status == ProgressStatus.BLOCKED else "")
                self.emit(
                    TaskProgressed(
                        **self.base(),
                        **common,
                        completion_percentage=u.progress.completion_percentage,
                        current_phase=phase,
                        completed_milestones=u.progress.completed_milestones,
                    )
                )
            case ProgressStatus.COMPLETED:
                metrics = u.performance_metrics.model_dump(mode="json")
                outputs = u.outputs if u.outputs is not None else dict(u.intermediate_results or {})
                self.emit(
                    TaskCompleted(
                        **self.base(),
                        **common,
                        agent=u.agent_id,
                        outputs=outputs,
                        performance_metrics=metrics,
                    )
                )
                self.reconcile_outputs(u.task_id)
            case ProgressStatus.FAILED:
                error = dict(u.error_context or {})
                if u.issues:
                    error.setdefault("issues", [i.model_dump(mode="json") for i in u.issues])
                error.setdefault(
                    "message", u.issues[0].description if u.issues else "the agent reported a failure"
                )
                self.fail_attempt(
                    u.task_id, error=error, retryable=u.retryable, agent=u.agent_id, message_id=u.message_id
                )
        for request in u.collaboration_requests or []:
            self.collaborate(request.model_copy(update={"task_id": request.task_id or u.task_id}))

    def timer(self, fired: TimerFired) -> None:
        if self.state.terminal:
            return
        if fired.kind == "workflow_timeout":
            started = self.state.started_at
            if started and self.now >= started + timedelta(seconds=self.limits.workflow_timeout_seconds):
                self.fail_workflow("workflow timed out")
            return
        task_id = str(fired.payload.get("task_id", ""))
        run = self.state.tasks.get(task_id)
        if run is None or not run.active or fired.payload.get("attempt") != run.attempt:
            return
        if fired.kind == "deadline" and run.deadline is not None and self.now >= run.deadline:
            if run.state == TaskStateName.ASSIGNED:
                self.time_out(run, "not_started")
            else:
                self.time_out(run, "deadline")
        elif fired.kind == "heartbeat" and run.state == TaskStateName.RUNNING:
            due = heartbeat_due(run, self.limits)
            if due is not None and self.now >= due:
                self.time_out(run, "heartbeat")

    # --- failures -------------------------------------------------------------------------
    def time_out(self, run: TaskRun, reason: str) -> None:
        task_id = run.spec.task_id
        self.signals.append(task_id)
        self.signal_attempts[task_id] = run.attempt
        self.emit(TaskTimedOut(**self.base(), task_id=task_id, attempt=run.attempt, reason=reason))  # type: ignore[arg-type]
        if reason == "not_started" and run.reissues < self.limits.reissue_limit:
            return  # the assignment is sent again by the dispatch pass, as a new attempt
        self.after_failure(run, retryable=True, error={"reason": f"timeout: {reason}"})

    def fail_attempt(
        self, task_id: str, *, error: dict[str, Any], retryable: bool, agent: str, message_id: str | None
    ) -> None:
        run = self.state.tasks[task_id]
        final = self.next_step(run, retryable) is None
        self.emit(
            TaskFailed(
                **self.base(),
                task_id=task_id,
                agent=agent,
                attempt=run.attempt,
                error=error,
                retryable=retryable,
                final=final,
                message_id=message_id,
            )
        )
        if not final:
            self.after_failure(self.state.tasks[task_id], retryable=retryable, error=error)

    def next_step(self, run: TaskRun, retryable: bool) -> str | None:
        """'retry' (same agent), 'escalate' (next agent) or None (no way left)."""
        if retryable and run.agent_attempts < run.spec.retry_policy.max_attempts:
            return "retry"
        chain = run.agent_chain()
        position = chain.index(run.agent) if run.agent in chain else len(chain) - 1
        return "escalate" if position + 1 < len(chain) else None

    def after_failure(self, run: TaskRun, *, retryable: bool, error: dict[str, Any]) -> None:
        task_id = run.spec.task_id
        match self.next_step(run, retryable):
            case "retry":
                self.schedule_retry(run)
            case "escalate":
                self.escalate(run)
            case _:
                if self.state.tasks[task_id].state != TaskStateName.FAILED:
                    self.emit(
                        TaskFailed(
                            **self.base(),
                            task_id=task_id,
                            agent=run.agent,
                            attempt=run.attempt,
                            error=error,
                            retryable=False,
                            final=True,
                        )
                    )

    def schedule_retry(self, run: TaskRun) -> None:
        policy = run.spec.retry_policy
        delay = backoff_delay(policy, run.agent_attempts, run.spec.task_id, run.attempt + 1)
        self.emit(
            TaskRetryScheduled(
                **self.base(),
                task_id=run.spec.task_id,
                next_attempt=run.attempt + 1,
                agent=run.agent,
                delay_seconds=delay,
                due_at=self.now + timedelta(seconds=delay),
            )
        )

    def escalate(self, run: TaskRun) -> None:
        chain = run.agent_chain()
        position = chain.index(run.agent) if run.agent in chain else len(chain) - 1
        self.emit(
            TaskReassigned(
                **self.base(),
                task_id=run.spec.task_id,
                from_agent=run.agent,
                to_agent=chain[position + 1],
                next_attempt=run.attempt + 1,
            )
        )

    def fail_workflow(self, reason: str) -> None:
        self.stop_tasks()
        self.emit(WorkflowFailed(**self.base(), reason=reason, result=synthesize_result(self.state)))

    # --- outputs, conflicts, collaboration ------------------------------------------------
    def reconcile_outputs(self, task_id: str) -> None:
        """A task completed again (a gate re-ran it): reconcile its outputs with the earlier ones."""
        run = self.state.tasks[task_id]
        if len(run.candidates) < 2:
            return
        self.resolve_into(task_id, list(run.candidates), base={})

    def resolve_into(
        self, task_id: str, candidates: list[Candidate], base: dict[str, Any], under: str | None = None
    ) -> dict[str, Any]:
        conflicts = detect_conflicts(candidates)
        if conflicts:
            self.emit(ConflictDetected(**self.base(), task_id=task_id, conflicts=conflicts))
        resolution = resolve(candidates, conflicts)
        if conflicts or under is not None or len(candidates) > 1:
            output = {**base, under: resolution.output} if under else {**base, **resolution.output}
            self.emit(
                ConflictResolved(
                    **self.base(),
                    task_id=task_id,
                    strategy=resolution.strategy,
                    resolved_output=output,
                    rationale=resolution.rationale,
                )
            )
        return resolution.output

    def collaborate(self, request: AgentCollaborationRequest) -> None:
        cid = request.collaboration_id
        if cid in self.state.collaborations or self.state.terminal:
            return
        self.emit(CollaborationRequested(**self.base(), request=request))
        origin = self.state.tasks.get(request.task_id or "")
        match request.collaboration_type:
            case CollaborationType.CONSULTATION:
                self.emit(
                    CollaborationCompleted(
                        **self.base(),
                        collaboration_id=cid,
                        collaboration_type=request.collaboration_type,
                        outcome={"channel": "direct request/reply between agents"},
                    )
                )
            case CollaborationType.REVIEW:
                for i, target in enumerate(request.target_agents):
                    task_type = _review_type(target, origin, request.context)
                    self.add_task(request, origin, f"review.{cid[:8]}.{i}", target, task_type)
            case CollaborationType.HANDOFF:
                target = request.target_agents[0]
                task_type = str(
                    request.context.get("task_type") or (origin.spec.task_type if origin else "handoff")
                )
                self.add_task(request, origin, f"handoff.{cid[:8]}", target, task_type)
            case CollaborationType.MERGE:
                pass  # resolved in ``close_collaborations`` once every named task has finished

    def add_task(
        self,
        request: AgentCollaborationRequest,
        origin: TaskRun | None,
        suffix: str,
        agent: str,
        task_type: str,
    ) -> None:
        parent = origin.spec if origin else None
        base_id = parent.task_id if parent else "collaboration"
        parameters = {k: v for k, v in request.context.items() if k != "task_type"}
        parameters["collaboration_of"] = base_id
        spec = TaskSpec(
            task_id=f"{base_id}.{suffix}",
            task_type=task_type,
            assigned_agent=agent,
            priority=parent.priority if parent else 5,
            dependencies=[parent.task_id] if parent else [],
            inputs=TaskInputs(input_parameters=parameters),
            timeout=parent.timeout if parent else 1800,
            retry_policy=parent.retry_policy if parent else RetryPolicy(),
            heartbeat_timeout=parent.heartbeat_timeout if parent else None,
            name=f"{request.collaboration_type.value} of {base_id}",
            description=f"{request.collaboration_type.value} requested by {request.requesting_agent}",
        )
        reason = f"{COLLABORATION_REASON}{request.collaboration_id}"
        self.emit(TaskAdded(**self.base(), task=spec, reason=reason))

    def close_collaborations(self) -> bool:
        changed = False
        for cid, record in list(self.state.collaborations.items()):
            if record.completed:
                continue
            outcome = self.try_close(record)
            if outcome is None:
                continue
            self.emit(
                CollaborationCompleted(
                    **self.base(),
                    collaboration_id=cid,
                    collaboration_type=record.request.collaboration_type,
                    outcome=outcome,
                )
            )
            changed = True
        return changed

    def try_close(self, record: CollaborationRecord) -> dict[str, Any] | None:
        request = record.request
        tasks = self.state.tasks
        origin_id = request.task_id or ""
        if request.collaboration_type == CollaborationType.MERGE:
            names = [str(t) for t in request.context.get("task_ids", []) if str(t) in tasks]
            involved = list(dict.fromkeys([origin_id, *names])) if origin_id in tasks else names
            if any(not tasks[t].terminal for t in involved):
                return None
            candidates = [self.candidate_of(t) for t in involved if tasks[t].state == TaskStateName.COMPLETED]
            if origin_id not in tasks or not candidates:
                return {"merged": False, "reason": "nothing to merge"}
            merged = self.resolve_into(origin_id, candidates, base=dict(tasks[origin_id].outputs))
            return {"merged": True, "sources": [c.source for c in candidates], "keys": sorted(merged)}
        if any(not tasks[t].terminal for t in record.added_tasks):
            return None
        states = {t: tasks[t].state.value for t in record.added_tasks}
        if request.collaboration_type == CollaborationType.REVIEW and origin_id in tasks:
            reviews = [
                self.candidate_of(t) for t in record.added_tasks if tasks[t].state == TaskStateName.COMPLETED
            ]
            if reviews:
                review = self.resolve_into(
                    origin_id, reviews, base=dict(tasks[origin_id].outputs), under="review"
                )
                return {"tasks": states, "review": review}
        return {"tasks": states}

    def candidate_of(self, task_id: str) -> Candidate:
        run = self.state.tasks[task_id]
        return Candidate(
            source=f"{task_id}@{run.agent}",
            outputs=run.outputs,
            confidence=candidate_confidence(run, run.outputs, run.performance_metrics),
            priority=run.spec.priority,
        )

    # --- the scheduling pass --------------------------------------------------------------
    def advance(self) -> None:
        for _ in range(4 * len(self.state.tasks) + 16):
            if self.state.status != WorkflowStateName.RUNNING:
                return
            changed = self.skip_unreachable()
            changed |= self.run_gates()
            changed |= self.close_collaborations()
            if self.state.status != WorkflowStateName.RUNNING:
                return
            changed |= self.dispatch()
            if self.finish() or not changed:
                return

    def skip_unreachable(self) -> bool:
        changed = False
        for task_id in self.state.order:
            run = self.state.tasks[task_id]
            if run.state != TaskStateName.PENDING:
                continue
            reason = blocked_reason(self.state, run)
            if reason is not None:
                self.emit(TaskSkipped(**self.base(), task_id=task_id, reason=reason))
                changed = True
        for task_id in ready_tasks(self.state, self.now):
            condition = self.state.tasks[task_id].spec.condition
            if condition is not None and not evaluate(condition, self.state.tasks):
                self.emit(TaskSkipped(**self.base(), task_id=task_id, reason="condition false"))
                changed = True
        return changed

    def gate_due(self, gate: QualityGate) -> bool:
        record = self.state.gates.get(gate.gate_id)
        if record is None or record.passed is not None:
            return False
        scoped = gate_tasks(self.state, gate)
        if any(not self.state.tasks[t].terminal for t in scoped):
            return False
        if gate.trigger_condition == "workflow_end" or not gate.validation_tasks:
            return all(r.terminal for r in self.state.tasks.values())
        return True

    def run_gates(self) -> bool:
        graph = self.state.graph
        if graph is None:
            return False
        changed = False
        for gate in graph.quality_gates:
            if self.state.status != WorkflowStateName.RUNNING or not self.gate_due(gate):
                continue
            changed = True
            result = evaluate_gate(self.state, gate)
            if result.success:
                self.emit(QualityGatePassed(**self.base(), gate_id=gate.gate_id, result=result))
                continue
            failing = list(
                dict.fromkeys(
                    str(i.get("task_id")) for i in result.issues if i.get("task_id") in self.state.tasks
                )
            )
            action = self.gate_action(gate, failing)
            self.emit(QualityGateFailed(**self.base(), gate_id=gate.gate_id, result=result, action=action))
            for task_id in failing if action in ("retry", "escalate") else []:
                run = self.state.tasks[task_id]
                self.schedule_retry(run) if action == "retry" else self.escalate(run)
            if action == "fail_workflow":
                self.fail_workflow(f"quality gate {gate.gate_id} failed ({result.checks_failed} checks)")
        return changed

    def gate_action(self, gate: QualityGate, failing: list[str]) -> str:
        runs = [self.state.tasks[t] for t in failing]
        rerunnable = bool(runs) and all(r.state == TaskStateName.COMPLETED for r in runs)
        for action in gate.failure_actions:
            if action == "retry" and rerunnable and all(self.next_step(r, True) == "retry" for r in runs):
                return action
            if (
                action == "escalate"
                and rerunnable
                and all(self.next_step(r, False) == "escalate" for r in runs)
            ):
                return action
            if action in ("fail_workflow", "continue"):
                return action
        return "notify" if "notify" in gate.failure_actions else "continue"

    def dispatch(self) -> bool:
        if self.state.status != WorkflowStateName.RUNNING:
            return False
        active = [t for t in self.state.order if self.state.tasks[t].active]
        if any(not self.state.tasks[t].spec.parallel_safe for t in active):
            return False
        free = capacity(self.state, self.limits) - len(active)
        changed = False
        for task_id in dispatch_order(self.state, ready_tasks(self.state, self.now)):
            if free <= 0:
                break
            run = self.state.tasks[task_id]
            if not run.spec.parallel_safe and (active or changed):
                break  # it runs alone: wait for the running ones, start nothing past it
            self.assign(run)
            changed = True
            free -= 1
            if not run.spec.parallel_safe:
                break
        return changed

    def assign(self, run: TaskRun) -> None:
        attempt = run.attempt + 1
        task_id = run.spec.task_id
        self.emit(
            TaskAssigned(
                **self.base(),
                task_id=task_id,
                agent=run.agent,
                attempt=attempt,
                message_id=assignment_message_id(self.state.workflow_id, task_id, attempt),
                deadline=self.now + timedelta(seconds=run.spec.timeout),
            )
        )
        self.assigned.append(task_id)

    def finish(self) -> bool:
        s = self.state
        if s.status != WorkflowStateName.RUNNING or not s.tasks:
            return False
        if any(not r.terminal for r in s.tasks.values()):
            return False
        if any(r.passed is None for r in s.gates.values()):
            return False
        if any(not r.completed for r in s.collaborations.values()):
            return False
        result = synthesize_result(s)
        threshold = s.graph.success_criteria.completion_percentage if s.graph else 100
        if result.completion_percentage >= threshold and not result.failed_tasks:
            self.emit(WorkflowCompleted(**self.base(), result=result))
        else:
            reason = (
                f"{len(result.failed_tasks)} task(s) failed: {', '.join(result.failed_tasks)}"
                if result.failed_tasks
                else f"completion {result.completion_percentage:g}% is below {threshold}%"
            )
            self.emit(WorkflowFailed(**self.base(), reason=reason, result=result))
        return True


def heartbeat_due(run: TaskRun, limits: Limits) -> datetime | None:
    if run.last_seen is None:
        return None
    timeout = run.spec.heartbeat_timeout or limits.heartbeat_timeout_seconds
    return run.last_seen + timedelta(seconds=timeout)


def _review_type(target: str, origin: TaskRun | None, context: dict[str, Any]) -> str:
    given = context.get("task_type")
    if isinstance(given, str) and given:
        return given
    profile = BUILTIN_CATALOG.get(target)
    if profile is not None:
        reviews = [t for t in profile.task_types if "review" in t]
        if reviews:
            return reviews[0]
    return origin.spec.task_type if origin else "review"


def decide(state: Workflow, command: Input, now: datetime, limits: Limits | None = None) -> Decision:
    """The events that follow from ``command`` in ``state`` at time ``now``."""
    b = _Builder(state, now, limits or Limits())
    match command:
        case StartGraph():
            b.start_graph(command)
        case RejectGraph():
            b.reject(command)
        case Admit():
            b.admit()
        case Control():
            b.control(command.command)
        case Collaborate():
            b.collaborate(command.request)
        case ProgressUpdate():
            b.progress(command)
        case TimerFired():
            b.timer(command)
        case Tick():
            pass
    b.advance()
    return b.decision()
