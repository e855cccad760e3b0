"""Why a request cannot become a task graph: one typed hierarchy, so the service can turn each
into a ``GraphRejected`` with its reason and the CLI into a clear message."""

from __future__ import annotations

__all__ = [
    "ConstructionError",
    "DependencyCycle",
    "InvalidGraph",
    "InvalidRequest",
    "MissingCapability",
    "UnknownTemplate",
]


class ConstructionError(Exception):
    """A request that cannot be planned; ``reason`` is written for the person who sent it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class InvalidRequest(ConstructionError):
    """The request itself is unusable (nothing to plan, unknown preference, unreadable file)."""


class UnknownTemplate(ConstructionError):
    """No decomposition template is registered for the request type."""


class DependencyCycle(ConstructionError):
    """The tasks depend on each other in a circle; ``cycle`` lists the task ids in order."""

    def __init__(self, cycle: list[str]) -> None:
        super().__init__("dependency cycle: " + " -> ".join([*cycle, cycle[0]]))
        self.cycle = cycle


class MissingCapability(ConstructionError):
    """Some task types have no agent that accepts them (registered or built in)."""

    def __init__(self, missing: dict[str, list[str]]) -> None:
        parts = [
            f"task type '{t}'" + (f" (capabilities: {', '.join(caps)})" if caps else "")
            for t, caps in sorted(missing.items())
        ]
        super().__init__("no registered agent can do " + "; ".join(parts))
        self.task_types = sorted(missing)
        self.capabilities = sorted({c for caps in missing.values() for c in caps})


class InvalidGraph(ConstructionError):
    """The assembled graph failed the completeness and consistency checks."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid task graph: " + "; ".join(problems))
        self.problems = problems
