"""Every stream, consumer, subject and KV bucket the README's NATS CLI section names exists on a running bus,
declared by the bus library the services use (translated to the test's own namespace)."""

from __future__ import annotations

import re
from pathlib import Path

import nats
import pytest
from nats.js.api import DeliverPolicy

from taskloom.bus.admin import consumer_config, ensure_consumer, ensure_kv, ensure_stream
from taskloom.bus.topology import Topology
from taskloom.contracts.enums import BUILTIN_AGENTS
from taskloom.contracts.subjects import Subjects, registry_key
from taskloom.settings import Settings

README = Path(__file__).resolve().parents[2] / "README.md"
SECTION = "## Inspecting the bus with the NATS CLI"
DEFAULT = Subjects("taskloom")


def doc_text() -> str:
    """The README's NATS CLI section, up to the next second-level heading."""
    text = README.read_text()
    assert SECTION in text, "the README lost its NATS CLI section"
    body = text.split(SECTION, 1)[1]
    return SECTION + body.split("\n## ", 1)[0]


def test_the_doc_uses_the_real_default_names() -> None:
    text = doc_text()
    streams = set(re.findall(r"\bTASKLOOM_[A-Z]+\b", text)) - {
        "TASKLOOM_NAMESPACE",
        "TASKLOOM_NATS_PASSWORD_ADMIN",
    }
    kinds = ("commands", "graphs", "tasks", "progress", "events", "dlq")
    assert streams == {DEFAULT.stream(k) for k in kinds}
    assert DEFAULT.agents_bucket in text
    for agent in re.findall(r"\bagent_(?!id\b)([a-z_]+)\b", text):
        assert any(DEFAULT.agent_consumer(a) == f"agent_{agent}" for a in BUILTIN_AGENTS), agent
    assert f"nats sub '{DEFAULT.events_all}'" in text
    assert f"nats sub '{DEFAULT.events_of('WF').replace('WF', '<workflow_id>')}'" in text


def _translate(name: str, s: Subjects) -> str:
    return name.replace("TASKLOOM_", s.namespace.upper() + "_").replace("taskloom", s.namespace)


async def test_every_name_in_the_doc_exists_at_runtime(settings: Settings, subjects: Subjects) -> None:
    text = doc_text()
    nc = await nats.connect(settings.nats_url or "")
    try:
        js = nc.jetstream()
        topology = Topology.from_settings(settings)
        for config in topology.stream_configs(subjects):
            await ensure_stream(js, config)
        await ensure_kv(js, subjects.agents_bucket, topology.agent_registry_ttl)
        for agent in BUILTIN_AGENTS:
            await ensure_consumer(
                js,
                subjects.stream("tasks"),
                consumer_config(
                    subjects.agent_consumer(agent),
                    filter_subjects=[subjects.tasks(agent)],
                    ack_wait=30,
                    max_deliver=5,
                    max_ack_pending=16,
                    deliver_policy=DeliverPolicy.ALL,
                ),
            )

        for stream in set(re.findall(r"\bTASKLOOM_(?:COMMANDS|GRAPHS|TASKS|PROGRESS|EVENTS|DLQ)\b", text)):
            info = await js.stream_info(_translate(stream, subjects))
            assert info.config.name == _translate(stream, subjects)
        for consumer in set(re.findall(r"\bagent_(?!id\b)[a-z_]+\b", text)):
            info = await js.consumer_info(subjects.stream("tasks"), consumer)
            assert info.name == consumer
        kv = await js.key_value(_translate("taskloom_agents", subjects))
        await kv.put(registry_key("core-services", "i1"), b"{}")
        assert (await kv.get(registry_key("core-services", "i1"))).value == b"{}"

        # every subject followed with `nats sub` receives what the services publish
        captured = {
            "events": subjects.event("wf1", "TaskCompleted"),
            "progress": subjects.progress("core-services", "wf1", "t1"),
            "cmd": subjects.command("cancel"),
            "heartbeat": subjects.heartbeat("core-services", "i1"),
            "signals": subjects.cancel_signal("wf1", "t1"),
        }
        patterns = [
            _translate(p, subjects).replace("<workflow_id>", "wf1")
            for p in re.findall(r"nats sub '([^']+)'", text)
        ]
        assert len(patterns) >= 5
        for pattern in patterns:
            sub = await nc.subscribe(pattern)
            sent = [s for s in captured.values() if _matches(pattern, s)]
            assert sent, f"no service subject matches {pattern}"
            for s in sent:
                await nc.publish(s, b"{}")
            for s in sent:
                assert (await sub.next_msg(timeout=5)).subject == s
            await sub.unsubscribe()
        # the filtered view of one workflow's events selects the stored events of that workflow
        await js.publish(subjects.event("wf1", "TaskCompleted"), b"{}")
        await js.publish(subjects.event("wf2", "TaskCompleted"), b"{}")
        view = _translate("taskloom.events.<workflow_id>.>", subjects).replace("<workflow_id>", "wf1")
        psub = await js.pull_subscribe(view, stream=subjects.stream("events"))
        msgs = await psub.fetch(10, timeout=5)
        assert msgs and all(m.subject.startswith(subjects.events_of("wf1")[:-1]) for m in msgs)
    finally:
        await nc.close()


def _matches(pattern: str, subject: str) -> bool:
    p, s = pattern.split("."), subject.split(".")
    for i, tok in enumerate(p):
        if tok == ">":
            return len(s) > i
        if i >= len(s) or (tok != "*" and tok != s[i]):
            return False
    return len(p) == len(s)


@pytest.mark.parametrize(
    ("pattern", "subject", "expected"),
    [
        ("a.>", "a.b.c", True),
        ("a.*", "a.b", True),
        ("a.*", "a.b.c", False),
        ("a.b", "a.c", False),
    ],
)
def test_subject_matching_helper(pattern: str, subject: str, expected: bool) -> None:
    assert _matches(pattern, subject) is expected
