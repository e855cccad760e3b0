"""Idempotent submissions, body size (413), rate limit (429) and readable validation errors."""

from __future__ import annotations

import httpx
from gateway_helpers import SAMPLE_BODY


def test_idempotency_key_returns_the_same_workflow(gateway_url, token_for, user):
    headers = {"Authorization": f"Bearer {token_for(user('ida'), 'user')}", "Idempotency-Key": "order-42"}
    with httpx.Client(base_url=gateway_url, headers=headers) as http:
        first = http.post("/api/v1/workflows", json=SAMPLE_BODY)
        again = http.post("/api/v1/workflows", json=SAMPLE_BODY)
        assert first.status_code == again.status_code == 202
        assert first.json() == again.json()
        listing = http.get("/api/v1/workflows").json()
        assert [i["workflow_id"] for i in listing["items"]] == [first.json()["workflow_id"]]
        events = http.get(f"/api/v1/workflows/{first.json()['workflow_id']}/events").json()["events"]
        assert [e["type"] for e in events] == ["WorkflowSubmitted"]
        other = {**SAMPLE_BODY, "preferences": {"priority": "high"}}
        clash = http.post("/api/v1/workflows", json=other)
        assert clash.status_code == 409 and "Idempotency-Key" in clash.json()["detail"]


def test_same_key_for_different_users_is_independent(gateway_url, token_for, user):
    ids = set()
    for name in ("u1", "u2"):
        headers = {"Authorization": f"Bearer {token_for(user(name), 'user')}", "Idempotency-Key": "shared"}
        ids.add(
            httpx.post(f"{gateway_url}/api/v1/workflows", json=SAMPLE_BODY, headers=headers).json()[
                "workflow_id"
            ]
        )
    assert len(ids) == 2


def test_oversized_body_gets_413(gateway_url, token_for, user):
    headers = {"Authorization": f"Bearer {token_for(user('big'), 'user')}"}
    huge = {**SAMPLE_BODY, "context": {"blob": "x" * 2_000_000}}
    r = httpx.post(f"{gateway_url}/api/v1/workflows", json=huge, headers=headers)
    assert r.status_code == 413
    assert "limit" in r.json()["detail"]


def test_oversized_chunked_body_gets_413(gateway_url, token_for, user):
    headers = {
        "Authorization": f"Bearer {token_for(user('big'), 'user')}",
        "Content-Type": "application/json",
    }

    def chunks():
        yield b'{"request": {"requirements": {"functional": ["'
        for _ in range(300):
            yield b"y" * 8192
        yield b'"]}}}'

    r = httpx.post(f"{gateway_url}/api/v1/workflows", content=chunks(), headers=headers)
    assert r.status_code == 413


def test_validation_errors_say_what_is_wrong(gateway_url, token_for, user):
    headers = {"Authorization": f"Bearer {token_for(user('val'), 'user')}"}
    r = httpx.post(
        f"{gateway_url}/api/v1/workflows",
        json={"request": {"complexity": 42, "requirements": {"functional": ["ok"]}}},
        headers=headers,
    )
    assert r.status_code == 422
    body = r.json()
    assert "request.complexity" in body["detail"] and "less than or equal to 10" in body["detail"]
    assert body["errors"][0]["loc"][-1] == "complexity"
    loop = httpx.post(
        f"{gateway_url}/api/v1/workflows",
        json={**SAMPLE_BODY, "callback_url": "http://127.0.0.1:9/hook", "webhook_events": ["completion"]},
        headers=headers,
    )
    assert loop.status_code == 422 and "private or loopback" in loop.json()["detail"]
    scheme = httpx.post(
        f"{gateway_url}/api/v1/workflows",
        json={**SAMPLE_BODY, "callback_url": "ftp://x.org/"},
        headers=headers,
    )
    assert scheme.status_code == 422 and "http" in scheme.json()["detail"]


def test_rate_limit_gives_429_with_retry_after(start_gateway, token_for, user):
    url = start_gateway(TASKLOOM_RATE_LIMIT_PER_SECOND="0.2", TASKLOOM_RATE_LIMIT_BURST="5")
    slow = {"Authorization": f"Bearer {token_for(user('hasty'), 'viewer')}"}
    other = {"Authorization": f"Bearer {token_for(user('calm'), 'viewer')}"}
    with httpx.Client(base_url=url) as http:
        codes = [http.get("/api/v1/workflows", headers=slow).status_code for _ in range(8)]
        assert codes[:5] == [200] * 5
        assert codes[5:] == [429] * 3
        limited = http.get("/api/v1/workflows", headers=slow)
        assert int(limited.headers["Retry-After"]) >= 1
        assert "rate limit" in limited.json()["detail"]
        # the limit is per user: someone else is unaffected
        assert http.get("/api/v1/workflows", headers=other).status_code == 200


def test_status_reads_take_from_the_same_limit(start_gateway, token_for, user):
    url = start_gateway(
        TASKLOOM_RATE_LIMIT_PER_SECOND="0.2", TASKLOOM_RATE_LIMIT_BURST="4", TASKLOOM_PLAN_ON_SUBMIT="false"
    )
    headers = {"Authorization": f"Bearer {token_for(user('eager'), 'user')}"}
    with httpx.Client(base_url=url, headers=headers) as http:
        wf = http.post("/api/v1/workflows", json=SAMPLE_BODY).json()["workflow_id"]
        codes = [http.get(f"/api/v1/workflows/{path}").status_code for path in (wf, "unknown-id", wf, wf, wf)]
        assert codes == [200, 404, 200, 429, 429]
        limited = http.get(f"/api/v1/workflows/{wf}")
        assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
        assert "rate limit" in limited.json()["detail"]
