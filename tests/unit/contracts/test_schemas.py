"""The committed JSON Schemas are exactly what the models generate (regenerate: make schemas)."""

from __future__ import annotations

import json

from taskloom.contracts.catalog import BUILTIN_CATALOG, all_task_types
from taskloom.contracts.enums import BUILTIN_AGENTS
from taskloom.contracts.schema import SCHEMA_DIR, all_schemas, render
from taskloom.contracts.subjects import Subjects, registry_key


def test_committed_schemas_match_the_models() -> None:
    generated = all_schemas()
    committed = {p.name.removesuffix(".schema.json") for p in SCHEMA_DIR.glob("*.schema.json")}
    assert committed == set(generated), "schemas added or removed: run `make schemas`"
    drifted = [
        name
        for name, schema in generated.items()
        if (SCHEMA_DIR / f"{name}.schema.json").read_text() != render(schema)
    ]
    assert drifted == [], f"schemas drifted from the models: {drifted} (run `make schemas`)"


def test_schemas_are_valid_json_schema_documents() -> None:
    for path in SCHEMA_DIR.glob("*.schema.json"):
        doc = json.loads(path.read_text())
        assert doc.get("type") == "object" or "oneOf" in doc or "$defs" in doc, path.name


def test_catalogue_covers_the_eight_specialists() -> None:
    assert set(BUILTIN_CATALOG) == set(BUILTIN_AGENTS)
    assert all(len(p.task_types) >= 3 for p in BUILTIN_CATALOG.values())
    assert "test_execution" in all_task_types()


def test_subject_names() -> None:
    s = Subjects("taskloom")
    assert s.tasks("core-services") == "taskloom.tasks.core-services"
    assert s.progress("core-services", "w.1", "t*") == "taskloom.progress.core-services.w_1.t_"
    assert s.stream("tasks") == "TASKLOOM_TASKS"
    assert s.agent_consumer("core-services") == "agent_core_services"
    assert s.agents_bucket == "taskloom_agents"
    assert registry_key("core-services", "host.1") == "core-services.host_1"
