"""Storage on real PostgreSQL: sensitive values never in clear text, key rotation, versions and
replay of the write log, the audit trail, and size limits."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import asyncpg
import pytest
from cryptography.fernet import Fernet

from taskloom.context import ContextClient, ContextRequestError
from taskloom.context.adapters.store import AuditEntry
from taskloom.context.audit_buffer import AuditBacklogFull, AuditBuffer
from taskloom.context.domain import Limits, ScopeKey
from taskloom.context.service import ContextService
from taskloom.contracts.base import new_id
from taskloom.contracts.context import AuditDecision, ContextErrorCode, ContextScope

MakeService = Callable[..., Awaitable[ContextService]]

SECRET = "sk-live-4f9a8b7c6d5e"


async def all_rows_text(db: asyncpg.Connection) -> str:
    rows = await db.fetch(
        "SELECT t::text AS r FROM context_current t UNION ALL SELECT t::text FROM context_events t"
        " UNION ALL SELECT t::text FROM context_audit t"
    )
    return "\n".join(r["r"] for r in rows)


async def test_raw_select_shows_no_sensitive_value_in_clear(
    make_service: MakeService, client: ContextClient, raw_db: asyncpg.Connection
) -> None:
    await make_service()
    wf = new_id()
    by_pattern = await client.put("orchestrator", "workflow", "github_token", SECRET, workflow_id=wf)
    by_flag = await client.put(
        "orchestrator", "workflow", "notes", {"v": SECRET + "-flag"}, workflow_id=wf, sensitive=True
    )
    by_class = await client.put(
        "orchestrator", "workflow", "plan", SECRET + "-class", workflow_id=wf, classification="restricted"
    )
    nested = await client.put(
        "orchestrator", "workflow", "cfg", {"db": {"password": SECRET + "-n"}}, workflow_id=wf
    )
    plain = await client.put("orchestrator", "workflow", "readme", "hello world", workflow_id=wf)
    assert [r.encrypted for r in (by_pattern, by_flag, by_class, nested, plain)] == [
        True,
        True,
        True,
        True,
        False,
    ]
    dump = await all_rows_text(raw_db)
    assert SECRET not in dump
    assert "hello world" in dump  # the raw read really sees the table contents
    rows = await raw_db.fetch(
        "SELECT key, value, ciphertext, sensitive FROM context_current WHERE scope_id = $1", wf
    )
    for row in rows:
        assert (row["value"] is None) is row["sensitive"]
        if row["sensitive"]:
            assert SECRET.encode() not in row["ciphertext"]
    view = await client.get("orchestrator", wf)
    assert view.context["github_token"] == SECRET
    assert view.context["cfg"] == {"db": {"password": SECRET + "-n"}}


async def test_a_caller_without_access_to_sensitive_data_gets_the_keys_not_the_values(
    make_service: MakeService, raw_db: asyncpg.Connection
) -> None:
    import json

    from taskloom.contracts.context import ContextGetRequest, ContextPutRequest

    service = await make_service()
    wf = new_id()
    for key, value, flags in (
        ("github_token", SECRET, {}),
        ("notes", {"v": SECRET}, {"sensitive": True}),
        ("readme", "hello world", {}),
    ):
        await service.handlers.put(
            ContextPutRequest(
                agent_id="orchestrator", scope="workflow", key=key, value=value, workflow_id=wf, **flags
            )
        )

    async def view(redact: bool) -> dict[str, object]:
        request = ContextGetRequest(agent_id="orchestrator", workflow_id=wf, redact_sensitive=redact)
        return dict(json.loads(await service.handlers.get(request)))

    redacted = await view(True)
    assert SECRET not in json.dumps(redacted)
    assert redacted["context"] == {"readme": "hello world"}
    assert redacted["redacted"] == ["github_token", "notes"]
    full = await view(False)  # the cached redacted view is not served to a caller who may see all
    assert full["context"]["github_token"] == SECRET and full["context"]["notes"] == {"v": SECRET}
    assert full["redacted"] == []
    again = await view(True)  # nor the full one to a caller who may not
    assert again["cached"] is True and again["context"] == {"readme": "hello world"}


async def test_rotation_keeps_old_values_readable(
    make_service: MakeService, raw_db: asyncpg.Connection
) -> None:
    old, new = Fernet.generate_key(), Fernet.generate_key()
    wf = new_id()
    from taskloom.contracts.context import ContextGetRequest, ContextPutRequest

    first = await make_service(keys=[old])
    await first.handlers.put(
        ContextPutRequest(
            agent_id="orchestrator", scope="workflow", key="api_key", value="k-old", workflow_id=wf
        )
    )
    await first.stop()
    rotated = await make_service(keys=[new, old])
    await rotated.handlers.put(
        ContextPutRequest(
            agent_id="orchestrator", scope="workflow", key="db_password", value="p-new", workflow_id=wf
        )
    )
    import json

    view = json.loads(await rotated.handlers.get(ContextGetRequest(agent_id="orchestrator", workflow_id=wf)))
    assert view["context"]["api_key"] == "k-old"
    assert view["context"]["db_password"] == "p-new"
    token = await raw_db.fetchval("SELECT ciphertext FROM context_current WHERE key = 'db_password'")
    assert Fernet(new).decrypt(bytes(token)) == b'"p-new"'


async def test_versions_and_replay(make_service: MakeService, client: ContextClient) -> None:
    service = await make_service()
    wf = new_id()
    v1 = await client.put("orchestrator", "workflow", "plan", "draft", workflow_id=wf)
    v2 = await client.put("orchestrator", "workflow", "plan", "final", workflow_id=wf, expected_version=1)
    await client.put("orchestrator", "workflow", "extra", 1, workflow_id=wf)
    assert (v1.version, v2.version) == (1, 2)
    with pytest.raises(ContextRequestError) as caught:
        await client.put(
            "orchestrator", "workflow", "plan", "lost update", workflow_id=wf, expected_version=1
        )
    assert caught.value.code is ContextErrorCode.CONFLICT
    scope = ScopeKey(ContextScope.WORKFLOW, wf)
    now = await service.store.replay(scope)
    assert {r.key: r.value for r in now} == {"plan": '"final"', "extra": "1"}
    first_event = min(r.event_id for r in now if r.key == "plan") - 1
    then = await service.store.replay(scope, up_to_event_id=first_event)
    assert {r.key: (r.version, r.value) for r in then} == {"plan": (1, '"draft"')}


async def test_every_access_leaves_an_audit_record(make_service: MakeService, client: ContextClient) -> None:
    await make_service()
    wf = new_id()
    await client.put("orchestrator", "workflow", "plan", "a", workflow_id=wf)
    await client.put("orchestrator", "workflow", "plan", "b", workflow_id=wf)
    await client.put(
        "orchestrator", "workflow", "secret_plan", "s", workflow_id=wf, classification="restricted"
    )
    await client.get("core-services", wf, "t1")  # reads plan, denied secret_plan
    await client.get("core-services", wf, "t1")  # cached: still audited
    with pytest.raises(ContextRequestError):
        await client.put("core-services", "workflow", "plan", "c", workflow_id=wf)
    records = (await client.audit(workflow_id=wf)).records
    summary = [(r.agent_id, r.operation, r.decision.value, r.keys) for r in records]
    assert summary == [
        ("orchestrator", "create", "allow", ["plan"]),
        ("orchestrator", "write", "allow", ["plan"]),
        ("orchestrator", "create", "allow", ["secret_plan"]),
        ("core-services", "read", "allow", ["plan"]),
        ("core-services", "read", "deny", ["workflow:secret_plan"]),
        ("core-services", "read", "allow", ["plan"]),
        ("core-services", "read", "deny", ["workflow:secret_plan"]),
        ("core-services", "write", "deny", ["plan"]),
    ]
    assert records[5].reason == "cached view"
    other = await client.audit(workflow_id=new_id())
    assert other.records == []
    page = await client.audit(workflow_id=wf, decision=AuditDecision.DENY, limit=2)
    assert len(page.records) == 2 and page.next_after_id == page.records[-1].id
    rest = await client.audit(workflow_id=wf, decision=AuditDecision.DENY, after_id=page.next_after_id or 0)
    assert [r.operation for r in rest.records] == ["write"]


async def test_repeated_reads_store_each_key_list_once(
    make_service: MakeService, client: ContextClient, raw_db: asyncpg.Connection
) -> None:
    await make_service()
    wf = new_id()
    await client.put("orchestrator", "workflow", "plan", "a", workflow_id=wf)
    await client.put(
        "orchestrator", "workflow", "secret_plan", "s", workflow_id=wf, classification="restricted"
    )
    for _ in range(3):
        await client.get("core-services", wf, "t1")
    records = (await client.audit(workflow_id=wf, agent_id="core-services")).records
    assert [(r.decision.value, r.keys) for r in records] == [
        ("allow", ["plan"]),
        ("deny", ["workflow:secret_plan"]),
    ] * 3
    # both the served and the withheld key lists are referenced by digest, not copied per read
    rows = await raw_db.fetch(
        "SELECT a.keys, ks.keys AS listed FROM context_audit a"
        " JOIN context_keysets ks ON ks.digest = a.keyset"
        " WHERE a.workflow_id = $1 AND a.operation = 'read'",
        wf,
    )
    assert len(rows) == 6 and all(r["keys"] == [] for r in rows)
    assert {tuple(r["listed"]) for r in rows} == {("plan",), ("workflow:secret_plan",)}


async def test_values_and_contexts_over_the_limits_are_refused(
    make_service: MakeService, client: ContextClient
) -> None:
    await make_service(limits=Limits(max_value_bytes=1000, max_context_bytes=2500))
    wf = new_id()
    with pytest.raises(ContextRequestError) as caught:
        await client.put("orchestrator", "workflow", "big", "x" * 1000, workflow_id=wf)
    assert caught.value.code is ContextErrorCode.TOO_LARGE
    assert "over the limit of 1000 bytes" in caught.value.message
    await client.put("orchestrator", "workflow", "a", "x" * 900, workflow_id=wf)
    await client.put("orchestrator", "workflow", "b", "x" * 900, workflow_id=wf)
    with pytest.raises(ContextRequestError, match="max_context_memory_mb"):
        await client.put("orchestrator", "workflow", "c", "x" * 900, workflow_id=wf)
    # each scope fits, the merged view does not: the read is refused, not cut short
    await client.put("orchestrator", "global", "g", "x" * 900)
    with pytest.raises(ContextRequestError) as too_big:
        await client.get("orchestrator", wf)
    assert too_big.value.code is ContextErrorCode.TOO_LARGE
    view = await client.get("orchestrator", wf, requirements=["a"])
    assert set(view.context) == {"a"}


async def test_audit_backlog_is_bounded_and_refuses_rather_than_drops(
    make_service: MakeService, client: ContextClient
) -> None:
    service = await make_service()
    buffer = AuditBuffer(service.store, max_pending=3)
    wf = new_id()
    entry = AuditEntry(agent_id="a", operation="read", decision=AuditDecision.ALLOW, workflow_id=wf)
    buffer.add((entry, None), (entry, None))
    with pytest.raises(AuditBacklogFull, match="refusing reads"):
        buffer.add((entry, None), (entry, None))  # all or none: neither is buffered
    buffer.add((entry, None))
    await buffer.flush()
    assert len((await client.audit(workflow_id=wf)).records) == 3
