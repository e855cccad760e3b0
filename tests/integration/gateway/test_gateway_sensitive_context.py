"""``access_sensitive_data`` (privileged_user, admin) over the REST API: a caller the context policy
lets read a key, but without that operation, gets the key named in ``redacted`` and never its
value; a privileged user gets the value. A real gateway and a real context service process, with
a policy that lets people (``user:*``) read and write the global scope."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from gateway_helpers import gateway_env

from taskloom.cli.devstack import ServiceProcess, free_port, service_available
from taskloom.infra import StackInfo

POLICY = """
version: 1
roles:
  people: ["user:*"]
rules:
  - name: people-global
    roles: [people]
    scopes: [global]
    operations: [read, write]
    max_classification: restricted
    owned_only: false
"""


@pytest.fixture(scope="module")
def pair(
    stack: StackInfo, start_gateway: Callable[..., str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A gateway and a context service of their own namespace; the gateway's URL."""
    if not service_available("context"):
        pytest.skip("the context service is not installed")
    namespace = f"g{uuid.uuid4().hex[:10]}"
    folder = Path(tmp_path_factory.mktemp("sensitive"))
    (folder / "policy.yaml").write_text(POLICY)
    port = free_port()
    env = gateway_env(stack, namespace, port, TASKLOOM_CONTEXT_POLICY_FILE=str(folder / "policy.yaml"))
    context = ServiceProcess("context", ["-m", "taskloom.context"], env, port, folder / "context.log")
    context.start()
    try:
        context.wait_ready(timeout=60)
        yield start_gateway(namespace, TASKLOOM_RATE_LIMIT_PER_SECOND="100000")
    finally:
        context.stop(grace=5)


def test_only_callers_with_access_to_sensitive_data_see_sensitive_values(
    pair: str, token_for: Callable[..., str]
) -> None:
    base = f"{pair}/api/v1/context/global/global"  # the namespace is this module's own

    def headers(*roles: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token_for(f'p-{uuid.uuid4().hex[:6]}', *roles)}"}

    for key, body in (
        ("db_password", {"value": "hunter2"}),  # sensitive by its name
        ("notes", {"value": {"v": "hunter2-too"}, "sensitive": True}),  # sensitive by its flag
        ("motd", {"value": "hello"}),
    ):
        r = httpx.put(f"{base}/{key}", json=body, headers=headers("admin"))
        assert r.status_code == 200, r.text

    for role in ("user", "developer", "viewer"):
        r = httpx.get(base, headers=headers(role))
        assert r.status_code == 200, (role, r.text)
        assert "hunter2" not in r.text, role
        assert r.json()["context"] == {"motd": "hello"}, role
        assert r.json()["redacted"] == ["db_password", "notes"], role
    # privileged_user grants access_sensitive_data only: reading context also takes view_workflow
    for roles in (("user", "privileged_user"), ("admin",)):
        r = httpx.get(base, headers=headers(*roles))
        role = "+".join(roles)
        assert r.status_code == 200, (role, r.text)
        view = r.json()
        assert view["context"]["db_password"] == "hunter2", role
        assert view["context"]["notes"] == {"v": "hunter2-too"}, role
        assert view["redacted"] == [], role
