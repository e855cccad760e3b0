"""Cache behaviour through NATS (invalidation on write, hit-rate metric), malformed requests,
and bad policy files: clear errors, and the service keeps serving."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from taskloom.context import ContextClient, ContextRequestError, ContextUnavailable
from taskloom.context.domain import PolicyError
from taskloom.context.service import ContextService
from taskloom.contracts.base import new_id
from taskloom.contracts.context import ContextError, ContextErrorCode, parse_context_reply
from taskloom.contracts.subjects import Subjects

MakeService = Callable[..., Awaitable[ContextService]]


def hit_rate_metric(service: ContextService) -> float:
    metrics = service._metrics  # the service's own registry, so tests do not share the gauge
    assert metrics is not None
    value = metrics.registry.get_sample_value("taskloom_context_cache_hit_rate")
    assert value is not None
    return value


async def test_write_invalidates_and_hit_rate_is_reported(
    service: ContextService, client: ContextClient
) -> None:
    wf = new_id()
    await client.put("orchestrator", "workflow", "plan", "v1", workflow_id=wf)
    first = await client.get("core-services", wf, "t1")
    second = await client.get("core-services", wf, "t1")
    assert (first.cached, second.cached) == (False, True)
    assert second.context == first.context == {"plan": "v1"}
    assert hit_rate_metric(service) == pytest.approx(0.5)
    await client.put("core-services", "task", "notes", "n", workflow_id=wf, task_id="t1")
    third = await client.get("core-services", wf, "t1")
    assert third.cached is False and third.context == {"plan": "v1", "notes": "n"}
    await client.put("orchestrator", "workflow", "plan", "v2", workflow_id=wf)
    fourth = await client.get("core-services", wf, "t1")
    assert fourth.cached is False and fourth.context["plan"] == "v2"
    assert (await client.get("core-services", wf, "t1")).cached is True
    stats = service.handlers.cache.stats()
    assert (stats.hits, stats.misses) == (2, 3)
    assert hit_rate_metric(service) == pytest.approx(0.4)
    # a write elsewhere leaves this view cached
    await client.put("orchestrator", "workflow", "plan", "x", workflow_id=new_id())
    assert (await client.get("core-services", wf, "t1")).cached is True
    assert (await client.get("core-services", wf, "t1", use_cache=False)).cached is False


async def raw_request(client: ContextClient, op: str, data: bytes) -> Any:
    return parse_context_reply(await client.request_raw(op, data))


@pytest.mark.parametrize(
    ("op", "data", "needle"),
    [
        ("get", b"{not json", "Invalid JSON"),
        ("get", b"{}", "agent_id: Field required"),
        ("get", b'{"agent_id": "a", "requirements": "all"}', "requirements: Input should be a valid array"),
        ("get", b'{"agent_id": "a", "colour": "red"}', "colour: Extra inputs are not permitted"),
        ("put", b'{"agent_id": "a", "scope": "galaxy", "key": "k"}', "scope: Input should be"),
        ("put", b'{"agent_id": "a", "op": "get", "scope": "task", "key": "k"}', "op: Input should be 'put'"),
        ("contribute", b'{"agent_id": "a", "workflow_id": "w"}', "task_id: Field required"),
        ("audit", b'{"limit": 0}', "limit: Input should be greater than or equal to 1"),
    ],
)
async def test_malformed_requests_get_clear_errors_and_the_service_keeps_serving(
    service: ContextService,
    client: ContextClient,
    op: str,
    data: bytes,
    needle: str,
) -> None:
    reply = await raw_request(client, op, data)
    assert isinstance(reply, ContextError)
    assert reply.code is ContextErrorCode.MALFORMED
    assert reply.message.startswith(f"malformed {op} request: ")
    assert needle in reply.message
    wf = new_id()
    await client.put("orchestrator", "workflow", "k", 1, workflow_id=wf)
    assert (await client.get("core-services", wf)).context == {"k": 1}


async def test_put_without_the_id_its_scope_needs_is_refused(
    service: ContextService, client: ContextClient
) -> None:
    with pytest.raises(ContextRequestError) as caught:
        await client.put("core-services", "task", "k", 1)
    assert caught.value.code is ContextErrorCode.MALFORMED
    assert "needs task_id" in caught.value.message
    with pytest.raises(ContextRequestError, match="single id 'global'"):
        await client.put("orchestrator", "global", "k", 1, scope_id="elsewhere")


def write_policy(path: Path, readers: list[str]) -> Path:
    path.write_text(
        "rules:\n"
        f"  - {{name: read, agents: {json.dumps(readers)}, scopes: [global, workflow], operations: [read]}}\n"
        "  - {name: admin, agents: [orchestrator], scopes: [global, workflow], operations: [read, write],"
        " max_classification: restricted}\n"
    )
    return path


async def test_bad_policy_file_stops_start_up_with_a_clear_message(
    make_service: MakeService, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules:\n  - {name: r, agents: [a], scopes: [galaxy], operations: [read]}\n")
    with pytest.raises(PolicyError) as caught:
        await make_service(policy_file=bad)
    assert str(bad) in caught.value.message and "galaxy" in caught.value.message
    with pytest.raises(PolicyError, match="cannot be read"):
        await make_service(policy_file=tmp_path / "missing.yaml")


async def test_reload_applies_a_good_policy_and_refuses_a_bad_one(
    make_service: MakeService, client: ContextClient, tmp_path: Path
) -> None:
    path = write_policy(tmp_path / "policy.yaml", ["alpha"])
    first = await make_service(policy_file=path)
    second = await make_service(policy_file=path)
    wf = new_id()
    await client.put("orchestrator", "workflow", "plan", "p", workflow_id=wf)
    assert (await client.get("alpha", wf)).context == {"plan": "p"}
    assert (await client.get("beta", wf)).context == {}
    write_policy(path, ["beta"])
    before = {id(first.handlers.policy), id(second.handlers.policy)}
    reply = await client.reload()
    assert reply.rules == 2 and reply.source == str(path)
    for _ in range(100):  # one replica took the request; the other follows its broadcast
        if not before & {id(first.handlers.policy), id(second.handlers.policy)}:
            break
        await asyncio.sleep(0.02)
    for replica in (first, second):
        assert replica.handlers.policy.decide("beta", "read", "workflow", "plan", "internal").allowed
    assert (await client.get("alpha", wf)).context == {}  # cached views went with the old policy
    assert (await client.get("beta", wf)).context == {"plan": "p"}
    path.write_text("rules: [oops")
    with pytest.raises(ContextRequestError) as caught:
        await client.reload()
    assert caught.value.code is ContextErrorCode.BAD_POLICY
    assert "not valid YAML" in caught.value.message
    assert (await client.get("beta", wf, use_cache=False)).context == {
        "plan": "p"
    }  # old policy still in force


async def test_client_waits_briefly_for_a_service_then_says_none_is_running(
    make_service: MakeService, nc: Any, subjects: Subjects
) -> None:
    impatient = ContextClient(nc, subjects, timeout=2, no_responder_wait=0.1)
    with pytest.raises(ContextUnavailable, match="no context service is running"):
        await impatient.audit()
    patient = ContextClient(nc, subjects, timeout=2, no_responder_wait=30)
    pending = asyncio.create_task(patient.audit())
    await asyncio.sleep(0.2)
    assert not pending.done()
    await make_service()
    page = await asyncio.wait_for(pending, 30)
    assert page.records == []
