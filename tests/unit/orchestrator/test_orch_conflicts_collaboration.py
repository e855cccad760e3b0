"""Conflict detection and resolution strategies; collaboration requests (review, merge,
handoff, consultation); the read-model projection."""

from __future__ import annotations

from orch_support import WF, Run, feature_graph, graph, task, update

from taskloom.contracts.enums import (
    CollaborationType,
    ConflictType,
    ProgressStatus,
    ResolutionStrategy,
    TaskStateName,
    WorkflowStateName,
)
from taskloom.contracts.messages import AgentCollaborationRequest
from taskloom.orchestrator.domain import Candidate, Collaborate, detect_conflicts, resolve, to_state


def c(source: str, confidence: float = 0.5, priority: int = 5, **outputs: object) -> Candidate:
    return Candidate(source=source, outputs=outputs, confidence=confidence, priority=priority)


def test_compatible_outputs_merge_without_conflict() -> None:
    cands = [c("a", x=1, recommendations=["cache"]), c("b", y=2, x=1, recommendations=["index", "cache"])]
    assert detect_conflicts(cands) == []
    r = resolve(cands, [])
    assert r.strategy == ResolutionStrategy.MERGE_COMPATIBLE
    assert r.output == {"x": 1, "recommendations": ["cache", "index"], "y": 2}


def test_contradiction_goes_to_the_most_confident_source() -> None:
    cands = [c("a", 0.9, verdict="safe"), c("b", 0.4, verdict="unsafe")]
    conflicts = detect_conflicts(cands)
    assert [(x.conflict_type, x.key) for x in conflicts] == [(ConflictType.CONTRADICTION, "verdict")]
    r = resolve(cands, conflicts)
    assert r.strategy == ResolutionStrategy.HIGHEST_CONFIDENCE and r.output["verdict"] == "safe"


def test_contradiction_among_three_goes_to_the_majority() -> None:
    cands = [c("a", 0.99, v=1), c("b", 0.1, v=2), c("c", 0.1, v=2)]
    r = resolve(cands, detect_conflicts(cands))
    assert r.strategy == ResolutionStrategy.MAJORITY and r.output["v"] == 2


def test_incompatible_recommendations_are_priority_weighted() -> None:
    cands = [
        c("a", 0.9, priority=2, recommendation="rewrite"),
        c("b", 0.6, priority=8, recommendation="patch"),
    ]
    conflicts = detect_conflicts(cands)
    assert conflicts[0].conflict_type == ConflictType.INCOMPATIBLE_RECOMMENDATION
    r = resolve(cands, conflicts)
    assert r.strategy == ResolutionStrategy.PRIORITY_WEIGHTED and r.output["recommendation"] == "patch"


def test_quality_disagreement_beyond_tolerance() -> None:
    close = [c("a", quality_score=0.80), c("b", quality_score=0.85)]
    assert detect_conflicts(close) == []
    far = [c("a", 0.3, quality_score=0.9), c("b", 0.8, quality_score=0.4)]
    conflicts = detect_conflicts(far)
    assert conflicts[0].conflict_type == ConflictType.QUALITY_DISAGREEMENT
    assert resolve(far, conflicts).output["quality_score"] == 0.4


def collab(kind: CollaborationType, targets: list[str], **context: object) -> AgentCollaborationRequest:
    return AgentCollaborationRequest(
        requesting_agent="core-services",
        target_agents=targets,
        collaboration_type=kind,
        context=dict(context),
        workflow_id=WF,
        task_id="A",
    )


def test_review_adds_review_tasks_and_reconciles_the_reviews() -> None:
    r = Run(graph(task("A"), task("B", ["A"])))
    request = collab(CollaborationType.REVIEW, ["testing-specialist", "docs-integration"])
    progress = update(r.current("A"), ProgressStatus.COMPLETED, outputs={"code": "x"})
    d = r.apply(progress.model_copy(update={"collaboration_requests": [request]}))
    added = [e.task for e in d.events if e.type == "TaskAdded"]
    assert [t.assigned_agent for t in added] == ["testing-specialist", "docs-integration"]
    assert added[1].task_type == "documentation_review" and added[0].dependencies == ["A"]
    assert sorted(a.task_id for a in d.assignments) == sorted(t.task_id for t in added)
    assert "B" not in [a.task_id for a in r.sent]  # B waits for the review
    r.complete(added[0].task_id, outputs={"approved": True, "confidence": 0.9})
    d = r.complete(added[1].task_id, outputs={"approved": False, "confidence": 0.6})
    types = [e.type for e in d.events]
    assert "ConflictDetected" in types and "CollaborationCompleted" in types
    assert r.state.tasks["A"].outputs == {"code": "x", "review": {"approved": True, "confidence": 0.9}}
    assert [a.task_id for a in d.assignments] == ["B"]
    r.complete("B")
    assert r.status == WorkflowStateName.COMPLETED


def test_merge_resolves_the_named_tasks_outputs_into_the_requester() -> None:
    r = Run(graph(task("A"), task("X"), task("Y"), task("Z", ["A"])))
    r.apply(Collaborate(collab(CollaborationType.MERGE, ["orchestrator"], task_ids=["X", "Y"])))
    r.complete("X", outputs={"choice": "redis", "confidence": 0.9})
    r.complete("Y", outputs={"choice": "memcached", "confidence": 0.7})
    d = r.complete("A", outputs={"plan": "p"})
    resolved = next(e for e in d.events if e.type == "ConflictResolved")
    assert resolved.strategy == ResolutionStrategy.HIGHEST_CONFIDENCE
    assert r.state.tasks["A"].outputs["choice"] == "redis" and r.state.tasks["A"].outputs["plan"] == "p"
    assert [a.task_id for a in d.assignments] == ["Z"]


def test_handoff_and_consultation() -> None:
    r = Run(graph(task("A")))
    d = r.apply(Collaborate(collab(CollaborationType.CONSULTATION, ["mcp-protocol"], question="?")))
    assert [e.type for e in d.events] == ["CollaborationRequested", "CollaborationCompleted"]
    d = r.apply(Collaborate(collab(CollaborationType.HANDOFF, ["technical-writer"], task_type="changelog")))
    added = next(e.task for e in d.events if e.type == "TaskAdded")
    assert added.assigned_agent == "technical-writer" and added.task_type == "changelog"
    r.complete("A")
    r.complete(added.task_id)
    assert r.status == WorkflowStateName.COMPLETED
    same = r.apply(Collaborate(collab(CollaborationType.CONSULTATION, ["x"])))
    assert same.events == []


def test_projection_follows_the_seed_schema() -> None:
    r = Run(feature_graph())
    r.complete("A", metrics={"execution_time": 0.5})
    s = to_state(r.state)
    assert s.workflow_id == WF and s.current_state == WorkflowStateName.RUNNING
    assert s.progress.total_tasks == 8 and s.progress.completed_tasks == 1
    assert s.progress.completion_percentage == 12.5
    a = next(t for t in s.task_states if t.task_id == "A")
    assert (
        a.state == TaskStateName.COMPLETED
        and a.attempts == 1
        and a.performance_metrics["execution_time"] == 0.5
    )
    assert s.active_agents == ["core-services"] and s.version == r.state.version
    r.drive()
    s = to_state(r.state)
    assert s.current_state == WorkflowStateName.COMPLETED and s.progress.completion_percentage == 100
