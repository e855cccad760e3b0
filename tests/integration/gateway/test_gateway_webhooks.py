"""Webhook delivery to a local receiver: signed with HMAC-SHA256, retried after a failure,
recorded in PostgreSQL; only the chosen event types are sent."""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import asyncpg
import httpx
import pytest
from gateway_helpers import SAMPLE_BODY

from taskloom.contracts.events import WorkflowCompleted, WorkflowStarted
from taskloom.contracts.graph import TaskGraph, TaskSpec
from taskloom.contracts.workflow import WorkflowResult
from taskloom.eventstore import EventStore, NewEvent
from taskloom.gateway.domain.webhooks import verify
from taskloom.settings import Settings, asyncpg_dsn

SECRET = "webhook-test-secret"


class Receiver:
    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.received: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if receiver.failures > 0:
                    receiver.failures -= 1
                    self.send_response(500)
                else:
                    receiver.received.append((dict(self.headers), body))
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def webhook_gateway(start_gateway):
    namespace = f"w{uuid.uuid4().hex[:10]}"
    url = start_gateway(
        namespace,
        TASKLOOM_WEBHOOK_ALLOW_PRIVATE="true",
        TASKLOOM_WEBHOOK_SECRET=SECRET,
        TASKLOOM_WEBHOOK_BACKOFF_SECONDS="0.2",
    )
    return url


async def wait_for(predicate, timeout: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.1)


async def test_signed_delivery_with_retry(webhook_gateway, token_for, user, stack):
    token = token_for(user("hook"), "user")
    with Receiver(failures=1) as receiver:
        body = {
            **SAMPLE_BODY,
            "callback_url": receiver.url,
            "webhook_events": ["completion", "task_completed"],
        }
        r = httpx.post(
            f"{webhook_gateway}/api/v1/workflows", json=body, headers={"Authorization": f"Bearer {token}"}
        )
        assert r.status_code == 202, r.text
        wf = r.json()["workflow_id"]
        store = EventStore.from_settings(Settings(database_url=stack.database_url, nats_url=stack.nats_url))
        try:
            graph = TaskGraph(
                request_id="r", tasks=[TaskSpec(task_id="t1", task_type="x", assigned_agent="a")]
            )
            result = WorkflowResult(workflow_id=wf, success=True, completion_percentage=100.0)
            for version, event in enumerate(
                [
                    WorkflowStarted(workflow_id=wf, graph=graph),
                    WorkflowCompleted(workflow_id=wf, result=result),
                ],
                start=2,
            ):
                await store.append(
                    wf, [NewEvent(event.event_id, event.type, event.model_dump(mode="json"))], version - 1
                )
        finally:
            await store.close()
        await wait_for(lambda: len(receiver.received) >= 1)
        await asyncio.sleep(0.5)  # anything else would arrive by now
        assert len(receiver.received) == 1, "only the chosen event types are sent"
        headers, raw = receiver.received[0]
        assert verify(SECRET.encode(), raw, headers["X-Taskloom-Signature"])
        assert not verify(b"wrong", raw, headers["X-Taskloom-Signature"])
        frame = json.loads(raw)
        assert frame["event_type"] == "completion" and frame["workflow_id"] == wf and frame["position"] == 3
        assert headers["X-Taskloom-Event"] == "completion"

    conn = await asyncpg.connect(asyncpg_dsn(stack.database_url))
    try:
        rows = await conn.fetch(
            "select status, attempts, last_status_code from webhook_deliveries where workflow_id = $1", wf
        )
    finally:
        await conn.close()
    assert [(r["status"], r["attempts"], r["last_status_code"]) for r in rows] == [("delivered", 2, 204)]
