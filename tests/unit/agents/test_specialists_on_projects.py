"""Each specialist on the sample project finds its planted flaws by name, and on a clean
project reports none."""

from __future__ import annotations

from pathlib import Path

import pytest
from agents_unit_helpers import run_task

from taskloom.agents.specialists import BUILTIN_AGENT_CLASSES
from taskloom.contracts.catalog import BUILTIN_CATALOG

REQUIREMENTS = [
    "Customers must be able to apply a discount coupon to the cart",
    "The shop should show stock levels fast",
]


def test_every_builtin_agent_implements_every_catalogued_task_type() -> None:
    assert set(BUILTIN_AGENT_CLASSES) == set(BUILTIN_CATALOG)
    for agent_id, profile in BUILTIN_CATALOG.items():
        cls = BUILTIN_AGENT_CLASSES[agent_id]
        assert set(cls.task_types) == set(profile.task_types), agent_id
        assert cls.capabilities == profile.capabilities
        for task_type in profile.task_types:
            assert callable(getattr(cls, cls.handlers[task_type]))


async def test_core_services_finds_the_unpinned_dependency(sample_project: Path, clean_project: Path) -> None:
    flawed = await run_task("core-services", "dependency_analysis", sample_project)
    assert flawed["report"]["unpinned"] == ["httpx"]
    assert any("httpx" in f for f in flawed["findings"])
    clean = await run_task("core-services", "dependency_analysis", clean_project)
    assert clean["findings"] == [] and clean["report"]["healthy"]
    resolution = await run_task("core-services", "version_resolution", sample_project)
    assert any(line.startswith("httpx==") for line in resolution["resolution"]["lock_lines"])
    profile = await run_task("core-services", "import_profiling", sample_project)
    assert profile["module"] == "shopcart" and profile["total_ms"] > 0


async def test_core_services_plans_and_assesses(sample_project: Path) -> None:
    plan = await run_task(
        "core-services", "implementation_plan", sample_project, requirement="apply a discount coupon"
    )
    assert "shopcart.pricing" in plan["touched_modules"]
    perf = await run_task(
        "core-services",
        "performance_assessment",
        sample_project,
        deps=[{"task_id": "t", "outputs": {"durations": {"tests/test_x.py::test_slow": 3.5}}}],
    )
    assert "slow test 'tests/test_x.py::test_slow': 3.50 s" in perf["findings"]


async def test_docs_integration_finds_undocumented_functions_and_broken_links(
    sample_project: Path, clean_project: Path
) -> None:
    cov = await run_task("docs-integration", "docstring_coverage", sample_project)
    assert {"shopcart.inventory.restock", "shopcart.inventory.reserve", "shopcart.pricing.bulk_price"} <= set(
        cov["undocumented_names"]
    )
    assert "shopcart.inventory.level" not in cov["undocumented_names"]
    links = await run_task("docs-integration", "link_check", sample_project)
    assert [b["target"] for b in links["broken"]] == ["docs/deployment.md"]
    assert (await run_task("docs-integration", "docstring_coverage", clean_project))["findings"] == []
    assert (await run_task("docs-integration", "link_check", clean_project))["findings"] == []
    review = await run_task("docs-integration", "documentation_review", clean_project)
    assert review["findings"] == []


async def test_docs_integration_package_documentation_is_cached_by_version(
    sample_project: Path, tmp_path: Path
) -> None:
    first = await run_task(
        "docs-integration", "package_documentation", sample_project, cache_dir=str(tmp_path)
    )
    names = {p["name"].lower(): p for p in first["packages"]}
    assert {"pydantic", "httpx"} <= set(names) and not any(p["cached"] for p in first["packages"])
    assert names["httpx"]["summary"]
    assert any(f.name.startswith("httpx-") for f in tmp_path.iterdir())
    second = await run_task(
        "docs-integration", "package_documentation", sample_project, cache_dir=str(tmp_path)
    )
    assert all(p["cached"] for p in second["packages"])


async def test_testing_specialist_names_the_failing_test_and_untested_functions(
    sample_project: Path, clean_project: Path
) -> None:
    run = await run_task("testing-specialist", "test_execution", sample_project)
    assert run["results"]["failed"] == ["tests.test_cart::test_discount_applies_to_total"]
    assert "tests.test_cart::test_add_and_subtotal" in run["results"]["passed"]
    cov = await run_task("testing-specialist", "coverage_analysis", sample_project)
    untested = {u["name"] for u in cov["coverage"]["untested_functions"]}
    assert "shopcart.pricing.bulk_price" in untested and "shopcart.cart.Cart.add" not in untested
    clean_run = await run_task("testing-specialist", "test_execution", clean_project)
    assert clean_run["findings"] == [] and len(clean_run["results"]["passed"]) == 2
    clean_cov = await run_task("testing-specialist", "coverage_analysis", clean_project)
    assert clean_cov["findings"] == [] and clean_cov["coverage"]["percent"] == 100.0
    bug = await run_task(
        "testing-specialist", "bug_reproduction", sample_project, bug="the discount total is wrong"
    )
    assert bug["reproduced"] and bug["failing_related"] == ["tests.test_cart::test_discount_applies_to_total"]


async def test_testing_specialist_plans_tests_from_upstream(sample_project: Path) -> None:
    deps = [
        {
            "task_id": "cov",
            "outputs": {
                "untested": [
                    {"name": "shopcart.pricing.bulk_price", "file": "shopcart/pricing.py", "line": 22}
                ],
                "failed": ["tests.test_cart::test_discount_applies_to_total"],
            },
        }
    ]
    plan = await run_task(
        "testing-specialist", "test_plan", sample_project, deps=deps, functional_requirements=REQUIREMENTS
    )
    targets = [p["target"] for p in plan["planned"]]
    assert targets[:2] == ["tests.test_cart::test_discount_applies_to_total", "shopcart.pricing.bulk_price"]
    assert len(targets) == 4


async def test_mcp_protocol_validates_tools_and_finds_breaking_schema_changes(
    sample_project: Path, clean_project: Path
) -> None:
    tools = await run_task("mcp-protocol", "mcp_tool_validation", sample_project)
    by_name = {t["name"]: t for t in tools["tools"]}
    assert by_name["stock_level"]["problems"] == []
    assert "parameter 'quantity' has no type annotation" in by_name["reserve_stock"]["problems"]
    compat = await run_task("mcp-protocol", "schema_compatibility", sample_project)
    kinds = {(c["location"], c["kind"]) for d in compat["documents"] for c in d["changes"] if c["breaking"]}
    assert kinds == {
        ("$.note", "property_removed"),
        ("$.currency", "property_added"),
        ("$.order_id", "type_changed"),
    }
    review = await run_task("mcp-protocol", "api_contract_review", clean_project)
    assert review["findings"] == []


async def test_product_manager_writes_prioritised_stories(sample_project: Path) -> None:
    stories = await run_task("product-manager", "user_stories", None, functional_requirements=REQUIREMENTS)
    first = stories["stories"][0]
    assert first["priority"] == "must" and first["role"] == "customer"
    assert all(
        c.startswith("Given ") and " When " in c and " Then " in c for c in first["acceptance_criteria"]
    )
    analysis = await run_task(
        "product-manager", "requirements_analysis", None, functional_requirements=REQUIREMENTS
    )
    assert analysis["findings"] == [
        "requirement 'The shop should show stock levels fast' is ambiguous: 'fast' is not measurable"
    ]
    review = await run_task(
        "product-manager",
        "acceptance_review",
        None,
        functional_requirements=REQUIREMENTS,
        deps=[
            {
                "task_id": "t",
                "outputs": {"passed": [], "failed": ["tests.test_cart::test_discount_applies_to_total"]},
            }
        ],
    )
    assert review["criteria"][0]["status"] == "rejected"
    ranked = await run_task(
        "product-manager",
        "prioritization",
        None,
        deps=[{"task_id": "s", "outputs": {"stories": stories["stories"]}}],
    )
    assert [s["story_id"] for s in ranked["ranked"]] == ["US-1", "US-2"]


async def test_production_ops_finds_missing_health_check_and_secret(
    sample_project: Path, clean_project: Path
) -> None:
    ready = await run_task("production-ops", "deployment_readiness", sample_project)
    assert ready["readiness"]["modules_without_health_endpoint"] == ["shopcart.web"]
    assert "container_image failed: no Dockerfile or Containerfile" in ready["findings"]
    secrets = await run_task("production-ops", "secret_scan", sample_project)
    assert [(s["file"], s["line"]) for s in secrets["secrets"]] == [("shopcart/settings.py", 3)]
    assert "9fQ2xLm7Rt4vWz8KcB3nYp6HdJ1sGa5E" not in str(secrets)
    assert (await run_task("production-ops", "deployment_readiness", clean_project))["findings"] == []
    assert (await run_task("production-ops", "secret_scan", clean_project))["findings"] == []
    probes = await run_task("production-ops", "health_probe", None, urls=["http://127.0.0.1:9/health"])
    assert probes["probes"][0]["healthy"] is False
    perf = await run_task(
        "production-ops",
        "performance_validation",
        None,
        budgets={"import_ms": 10},
        deps=[{"task_id": "p", "outputs": {"import_ms": 25.0}}],
    )
    assert perf["violations"] == {"import_ms": 25.0}


async def test_technical_writer_documents_and_reviews(
    sample_project: Path, clean_project: Path, tmp_path: Path
) -> None:
    ref = await run_task("technical-writer", "api_reference", sample_project)
    assert (
        "## `shopcart.inventory`" in ref["markdown"]
        and "restock(sku: str, quantity: int) -> int" in ref["markdown"]
    )
    readme = await run_task("technical-writer", "readme_review", sample_project)
    assert "README lacks a 'installation' section" in readme["findings"]
    assert (await run_task("technical-writer", "readme_review", clean_project))["findings"] == []
    outside_git = tmp_path / "plain"
    outside_git.mkdir()
    log = await run_task("technical-writer", "changelog", outside_git)
    assert log["is_git_repository"] is False
    synthesis = await run_task(
        "technical-writer",
        "report_synthesis",
        None,
        deps=[
            {
                "task_id": "a",
                "agent_id": "testing-specialist",
                "task_type": "test_execution",
                "outputs": {"summary": "1 failed", "findings": ["failing test 'x'"]},
            }
        ],
    )
    assert "failing test 'x'" in synthesis["markdown"] and synthesis["findings"] == [
        "[testing-specialist] failing test 'x'"
    ]


async def test_architect_finds_the_import_cycle(sample_project: Path, clean_project: Path) -> None:
    graph = await run_task("agent-design-architect", "import_graph_analysis", sample_project)
    assert graph["cycles"] == [["shopcart.cart", "shopcart.pricing"]]
    assert (await run_task("agent-design-architect", "import_graph_analysis", clean_project))[
        "findings"
    ] == []
    impact = await run_task(
        "agent-design-architect",
        "impact_analysis",
        sample_project,
        requirement="discount coupons for the cart",
    )
    assert impact["modules"][0]["module"] in {"shopcart.pricing", "shopcart.cart"}
    review = await run_task("agent-design-architect", "code_review", clean_project)
    assert review["findings"] == []
    graph_review = await run_task(
        "agent-design-architect",
        "task_graph_review",
        None,
        task_graph={
            "tasks": [
                {"task_id": "a", "dependencies": [], "estimated_duration": 5},
                {"task_id": "b", "dependencies": ["a"], "estimated_duration": 10},
                {"task_id": "c", "dependencies": ["a"], "estimated_duration": 3},
                {"task_id": "d", "dependencies": ["b", "c"], "estimated_duration": 1},
            ]
        },
    )
    assert graph_review["review"]["critical_path"] == ["a", "b", "d"]
    design = await run_task("agent-design-architect", "architecture_design", sample_project)
    assert any("shopcart.cart -> shopcart.pricing" in r for r in design["recommendations"])


async def test_missing_project_path_is_a_permanent_input_error() -> None:
    from taskloom.agents.errors import TaskInputError

    with pytest.raises(TaskInputError, match="project_path"):
        await run_task("docs-integration", "docstring_coverage", None)
