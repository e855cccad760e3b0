"""Submit, read back, list and page through workflows over real HTTP."""

from __future__ import annotations

import httpx
from gateway_helpers import SAMPLE_BODY


def test_submit_then_read_back(gateway_url, token_for, user):
    alice = user("alice")
    headers = {"Authorization": f"Bearer {token_for(alice, 'user')}"}
    with httpx.Client(base_url=gateway_url, headers=headers, timeout=10) as http:
        created = http.post("/api/v1/workflows", json=SAMPLE_BODY)
        assert created.status_code == 202, created.text
        body = created.json()
        wf = body["workflow_id"]
        assert body["status_endpoint"].endswith(f"/api/v1/workflows/{wf}")
        assert body["websocket_endpoint"].startswith("ws://") and body["websocket_endpoint"].endswith(
            f"/ws/workflows/{wf}"
        )

        state = http.get(f"/api/v1/workflows/{wf}")
        assert state.status_code == 200, state.text
        assert state.json()["workflow_id"] == wf
        assert state.json()["owner"] == alice

        events = http.get(f"/api/v1/workflows/{wf}/events").json()
        assert events["events"][0]["type"] == "WorkflowSubmitted"
        assert events["events"][0]["position"] == 1
        assert events["events"][0]["data"]["owner"] == alice

        listing = http.get("/api/v1/workflows").json()
        assert [i["workflow_id"] for i in listing["items"]] == [wf]


def test_listing_pages_with_a_cursor(gateway_url, token_for, user):
    bob = user("bob")
    headers = {"Authorization": f"Bearer {token_for(bob, 'developer')}"}
    with httpx.Client(base_url=gateway_url, headers=headers, timeout=10) as http:
        ids = {http.post("/api/v1/workflows", json=SAMPLE_BODY).json()["workflow_id"] for _ in range(5)}
        seen: list[str] = []
        cursor = None
        while True:
            params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
            page = http.get("/api/v1/workflows", params=params).json()
            assert len(page["items"]) <= 2
            seen.extend(i["workflow_id"] for i in page["items"])
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert sorted(seen) == sorted(ids)
        assert len(seen) == len(set(seen))
        bad = http.get("/api/v1/workflows", params={"cursor": "garbage!"})
        assert bad.status_code == 422
        assert "cursor" in bad.json()["detail"]
