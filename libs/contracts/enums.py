"""Enumerations of the seed, with Taskloom's additions marked as such."""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "AgentId",
    "BackoffStrategy",
    "CollaborationType",
    "ConflictType",
    "ExecutionPreference",
    "ExecutionStrategyType",
    "IssueType",
    "Priority",
    "ProgressStatus",
    "RequestType",
    "ResolutionStrategy",
    "Role",
    "TaskStateName",
    "Urgency",
    "ValidationLevel",
    "WebSocketEventType",
    "WorkflowStateName",
    "BUILTIN_AGENTS",
]


class RequestType(StrEnum):
    FEATURE_DEVELOPMENT = "feature_development"
    DOCUMENTATION_UPDATE = "documentation_update"
    SYSTEM_ANALYSIS = "system_analysis"
    RELEASE_MANAGEMENT = "release_management"
    BUG_INVESTIGATION = "bug_investigation"


class Priority(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    URGENT = "urgent"

    @property
    def weight(self) -> int:
        """The request priority on the task graph's 1–10 scale."""
        return {"low": 3, "medium": 5, "high": 7, "urgent": 9}[self.value]


class ExecutionPreference(StrEnum):
    """The seed's ``preferences.execution_strategy``: how much work to spend."""

    FAST = "fast"
    THOROUGH = "thorough"
    BALANCED = "balanced"


class ExecutionStrategyType(StrEnum):
    """The task graph's ``execution_strategy.type``: how tasks may overlap."""

    SEQUENTIAL = "sequential"
    PARALLEL = "parallel"
    MIXED = "mixed"


class BackoffStrategy(StrEnum):
    FIXED = "fixed"
    EXPONENTIAL = "exponential"
    EXPONENTIAL_JITTER = "exponential_jitter"


class WorkflowStateName(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"  # Taskloom: a cancel command is not a failure

    @property
    def terminal(self) -> bool:
        return self in (WorkflowStateName.COMPLETED, WorkflowStateName.FAILED, WorkflowStateName.CANCELLED)


class TaskStateName(StrEnum):
    PENDING = "pending"
    ASSIGNED = "assigned"
    RUNNING = "running"
    VALIDATING = "validating"
    COMPLETED = "completed"
    FAILED = "failed"
    SKIPPED = "skipped"  # Taskloom: its condition was false, or an upstream task was skipped
    CANCELLED = "cancelled"  # Taskloom: its workflow was cancelled

    @property
    def terminal(self) -> bool:
        return self in (
            TaskStateName.COMPLETED,
            TaskStateName.FAILED,
            TaskStateName.SKIPPED,
            TaskStateName.CANCELLED,
        )


class ProgressStatus(StrEnum):
    STARTED = "started"
    IN_PROGRESS = "in_progress"
    BLOCKED = "blocked"
    COMPLETED = "completed"
    FAILED = "failed"


class IssueType(StrEnum):
    WARNING = "warning"
    ERROR = "error"
    BLOCKER = "blocker"


class ValidationLevel(StrEnum):
    INPUT = "input"
    PROCESS = "process"
    OUTPUT = "output"
    INTEGRATION = "integration"


class WebSocketEventType(StrEnum):
    STATUS_CHANGE = "status_change"
    TASK_COMPLETED = "task_completed"
    AGENT_COMMUNICATION = "agent_communication"
    ERROR = "error"
    COMPLETION = "completion"


class CollaborationType(StrEnum):
    CONSULTATION = "consultation"
    REVIEW = "review"
    HANDOFF = "handoff"
    MERGE = "merge"


class Urgency(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    CRITICAL = "critical"


class ConflictType(StrEnum):
    CONTRADICTION = "contradiction"
    INCOMPATIBLE_RECOMMENDATION = "incompatible_recommendation"
    QUALITY_DISAGREEMENT = "quality_disagreement"


class ResolutionStrategy(StrEnum):
    MERGE_COMPATIBLE = "merge_compatible"
    HIGHEST_CONFIDENCE = "highest_confidence"
    PRIORITY_WEIGHTED = "priority_weighted"
    MAJORITY = "majority"


class Role(StrEnum):
    VIEWER = "viewer"
    USER = "user"
    DEVELOPER = "developer"
    ADMIN = "admin"
    PRIVILEGED_USER = "privileged_user"


class AgentId(StrEnum):
    """The eight built-in specialists (third-party agents use any other id)."""

    CORE_SERVICES = "core-services"
    MCP_PROTOCOL = "mcp-protocol"
    DOCS_INTEGRATION = "docs-integration"
    TESTING_SPECIALIST = "testing-specialist"
    PRODUCT_MANAGER = "product-manager"
    PRODUCTION_OPS = "production-ops"
    TECHNICAL_WRITER = "technical-writer"
    AGENT_DESIGN_ARCHITECT = "agent-design-architect"


BUILTIN_AGENTS: tuple[str, ...] = tuple(a.value for a in AgentId)
