"""Plugins discovered by entry point, consultation request/reply between agent processes,
review/handoff/merge requests reaching the orchestrator's command subject, and the built-in
specialists finding the sample project's flaws over the bus."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from agents_testkit import REPO, ProgressLog, agent_env, agent_processes, assignment, wait_registered

from taskloom.contracts import CollaborationType, Subjects
from taskloom.contracts.messages import CollaborationRequested
from taskloom.contracts.subjects import registry_key
from taskloom.settings import Settings

SAMPLE = REPO / "examples" / "sample-project"
PLUGIN_SRC = REPO / "examples" / "plugin-agent" / "src"


def entry_point_shim(root: Path) -> Path:
    """An installed-distribution record of examples/plugin-agent (what ``pip install`` writes),
    so importlib.metadata finds its entry point without touching the shared virtualenv."""
    dist = root / "taskloom_wordcount_agent-0.1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: taskloom-wordcount-agent\nVersion: 0.1.0\n")
    (dist / "entry_points.txt").write_text(
        "[taskloom.agents]\nword-counter = taskloom_wordcount:WordCountAgent\n"
    )
    return root


async def publish(js: Any, subjects: Subjects, task: Any) -> None:
    await js.publish(
        subjects.tasks(task.assigned_agent),
        task.model_dump_json().encode(),
        headers={"Nats-Msg-Id": task.message_id},
    )


async def test_plugin_agent_is_discovered_by_entry_point_and_receives_work(
    settings: Settings, subjects: Subjects, js: Any, progress_log: ProgressLog, tmp_path: Path
) -> None:
    shim = entry_point_shim(tmp_path / "site")
    listed = subprocess.run(
        [sys.executable, "-m", "taskloom.agents", "--list"],
        env=agent_env(settings, [shim, PLUGIN_SRC]),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "word-counter" in listed.stdout.split()
    with agent_processes(settings, [("p1", "word-counter")], extra_path=[shim, PLUGIN_SRC]):
        await wait_registered(js, subjects, [registry_key("word-counter", "p1")])
        await publish(
            js,
            subjects,
            assignment("word-counter", "line_count", {"project_path": str(SAMPLE)}, task_id="count"),
        )
        done = await progress_log.wait_for(lambda u: u.task_id == "count" and u.status.value == "completed")
        assert done.outputs and done.outputs["files"] >= 10 and done.outputs["lines"][".py"] > 50


async def test_consultation_between_agent_processes(
    settings: Settings, subjects: Subjects, js: Any, progress_log: ProgressLog
) -> None:
    with agent_processes(
        settings, [("asker", "agents_testkit:CollaboratingAgent"), ("docs", "docs-integration")]
    ):
        await wait_registered(
            js, subjects, [registry_key("collaborator", "asker"), registry_key("docs-integration", "docs")]
        )
        question = {"task_type": "docstring_coverage", "parameters": {"project_path": str(SAMPLE)}}
        await publish(
            js,
            subjects,
            assignment(
                "collaborator", "consult", {"target": "docs-integration", "question": question}, task_id="ask"
            ),
        )
        done = await progress_log.wait_for(lambda u: u.task_id == "ask" and u.status.value == "completed")
        assert done.outputs and done.outputs["answered_by"] == "docs"
        assert "shopcart.inventory.restock" in done.outputs["answer"]["undocumented_names"]

        await publish(
            js,
            subjects,
            assignment(
                "collaborator",
                "consult",
                {"target": "nobody-home", "question": {}, "timeout": 1},
                task_id="unanswered",
            ),
        )
        failed = await progress_log.wait_for(
            lambda u: u.task_id == "unanswered" and u.status.value == "failed"
        )
        assert failed.error_context and "nobody-home" in failed.error_context["error_message"]


async def test_review_handoff_and_merge_reach_the_orchestrator(
    settings: Settings, subjects: Subjects, js: Any, progress_log: ProgressLog
) -> None:
    commands = await js.subscribe(subjects.command("collaborate"), ordered_consumer=True)
    with agent_processes(settings, [("c1", "agents_testkit:CollaboratingAgent")]):
        await wait_registered(js, subjects, [registry_key("collaborator", "c1")])
        await publish(
            js,
            subjects,
            assignment("collaborator", "collaborate", {}, workflow_id="wf-collab", task_id="collab"),
        )
        done = await progress_log.wait_for(lambda u: u.task_id == "collab" and u.status.value == "completed")
        received = [
            CollaborationRequested.model_validate_json((await commands.next_msg(timeout=10)).data)
            for _ in range(3)
        ]
    assert [r.request.collaboration_type for r in received] == [
        CollaborationType.REVIEW,
        CollaborationType.HANDOFF,
        CollaborationType.MERGE,
    ]
    assert [r.request.collaboration_id for r in received] == done.outputs["requests"]  # type: ignore[index]
    assert all(r.workflow_id == "wf-collab" and r.request.task_id == "collab" for r in received)
    assert received[1].request.target_agents == ["testing-specialist"]
    assert received[2].request.context["task_ids"] == ["a", "b"]


async def test_builtin_specialists_find_the_planted_flaws_over_the_bus(
    settings: Settings, subjects: Subjects, js: Any, progress_log: ProgressLog
) -> None:
    wanted = {
        ("testing-specialist", "test_execution"): "test_discount_applies_to_total",
        ("agent-design-architect", "import_graph_analysis"): "shopcart.cart -> shopcart.pricing",
        ("docs-integration", "docstring_coverage"): "shopcart.inventory.restock",
        ("core-services", "dependency_analysis"): "'httpx'",
        ("production-ops", "deployment_readiness"): "shopcart.web",
    }
    agents = ",".join(sorted({a for a, _ in wanted}))
    with agent_processes(settings, [("all", agents)], ack_wait=30.0):
        await wait_registered(js, subjects, [registry_key(a, "all") for a, _ in wanted])
        for agent_id, task_type in wanted:
            await publish(
                js,
                subjects,
                assignment(agent_id, task_type, {"project_path": str(SAMPLE)}, task_id=task_type),
            )
        for (agent_id, task_type), name in wanted.items():
            done = await progress_log.wait_for(
                lambda u, t=task_type: u.task_id == t and u.status.value in {"completed", "failed"},
                timeout=60,
            )
            assert done.status.value == "completed", done.error_context
            assert done.agent_id == agent_id and done.performance_metrics.execution_time > 0
            assert any(name in f for f in done.outputs["findings"]), (
                task_type,
                json.dumps(done.outputs)[:500],
            )  # type: ignore[index]
