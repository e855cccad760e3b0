"""What the eight built-in specialists can do: their capabilities and the task types they
accept. The constructor's templates emit only these task types for built-in agents, and each
built-in agent implements every task type listed for it here (a test checks both)."""

from __future__ import annotations

from dataclasses import dataclass

from taskloom.contracts.enums import AgentId

__all__ = ["AgentProfile", "BUILTIN_CATALOG", "agents_for_task_type", "all_task_types"]


@dataclass(frozen=True)
class AgentProfile:
    agent_id: str
    capabilities: tuple[str, ...]
    task_types: tuple[str, ...]
    description: str


BUILTIN_CATALOG: dict[str, AgentProfile] = {
    p.agent_id: p
    for p in (
        AgentProfile(
            AgentId.CORE_SERVICES.value,
            ("dependency_parsing", "version_resolution", "performance_optimization", "implementation"),
            (
                "dependency_analysis",
                "version_resolution",
                "import_profiling",
                "implementation_plan",
                "performance_assessment",
            ),
            "Dependencies against the installed environment, version resolution, import-time profiling",
        ),
        AgentProfile(
            AgentId.MCP_PROTOCOL.value,
            ("mcp_tools", "schema_validation", "api_contracts"),
            ("mcp_tool_validation", "schema_compatibility", "api_contract_review"),
            "MCP tool definitions, JSON Schema / OpenAPI validation and breaking-change checks",
        ),
        AgentProfile(
            AgentId.DOCS_INTEGRATION.value,
            ("documentation_fetching", "docstring_analysis", "link_checking"),
            ("package_documentation", "docstring_coverage", "link_check", "documentation_review"),
            "Package documentation from installed metadata, docstring coverage, broken internal links",
        ),
        AgentProfile(
            AgentId.TESTING_SPECIALIST.value,
            ("test_execution", "coverage_analysis", "test_design"),
            (
                "test_execution",
                "coverage_analysis",
                "untested_code_analysis",
                "test_plan",
                "bug_reproduction",
            ),
            "Runs the project's tests, measures coverage, finds untested public functions",
        ),
        AgentProfile(
            AgentId.PRODUCT_MANAGER.value,
            ("requirements", "user_stories", "prioritization"),
            ("requirements_analysis", "user_stories", "prioritization", "acceptance_review"),
            "User stories with Given/When/Then acceptance criteria and a prioritisation",
        ),
        AgentProfile(
            AgentId.PRODUCTION_OPS.value,
            ("deployment", "security", "health_monitoring"),
            ("deployment_readiness", "secret_scan", "health_probe", "performance_validation"),
            "Deployment readiness, secret scanning, health probes",
        ),
        AgentProfile(
            AgentId.TECHNICAL_WRITER.value,
            ("api_docs", "changelog", "readme", "reporting"),
            ("api_reference", "changelog", "readme_review", "release_notes", "report_synthesis"),
            "API reference from code, changelog from git history, README review, reports",
        ),
        AgentProfile(
            AgentId.AGENT_DESIGN_ARCHITECT.value,
            ("architecture", "import_graph", "graph_review", "impact_analysis"),
            (
                "import_graph_analysis",
                "architecture_design",
                "task_graph_review",
                "impact_analysis",
                "code_review",
            ),
            "Import graph with cycles and layering violations, task graph review, change impact",
        ),
    )
}


def agents_for_task_type(task_type: str) -> list[str]:
    return [p.agent_id for p in BUILTIN_CATALOG.values() if task_type in p.task_types]


def all_task_types() -> set[str]:
    return {t for p in BUILTIN_CATALOG.values() for t in p.task_types}
